//! The request-smuggling regression corpus (issue 17): hostile framing sent on a raw socket,
//! and for each case the answer and exactly what reached the upstream (a raw, recording one):
//! no request may reach the upstream that the client did not send, and framing goes upstream
//! unambiguous. The table this prints (`--nocapture`) is the one in docs/routing.md, "Request
//! framing".

use std::time::Duration;

use dyegate_suite::raw::{RawClient, RawUpstream};
use dyegate_suite::GatewayConfig;

/// What the upstream must (not) have seen.
enum Upstream {
    /// No bytes at all.
    Nothing,
    /// Exactly this many request heads, none with a path containing `smuggled`, and these
    /// header lines (`name: value`, name lowercase) exactly as listed for each name given.
    Requests(usize, &'static [(&'static str, &'static [&'static str])]),
}

struct Case {
    name: &'static str,
    request: &'static str,
    /// Status of the answer (`None`: closed without one).
    status: Option<u16>,
    upstream: Upstream,
}

const CASES: &[Case] = &[
    Case {
        name: "CL + TE (smuggled request after the chunked body)",
        request: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        status: Some(200),
        upstream: Upstream::Requests(1, &[("content-length", &[]), ("transfer-encoding", &["chunked"])]),
    },
    Case {
        name: "TE + CL",
        request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        status: Some(200),
        upstream: Upstream::Requests(1, &[("content-length", &[]), ("transfer-encoding", &["chunked"])]),
    },
    Case {
        name: "two differing Content-Length",
        request: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabcGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        status: Some(400),
        upstream: Upstream::Nothing,
    },
    Case {
        name: "two identical Content-Length",
        request: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        status: Some(200),
        upstream: Upstream::Requests(1, &[("content-length", &["3"])]),
    },
    Case {
        name: "Content-Length: 3, 3",
        request: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
        status: Some(200),
        upstream: Upstream::Requests(1, &[("content-length", &["3"])]),
    },
    Case {
        name: "Transfer-Encoding: chunked, identity",
        request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        status: Some(400),
        upstream: Upstream::Nothing,
    },
    Case {
        name: "obs-fold in a header",
        request: "GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n",
        status: Some(400),
        upstream: Upstream::Nothing,
    },
    Case {
        name: "bare LF line endings",
        request: "GET / HTTP/1.1\nHost: a\nX-Lf: 1\n\n",
        status: Some(200),
        upstream: Upstream::Requests(1, &[("x-lf", &["1"])]),
    },
    Case {
        // The head goes upstream before the body is read (bodies stream); the bad chunk ends
        // the request there: the upstream sees one incomplete request, nothing after it.
        name: "invalid chunk size (head forwarded, then cut)",
        request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        status: Some(400),
        upstream: Upstream::Requests(1, &[]),
    },
    Case {
        name: "oversized chunk size 2^68 (head forwarded, then cut)",
        request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n100000000000000000\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        status: Some(400),
        upstream: Upstream::Requests(1, &[]),
    },
    Case {
        name: "NUL in a header value",
        request: "GET / HTTP/1.1\r\nHost: a\r\nX-Nul: a\0b\r\n\r\n",
        status: Some(400),
        upstream: Upstream::Nothing,
    },
    Case {
        name: "CR in a header value",
        request: "GET / HTTP/1.1\r\nHost: a\r\nX-Cr: a\rb\r\n\r\n",
        status: Some(400),
        upstream: Upstream::Nothing,
    },
    Case {
        name: "absolute-form target with another Host",
        request: "GET http://b.example/ HTTP/1.1\r\nHost: a\r\n\r\n",
        status: Some(400),
        upstream: Upstream::Nothing,
    },
    Case {
        name: "absolute-form target with the same Host",
        request: "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        status: Some(200),
        upstream: Upstream::Requests(1, &[("host", &["a"])]),
    },
    Case {
        name: "two Host headers",
        request: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        status: Some(400),
        upstream: Upstream::Nothing,
    },
    Case {
        name: "HTTP/1.1 without Host",
        request: "GET / HTTP/1.1\r\n\r\n",
        status: Some(400),
        upstream: Upstream::Nothing,
    },
    Case {
        name: "HTTP/1.0 without Host",
        request: "GET / HTTP/1.0\r\n\r\n",
        status: Some(200),
        upstream: Upstream::Requests(1, &[]),
    },
    Case {
        name: "two different x-env-tag (first wins)",
        request: "GET / HTTP/1.1\r\nHost: a\r\nx-env-tag: canary\r\nx-env-tag: beta\r\n\r\n",
        status: Some(200),
        upstream: Upstream::Requests(1, &[("x-env-tag", &["canary"])]),
    },
    Case {
        name: "hop-by-hop fields and a field named in Connection (removed)",
        request: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eA==\r\nUpgrade: h2c\r\nX-Kept: 1\r\n\r\n",
        status: Some(200),
        upstream: Upstream::Requests(
            1,
            &[
                ("x-private", &[]),
                ("keep-alive", &[]),
                ("te", &[]),
                ("proxy-authorization", &[]),
                ("upgrade", &[]),
                ("x-kept", &["1"]),
            ],
        ),
    },
    Case {
        name: "Connection naming X-Forwarded-For",
        request: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Forwarded-For\r\nX-Forwarded-For: 192.0.2.1\r\n\r\n",
        status: Some(400),
        upstream: Upstream::Nothing,
    },
    Case {
        name: "Connection naming \"X-Forwarded-For\" (quoted: not a token)",
        request: "GET / HTTP/1.1\r\nHost: a\r\nConnection: \"X-Forwarded-For\"\r\n\r\n",
        status: Some(400),
        upstream: Upstream::Nothing,
    },
    Case {
        name: "non-ASCII x-env-tag (ignored, stripped)",
        request: "GET / HTTP/1.1\r\nHost: a\r\nx-env-tag: can\u{e4}ry\r\n\r\n",
        status: Some(200),
        upstream: Upstream::Requests(1, &[("x-env-tag", &[])]),
    },
];

