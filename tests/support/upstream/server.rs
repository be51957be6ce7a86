//! The accept loop shared by the in-process [`Upstream`](crate::Upstream) and the
//! `demo-upstream` binary: HTTP/1.1 with keep-alive and h2c (prior knowledge) on one port.

use std::convert::Infallible;
use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use super::record::Recorder;
use super::{respond, websocket};
use crate::server_thread::accept_each;

/// Serves `listener` for as long as it is polled. Connections already open are left to the
/// runtime: dropping the runtime closes them.
pub async fn serve(listener: TcpListener, name: Arc<str>, recorder: Arc<Recorder>) {
    accept_each(listener, |stream| {
        recorder.connection_accepted();
        tokio::spawn(serve_connection(
            stream,
            Arc::clone(&name),
            Arc::clone(&recorder),
        ));
    })
    .await
}

/// Serves one accepted connection (cleartext, or TLS already accepted): HTTP/1.1 or HTTP/2,
/// whichever the peer speaks.
pub(crate) async fn serve_connection<S>(stream: S, name: Arc<str>, recorder: Arc<Recorder>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let name = Arc::clone(&name);
        let recorder = Arc::clone(&recorder);
        async move {
            let (parts, body) = req.into_parts();
            recorder.request(&parts);
            let req = Request::from_parts(parts, body);
            let response = if websocket::is_upgrade(&req) {
                websocket::accept(&name, req).await
            } else {
                respond::respond(&name, req).await
            };
            Ok::<_, Infallible>(response)
        }
    });
    // A peer that goes away mid-request is normal in proxy tests: nothing to report.
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .await;
}
