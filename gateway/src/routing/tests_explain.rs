//! `explain` against the decision: the route, the reason and the tag it names are the ones
//! `decide` takes, for 1,000 random requests over a table of 200 random routes (a property
//! test with a fixed seed: every run tries the same cases, and a failure prints the request).
//! `explain` tries routes in file order without the index; `decide` goes through the index.

use super::table;
use crate::routing::{Outcome, Parsed, Preview, RequestInfo, RouteTable, TagAction};
use http::{HeaderMap, HeaderValue, Method};
use std::fmt::Write;
use std::net::IpAddr;

/// SplitMix64: a small deterministic generator (the cases must be the same on every run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const HOSTS: &[&str] = &["a.com", "b.com", "x.c.com", "y.c.com"];
const PATHS: &[&str] = &[
    "/",
    "/api",
    "/api/v1",
    "/api/v2/cart",
    "/static/x",
    "/a%20b",
];
const VALUES: &[&str] = &[
    "1", "5", "1500", "eu-west", "us", "pro", "free", "canary", "beta", "x!",
];
const NAMES: &[&str] = &["x-a", "x-b", "x-user"];
const TAGS: &[&str] = &["canary", "beta", "other"];
const IPS: &[&str] = &["10.1.2.3", "192.168.0.9", "2001:db8::7", "127.0.0.1"];

/// A random value condition, as YAML.
fn condition(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => rng.pick(VALUES).into(),
        1 => format!("[{}, {}]", rng.pick(VALUES), rng.pick(VALUES)),
        2 => format!(
            "{{ regex: \"{}\" }}",
            rng.pick(&["^eu-", "^pro", "5", "^[0-9]+$"])
        ),
        3 => format!("{{ present: {} }}", rng.chance(50)),
        4 => {
            let lo = rng.below(2000) as i64 - 100;
            format!("{{ range: [{lo}, {}] }}", lo + rng.below(2000) as i64)
        }
        _ => format!("{{ not: [{}] }}", rng.pick(VALUES)),
    }
}

fn random_table(rng: &mut Rng, routes: usize) -> std::sync::Arc<RouteTable> {
    let mut y = String::from(
        "upstreams:\n  s: { targets: [\"127.0.0.1:1\"] }\n  c: { targets: [\"127.0.0.1:2\"] }\n  b: { targets: [\"127.0.0.1:3\"] }\nroutes:\n",
    );
    for i in 0..routes {
        let mut m = Vec::new();
        if rng.chance(50) {
            m.push(format!(
                "host: \"{}\"",
                rng.pick(&["a.com", "b.com", "*.c.com"])
            ));
        }
        match rng.below(5) {
            0 => m.push(format!(
                "path_prefix: {}",
                rng.pick(&["/", "/api", "/api/v2"])
            )),
            1 => m.push(format!("path: {{ exact: \"{}\" }}", rng.pick(PATHS))),
            2 => m.push(format!(
                "path: {{ regex: \"{}\" }}",
                rng.pick(&["^/api/v[0-9]+", "cart$", "%20"])
            )),
            _ => {}
        }
        if rng.chance(20) {
            m.push(format!("methods: [{}]", rng.pick(&["GET", "POST"])));
        }
        for (field, chance) in [("headers", 30), ("query", 15), ("cookies", 15)] {
            if rng.chance(chance) {
                let name = match field {
                    "headers" => rng.pick(NAMES),
                    _ => rng.pick(&["env", "plan", "uid"]),
                };
                m.push(format!("{field}: {{ {name}: {} }}", condition(rng)));
            }
        }
        if rng.chance(10) {
            m.push(format!(
                "client_ip: [{}]",
                rng.pick(&["10.0.0.0/8", "\"2001:db8::/32\"", "127.0.0.1"])
            ));
        }
        let from = rng.pick(&[
            "[header]",
            "[header, \"cookie:env_tag\", \"query:env\"]",
            "[\"query:env\"]",
        ]);
        let trusted = if rng.chance(20) {
            ", trusted_sources: [10.0.0.0/8]"
        } else {
            ""
        };
        let unknown = rng.pick(&["base", "reject"]);
        let sticky = if rng.chance(25) {
            "\n    sticky: header:x-user"
        } else {
            ""
        };
        let _ = write!(
            y,
            "  - name: r{i}\n    match: {{ {} }}\n    dye: {{ from: {from}, tags: {{ canary: c, beta: b }}, on_unknown_tag: {unknown}{trusted} }}\n    split: [{{ upstream: s, weight: 9 }}, {{ upstream: c, weight: 1 }}]{sticky}\n",
            m.join(", ")
        );
    }
    table(&y)
}

struct Request {
    method: Method,
    host: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    client: Option<IpAddr>,
}

