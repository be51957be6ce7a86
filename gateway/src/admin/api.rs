//! Admin endpoints: status, versions, routes, upstreams, traffic, reload, rollback, explain,
//! health and readiness; the live view's files under `/ui/`. A browser's POST from another site
//! is refused ([`super::origin`]).

use super::auth::{is_write, Identities};
use super::body::{BodyDeadline, BodyError};
use super::explain_json::{explain_json, ExplainRequest};
use super::live::SharedTraffic;
use super::origin::{Provenance, UI_HEADER};
use super::rollback_body::rollback_target;
use super::routes_json::routes_json;
use super::upstreams_json::{upstreams_json, Resolved};
use crate::config::settings::admin_tokens::AdminIdentity;
use crate::dns::DnsNames;
use crate::health::HealthRegistry;
use crate::lifecycle::Lifecycle;
use crate::proxy::forwarded::client_of;
use crate::proxy::live::SharedLive;
use crate::reload::{Caller, GatewayReload, Outcome, Reloader, Trigger};
use crate::routing::{Addresses, AllHealthy};
use crate::telemetry::Metrics;
use crate::tls::Certificates;
use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use log::{info, warn};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub struct AdminApi {
    reloader: Arc<Reloader>,
    lifecycle: Arc<Lifecycle>,
    metrics: Arc<Metrics>,
    identities: Identities,
    proxy_listeners: Vec<SocketAddr>,
    health: Option<Arc<HealthRegistry>>,
    /// The DNS names of the table: their addresses and state, for `/upstreams` and `/status`.
    dns: Option<Arc<DnsNames>>,
    rollouts: Option<Arc<crate::rollout::Controller>>,
    mirrors: Option<Arc<crate::mirror::Book>>,
    certificates: Option<Arc<Certificates>>,
    body: BodyDeadline,
    /// gateway.yaml `forwarded`: the caller's address behind trusted proxies, for the log and
    /// the audit lines.
    /// gateway.yaml's live settings: `forwarded` names the client's address.
    live: SharedLive,
    /// gateway.yaml, re-read by `POST /reload`.
    gateway: Option<Arc<GatewayReload>>,
    /// The process's lineage (generation, handovers), in `/status`.
    handover: Option<Arc<crate::handover::Handover>>,
    /// Each route's last minute, for `GET /traffic`.
    traffic: SharedTraffic,
}

impl AdminApi {
    pub fn new(
        reloader: Arc<Reloader>,
        lifecycle: Arc<Lifecycle>,
        metrics: Arc<Metrics>,
        identities: &[AdminIdentity],
        proxy_listeners: Vec<SocketAddr>,
        body: BodyDeadline,
    ) -> Self {
        let identities = Identities::new(identities);
        metrics.register(identities.collectors());
        AdminApi {
            reloader,
            lifecycle,
            metrics,
            identities,
            proxy_listeners,
            health: None,
            dns: None,
            rollouts: None,
            mirrors: None,
            certificates: None,
            body,
            live: Arc::default(),
            gateway: None,
            handover: None,
            traffic: SharedTraffic::default(),
        }
    }

    /// The samples `GET /traffic` reads (the live view's sampler adds them).
    pub fn with_traffic(mut self, traffic: SharedTraffic) -> Self {
        self.traffic = traffic;
        self
    }

    /// `GET /traffic`: the running table's routes over the last minute.
    fn traffic(&self) -> (StatusCode, Value) {
        let active = self.reloader.active().load_full();
        let routes: Vec<&str> = active.table.routes().iter().map(|r| &*r.name).collect();
        let traffic = self.traffic.lock().unwrap_or_else(|p| p.into_inner());
        let mut j = traffic.json(&routes);
        j["version"] = json!(active.version);
        (StatusCode::OK, j)
    }

