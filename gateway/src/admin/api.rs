//! Admin endpoints: status, versions, routes, upstreams, reload, rollback, health and readiness.

use super::rollback_body::rollback_target;
use super::routes_json::routes_json;
use super::upstreams_json::upstreams_json;
use crate::health::HealthRegistry;
use crate::lifecycle::Lifecycle;
use crate::reload::{Outcome, Reloader, Trigger};
use crate::telemetry::Metrics;
use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Largest request body accepted (a rollback request is a few bytes).
const MAX_BODY: usize = 64 * 1024;

pub struct AdminApi {
    reloader: Arc<Reloader>,
    lifecycle: Arc<Lifecycle>,
    metrics: Arc<Metrics>,
    token: Option<String>,
    proxy_listeners: Vec<SocketAddr>,
    health: Option<Arc<HealthRegistry>>,
    rollouts: Option<Arc<crate::rollout::Controller>>,
}

impl AdminApi {
    pub fn new(
        reloader: Arc<Reloader>,
        lifecycle: Arc<Lifecycle>,
        metrics: Arc<Metrics>,
        token: Option<String>,
        proxy_listeners: Vec<SocketAddr>,
    ) -> Self {
        AdminApi {
            reloader,
            lifecycle,
            metrics,
            token: token.filter(|t| !t.trim().is_empty()),
            proxy_listeners,
            health: None,
            rollouts: None,
        }
    }

    /// Target health for `GET /upstreams`.
    pub fn with_health(mut self, health: Arc<HealthRegistry>) -> Self {
        self.health = Some(health);
        self
    }

    /// Rollouts for `/rollouts`.
    pub fn with_rollouts(mut self, rollouts: Arc<crate::rollout::Controller>) -> Self {
        self.rollouts = Some(rollouts);
        self
    }

    fn authorized(&self, session: &ServerSession) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = session
            .get_header(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        constant_time_eq(given.trim().as_bytes(), token.as_bytes())
    }

