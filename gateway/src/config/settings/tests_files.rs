//! Test helper of the gateway.yaml sections' unit tests: a gateway.yaml loaded from a file of
//! its own.

use crate::config::Gateway;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Loads a gateway.yaml made of `text` from a temporary directory of its own (removed after);
/// an error's text names the file `gateway.yaml`, as a user's would.
pub fn load_gateway(text: &str) -> Result<Gateway, String> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dyegate-config-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("tmp");
    let f = dir.join("gateway.yaml");
    std::fs::write(&f, text).expect("write");
    let out = Gateway::load(Some(&f)).map_err(|e| {
        e.to_string()
            .replace(&f.display().to_string(), "gateway.yaml")
    });
    let _ = std::fs::remove_dir_all(&dir);
    out
}