    /// `GET /identity`: who the caller is and its role, so that the live view asks for a token
    /// only when one is needed and enables its buttons for `write` only. Without a token it
    /// answers whether tokens are configured (`identity: null`); a wrong token is refused and
    /// counted as on every endpoint.
    fn identity(&self, session: &ServerSession) -> (StatusCode, Value) {
        let tokens = !self.identities.is_open();
        if tokens && session.get_header(http::header::AUTHORIZATION).is_none() {
            return (
                StatusCode::OK,
                json!({ "identity": null, "role": null, "tokens": true }),
            );
        }
        match self.authorize(session) {
            Ok(name) => {
                let role = self.identities.role(&name);
                (
                    StatusCode::OK,
                    json!({ "identity": name, "role": role, "tokens": tokens }),
                )
            }
            Err(refused) => refused,
        }
    }

    /// A change a browser asks for from another site is refused (logged, 403).
    fn same_site(&self, session: &ServerSession) -> Result<(), (StatusCode, Value)> {
        let header = |name: &str| session.get_header(name).map(|v| v.as_bytes());
        let authority = session
            .req_header()
            .uri
            .authority()
            .map(|a| a.as_str().as_bytes());
        let provenance = Provenance {
            origin: header(http::header::ORIGIN.as_str()),
            host: header(http::header::HOST.as_str()).or(authority),
            sec_fetch_site: header("sec-fetch-site"),
            ui_header: header(UI_HEADER).is_some(),
        };
        super::origin::check(&provenance, self.identities.is_open()).map_err(|refused| {
            let req = session.req_header();
            let client = self.client(session).unwrap_or_else(|| "-".to_string());
            warn!(
                "admin: {} {} from {client} refused: {}",
                req.method,
                req.uri.path(),
                refused.as_str()
            );
            (StatusCode::FORBIDDEN, json!({ "error": refused.message() }))
        })
    }

    /// The lineage `/status` shows under `process`.
    pub fn with_handover(mut self, handover: Arc<crate::handover::Handover>) -> Self {
        self.handover = Some(handover);
        self
    }

    /// Which peers are trusted proxies: behind one, the audit lines name the address it
    /// forwarded, as the proxy's access log does.
    pub fn with_live(mut self, live: SharedLive) -> Self {
        self.live = live;
        self
    }

