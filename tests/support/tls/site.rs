//! What the TLS tests share: a test CA, certificate pairs written into the gateway's dir, a
//! gateway with an HTTPS listener in front of one upstream, and a wait for that listener.

use crate::certs::{Leaf, TestCa};
use crate::tls::TlsClient;
use crate::{free_addr, wait_until_async, Dyegate, GatewayConfig, Upstream};
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use std::time::Duration;

pub const SHOP: &str = "shop.example.com";
pub const API: &str = "api.example.com";

/// routes.yaml: every host to `upstream` (route `all`), and `secure.example.com` on its own
/// route with `https_redirect: true`.
pub fn routes(upstream: &Upstream) -> String {
    format!(
        "upstreams:\n  app: {{ targets: [\"{}\"] }}\n\
         routes:\n\
         \x20 - name: secure\n    match: {{ host: secure.example.com }}\n    https_redirect: true\n    split: [{{ upstream: app, weight: 1 }}]\n\
         \x20 - name: all\n    split: [{{ upstream: app, weight: 1 }}]\n",
        upstream.target()
    )
}

/// Writes `certs/<name>.pem` and `certs/<name>.key` into the gateway's dir.
pub fn write_pair(cfg: &GatewayConfig, name: &str, leaf: &Leaf) {
    std::fs::create_dir_all(cfg.path("certs")).expect("certs dir");
    cfg.write(&format!("certs/{name}.pem"), &leaf.cert_pem);
    cfg.write(&format!("certs/{name}.key"), &leaf.key_pem);
}

/// The `tls:` section for `listen` with the pairs `names` (written by [`write_pair`]) and
/// `extra` lines (indented by two spaces, e.g. `"  h2: false\n"`).
pub fn tls_yaml(listen: SocketAddr, names: &[&str], extra: &str) -> String {
    let mut y = format!("tls:\n  listen: [\"{listen}\"]\n  certificates:\n");
    for n in names {
        y.push_str(&format!(
            "    - {{ cert: certs/{n}.pem, key: certs/{n}.key }}\n"
        ));
    }
    y.push_str(extra);
    y
}

/// A gateway with an HTTPS listener.
pub struct Site {
    pub ca: TestCa,
    pub upstream: Upstream,
    pub gw: Dyegate,
    pub tls: SocketAddr,
}

impl Site {
    /// `pairs`: (file name, leaf) written before the start, in `tls.certificates` order;
    /// `gateway_extra`: more gateway.yaml (whole lines); `tls_extra`: more `tls:` fields.
    pub async fn start(
        ca: TestCa,
        pairs: &[(&str, &Leaf)],
        tls_extra: &str,
        gateway_extra: &str,
    ) -> Site {
        let upstream = Upstream::start("app");
        let tls = free_addr();
        let cfg = GatewayConfig::new(&routes(&upstream));
        for (name, leaf) in pairs {
            write_pair(&cfg, name, leaf);
        }
        let names: Vec<&str> = pairs.iter().map(|(n, _)| *n).collect();
        let cfg = cfg.with_gateway_extra(&format!(
            "{}{gateway_extra}",
            tls_yaml(tls, &names, tls_extra)
        ));
        let gw = cfg.start();
        wait_for_tls(tls).await;
        Site {
            ca,
            upstream,
            gw,
            tls,
        }
    }

    pub fn cfg(&self) -> &GatewayConfig {
        self.gw.config()
    }

    /// The leaf a new handshake with `sni` gets.
    pub async fn served(&self, sni: Option<&str>) -> CertificateDer<'static> {
        TlsClient::connect(self.tls, sni)
            .await
            .unwrap_or_else(|e| panic!("TLS handshake with {sni:?}: {e}"))
            .peer_leaf()
    }

    /// Polls new handshakes until `sni` gets `leaf`; how long that took, or `None` by `within`.
    pub async fn wait_served(
        &self,
        sni: Option<&str>,
        leaf: &Leaf,
        within: Duration,
    ) -> Option<Duration> {
        let start = std::time::Instant::now();
        let seen = wait_until_async(within, || async {
            TlsClient::connect(self.tls, sni)
                .await
                .is_ok_and(|c| c.peer_leaf() == leaf.cert_der)
        })
        .await;
        seen.then(|| start.elapsed())
    }
}

/// Waits until the HTTPS listener accepts TCP connections.
pub async fn wait_for_tls(addr: SocketAddr) {
    let up = wait_until_async(Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(addr).await.is_ok()
    })
    .await;
    assert!(up, "the HTTPS listener {addr} never accepted a connection");
}
