//! The downstream side of the listeners, before and around Pingora's HTTP handling: connection
//! cap, bounded request-head reads, keep-alive limits (gateway.yaml `limits` for the proxy
//! listeners, `admin.limits` for the admin listener), and the normalisation of request framing
//! and tag headers before a request goes upstream.
//!
//! - [`head`]: reading a request head under a deadline and a size limit.
//! - [`app`]: [`BoundedApp`], the listeners' `ServerApp` around Pingora's HTTP apps (the proxy,
//!   the admin API).
//! - [`coalesce`]: a small answer's head and body in one write.
//! - `delegate`: the digest traits of a stream wrapper, answered by the stream it wraps.
//! - [`framing`]: one `Content-Length`, one tag header upstream; `Host` required in HTTP/1.1.
//! - [`hop_by_hop`]: the hop-by-hop fields taken off a request before it goes upstream.
//! - [`layout`]: the listeners' services, one runtime or one per core (`pingora.runtime`).
//! - [`fds`]: the open-file limit and the connection caps.
//! - [`proxy_header`]: a PROXY protocol header (v1, v2) parsed from a connection's first bytes.
//! - [`proxy_protocol`]: the PROXY protocol listeners: allowed peers, the header read under a
//!   deadline before TLS and HTTP, its source carried as the connection's peer.
//! - [`replay`]: a TLS stream that takes back the bytes of a head read ahead of Pingora.
//! - [`trim`]: memory given back to the system after a wave of closed connections.
//! - [`metrics`]: the families `dyegate_downstream_rejected_total{listener,reason}` and
//!   `dyegate_downstream_connections{listener}`.

pub mod app;
pub mod coalesce;
mod delegate;
pub mod fds;
pub mod fields;
pub mod framing;
pub mod head;
pub mod hop_by_hop;
pub mod layout;
pub mod metrics;
pub mod proxy_header;
pub mod proxy_protocol;
pub mod replay;
pub mod room;
pub mod trim;

pub use app::{BoundedApp, LiveLimits};
pub use metrics::{DownstreamMetrics, Listener, Rejected};