    /// `POST /reload` re-reads gateway.yaml too, and applies what can change live.
    pub fn with_gateway(mut self, gateway: Arc<GatewayReload>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// The caller's one client address, as text (`-` when unknown).
    fn client(&self, session: &ServerSession) -> Option<String> {
        let headers = &session.req_header().headers;
        let live = self.live.load();
        client_of(&live.forwarding, session.client_addr(), headers).map(|c| c.to_string())
    }

    /// The HTTPS listeners' certificates: in `/status` (`tls`), re-read by `POST /reload`.
    pub fn with_certificates(mut self, certificates: Option<Arc<Certificates>>) -> Self {
        self.certificates = certificates;
        self
    }

    /// Target health for `GET /upstreams`.
    pub fn with_health(mut self, health: Arc<HealthRegistry>) -> Self {
        self.health = Some(health);
        self
    }

    /// The DNS names' addresses and state, for `/upstreams` and `/status` (`dns`).
    pub fn with_dns(mut self, dns: Arc<DnsNames>) -> Self {
        self.dns = Some(dns);
        self
    }

    /// Rollouts for `/rollouts`.
    pub fn with_rollouts(mut self, rollouts: Arc<crate::rollout::Controller>) -> Self {
        self.rollouts = Some(rollouts);
        self
    }

    /// The mirrors' counts and last mismatches for `/mirrors`.
    pub fn with_mirrors(mut self, mirrors: Option<Arc<crate::mirror::Book>>) -> Self {
        self.mirrors = mirrors;
        self
    }

    /// The identity a call is made as, or the refusal to answer (counted and logged, without
    /// the token). Every change made through the API is logged with its identity and client.
    fn authorize(&self, session: &ServerSession) -> Result<String, (StatusCode, Value)> {
        let method = &session.req_header().method;
        let path = session.req_header().uri.path();
        let client = self.client(session).unwrap_or_else(|| "-".to_string());
        let authorization = session
            .get_header(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let write = is_write(method, path);
        match self.identities.check(authorization, write) {
            Ok(name) => {
                if write {
                    info!("admin: {method} {path} by {name} from {client}");
                }
                Ok(name.to_string())
            }
            Err(denied) => {
                warn!(
                    "admin: {method} {path} from {client} refused: {}",
                    denied.as_str()
                );
                let (status, message) = denied.answer();
                Err((status, json!({ "error": message })))
            }
        }
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

    /// `GET /readyz`: a table is loaded and every proxy listener accepts (not while draining).
    async fn readyz(&self, draining: bool) -> (StatusCode, Value) {
        let (mut ready, mut down) = self.ready().await;
        if draining {
            ready = false;
            down.push("draining".into());
        }
        let version = self.reloader.active().load().version;
        // The answers so far: an upgrade's watch judges the new process by them.
        let (requests, failed) = self.lifecycle.answers();
        let body = json!({ "ready": ready, "version": version, "pid": std::process::id(), "listeners_down": down, "requests": requests, "failed": failed });
        if ready {
            (StatusCode::OK, body)
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, body)
        }
    }

    /// `GET /status`: the routing version and its source, the process (pid, draining,
    /// requests in flight, lineage), TLS and DNS.
    fn status(&self, draining: bool) -> Value {
        let mut s = self.reloader.status();
        s["pid"] = json!(std::process::id());
        s["draining"] = json!(draining);
        s["in_flight"] = json!(self.lifecycle.in_flight());
        s["listeners"] = json!({ "proxy": self.proxy_listeners });
        if let Some(h) = &self.handover {
            s["process"] = h.status();
        }
        if let Some(certs) = &self.certificates {
            s["tls"] = certs.status();
        }
        if let Some(dns) = &self.dns {
            s["dns"] = dns.status();
        }
        s
    }

    /// `GET /versions`: the kept versions, the active one marked.
    fn versions(&self) -> (StatusCode, Value) {
        let active = self.reloader.version();
        let list: Vec<Value> = (self.reloader.versions().into_iter())
            .map(|v| {
                let mut j = json!(v);
                j["active"] = json!(v.id() == active);
                j
            })
            .collect();
        (
            StatusCode::OK,
            json!({ "active": active, "versions": list }),
        )
    }

    /// `GET /versions/N` (or `/versions/N.K`, a local change): a kept version with its source
    /// text.
    fn version_source(&self, path: &str) -> (StatusCode, Value) {
        let Ok(n) = path["/versions/".len()..].parse::<crate::reload::VersionId>() else {
            return (
                StatusCode::BAD_REQUEST,
                json!({ "error": "expected /versions/N with N a version number (or N.K, a local change)" }),
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

    /// `GET /upstreams`: every group and target with its health.
    fn upstreams(&self) -> (StatusCode, Value) {
        let active = self.reloader.active().load_full();
        let dns = Resolved {
            book: self
                .dns
                .as_ref()
                .map_or(crate::routing::AddressBook::empty(), |d| d.book()),
            names: self.dns.as_deref(),
        };
        let mut j = match &self.health {
            Some(h) => upstreams_json(&active.table, h, dns),
            None => upstreams_json(&active.table, &HealthRegistry::new(Default::default()), dns),
        };
        j["version"] = json!(active.version);
        (StatusCode::OK, j)
    }

    /// `POST /reload`: the routes file through the one commit path, then the certificates
    /// (their result under `tls`); 422 when either was rejected.
    async fn post_reload(&self, caller: Caller) -> (StatusCode, Value) {
        let r = self.reloader.clone();
        let certs = self.certificates.clone();
        let gateway = self.gateway.clone();
        let all = tokio::task::spawn_blocking(move || {
            let gateway = gateway.and_then(|g| g.reload());
            let report = r.reload(Trigger::Api, caller);
            let tls = certs.map(|c| c.reload(&Trigger::Api));
            (gateway, report, tls)
        });
        match all.await {
            Ok((gateway, report, tls)) => {
                let failed = report.result == Outcome::Failed
                    || tls.as_ref().is_some_and(|t| t.result == "failed")
                    || gateway.as_ref().is_some_and(|g| !g.errors.is_empty());
                let code = if failed {
                    StatusCode::UNPROCESSABLE_ENTITY
                } else {
                    StatusCode::OK
                };
                let mut body = json!(report);
                if let Some(tls) = tls {
                    body["tls"] = json!(tls);
                }
                if let Some(gateway) = gateway {
                    body["gateway"] = json!(gateway);
                }
                (code, body)
            }
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": e.to_string() }),
            ),
        }
    }

    /// A POST's body within the body deadline and size; the answer to send otherwise (408 for a
    /// body too slow, 400 for one too large or unreadable).
    async fn read_body(&self, session: &mut ServerSession) -> Result<Vec<u8>, (StatusCode, Value)> {
        self.body.read(session).await.map_err(|e| {
            let status = match e {
                BodyError::Slow(_) => StatusCode::REQUEST_TIMEOUT,
                BodyError::TooLarge | BodyError::Unreadable(_) => StatusCode::BAD_REQUEST,
            };
            (status, json!({ "error": e.message() }))
        })
    }

    /// `POST /rollback`: an empty body or `{"to": N}` (400 otherwise).
    async fn post_rollback(
        &self,
        session: &mut ServerSession,
        caller: Caller,
    ) -> (StatusCode, Value) {
        let body = match self.read_body(session).await {
            Ok(b) => b,
            Err(answer) => return answer,
        };
        let to = match rollback_target(&body) {
            Ok(to) => to,
            Err(e) => return (StatusCode::BAD_REQUEST, json!({ "error": e })),
        };
        let r = self.reloader.clone();
        match tokio::task::spawn_blocking(move || r.rollback(to, caller)).await {
            Ok(Ok(report)) => {
                // Whether what now serves is what the next reload would read: when the routes
                // file differs (`matches_file: false`) or etcd's table does (`divergent`), the
                // next file save, SIGHUP, reload or revision replaces the rollback.
                let mut body = json!(report);
                let status = self.reloader.status();
                for key in ["source", "matches_file", "divergent"] {
                    if let Some(v) = status.get(key) {
                        body[key] = v.clone();
                    }
                }
                (StatusCode::OK, body)
            }
            Ok(Err(e)) => (StatusCode::NOT_FOUND, json!({ "error": e })),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": e.to_string() }),
            ),
        }
    }

    /// `POST /explain`: the request in the body (`ExplainRequest`) decided on the running
    /// table with its health, nothing sent (400 for a malformed request).
    async fn post_explain(&self, session: &mut ServerSession) -> (StatusCode, Value) {
        let body = match self.read_body(session).await {
            Ok(b) => b,
            Err(answer) => return answer,
        };
        let request: ExplainRequest = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({ "error": format!("body: {e}, expected {{\"url\": ..., \"method\", \"headers\", \"cookies\", \"query\", \"ip\"}}") }),
                )
            }
        };
        let active = self.reloader.active().load_full();
        let book = (self.dns.as_ref()).map(|d| d.book().load());
        let addresses = book.as_deref().unwrap_or(Addresses::none());
        let answer = match &self.health {
            Some(h) => explain_json(
                &active.table,
                Some(active.version),
                &request,
                &h.view(),
                addresses,
            ),
            None => explain_json(
                &active.table,
                Some(active.version),
                &request,
                &AllHealthy,
                addresses,
            ),
        };
        match answer {
            Ok(j) => (StatusCode::OK, j),
            Err(e) => (StatusCode::BAD_REQUEST, json!({ "error": e })),
        }
    }

