//! What crosses the gateway: HTTP framing and versions, streaming, gRPC, WebSocket, smuggling attempts, upstream TLS, upstreams by DNS name, downstream and rate limits.
//!
//! One test binary per area (tests/README.md): every end-to-end test file is a module here.

mod alias_bomb_memory;
mod dns;
mod downstream_limits;
mod error_answers;
mod forwarded;
mod framing;
mod grpc;
mod h2_rapid_reset;
mod mirror;
mod mirror_compare;
mod protocols;
mod proxy_protocol;
mod rate_limits;
mod smuggling_corpus;
mod streaming;
mod upstream_tls;
