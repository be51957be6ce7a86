//! One command's conversation with the admin API: the address and token it settled on, the
//! output form, and each call's answer as JSON.

use super::args::AdminArgs;
use super::exit::Failure;
use super::output::{self, Format};
use super::{target, token};
use crate::admin::client::{self, Endpoint};
use crate::config::Gateway;
use serde_json::Value;
use std::io::IsTerminal;
use std::path::PathBuf;

pub struct Session {
    pub endpoint: Endpoint,
    token: Option<String>,
    /// Where the token came from, for a refusal's message (never the token itself).
    token_origin: &'static str,
    pub format: Format,
}

/// One answer of the admin API.
pub struct Answer {
    pub status: u16,
    /// As received (what `-o json` prints).
    pub text: String,
    pub json: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The API's own words for a refusal (`{"error": ...}`), else the HTTP status.
    pub fn error(&self) -> String {
        match self.json.get("error").and_then(Value::as_str) {
            Some(e) => e.to_string(),
            None => format!("HTTP {}", self.status),
        }
    }
}

fn default_config(given: Option<PathBuf>) -> Option<PathBuf> {
    given.or_else(|| {
        let p = PathBuf::from("gateway.yaml");
        p.exists().then_some(p)
    })
}

impl Session {
    /// Settles the address, the token and the output form of a command that makes changes
    /// (`write`) or only reads. gateway.yaml is read only when `--admin` or the token is left
    /// open; its errors are printed as `dyegate check` prints them.
    pub fn open(args: &AdminArgs, write: bool) -> Result<Session, Failure> {
        let format = output::choose(args.output, std::io::stdout().is_terminal());
        let target =
            (args.admin.as_deref().map(target::parse).transpose()).map_err(Failure::usage)?;
        let file = (args.token_file.as_deref()).map(|p| (p, std::fs::read_to_string(p)));
        let from_file = file.is_some();
        let given = token::given(file, std::env::var(token::ENV).ok())?;
        let token_origin = match (&given, from_file) {
            (Some(_), true) => "--token-file",
            (Some(_), false) => token::ENV,
            (None, _) => "gateway.yaml",
        };
        let mut config = Config {
            path: default_config(args.config.clone()),
            loaded: None,
        };
        let endpoint = match &target {
            Some(t) => target::resolve(t).map_err(Failure::failed)?,
            None => config.get()?.admin_listen.into(),
        };
        let token = match given {
            Some(t) => Some(t),
            None => token::configured(&config.get()?.admin_identities, write).map(str::to_string),
        };
        Ok(Session {
            endpoint,
            token_origin: if token.is_some() { token_origin } else { "" },
            token,
            format,
        })
    }

    /// `METHOD path` with an optional JSON body.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> Result<Answer, Failure> {
        let token = self.token.as_deref();
        let (status, text) =
            client::request(&self.endpoint, method, path, token, body).map_err(Failure::failed)?;
        let json = serde_json::from_str(&text).map_err(|_| {
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(120)
                .collect::<String>();
            Failure::failed(format!(
                "{method} {path}: HTTP {status} from {} is not the admin API's JSON: {first:?}",
                self.endpoint.name
            ))
        })?;
        let answer = Answer { status, text, json };
        if status == 401 || status == 403 {
            return Err(Failure::failed(self.refused(method, path, &answer)));
        }
        Ok(answer)
    }

    /// A refusal of the token: which source it came from (or that none was sent).
    fn refused(&self, method: &str, path: &str, answer: &Answer) -> String {
        let sent = match self.token_origin {
            "" => "no token was sent (none in --token-file, DYEGATE_ADMIN_TOKEN or gateway.yaml)"
                .to_string(),
            origin => format!("the token sent came from {origin}"),
        };
        format!(
            "{method} {path}: HTTP {}: {}; {sent}",
            answer.status,
            answer.error()
        )
    }
}

/// gateway.yaml, read at the first need.
struct Config {
    path: Option<PathBuf>,
    loaded: Option<Gateway>,
}

impl Config {
    fn get(&mut self) -> Result<&Gateway, Failure> {
        match &mut self.loaded {
            Some(gw) => Ok(gw),
            slot @ None => {
                let gw = Gateway::load(self.path.as_deref()).map_err(|e| {
                    Failure::lines(&e.0.iter().map(ToString::to_string).collect::<Vec<_>>())
                })?;
                Ok(slot.insert(gw))
            }
        }
    }
}
