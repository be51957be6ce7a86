//! The pid file. Pingora writes it only when daemonizing; `dyegate upgrade` and SIGHUP recipes
//! need it in the foreground too.

use async_trait::async_trait;
use log::warn;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::path::PathBuf;

/// Writes the pid file when services start: after a fork, so this is the serving process's pid
/// (for an upgrade: the new process, once it holds the sockets).
pub struct PidFileService {
    path: PathBuf,
}

impl PidFileService {
    pub fn new(path: PathBuf) -> Self {
        PidFileService { path }
    }
}

#[async_trait]
impl BackgroundService for PidFileService {
    async fn start(&self, _shutdown: ShutdownWatch) {
        if let Err(e) = std::fs::write(&self.path, format!("{}\n", std::process::id())) {
            warn!("cannot write pid file {}: {e}", self.path.display());
        }
    }
}