/// The request and what the upstream got, run against a fresh gateway and upstream.
async fn run(request: &[u8]) -> (Option<u16>, String, RawUpstream, bool) {
    let up = RawUpstream::start("stable");
    let gw = GatewayConfig::new(&format!(
        "upstreams:\n  stable: {{ targets: [\"{}\"] }}\n  canary: {{ targets: [\"{}\"] }}\n\
         routes:\n  - name: all\n    dye: {{ tags: {{ canary: canary }} }}\n    split: [{{ upstream: stable, weight: 1 }}]\n",
        up.target(),
        up.target()
    ))
    .start();
    let mut c = RawClient::connect(gw.addr()).await;
    let _ = c.try_send(request).await;
    let got = c.read_to_close(Duration::from_secs(3)).await;
    // time is tested: nothing reaches the upstream in the 200 ms after the answer: what the gateway would still forward of a smuggled request would arrive by then.
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(gw);
    (got.status(), got.text(), up, got.closed)
}

fn check(
    case: &Case,
    status: Option<u16>,
    answer: &str,
    up: &RawUpstream,
) -> Result<String, String> {
    if status != case.status {
        return Err(format!(
            "answer {status:?}, expected {:?}: {answer:?}",
            case.status
        ));
    }
    let received = up.received();
    if received.contains("smuggled") {
        return Err(format!(
            "a smuggled request reached the upstream: {received:?}"
        ));
    }
    match case.upstream {
        Upstream::Nothing if received.is_empty() => Ok("nothing".into()),
        Upstream::Nothing => Err(format!("expected nothing upstream, got {received:?}")),
        Upstream::Requests(n, headers) => {
            if up.requests() != n {
                return Err(format!(
                    "{} requests upstream, expected {n}: {received:?}",
                    up.requests()
                ));
            }
            let mut seen = vec![format!("{n} request(s)")];
            for (name, want) in headers {
                let lines = up.header_lines(name);
                let want: Vec<String> = want.iter().map(|v| format!("{name}: {v}")).collect();
                if lines != want {
                    return Err(format!("{name} upstream: {lines:?}, expected {want:?}"));
                }
                seen.push(if lines.is_empty() {
                    format!("no {name}")
                } else {
                    lines.join(", ")
                });
            }
            Ok(seen.join("; "))
        }
    }
}

#[tokio::test]
async fn the_smuggling_corpus() {
    let mut table = String::from("| case | answer | upstream received |\n|---|---|---|\n");
    let mut failures = Vec::new();
    for case in CASES {
        let (status, answer, up, closed) = run(case.request.as_bytes()).await;
        match check(case, status, &answer, &up) {
            Ok(upstream) => table.push_str(&format!(
                "| {} | {}{} | {upstream} |\n",
                case.name,
                status.map_or("none".to_string(), |s| s.to_string()),
                if closed { ", closed" } else { "" }
            )),
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
    }
    // A 10 KB tag: not a tag (1-64 characters), so ignored and stripped.
    let long = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nx-env-tag: {}\r\n\r\n",
        "t".repeat(10 * 1024)
    );
    let (status, answer, up, _) = run(long.as_bytes()).await;
    if status != Some(200) || !up.header_lines("x-env-tag").is_empty() || up.requests() != 1 {
        failures.push(format!(
            "10 KB x-env-tag: {status:?} {answer:?}, upstream {:?}",
            up.header_lines("x-env-tag")
        ));
    } else {
        table.push_str(
            "| 10 KB x-env-tag (ignored, stripped) | 200 | 1 request(s); no x-env-tag |\n",
        );
    }
    eprintln!("{table}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
