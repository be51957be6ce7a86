//! `bare-proxy-same`: the bare proxy built the way dyegate is (mimalloc as the global allocator,
//! no default downstream modules; the release profile's fat LTO applies to both), so that
//! "dyegate >= 0.97x bare" compares like with like. The proxy itself is in benches/bare/proxy.rs.
//!
//! ```text
//! cargo build --release -p dyegate-suite --bin bare-proxy-same
//! target/release/bare-proxy-same --listen 127.0.0.1:6188 --upstream 127.0.0.1:8080 --threads 2
//! ```

#[path = "bare/proxy.rs"]
mod proxy;

/// As in gateway/src/main.rs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    proxy::main(proxy::Build::SameAsDyegate);
}
