//! `https_redirect: true` on a route: plain-HTTP requests get 308 to the same URL on HTTPS
//! (the HTTPS listener's port, left out when 443); the same route over TLS is proxied; other
//! routes are untouched.

use dyegate_suite::certs::TestCa;
use dyegate_suite::tls::curl_https;
use dyegate_suite::tls::site::{Site, SHOP};
use dyegate_suite::{Dyegate, Req, Upstream};

const SECURE: &str = "secure.example.com";

#[tokio::test]
async fn plain_http_is_sent_to_https_and_tls_is_served() {
    let ca = TestCa::new("dyegate test CA");
    let secure = ca.leaf(&[SECURE, SHOP]);
    let site = Site::start(ca, &[("secure", &secure)], "", "").await;

    let resp = Req::get("/cart/items?id=7&x=%20y")
        .host(SECURE)
        .send(site.gw.addr())
        .await;
    assert_eq!(resp.status, 308, "{}", resp.text());
    let want = format!(
        "https://{SECURE}:{}/cart/items?id=7&x=%20y",
        site.tls.port()
    );
    assert_eq!(resp.header("location"), Some(want.as_str()));
    // A Host with a port: the redirect names the HTTPS port instead.
    let resp = Req::get("/")
        .host(&format!("{SECURE}:8080"))
        .send(site.gw.addr())
        .await;
    assert_eq!(
        resp.header("location"),
        Some(format!("https://{SECURE}:{}/", site.tls.port()).as_str())
    );
    assert_eq!(
        site.upstream.request_count(),
        0,
        "nothing proxied over plain HTTP"
    );

    // Over TLS the route is served.
    let ca_file = site.cfg().write("ca.pem", &site.ca.pem());
    let out = curl_https(site.tls, SECURE, "/cart/items?id=7", &ca_file, &[]);
    assert_eq!(out.status, 200, "{out:?}");
    assert_eq!(site.upstream.request_count(), 1);

    // A route without https_redirect answers plain HTTP as before.
    let resp = Req::get("/x").host(SHOP).send(site.gw.addr()).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.upstream(), Some("app"));
}

#[tokio::test]
async fn without_tls_listeners_the_redirect_goes_to_port_443() {
    let up = Upstream::start("app");
    let gw = Dyegate::start(&dyegate_suite::tls::site::routes(&up));
    let resp = Req::get("/a?b=c").host(SECURE).send(gw.addr()).await;
    assert_eq!(resp.status, 308);
    assert_eq!(
        resp.header("location"),
        Some("https://secure.example.com/a?b=c")
    );
}
