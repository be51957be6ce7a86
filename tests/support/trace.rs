//! What the trace tests share: a shop with a stable and a canary group, the W3C ids they send,
//! and how to read back the `traceparent` an upstream received.

use std::time::Duration;

use crate::{
    free_addr, gateway::GatewayConfig, upstream_groups, Dyegate, RecordedRequest, Upstream,
};

pub const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const PARENT: &str = "00f067aa0ba902b7";
/// How long spans may take to reach a collector (batches linger 200 ms; debug build, busy box).
pub const SPANS_TIMEOUT: Duration = Duration::from_secs(10);

/// A stable and a canary group; `shop` splits all untagged traffic to stable, `promo` sends it to
/// canary (so the split sets the tag), `strict` only trusts tags from 10.0.0.0/8 (the tests send
/// from 127.0.0.1), `dead` has a target nobody listens on.
pub struct Shop {
    pub stable: Upstream,
    pub canary: Upstream,
}

impl Shop {
    pub fn start() -> Self {
        Shop {
            stable: Upstream::start("shop-stable"),
            canary: Upstream::start("shop-canary"),
        }
    }

    pub fn routes(&self) -> String {
        format!(
            "{}  dead: {{ targets: [\"{}\"] }}\n\
routes:
  - name: shop
    match: {{ host: shop.example.com }}
    dye: {{ tags: {{ canary: shop-canary }} }}
    split: [ {{ upstream: shop-stable, weight: 1 }} ]
  - name: promo
    match: {{ host: promo.example.com }}
    dye: {{ tags: {{ canary: shop-canary }} }}
    split: [ {{ upstream: shop-canary, weight: 1 }} ]
  - name: strict
    match: {{ host: strict.example.com }}
    dye: {{ tags: {{ canary: shop-canary }}, trusted_sources: [\"10.0.0.0/8\"] }}
    split: [ {{ upstream: shop-stable, weight: 1 }} ]
  - name: dead
    match: {{ host: dead.example.com }}
    split: [ {{ upstream: dead, weight: 1 }} ]
",
            upstream_groups(&[("shop-stable", &self.stable), ("shop-canary", &self.canary)]),
            free_addr()
        )
    }

    pub fn gateway(&self, gateway_extra: &str) -> Dyegate {
        GatewayConfig::new(&self.routes())
            .gateway_extra(gateway_extra)
            .start()
    }

    /// The request an upstream received with header `x-case: id`.
    pub fn received(&self, id: &str) -> RecordedRequest {
        let all: Vec<RecordedRequest> = self
            .stable
            .requests()
            .into_iter()
            .chain(self.canary.requests())
            .filter(|r| r.header("x-case") == Some(id))
            .collect();
        assert_eq!(
            all.len(),
            1,
            "case {id}: expected one upstream request, got {all:?}"
        );
        all.into_iter().next().unwrap_or_else(|| unreachable!())
    }
}

/// A version-00 `traceparent` as the upstream received it.
#[derive(Debug)]
pub struct Sent {
    pub trace: String,
    pub parent: String,
    pub flags: String,
}

pub fn sent_traceparent(req: &RecordedRequest, case: &str) -> Sent {
    let all = req.header_all("traceparent");
    assert_eq!(
        all.len(),
        1,
        "case {case}: one traceparent upstream, got {all:?}"
    );
    let parts: Vec<&str> = all[0].split('-').collect();
    let lower_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    assert!(
        parts.len() == 4
            && parts[0] == "00"
            && lower_hex(parts[1], 32)
            && lower_hex(parts[2], 16)
            && lower_hex(parts[3], 2)
            && parts[1] != "0".repeat(32)
            && parts[2] != "0".repeat(16),
        "case {case}: upstream traceparent {:?} is not a valid version 00",
        all[0]
    );
    Sent {
        trace: parts[1].to_string(),
        parent: parts[2].to_string(),
        flags: parts[3].to_string(),
    }
}

pub fn tp(flags: &str) -> String {
    format!("00-{TRACE}-{PARENT}-{flags}")
}