    async fn route(&self, session: &mut ServerSession) -> (StatusCode, Value) {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        if method == Method::GET && path == "/identity" {
            return self.identity(session);
        }
        let public = matches!(path.as_str(), "/healthz" | "/readyz");
        // Every POST (and any other method that is not GET or HEAD), `POST /explain` included.
        if !matches!(method, Method::GET | Method::HEAD) {
            if let Err(refused) = self.same_site(session) {
                return refused;
            }
        }
        let identity = if public {
            None
        } else {
            match self.authorize(session) {
                Ok(name) => Some(name),
                Err(refused) => return refused,
            }
        };
        let caller = Caller {
            client: self.client(session),
            identity,
        };
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
            return super::rollouts::rollouts(
                c,
                self.reloader.clone(),
                &method,
                &path,
                query.as_deref(),
                caller.clone(),
            )
            .await;
        }
        if path == "/mirrors" || path.starts_with("/mirrors/") {
            return super::mirrors::mirrors(self.mirrors.as_deref(), &method, &path);
        }
        match (method, path.as_str()) {
            (Method::GET, "/healthz") => (
                StatusCode::OK,
                json!({ "status": "ok", "pid": std::process::id() }),
            ),
            (Method::GET, "/readyz") => self.readyz(draining).await,
            (Method::GET, "/status") => (StatusCode::OK, self.status(draining)),
            (Method::GET, "/versions") => self.versions(),
            (Method::GET, p) if p.starts_with("/versions/") => self.version_source(p),
            (Method::GET, "/routes") => {
                let active = self.reloader.active().load_full();
                let mut j = routes_json(&active.table);
                j["version"] = json!(active.version);
                (StatusCode::OK, j)
            }
            (Method::GET, "/upstreams") => self.upstreams(),
            (Method::GET, "/traffic") => self.traffic(),
            (Method::POST, "/reload") => self.post_reload(caller).await,
            (Method::POST, "/rollback") => self.post_rollback(session, caller).await,
            (Method::POST, "/explain") => self.post_explain(session).await,
            (
                _,
                "/healthz" | "/readyz" | "/status" | "/versions" | "/routes" | "/upstreams"
                | "/traffic" | "/identity" | "/reload" | "/rollback" | "/explain",
            ) => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({ "error": "method not allowed" }),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                json!({ "error": "not found", "endpoints": ["GET /status", "GET /versions", "GET /versions/N", "GET /routes", "GET /upstreams", "GET /traffic", "GET /identity", "GET /rollouts", "GET /rollouts/ROUTE", "GET /rollouts/ROUTE/series", "POST /rollouts/ROUTE/{pause,resume,promote,abort}", "GET /mirrors", "GET /mirrors/ROUTE", "POST /reload", "POST /rollback", "POST /explain", "GET /healthz", "GET /readyz", "GET /metrics", "GET /ui/"] }),
            ),
        }
    }
}

