//! Starting for people: every listening address in the log, and an address another process
//! holds fails the start at once, naming it (Pingora alone retries it every second for 30 s).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use dyegate_suite::{upstream_groups, GatewayConfig, Upstream};

fn routes_to(up: &Upstream) -> String {
    format!(
        "{}routes:\n  - name: all\n    split: [{{ upstream: {}, weight: 1 }}]\n",
        upstream_groups(&[(up.name(), up)]),
        up.name()
    )
}

#[test]
fn a_port_in_use_fails_the_start_within_5_s_naming_the_address() {
    let up = Upstream::start("blue");
    for which in ["proxy", "admin"] {
        let cfg = GatewayConfig::new(&routes_to(&up));
        let addr = match which {
            "proxy" => cfg.proxy_addr(),
            _ => cfg.admin_addr(),
        };
        let _holder = TcpListener::bind(addr).expect("holding the gateway's port");
        let started = Instant::now();
        let out = cfg.run_to_exit();
        let took = started.elapsed();
        assert!(
            !out.timed_out,
            "{which}: still running after {took:?}\n{out:?}"
        );
        assert_eq!(out.code, Some(1), "{which}: {out:?}");
        assert!(took < Duration::from_secs(5), "{which}: took {took:?}");
        let purpose = match which {
            "proxy" => "proxy (listen)",
            _ => "admin API (admin.listen)",
        };
        assert!(
            out.stderr.contains(&format!(
                "dyegate: cannot listen on {addr} for the {purpose}: "
            )) && out.stderr.contains("another process listens there"),
            "{which}: {}",
            out.stderr
        );
        assert!(
            (out.stderr.lines().last())
                .is_some_and(|l| l == "dyegate: not started: 1 address(es) unusable"),
            "{which}: {}",
            out.stderr
        );
    }
}

#[test]
fn the_start_logs_every_listening_address() {
    let up = Upstream::start("blue");
    let gw = GatewayConfig::new(&routes_to(&up)).start();
    let line = format!(
        "listening: HTTP on {}, admin API on {}",
        gw.addr(),
        gw.admin_addr()
    );
    assert!(gw.logs().contains(&line), "no {line:?} in\n{}", gw.logs());
}
