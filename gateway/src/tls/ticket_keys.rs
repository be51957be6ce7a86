//! Where ticket keys come from: the files of `tls.session_tickets.key_files` (read at startup,
//! by `dyegate check` and on every reload, with the certificates), or made by the process when
//! there are none (and then handed to the next process on `dyegate upgrade`).

use super::tickets::{TicketKey, TicketKeys};
use crate::config::settings::tls_session::SessionTickets;
use crate::config::Issue;
use ring::rand::{SecureRandom, SystemRandom};
use std::io::Read;
use std::path::Path;

/// The sizes a key file may have: nginx's `ssl_session_ticket_key` files (`openssl rand 80`,
/// or 48 for AES-128 keys); either way dyegate derives its own AES-256 key from the bytes.
const SIZES: [usize; 2] = [80, 48];

/// Lowercase hex (key names in logs and the status).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads every key file; all errors, each with the field path of its entry
/// (`tls.session_tickets.key_files[1]`).
pub fn read_files(settings: &SessionTickets, now: u64) -> Result<TicketKeys, Vec<Issue>> {
    let mut keys = Vec::new();
    let mut errors = Vec::new();
    for (i, path) in settings.key_files.iter().enumerate() {
        match read_one(path, now) {
            Ok(k) => keys.push(k),
            Err(message) => errors.push(Issue::new(
                format!("tls.session_tickets.key_files[{i}]"),
                message,
            )),
        }
    }
    if errors.is_empty() {
        Ok(TicketKeys {
            keys,
            generated: false,
        })
    } else {
        Err(errors)
    }
}

fn read_one(path: &Path, now: u64) -> Result<TicketKey, String> {
    let unreadable = |e: std::io::Error| {
        format!(
            "found {} unreadable ({e}), expected a file of 80 random bytes (openssl rand 80 > FILE)",
            path.display()
        )
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    file.take(1024)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if !SIZES.contains(&bytes.len()) {
        return Err(format!(
            "found {} bytes in {}, expected 80 or 48 random bytes (openssl rand 80 > FILE)",
            bytes.len(),
            path.display()
        ));
    }
    TicketKey::from_material(&bytes, now)
        .ok_or_else(|| format!("found an unusable key in {}", path.display()))
}

/// One key made now, for a process without key files.
pub fn generate(now: u64) -> Option<TicketKeys> {
    let mut material = [0u8; 80];
    SystemRandom::new().fill(&mut material).ok()?;
    Some(TicketKeys {
        keys: vec![TicketKey::from_material(&material, now)?],
        generated: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn key_files_are_read_in_order_and_bad_ones_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.key");
        let b = dir.path().join("b.key");
        let short = dir.path().join("short.key");
        std::fs::write(&a, [1u8; 80]).expect("write");
        std::fs::write(&b, [2u8; 48]).expect("write");
        std::fs::write(&short, [3u8; 32]).expect("write");
        let settings = |files: Vec<&Path>| SessionTickets {
            enabled: true,
            key_files: files.into_iter().map(Path::to_path_buf).collect(),
            lifetime: Duration::from_secs(60),
        };
        let keys = read_files(&settings(vec![&a, &b]), 7).expect("both read");
        let names: Vec<[u8; 16]> = keys.keys.iter().map(|k| k.name).collect();
        assert_eq!(names, vec![[1u8; 16], [2u8; 16]]);
        assert!(!keys.generated);

        let missing = dir.path().join("missing.key");
        let errors = read_files(&settings(vec![&a, &short, &missing]), 7).expect_err("two bad");
        let text: Vec<String> = errors
            .iter()
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect();
        assert_eq!(
            text,
            vec![
                format!("tls.session_tickets.key_files[1]: found 32 bytes in {}, expected 80 or 48 random bytes (openssl rand 80 > FILE)", short.display()),
                format!("tls.session_tickets.key_files[2]: found {} unreadable (No such file or directory (os error 2)), expected a file of 80 random bytes (openssl rand 80 > FILE)", missing.display()),
            ]
        );
    }

    #[test]
    fn generated_keys_differ() {
        let a = generate(1).expect("a key");
        let b = generate(1).expect("a key");
        assert!(a.generated);
        assert_ne!(a.keys[0].name, b.keys[0].name);
    }
}
