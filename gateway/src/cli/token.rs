//! The bearer token a command sends, from the first of: `--token-file PATH`, the environment
//! variable `DYEGATE_ADMIN_TOKEN`, gateway.yaml (`admin.token`, else the first identity of
//! `admin.tokens` allowed the call). Never from a flag's value: a token on a command line is in
//! the shell's history and in `ps` for every user to read.

use super::exit::Failure;
use crate::config::settings::admin_tokens::AdminIdentity;
use crate::config::settings::model::AdminRole;
use std::path::Path;

/// The environment variable a token may come from.
pub const ENV: &str = "DYEGATE_ADMIN_TOKEN";

/// A token given for this command: `--token-file`'s content (read by the caller: `file`), else
/// `env`'s value. `Ok(None)`: neither, gateway.yaml decides. An empty variable counts as unset;
/// an empty or unreadable file is a mistake (exit 2).
pub fn given(
    token_file: Option<(&Path, std::io::Result<String>)>,
    env: Option<String>,
) -> Result<Option<String>, Failure> {
    if let Some((path, read)) = token_file {
        let text = read.map_err(|e| {
            Failure::usage(format!(
                "--token-file {}: cannot read it: {e}",
                path.display()
            ))
        })?;
        return checked(text.trim(), &format!("--token-file {}", path.display())).map(Some);
    }
    match env.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => checked(t, ENV).map(Some),
    }
}

fn checked(token: &str, from: &str) -> Result<String, Failure> {
    if token.is_empty() {
        return Err(Failure::usage(format!("{from}: empty, expected the token")));
    }
    if token.chars().any(|c| c.is_control()) {
        return Err(Failure::usage(format!(
            "{from}: the token has a line break or another control character, expected one line"
        )));
    }
    Ok(token.to_string())
}

/// gateway.yaml's token for a call: `admin.token`, else the first identity allowed it (`write`
/// for a change).
pub fn configured(identities: &[AdminIdentity], write: bool) -> Option<&str> {
    (identities.iter())
        .find(|i| !write || i.role == AdminRole::Write)
        .map(|i| i.token.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn the_file_comes_before_the_environment() {
        let file = Path::new("/run/secrets/admin");
        let read = Ok("s3cret\n".to_string());
        assert_eq!(
            given(Some((file, read)), Some("other".into())),
            Ok(Some("s3cret".into()))
        );
        assert_eq!(
            given(None, Some(" env-token \n".into())),
            Ok(Some("env-token".into()))
        );
        assert_eq!(given(None, Some(String::new())), Ok(None));
        assert_eq!(given(None, None), Ok(None));
    }

    #[test]
    fn an_unusable_file_is_a_usage_error_that_shows_no_token() {
        let file = Path::new("/run/secrets/admin");
        let missing = Err(Error::new(ErrorKind::NotFound, "No such file or directory"));
        assert_eq!(
            given(Some((file, missing)), None),
            Err(Failure::usage(
                "--token-file /run/secrets/admin: cannot read it: No such file or directory"
            ))
        );
        assert_eq!(
            given(Some((file, Ok("\n".into()))), None),
            Err(Failure::usage(
                "--token-file /run/secrets/admin: empty, expected the token"
            ))
        );
        let two_lines = given(Some((file, Ok("abc\ndef\n".into()))), None);
        assert_eq!(
            two_lines,
            Err(Failure::usage(
                "--token-file /run/secrets/admin: the token has a line break or another control \
                 character, expected one line"
            ))
        );
    }

    #[test]
    fn gateway_yaml_gives_the_first_identity_allowed_the_call() {
        let id = |name: &str, role| AdminIdentity {
            name: name.into(),
            role,
            token: format!("{name}-token"),
        };
        let ids = [
            id("viewer", AdminRole::Read),
            id("deployer", AdminRole::Write),
        ];
        assert_eq!(configured(&ids, false), Some("viewer-token"));
        assert_eq!(configured(&ids, true), Some("deployer-token"));
        assert_eq!(configured(&ids[..1], true), None);
        assert_eq!(configured(&[], false), None);
    }
}
