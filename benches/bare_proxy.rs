//! `bare-proxy`: the floor of the load comparison with Pingora's defaults (its default downstream
//! modules, the system allocator). The proxy itself is in benches/bare/proxy.rs.
//!
//! ```text
//! cargo build --release -p dyegate-suite --bin bare-proxy
//! target/release/bare-proxy --listen 127.0.0.1:6188 --upstream 127.0.0.1:8080 --threads 2
//! curl -i 127.0.0.1:6188/
//! ```

#[path = "bare/proxy.rs"]
mod proxy;

fn main() {
    proxy::main(proxy::Build::Defaults);
}
