//! `read_ms` for the response head of an upgrade request whose per-read timeout is
//! `stream_idle_ms`. Pingora 0.9.1 has one per-read timeout for an HTTP/1 connection, set before
//! the request goes out and kept for the tunnel after a `101` (docs/pingora-upstream.md §12),
//! and no hook sees the upstream session once the head has come. So an upgrade is given
//! `stream_idle_ms` as its per-read timeout, and this timer bounds the wait for its head: when
//! `read_ms` passes first, it shuts the upstream socket down, which ends Pingora's pending read,
//! and the proxy turns the resulting error into a read timeout (504).
//!
//! The timer holds a duplicate of the socket's descriptor, never the number alone: a descriptor
//! closed by Pingora and reused for another connection cannot be shut down by mistake. The
//! duplicate is dropped as soon as the head comes (or the attempt ends), so that it does not keep
//! a closed connection open.

use std::net::{Shutdown, TcpStream};
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::JoinHandle;

enum State {
    /// No head yet; the socket to shut down when the time is up.
    Waiting(OwnedFd),
    Answered,
    Expired,
}

/// The armed timer of one attempt; dropping it disarms it.
pub(super) struct HeadWait {
    state: Arc<Mutex<State>>,
    timer: JoinHandle<()>,
}

impl HeadWait {
    /// Shuts the socket `fd` down after `wait` unless [`HeadWait::answered`] is called first.
    /// `fd` must be the open socket of the attempt, as `connected_to_upstream` is given it.
    pub(super) fn arm(fd: RawFd, wait: Duration) -> std::io::Result<HeadWait> {
        // SAFETY: `fd` is the upstream connection's socket, open for the whole call of
        // `connected_to_upstream` that calls this; it is only duplicated here.
        let owned = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
        let state = Arc::new(Mutex::new(State::Waiting(owned)));
        let timer = tokio::spawn({
            let state = state.clone();
            async move {
                tokio::time::sleep(wait).await;
                let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
                if let State::Waiting(fd) = std::mem::replace(&mut *s, State::Expired) {
                    // Under the lock: `answered` cannot see `Answered` while this runs.
                    if let Err(e) = TcpStream::from(fd).shutdown(Shutdown::Both) {
                        log::debug!("upgrade head wait: shutdown of the upstream socket: {e}");
                    }
                }
            }
        });
        Ok(HeadWait { state, timer })
    }

    /// The head has come: disarms the timer. `false` when it came too late (the socket is
    /// already shut down: the attempt is a read timeout).
    pub(super) fn answered(self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut *s, State::Answered) {
            State::Expired => {
                *s = State::Expired;
                false
            }
            State::Waiting(_) | State::Answered => true,
        }
    }

    /// Whether the time ran out before the head came.
    pub(super) fn expired(&self) -> bool {
        matches!(
            *self.state.lock().unwrap_or_else(PoisonError::into_inner),
            State::Expired
        )
    }
}

impl Drop for HeadWait {
    fn drop(&mut self) {
        self.timer.abort();
        // The duplicate goes now, not when the aborted task is reaped.
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(*s, State::Waiting(_)) {
            *s = State::Answered;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (client, server)
    }

    #[tokio::test]
    async fn an_unanswered_wait_shuts_the_socket_down() {
        let (client, mut server) = pair();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let wait = HeadWait::arm(client.as_raw_fd(), Duration::from_millis(20)).expect("arm");
        // The peer sees the shutdown (EOF) once the wait is over.
        let read = tokio::task::spawn_blocking(move || server.read(&mut [0u8; 8]))
            .await
            .expect("join");
        assert_eq!(read.expect("read"), 0, "EOF after the shutdown");
        assert!(wait.expired());
        assert!(!wait.answered());
        drop(client);
    }

    #[tokio::test]
    async fn an_answered_wait_leaves_the_socket_alone() {
        let (client, mut server) = pair();
        let wait = HeadWait::arm(client.as_raw_fd(), Duration::from_millis(20)).expect("arm");
        assert!(wait.answered());
        server
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        // time is tested: nothing may arrive after the wait would have been over.
        let read = tokio::task::spawn_blocking(move || server.read(&mut [0u8; 8]))
            .await
            .expect("join");
        assert!(read.is_err(), "no EOF: the socket is open: {read:?}");
        drop(client);
    }
}
