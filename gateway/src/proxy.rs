//! The Pingora `ProxyHttp` implementation: load the routing table once per request, ask it where
//! to go, and act. No routing logic lives here.

use crate::lifecycle::{InFlight, Lifecycle};
use crate::reload::ActiveTable;
use crate::routing::{normalize_host, Outcome, Reason, RequestInfo, TagAction};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use log::warn;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::proxy::{ProxyHttp, Session};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The proxy service logic. Holds the handle of the current table; see [`RequestCtx`] for what a
/// request keeps.
pub struct DyegateProxy {
    table: Arc<ArcSwap<ActiveTable>>,
    lifecycle: Arc<Lifecycle>,
    connect_timeout: Duration,
}

impl DyegateProxy {
    pub fn new(
        table: Arc<ArcSwap<ActiveTable>>,
        lifecycle: Arc<Lifecycle>,
        connect_timeout: Duration,
    ) -> Self {
        DyegateProxy {
            table,
            lifecycle,
            connect_timeout,
        }
    }
}

/// Per-request state: the table snapshot taken when the request started (kept for its whole
/// life, retries included) and the decision made on it.
pub struct RequestCtx {
    /// Counts this request as in flight until the context is dropped.
    _in_flight: InFlight,
    /// The active table (and its version) when the request started.
    table: Option<Arc<ActiveTable>>,
    decision: Option<Routed>,
    /// Target of the first attempt, and how many attempts were made.
    first_target: Option<SocketAddr>,
    attempts: usize,
}

/// An owned copy of the decision (the table snapshot in the ctx keeps its names alive).
#[derive(Debug, Clone)]
struct Routed {
    route_id: usize,
    group: usize,
    reason: Reason,
    tag_action: OwnedTagAction,
}

#[derive(Debug, Clone)]
enum OwnedTagAction {
    Keep,
    Strip,
    Set(Arc<str>),
}

fn peer_ip(session: &Session) -> Option<std::net::IpAddr> {
    match session.client_addr() {
        Some(PeerAddr::Inet(a)) => Some(a.ip()),
        _ => None,
    }
}

async fn respond_text(
    session: &mut Session,
    status: u16,
    body: &'static str,
    draining: bool,
) -> Result<bool> {
    let mut resp = ResponseHeader::build(status, Some(3))?;
    resp.insert_header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
    resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    session.set_keepalive(if draining { None } else { Some(60) });
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from_static(body.as_bytes())), true)
        .await?;
    Ok(true)
}

#[async_trait]
impl ProxyHttp for DyegateProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            _in_flight: self.lifecycle.track(),
            table: None,
            decision: None,
            first_target: None,
            attempts: 0,
        }
    }

    /// Runs first for every request: decides the route and group, or answers 404/503 itself.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let active = self.table.load_full();
        let table = &active.table;
        let peer = peer_ip(session);
        let req = session.req_header();
        let raw_host = req
            .uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| {
                req.headers
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
            })
            .unwrap_or("");
        let host = normalize_host(raw_host);
        let info = RequestInfo {
            method: &req.method,
            host: &host,
            path: req.uri.path(),
            headers: &req.headers,
            peer,
        };
        let outcome = table.decide(&info);
        match outcome {
            Outcome::NoRoute => {
                return respond_text(session, 404, "no route\n", self.lifecycle.is_draining()).await
            }
            Outcome::RejectedTag { .. } => {
                return respond_text(
                    session,
                    503,
                    "unknown env tag\n",
                    self.lifecycle.is_draining(),
                )
                .await
            }
            Outcome::Routed(d) => {
                ctx.decision = Some(Routed {
                    route_id: d.route_id,
                    group: d.group,
                    reason: d.reason,
                    tag_action: match d.tag_action {
                        TagAction::Keep => OwnedTagAction::Keep,
                        TagAction::Strip => OwnedTagAction::Strip,
                        TagAction::Set(t) => OwnedTagAction::Set(t.into()),
                    },
                });
            }
        }
        ctx.table = Some(active);
        Ok(false)
    }

    /// Picks a target of the decided group; on a retry after a failed connect, the next one.
    async fn upstream_peer(&self, _s: &mut Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        let (Some(table), Some(d)) = (&ctx.table, &ctx.decision) else {
            return Err(Error::explain(
                InternalError,
                "upstream_peer without a routing decision",
            ));
        };
        let group = table
            .table
            .group(d.group)
            .ok_or_else(|| Error::explain(InternalError, "decided group missing from table"))?;
        let target = match ctx.first_target {
            None => group.next_target(),
            Some(first) => group.alternative(first, ctx.attempts),
        }
        .ok_or_else(|| Error::explain(ConnectNoRoute, "upstream group has no target"))?;
        if ctx.first_target.is_none() {
            ctx.first_target = Some(target.addr);
        }
        ctx.attempts += 1;
        let mut peer = HttpPeer::new(target.addr, false, String::new());
        peer.options.connection_timeout = Some(self.connect_timeout);
        peer.options.idle_timeout = Some(Duration::from_secs(60));
        Ok(Box::new(peer))
    }

    /// Dyes the upstream request: keeps, strips or sets the tag header.
    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let (Some(table), Some(d)) = (&ctx.table, &ctx.decision) else {
            return Ok(());
        };
        let Some(route) = table.table.route(d.route_id) else {
            return Ok(());
        };
        let header = route.dye.header.clone();
        match &d.tag_action {
            OwnedTagAction::Keep => {}
            OwnedTagAction::Strip => {
                upstream_request.remove_header(&header);
            }
            OwnedTagAction::Set(tag) => {
                upstream_request.insert_header(header, tag.as_ref())?;
            }
        }
        Ok(())
    }

    /// While the process hands over to a new one, every response closes its connection so that
    /// keep-alive clients reconnect (to the new process) instead of finding the socket closed.
    async fn response_filter(
        &self,
        session: &mut Session,
        _upstream_response: &mut ResponseHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        if self.lifecycle.is_draining() {
            session.set_keepalive(None);
        }
        Ok(())
    }

    /// A refused or timed-out connect is retried on the group's other targets, each once.
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let live = ctx
            .table
            .as_ref()
            .zip(ctx.decision.as_ref())
            .and_then(|(t, d)| t.table.group(d.group))
            .map_or(0, |g| g.live_targets());
        warn!(
            "connect to upstream {} failed (attempt {} of {}): {}",
            peer._address, ctx.attempts, live, e
        );
        if ctx.attempts < live {
            e.set_retry(true);
        }
        e
    }

    fn request_summary(&self, session: &Session, ctx: &RequestCtx) -> String {
        let base = session.as_downstream().request_summary();
        match (&ctx.table, &ctx.decision) {
            (Some(t), Some(d)) => format!(
                "{base}, route {}, group {}, reason {}, routing version {}",
                t.table.route(d.route_id).map_or("?", |r| &r.name),
                t.table.group(d.group).map_or("?", |g| &g.name),
                d.reason.as_str(),
                t.version
            ),
            _ => base,
        }
    }
}