#[async_trait]
impl ServeHttp for AdminApi {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        if let Some(page) = super::ui::answer(session.req_header()) {
            return page;
        }
        let is_metrics = session.req_header().method == Method::GET
            && session.req_header().uri.path() == "/metrics";
        let metrics = if is_metrics {
            Some(self.authorize(session))
        } else {
            None
        };
        let handed_over = self.lifecycle.is_handed_over();
        let (status, content_type, bytes) = if let (Some(Ok(_)), false) = (&metrics, handed_over) {
            (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                {
                    let mut text = match &self.handover {
                        Some(h) => h.scrape(),
                        None => self.metrics.render(),
                    };
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
            let (status, body) = match metrics {
                Some(Err(refused)) => refused,
                // The counters continue in the new process: a scrape here would go back.
                Some(Ok(_)) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "error": "this process handed its listening sockets to a new one, whose metrics continue these; scrape again", "pid": std::process::id() }),
                ),
                None => self.route(session).await,
            };
            let mut bytes = serde_json::to_vec_pretty(&body).unwrap_or_default();
            bytes.push(b'\n');
            (status, "application/json", bytes)
        };
        if !session.is_body_done() {
            // A body left unread (refused, cut at its deadline, or one the endpoint does not
            // read): close after the answer rather than drain it (Pingora drains it with no
            // deadline before reusing the connection).
            session.set_keepalive(None);
        }
        Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::CONTENT_LENGTH, bytes.len())
            .header(http::header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .body(bytes)
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}
