//! Bad-input classes of routes.yaml and gateway.yaml, each pinned to its whole error line.

use super::{routes_from_text, Gateway};
use std::path::Path;

fn errors(text: &str) -> Vec<String> {
    match routes_from_text("routes.yaml", text.as_bytes().to_vec(), None) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn errors_bytes(bytes: &[u8]) -> Vec<String> {
    match routes_from_text("routes.yaml", bytes.to_vec(), None) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

const UPS: &str =
    "upstreams:\n  a: { targets: [\"127.0.0.1:9001\"] }\n  b: { targets: [\"127.0.0.1:9002\"] }\n";

fn with_routes(routes: &str) -> String {
    format!("{UPS}routes:\n{routes}")
}

#[test]
fn valid_file_compiles() {
    let text = with_routes(
        "  - name: shop\n    match: { host: \"*.example.com\", path_prefix: /api, methods: [get, POST], headers: { x-client: [web, mobile], x-one: yes } }\n    dye: { tags: { canary: b }, on_unknown_tag: reject, trusted_sources: [10.0.0.0/8, 127.0.0.1] }\n    split: [{ upstream: a, weight: 95 }, { upstream: b, weight: 5 }]\n    sticky: cookie:uid\n",
    );
    let loaded = routes_from_text("routes.yaml", text.into_bytes(), None).expect("valid");
    assert_eq!((loaded.routes, loaded.upstreams), (1, 2));
}

#[test]
fn yaml_syntax() {
    assert_eq!(
        errors("upstreams: [a, b\nroutes: []\n"),
        vec!["routes.yaml:2:7: invalid YAML: illegal placement of ':' indicator"]
    );
}

#[test]
fn unknown_field_names_the_allowed_ones() {
    assert_eq!(
        errors(&with_routes("  - name: r\n    split: [{ upstream: a, wieght: 1 }]\n")),
        vec!["routes.yaml:6:28: routes[0].split[0].wieght: found unknown field `wieght`, expected one of `upstream`, `weight`"]
    );
    assert_eq!(
        errors(&format!("{UPS}routes: []\nroute: []\n")),
        vec!["routes.yaml:5:1: route: found unknown field `route`, expected one of `upstreams`, `routes`"]
    );
}

#[test]
fn wrong_types() {
    assert_eq!(
        errors(&with_routes("  - name: r\n    split: [{ upstream: a, weight: lots }]\n")),
        vec!["routes.yaml:6:36: routes[0].split[0].weight: found \"lots\", expected a whole number >= 0"]
    );
    assert_eq!(
        errors(&with_routes("  - name: r\n    split: { upstream: a }\n")),
        vec!["routes.yaml:6:12: routes[0].split: found a mapping, expected a sequence"]
    );
    assert_eq!(
        errors(&with_routes("  - name: r\n    dye: { on_unknown_tag: drop }\n    split: [{ upstream: a, weight: 1 }]\n")),
        vec!["routes.yaml:6:28: routes[0].dye.on_unknown_tag: found \"drop\", expected one of `base`, `reject`"]
    );
}

#[test]
fn negative_and_huge_weights() {
    assert_eq!(
        errors(&with_routes("  - name: r\n    split:\n      - { upstream: a, weight: 95 }\n      - { upstream: b, weight: -5 }\n")),
        vec!["routes.yaml:8:32: routes[0].split[1].weight: found -5, expected a whole number >= 0"]
    );
    assert_eq!(
        errors(&with_routes("  - name: r\n    split: [{ upstream: a, weight: 5000000 }]\n")),
        vec!["routes.yaml:6:36: routes[0].split[0].weight: found 5000000, expected a whole number from 0 to 1000000"]
    );
}

#[test]
fn empty_file_and_comments_only() {
    let want = vec![
        "routes.yaml:1:1: found an empty file, expected a mapping with `upstreams` and `routes`",
    ];
    assert_eq!(errors(""), want);
    assert_eq!(errors("# only a comment\n"), want);
    assert_eq!(
        errors("just text\n"),
        vec!["routes.yaml:1:1: found \"just text\", expected a mapping with `upstreams` and `routes`"]
    );
}

#[test]
fn binary_garbage() {
    assert_eq!(
        errors_bytes(b"upstreams:\n  \xff\xfe\x00garbage"),
        vec!["routes.yaml:2:3: found a byte that is not UTF-8 text (offset 13), expected a YAML text file"]
    );
    assert_eq!(
        errors_bytes(b"\x00\x01\x02\x03"),
        vec!["routes.yaml:1:1: found a control character, expected a YAML text file"]
    );
}

#[test]
fn truncated_mid_write() {
    let full = with_routes("  - name: r\n    split: [{ upstream: a, weight: 1 }]\n");
    // Every prefix of a valid file either loads or reports errors: never a panic.
    for cut in 0..full.len() {
        let _ = errors(&full[..cut]);
    }
    assert_eq!(
        errors(&full[..full.len() - 12]),
        vec!["routes.yaml:7:1: invalid YAML: while parsing a flow mapping, did not find expected ',' or '}'"]
    );
    assert_eq!(
        errors(&full[..full.find("  - name").unwrap_or(0) + 10]),
        vec![
            "routes.yaml:5:9: routes[0].split: found no entries, expected at least one { upstream: NAME, weight: N } for untagged traffic",
            "routes.yaml:6:1: routes[0].name: found null, expected a string",
        ]
    );
}

#[test]
fn unknown_upstream_reference() {
    assert_eq!(
        errors(&with_routes("  - name: r\n    dye: { tags: { canary: c } }\n    split: [{ upstream: z, weight: 1 }]\n")),
        vec![
            "routes.yaml:6:28: routes[0].dye.tags.canary: found unknown upstream \"c\", expected one of `a`, `b`",
            "routes.yaml:7:25: routes[0].split[0].upstream: found unknown upstream \"z\", expected one of `a`, `b`",
        ]
    );
}

#[test]
fn duplicate_route_names() {
    assert_eq!(
        errors(&with_routes("  - name: r\n    split: [{ upstream: a, weight: 1 }]\n  - name: r\n    split: [{ upstream: b, weight: 1 }]\n")),
        vec!["routes.yaml:7:11: routes[1].name: found duplicate route name \"r\" (also routes[0]), expected unique names"]
    );
}

#[test]
fn duplicate_and_empty_tags() {
    assert_eq!(
        errors(&with_routes("  - name: r\n    dye: { tags: { canary: a, canary: b, \"\": a, \"bad tag\": b } }\n    split: [{ upstream: a, weight: 1 }]\n")),
        vec![
            // Map-entry issues point at the entry's value (the first one for a duplicate).
            "routes.yaml:6:18: routes[0].dye.tags: found an empty tag, expected 1 to 64 characters of A-Z a-z 0-9 - _ .",
            "routes.yaml:6:28: routes[0].dye.tags.canary: found tag \"canary\" twice, expected unique tags",
            "routes.yaml:6:60: routes[0].dye.tags.bad tag: found tag \"bad tag\", expected 1 to 64 characters of A-Z a-z 0-9 - _ .",
        ]
    );
}

#[test]
fn empty_targets_and_bad_addresses() {
    assert_eq!(
        errors("upstreams:\n  a: { targets: [] }\n  b: { targets: [\"bad name!:80\", \"10.0.0.1\", \"10.0.0.1:0\", \"orders.internal\", \"orders.internal:65536\"] }\nroutes: []\n"),
        vec![
            "routes.yaml:2:17: upstreams.a.targets: found an empty list, expected at least one target",
            "routes.yaml:3:18: upstreams.b.targets[0]: found \"bad name!:80\", expected IP:PORT such as 127.0.0.1:9001 or [::1]:9001, or NAME:PORT such as orders.internal:8080 (a DNS name: letters, digits, `-` and `_` in dot-separated labels)",
            "routes.yaml:3:34: upstreams.b.targets[1]: found \"10.0.0.1\", expected IP:PORT such as 127.0.0.1:9001 or [::1]:9001, or NAME:PORT such as orders.internal:8080 (a DNS name: letters, digits, `-` and `_` in dot-separated labels)",
            "routes.yaml:3:46: upstreams.b.targets[2]: found \"10.0.0.1:0\" with port 0, expected a port from 1 to 65535",
            "routes.yaml:3:60: upstreams.b.targets[3]: found \"orders.internal\" without a port, expected IP:PORT such as 127.0.0.1:9001 or [::1]:9001, or NAME:PORT such as orders.internal:8080 (a DNS name: letters, digits, `-` and `_` in dot-separated labels)",
            "routes.yaml:3:79: upstreams.b.targets[4]: found \"orders.internal:65536\" with port 65536, expected a port from 1 to 65535",
        ]
    );
}

#[test]
fn all_weights_zero() {
    assert_eq!(
        errors(&with_routes("  - name: r\n    split: [{ upstream: a, weight: 0 }, { upstream: b, weight: 0 }]\n")),
        vec!["routes.yaml:6:12: routes[0].split: found all weights 0, expected a total weight above 0"]
    );
    assert_eq!(
        errors("upstreams:\n  a: { targets: [{ addr: \"127.0.0.1:1\", weight: 0 }] }\nroutes: []\n"),
        vec!["routes.yaml:2:17: upstreams.a.targets: found all target weights 0, expected at least one weight above 0"]
    );
}

#[test]
fn invalid_header_names_and_cidrs() {
    assert_eq!(
        errors(&with_routes("  - name: r\n    match: { headers: { \"x client\": [a] } }\n    dye: { header: \"x env\", trusted_sources: [10.0.0.0/33, 300.1.1.1] }\n    split: [{ upstream: a, weight: 1 }]\n")),
        vec![
            "routes.yaml:6:37: routes[0].match.headers.x client: found \"x client\", expected a valid HTTP header name",
            "routes.yaml:7:20: routes[0].dye.header: found \"x env\", expected a valid HTTP header name such as x-env-tag",
            "routes.yaml:7:47: routes[0].dye.trusted_sources[0]: found \"10.0.0.0/33\", expected an IP network such as 10.0.0.0/8 or an IP address",
            "routes.yaml:7:60: routes[0].dye.trusted_sources[1]: found \"300.1.1.1\", expected an IP network such as 10.0.0.0/8 or an IP address",
        ]
    );
}

#[test]
fn invalid_sticky_spec() {
    for spec in ["hdr:x", "header:", "cookie:a b", "client-ip"] {
        assert_eq!(
            errors(&with_routes(&format!("  - name: r\n    sticky: \"{spec}\"\n    split: [{{ upstream: a, weight: 1 }}]\n"))),
            vec![format!("routes.yaml:6:13: routes[0].sticky: found {spec:?}, expected `header:NAME`, `cookie:NAME` or `client_ip`")]
        );
    }
}

#[test]
fn bad_matchers() {
    assert_eq!(
        errors(&with_routes("  - name: r\n    match: { host: \"a*.b\", path_prefix: api, methods: [GET, \"B AD\"] }\n    split: [{ upstream: a, weight: 1 }]\n")),
        vec![
            "routes.yaml:6:20: routes[0].match.host: found \"a*.b\", expected a host name such as shop.example.com or *.example.com",
            "routes.yaml:6:41: routes[0].match.path_prefix: found \"api\", expected a path starting with / such as /api",
            "routes.yaml:6:61: routes[0].match.methods[1]: found \"B AD\", expected an HTTP method such as GET or POST",
        ]
    );
}

#[test]
fn every_error_is_reported_not_only_the_first() {
    let errs = errors(&with_routes("  - name: r1\n    split: [{ upstream: a, wieght: 1 }]\n  - name: r2\n    split: [{ upstream: nope, weight: 1 }]\n  - name: r3\n    sticky: bogus\n    split: [{ upstream: a, weight: 1 }]\n"));
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn a_decoding_error_does_not_hide_the_rest_of_its_route() {
    assert_eq!(
        errors(&with_routes("  - name: r\n    dye: { tags: { canary: zz }, trusted_sources: [10.0.0.0/8, 127.0.0.1/33] }\n    split: [{ upstream: a, weight: -1 }, { upstream: q, weight: 1 }]\n    stiky: x\n")),
        vec![
            "routes.yaml:6:28: routes[0].dye.tags.canary: found unknown upstream \"zz\", expected one of `a`, `b`",
            "routes.yaml:6:64: routes[0].dye.trusted_sources[1]: found \"127.0.0.1/33\", expected an IP network such as 10.0.0.0/8 or an IP address",
            "routes.yaml:7:36: routes[0].split[0].weight: found -1, expected a whole number >= 0",
            "routes.yaml:7:54: routes[0].split[1].upstream: found unknown upstream \"q\", expected one of `a`, `b`",
            "routes.yaml:8:5: routes[0].stiky: found unknown field `stiky`, expected one of `name`, `match`, `dye`, `split`, `sticky`, `timeouts`, `retries`, `rollout`, `limits`, `https_redirect`, `mirror`",
        ]
    );
    assert_eq!(
        errors("upstreams:\n  a: { targets: [\"127.0.0.1:1\", { addr: 5 , wieght: 1 }, \"nope\"], x: 1 }\nroutes: []\n"),
        vec![
            "routes.yaml:2:45: upstreams.a.targets[1].wieght: found unknown field `wieght`, expected one of `addr`, `weight`",
            "routes.yaml:2:58: upstreams.a.targets[2]: found \"nope\" without a port, expected IP:PORT such as 127.0.0.1:9001 or [::1]:9001, or NAME:PORT such as orders.internal:8080 (a DNS name: letters, digits, `-` and `_` in dot-separated labels)",
            "routes.yaml:2:67: upstreams.a.x: found unknown field `x`, expected one of `targets`, `health`, `outlier`, `max_in_flight`, `protocol`, `tls`",
        ]
    );
}

#[test]
fn gateway_yaml_defaults_and_errors() {
    let dir = std::env::temp_dir().join(format!("dyegate-gw-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let f = dir.join("gateway.yaml");
    std::fs::write(&f, "listen: [\"127.0.0.1:8080\"]\n").expect("write");
    let gw = Gateway::load(Some(&f)).expect("minimal file");
    assert_eq!(gw.routes_path, dir.join("routes.yaml"));
    assert_eq!(gw.admin_listen.to_string(), "127.0.0.1:9901");

    std::fs::write(
        &f,
        "listen: [\"nope\"]\nadmin: { listen: \"0.0.0.0:9901\" }\npingora: { threds: 2 }\n",
    )
    .expect("write");
    let e = Gateway::load(Some(&f)).expect_err("invalid");
    assert_eq!(
        e.to_string(),
        format!("{}:3:12: pingora.threds: found unknown field `threds`, expected one of `threads`, `runtime`, `pid_file`, `upgrade_sock`, `grace_period_seconds`, `graceful_shutdown_timeout_seconds`, `error_log`, `upstream_keepalive_pool_size`, `work_stealing`, `listener_tasks_per_fd`", f.display())
    );
    std::fs::write(
        &f,
        "listen: [\"nope\"]\nadmin: { listen: \"0.0.0.0:9901\" }\n",
    )
    .expect("write");
    let e = Gateway::load(Some(&f)).expect_err("invalid");
    assert_eq!(
        e.to_string(),
        format!(
            "{0}:1:10: listen[0]: found \"nope\", expected an IP:PORT listen address such as 0.0.0.0:8080\n{0}:2:18: admin.listen: found non-loopback address 0.0.0.0:9901 without admin.token, expected a loopback address or a bearer token in admin.token",
            f.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn conf_examples_load() {
    let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/gateway.yaml");
    let gw = Gateway::load(Some(&conf)).expect("conf/gateway.yaml");
    let loaded = super::load_routes(&gw.routes_path, gw.config.reload.max_file_bytes)
        .expect("conf/routes.yaml");
    assert!(loaded.routes >= 1);
}

#[test]
fn fast_and_located_paths_decode_the_same_model() {
    let text = with_routes(
        "  - name: shop\n    match: { host: \"*.example.com\", path_prefix: /api, methods: [get, POST], headers: { x-client: [web, mobile], x-one: yes, x-n: 5 } }\n    dye: { header: x-lane, tags: { canary: b, beta: b }, on_unknown_tag: reject, trusted_sources: [10.0.0.0/8, 127.0.0.1] }\n    split: [{ upstream: a, weight: 95 }, { upstream: b, weight: 0x05 }]\n    sticky: cookie:uid\n  - { name: two, split: [{ upstream: a, weight: 1 }] }\n",
    );
    if let Err(e) = serde_yaml::from_str::<super::model::RoutesFile>(&text) {
        panic!("serde_yaml: {e}");
    }
    let fast = super::fast_path(text.as_bytes(), None, Path::new("."), &mut |_| {
        Default::default()
    })
    .expect("valid file takes the fast path");
    let source = super::Source::from_text("routes.yaml".into(), text.clone()).expect("parses");
    let located = super::routes_from_source(source, Path::new("."), &mut |_| Default::default())
        .expect("valid");
    assert_eq!(fast.model, located.model);
    let conf =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/routes.yaml"))
            .expect("conf/routes.yaml");
    assert!(super::fast_path(&conf, None, Path::new("."), &mut |_| Default::default()).is_some());
    // Anything invalid leaves the fast path, so messages always come from the located path.
    assert!(super::fast_path(
        b"upstreams: {}\nroutes: [{ name: x, split: [] }]\n",
        None,
        Path::new("."),
        &mut |_| Default::default()
    )
    .is_none());
}
