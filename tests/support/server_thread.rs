//! [`ServerThread`]: how every test server runs (upstreams, the raw and faulty upstreams, the
//! gRPC and OTLP servers): on a thread of its own with a one-thread runtime, so a test's own
//! runtime (or its absence) does not matter, stopped and joined when its handle is dropped.

use std::future::Future;
use std::thread::JoinHandle;
use tokio::net::{TcpListener, TcpStream};

/// A server's thread; dropping it stops the server: its accept loop ends and dropping its
/// runtime cancels every connection task (hung ones included).
pub struct ServerThread {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Runs `serve(listener)` on a thread named `name` until the handle is dropped.
    pub fn start<F, Fut>(
        name: String,
        listener: std::net::TcpListener,
        serve: F,
    ) -> std::io::Result<Self>
    where
        F: FnOnce(TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        listener.set_nonblocking(true)?;
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(listener) else {
                    return;
                };
                tokio::select! {
                    _ = stop => {}
                    () = serve(listener) => {}
                }
            });
        })?;
        Ok(ServerThread {
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections for as long as it is polled, each with `TCP_NODELAY`, handing each to
/// `each` (which spawns its task). Accept errors (EMFILE, a reset before accept) are
/// transient: the loop goes on.
pub async fn accept_each(listener: TcpListener, mut each: impl FnMut(TcpStream)) {
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        each(stream);
    }
}
