//! Support for dyegate's end-to-end tests: free ports, real upstreams on loopback, the real
//! `dyegate` process, an HTTP client and polling with deadlines.
//!
//! ```no_run
//! use dyegate_suite::{Dyegate, Req, Upstream};
//! # async fn demo() {
//! let stable = Upstream::start("stable");
//! let gw = Dyegate::start(&format!(
//!     "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n\
//!      routes:\n  - name: all\n    split: [{{ upstream: stable, weight: 1 }}]\n",
//!     stable.target()
//! ));
//! let resp = Req::get("/").send(gw.addr()).await;
//! assert_eq!(resp.upstream(), Some("stable"));
//! # }
//! ```

pub mod certs;
pub mod client;
pub mod dns;
pub mod etcd;
pub mod gateway;
pub mod grpc;
pub mod load;
pub mod metrics;
pub mod otlp;
pub mod ports;
pub mod procfs;
pub mod prometheus;
pub mod proxy_protocol;
pub mod raw;
pub mod rollout;
pub mod server_thread;
pub mod time;
pub mod tls;
pub mod tools;
pub mod trace;
pub mod traffic;
pub mod upgrade;
pub mod upstream;
pub mod wait;
pub mod webhook;

pub use client::{ws_connect, Conn, Req, Resp};
pub use etcd::{etcd_source_yaml, EtcdServer};
pub use gateway::{
    dyegate_cli, upstream_groups, upstreams_yaml, CliOutput, Dyegate, GatewayConfig,
};
pub use otlp::{OtlpProtocol, OtlpReceiver, ReceivedSpan};
pub use ports::{free_addr, free_port};
pub use upstream::{RecordedRequest, Upstream};
pub use wait::{poll_until, wait_until, wait_until_async};
