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

use super::demo_faults::DemoFaults;
use super::record::Recorder;
use super::respond::{plain, with_name, UpstreamBody};
use super::{respond, websocket};
use crate::server_thread::accept_each;

/// Serves `listener` for as long as it is polled. Connections already open are left to the
/// runtime: dropping the runtime closes them.
pub async fn serve(listener: TcpListener, name: Arc<str>, recorder: Arc<Recorder>) {
    serve_with_faults(listener, name, recorder, None).await
}

/// [`serve`], answering with the failures and latency `faults` says (`demo-upstream`).
pub async fn serve_with_faults(
    listener: TcpListener,
    name: Arc<str>,
    recorder: Arc<Recorder>,
    faults: Option<Arc<DemoFaults>>,
) {
    accept_each(listener, |stream| {
        recorder.connection_accepted();
        tokio::spawn(serve_connection(
            stream,
            Arc::clone(&name),
            Arc::clone(&recorder),
            faults.clone(),
        ));
    })
    .await
}

/// Serves one accepted connection (cleartext, or TLS already accepted): HTTP/1.1 or HTTP/2,
/// whichever the peer speaks.
pub(crate) async fn serve_connection<S>(
    stream: S,
    name: Arc<str>,
    recorder: Arc<Recorder>,
    faults: Option<Arc<DemoFaults>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let errors = Arc::clone(&recorder);
    let service = service_fn(move |req: Request<Incoming>| {
        let name = Arc::clone(&name);
        let recorder = Arc::clone(&recorder);
        let faults = faults.clone();
        async move {
            let (parts, body) = req.into_parts();
            recorder.request(&parts);
            let req = Request::from_parts(parts, body);
            let response =
                if let Some(answer) = demo_faults_answer(faults.as_deref(), &name, &req).await {
                    answer
                } else if websocket::is_upgrade(&req) {
                    websocket::accept(&name, req).await
                } else {
                    respond::respond(&name, &recorder, req).await
                };
            Ok::<_, Infallible>(response)
        }
    });
    // A peer that goes away mid-request is normal in proxy tests: kept for a failing test to
    // print ([`Upstream::connection_errors`](crate::upstream::Upstream::connection_errors)).
    if let Err(e) = auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .await
    {
        errors.connection_failed(format!("{e:?}"));
    }
}

/// `demo-upstream`'s own answers: `POST /fail?rate=R` and `POST /latency?ms=N` change its
/// faults; any other request waits the latency and, at the fail rate, is answered 500.
/// `None`: the request is answered as usual.
async fn demo_faults_answer(
    faults: Option<&DemoFaults>,
    name: &str,
    req: &Request<Incoming>,
) -> Option<http::Response<UpstreamBody>> {
    let faults = faults?;
    let query = req.uri().query();
    let set = match (req.method() == http::Method::POST, req.uri().path()) {
        (true, "/fail") => Some(
            (super::respond::query_param(query, "rate"))
                .and_then(|r| r.parse::<f64>().ok())
                .ok_or_else(|| "expected /fail?rate=R with R from 0 to 1".to_string())
                .and_then(|r| faults.set_rate(r)),
        ),
        (true, "/latency") => Some(
            super::respond::query_number(query, "ms")
                .map(|ms| faults.set_latency(ms))
                .ok_or_else(|| "expected /latency?ms=N".to_string()),
        ),
        _ => None,
    };
    if let Some(set) = set {
        let answer = match set {
            Ok(()) => plain(http::StatusCode::OK, format!("{}\n", faults.to_json())),
            Err(e) => plain(http::StatusCode::BAD_REQUEST, format!("{e}\n")),
        };
        return Some(with_name(answer, name));
    }
    let (latency_ms, fail) = faults.next();
    if latency_ms > 0 {
        // time is tested: the demo upstream's latency is what a latency gate judges.
        tokio::time::sleep(std::time::Duration::from_millis(latency_ms)).await;
    }
    fail.then(|| {
        with_name(
            plain(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "demo failure (--fail-rate)\n",
            ),
            name,
        )
    })
}