    /// Ready when a table is loaded and every proxy listener accepts connections.
    async fn ready(&self) -> (bool, Vec<String>) {
        let mut down = Vec::new();
        for addr in &self.proxy_listeners {
            let mut probe = *addr;
            if probe.ip().is_unspecified() {
                probe.set_ip(match probe {
                    SocketAddr::V4(_) => [127, 0, 0, 1].into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let ok = matches!(
                tokio::time::timeout(
                    Duration::from_millis(500),
                    tokio::net::TcpStream::connect(probe)
                )
                .await,
                Ok(Ok(_))
            );
            if !ok {
                down.push(addr.to_string());
            }
        }
        (down.is_empty(), down)
    }

    async fn body(session: &mut ServerSession) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_BODY {
                        return Err(format!("request body over {MAX_BODY} bytes"));
                    }
                }
                Ok(None) => return Ok(body),
                Err(e) => return Err(format!("cannot read request body: {e}")),
            }
        }
    }

    async fn route(&self, session: &mut ServerSession) -> (StatusCode, Value) {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        let client = session.client_addr().map(|a| a.to_string());
        let public = matches!(path.as_str(), "/healthz" | "/readyz");
        if !public && !self.authorized(session) {
            return (
                StatusCode::UNAUTHORIZED,
                json!({ "error": "missing or wrong bearer token" }),
            );
        }
        let draining = self.lifecycle.is_draining();
        if draining && method == Method::POST {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "this process is handing over to a new one; retry", "pid": std::process::id() }),
            );
        }
        if path == "/rollouts" || path.starts_with("/rollouts/") {
            let query = session.req_header().uri.query().map(str::to_string);
            let c = self.rollouts.as_ref();
            return super::rollouts::rollouts(c, &method, &path, query.as_deref(), client).await;
        }
        match (method, path.as_str()) {
            (Method::GET, "/healthz") => (
                StatusCode::OK,
                json!({ "status": "ok", "pid": std::process::id() }),
            ),
            (Method::GET, "/readyz") => {
                let (mut ready, mut down) = self.ready().await;
                if draining {
                    ready = false;
                    down.push("draining".into());
                }
                let version = self.reloader.active().load().version;
                let body = json!({ "ready": ready, "version": version, "pid": std::process::id(), "listeners_down": down });
                if ready {
                    (StatusCode::OK, body)
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, body)
                }
            }
            (Method::GET, "/status") => {
                let mut s = self.reloader.status();
                s["pid"] = json!(std::process::id());
                s["draining"] = json!(draining);
                s["in_flight"] = json!(self.lifecycle.in_flight());
                (StatusCode::OK, s)
            }
            (Method::GET, "/versions") => {
                let active = self.reloader.version();
                let list: Vec<Value> = self
                    .reloader
                    .versions()
                    .into_iter()
                    .map(|v| {
                        let mut j = json!(v);
                        j["active"] = json!(v.version == active);
                        j
                    })
                    .collect();
                (
                    StatusCode::OK,
                    json!({ "active": active, "versions": list }),
                )
            }
            (Method::GET, p) if p.starts_with("/versions/") => {
                let Ok(n) = p["/versions/".len()..].parse::<u64>() else {
                    return (
                        StatusCode::BAD_REQUEST,
                        json!({ "error": "expected /versions/N with N a version number" }),
                    );
                };
                match self.reloader.version_text(n) {
                    Some((info, text)) => {
                        let mut j = json!(info);
                        j["source"] = json!(text.as_ref());
                        (StatusCode::OK, j)
                    }
                    None => (
                        StatusCode::NOT_FOUND,
                        json!({ "error": format!("version {n} is not kept") }),
                    ),
                }
            }
            (Method::GET, "/routes") => {
                let active = self.reloader.active().load_full();
                let mut j = routes_json(&active.table);
                j["version"] = json!(active.version);
                (StatusCode::OK, j)
            }
            (Method::GET, "/upstreams") => {
                let active = self.reloader.active().load_full();
                let mut j = match &self.health {
                    Some(h) => upstreams_json(&active.table, h),
                    None => upstreams_json(&active.table, &HealthRegistry::new(Default::default())),
                };
                j["version"] = json!(active.version);
                (StatusCode::OK, j)
            }
            (Method::POST, "/reload") => {
                let r = self.reloader.clone();
                match tokio::task::spawn_blocking(move || r.reload(Trigger::Api, client)).await {
                    Ok(report) => {
                        let code = if report.result == Outcome::Failed {
                            StatusCode::UNPROCESSABLE_ENTITY
                        } else {
                            StatusCode::OK
                        };
                        (code, json!(report))
                    }
                    Err(e) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({ "error": e.to_string() }),
                    ),
                }
            }
            (Method::POST, "/rollback") => {
                let body = match Self::body(session).await {
                    Ok(b) => b,
                    Err(e) => return (StatusCode::BAD_REQUEST, json!({ "error": e })),
                };
                let to = match rollback_target(&body) {
                    Ok(to) => to,
                    Err(e) => return (StatusCode::BAD_REQUEST, json!({ "error": e })),
                };
                let r = self.reloader.clone();
                match tokio::task::spawn_blocking(move || r.rollback(to, client)).await {
                    Ok(Ok(report)) => (StatusCode::OK, json!(report)),
                    Ok(Err(e)) => (StatusCode::NOT_FOUND, json!({ "error": e })),
                    Err(e) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({ "error": e.to_string() }),
                    ),
                }
            }
            (
                _,
                "/healthz" | "/readyz" | "/status" | "/versions" | "/routes" | "/upstreams"
                | "/reload" | "/rollback",
            ) => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({ "error": "method not allowed" }),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                json!({ "error": "not found", "endpoints": ["GET /status", "GET /versions", "GET /versions/N", "GET /routes", "GET /upstreams", "GET /rollouts", "GET /rollouts/ROUTE", "POST /rollouts/ROUTE/{pause,resume,promote,abort}", "POST /reload", "POST /rollback", "GET /healthz", "GET /readyz", "GET /metrics"] }),
            ),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[async_trait]
impl ServeHttp for AdminApi {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let is_metrics = session.req_header().method == Method::GET
            && session.req_header().uri.path() == "/metrics";
        let (status, content_type, bytes) = if is_metrics && self.authorized(session) {
            (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                {
                    let mut text = self.metrics.render();
                    let active = self.reloader.active().load();
                    crate::telemetry::table_info::render_table_info(
                        &active.table,
                        &active.sha256,
                        &mut text,
                    );
                    text.into_bytes()
                },
            )
        } else {
            let (status, body) = self.route(session).await;
            let mut bytes = serde_json::to_vec_pretty(&body).unwrap_or_default();
            bytes.push(b'\n');
            (status, "application/json", bytes)
        };
        Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::CONTENT_LENGTH, bytes.len())
            .body(bytes)
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}