fn random_request(rng: &mut Rng) -> Request {
    let mut headers = HeaderMap::new();
    for name in NAMES {
        for _ in 0..rng.below(3) {
            headers.append(*name, HeaderValue::from_static(rng.pick(VALUES)));
        }
    }
    if rng.chance(40) {
        headers.insert("x-env-tag", HeaderValue::from_static(rng.pick(TAGS)));
    }
    if rng.chance(50) {
        let c = format!(
            "plan={}; env_tag={}; uid={}",
            rng.pick(VALUES),
            rng.pick(TAGS),
            rng.pick(VALUES)
        );
        headers.insert("cookie", HeaderValue::from_str(&c).expect("cookie"));
    }
    let query = rng.chance(60).then(|| {
        format!(
            "env={}&uid={}&plan={}",
            rng.pick(TAGS),
            rng.pick(VALUES),
            rng.pick(VALUES)
        )
    });
    Request {
        method: if rng.chance(70) {
            Method::GET
        } else {
            Method::POST
        },
        host: rng.pick(HOSTS).into(),
        path: rng.pick(PATHS).into(),
        query,
        headers,
        client: rng.pick(IPS).parse().ok(),
    }
}

#[test]
fn explain_names_the_route_reason_and_tag_decide_takes() {
    let mut rng = Rng(0x00d1_e6a7_e030);
    let t = random_table(&mut rng, 200);
    let mut routed = 0;
    for case in 0..1000 {
        let r = random_request(&mut rng);
        let info = |parsed| RequestInfo {
            method: &r.method,
            host: &r.host,
            path: &r.path,
            query: r.query.as_deref(),
            headers: &r.headers,
            client: r.client,
            parsed,
        };
        let (p1, p2) = (Parsed::default(), Parsed::default());
        let decided = t.decide(&info(&p1));
        let explained = t.explain(&info(&p2));
        let at = || {
            format!(
                "case {case}: {} {}?{:?} {:?} {:?}",
                r.host, r.path, r.query, r.headers, r.client
            )
        };
        let route_of = |o: &Outcome<'_>| match o {
            Outcome::Routed(d) => Some(d.route_id),
            Outcome::RejectedTag { route_id } | Outcome::NoHealthyTarget { route_id, .. } => {
                Some(*route_id)
            }
            Outcome::NoRoute => None,
        };
        assert_eq!(explained.route_id(), route_of(&decided), "{}", at());
        match (explained.preview, decided) {
            (Preview::Decided(e), d) => assert_eq!(e, d, "{}", at()),
            (
                Preview::Split {
                    route_id,
                    reason,
                    tag,
                },
                Outcome::Routed(d),
            ) => {
                routed += 1;
                assert_eq!((route_id, reason), (d.route_id, d.reason), "{}", at());
                // The split may pick a group a tag names: that tag is set instead.
                let set_by_split = matches!(d.tag_action, TagAction::Set(s)
                    if t.route(d.route_id).is_some_and(|rt| rt.dye.tag_for_group(d.group).is_some_and(|x| x.as_ref() == s)));
                if !set_by_split {
                    assert_eq!(tag, d.tag, "{}", at());
                }
            }
            (e, d) => panic!("{}: explain {e:?}, decide {d:?}", at()),
        }
    }
    // The cases are not all 404s.
    assert!(routed > 100, "{routed} split decisions");
}

#[test]
fn match_and_miss_name_the_conditions() {
    let t = table(
        "upstreams:\n  s: { targets: [\"127.0.0.1:1\"] }\nroutes:
  - name: gray
    match: { host: a.com, path: { prefix: /api }, cookies: { plan: { regex: \"^pro\" } } }
    split: [{ upstream: s, weight: 1 }]
  - name: other-host
    match: { host: b.com }
    split: [{ upstream: s, weight: 1 }]
  - name: api
    match: { host: a.com, path_prefix: /api }
    split: [{ upstream: s, weight: 1 }]
  - name: all
    split: [{ upstream: s, weight: 1 }]
",
    );
    let explain = |path: &str, cookie: &str| {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_str(cookie).expect("cookie"));
        let info = RequestInfo {
            method: &Method::GET,
            host: "a.com",
            path,
            query: None,
            headers: &headers,
            client: None,
            parsed: &Parsed::default(),
        };
        let e = t.explain(&info);
        format!("match={}; miss={}", e.matched(&t), e.miss(&t))
    };
    assert_eq!(
        explain("/api/x", "plan=pro"),
        "match=host,path,cookies.plan; miss=none"
    );
    assert_eq!(
        explain("/api/x", "plan=free"),
        "match=host,path; miss=gray:cookies.plan"
    );
    assert_eq!(explain("/x", "plan=pro"), "match=any; miss=gray:path");
}
