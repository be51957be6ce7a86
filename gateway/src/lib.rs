//! dyegate: an edge gateway for canary releases on Pingora.
//!
//! Where each stage of a routing change lives (one path for every trigger):
//!
//! | stage | where |
//! |---|---|
//! | text → located nodes → model | [`config::yaml`], [`config::load`], [`config::table::model`] |
//! | reuse of unchanged entries | [`config::incremental`] (the previous version is an argument) |
//! | validate, compile | [`config::table::validate`], [`config::table::compile`] → [`routing::RouteTable`] |
//! | triggers → candidate | [`reload::Reloader`] (file, SIGHUP, API, rollback), [`reload::Candidate`] |
//! | commit: positions, metric handles, swap, counters, diff, history, audit | `reload/commit.rs` |
//! | what requests load | [`routing::ActiveTable`] behind an `ArcSwap`, read once per request by [`proxy`] |
//!
//! Modules:
//! - [`config`]: gateway.yaml ([`config::settings`]) and routes.yaml ([`config::table`]), from
//!   text to typed settings and a compiled table, with located errors.
//! - [`routing`]: the immutable route table, the active-table handle and the decision function
//!   (no I/O; it advances the round-robin counters); imports nothing from `config`.
//! - [`contain`]: request-path decisions for failing upstreams (timeouts, retries, breaker).
//! - [`downstream`]: connection cap, bounded head reads, keep-alive limits, request framing.
//! - [`health`]: per-target health outside the table: active checks, passive ejection, load.
//! - [`dns`]: targets by DNS name: the names' addresses outside the table, re-resolved in the
//!   background.
//! - [`proxy`]: the Pingora `ProxyHttp` that asks the table and acts.
//! - [`reload`]: triggers, candidates and the one commit path; versions, rollback, audit.
//! - [`rollout`]: progressive delivery: plans, windowed statistics of the canary, gates, the
//!   state machine and the controller that steps a rollout through the commit path.
//! - [`admin`]: the admin HTTP API and the CLI's client for it.
//! - [`cli`]: the commands that talk to a running gateway: address, token, output, renderings.
//! - [`lifecycle`]: requests in flight, draining at handover, early exit; pid file, early SIGHUP.
//! - [`handover`]: the state a process hands its successor with the sockets (counters, health,
//!   ticket keys, lineage), in a versioned file.
//! - [`upgrade`]: `dyegate upgrade`, the binary upgrade dance around Pingora's socket handover.
//! - [`telemetry`]: Prometheus metrics, the JSON access log, W3C trace context and OTLP spans.
//! - [`source`]: where tables come from besides the routes file: etcd (list, watch, push).
//! - [`tls`]: HTTPS listeners: certificates by SNI, live reload, handshake bounds and counts.
//! - [`server`]: wiring of the Pingora server (listeners, signals, upgrade socket).
//! - [`stamp`]: content hashes and times, as recorded.

pub mod admin;
pub mod cli;
pub mod config;
pub mod contain;
pub mod dns;
pub mod downstream;
pub mod handover;
pub mod health;
pub mod lifecycle;
pub mod mirror;
pub mod proxy;
pub mod reload;
pub mod rollout;
pub mod routing;
pub mod server;
pub mod source;
pub mod stamp;
pub mod telemetry;
pub mod tls;
pub mod upgrade;
