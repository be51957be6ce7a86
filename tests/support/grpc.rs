//! Real gRPC over HTTP/2 for the gRPC tests: a server-streaming server that records the
//! metadata it saw ([`GrpcStreamServer`]), and a client that makes one call with HTTP/2 prior
//! knowledge (h2c) and keeps every message, the trailers and when things arrived
//! ([`grpc_call`]). Unary calls go to the OTLP collector ([`crate::OtlpReceiver::grpc`]), a
//! tonic server.
//!
//! ```no_run
//! use dyegate_suite::grpc::{grpc_call, GrpcStreamServer, StreamScript};
//! # async fn demo(gateway: std::net::SocketAddr) {
//! let server = GrpcStreamServer::start("stable", StreamScript::default());
//! // routes.yaml: upstreams: { stable: { targets: ["<server.target()>"], protocol: h2c } }
//! let reply = grpc_call(gateway, "/test.Feed/Watch", &[("x-env-tag", "canary")], b"hi").await;
//! assert_eq!(reply.grpc_status(), Some("0"));
//! # }
//! ```

mod client;
mod frame;
mod server;

pub use client::{grpc_call, GrpcReply};
pub use frame::{decode_frames, encode_frame};
pub use server::{GrpcStreamServer, StreamScript};
