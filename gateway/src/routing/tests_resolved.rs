//! Groups with DNS names: the member set follows the address book without a new table, is
//! built once per change, and a group whose names have no address routes nowhere.

use super::*;
use crate::config::routes_from_text;
use http::{HeaderMap, Method};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

fn table(text: &str) -> Arc<RouteTable> {
    routes_from_text("routes.yaml", text.as_bytes().to_vec(), None)
        .unwrap_or_else(|e| panic!("{e}"))
        .table
}

const NAMED: &str = "upstreams:
  orders: { targets: [\"orders.internal:8080\", { addr: \"10.0.0.9:8080\", weight: 2 }, \"more.internal:9090\"] }
routes:
  - { name: r, split: [{ upstream: orders, weight: 1 }] }
";

fn ips(s: &[&str]) -> Arc<[IpAddr]> {
    s.iter()
        .map(|a| a.parse().expect("ip"))
        .collect::<Vec<_>>()
        .into()
}

fn set(book: &AddressBook, host: &str, addrs: &[&str]) {
    book.store(book.load().with(&Arc::from(host), ips(addrs)));
}

fn addrs(m: &Members) -> Vec<(String, u32, Option<String>)> {
    (m.targets().iter())
        .map(|t| {
            (
                t.addr.to_string(),
                t.weight,
                t.host.as_deref().map(str::to_string),
            )
        })
        .collect()
}

fn routed(t: &RouteTable, book: &AddressBook) -> bool {
    let headers = HeaderMap::new();
    let info = RequestInfo {
        method: &Method::GET,
        host: "shop",
        path: "/",
        query: None,
        headers: &headers,
        client: None,
        parsed: &crate::routing::Parsed::default(),
    };
    matches!(
        t.decide_with(&info, &AllHealthy, &book.load()),
        Outcome::Routed(_)
    )
}

#[test]
fn members_follow_the_book_without_a_new_table() {
    let t = table(NAMED);
    assert!(t.has_names(), "a request reads the address book");
    assert!(!table("upstreams:\n  g: { targets: [\"10.0.0.1:80\"] }\nroutes:\n  - { name: r, split: [{ upstream: g, weight: 1 }] }\n").has_names());
    let g = t.group(0).expect("group");
    assert!(g.is_resolved());
    assert!(g.fixed_members().is_none());
    let book = AddressBook::default();
    // Nothing resolved yet: the address entry alone.
    assert_eq!(
        addrs(&g.members(&book.load())),
        [("10.0.0.9:8080".into(), 2, None)]
    );
    set(&book, "orders.internal", &["10.0.0.2", "10.0.0.1"]);
    let m = g.members(&book.load());
    assert_eq!(
        addrs(&m),
        [
            ("10.0.0.2:8080".into(), 1, Some("orders.internal".into())),
            ("10.0.0.1:8080".into(), 1, Some("orders.internal".into())),
            ("10.0.0.9:8080".into(), 2, None),
        ],
        "file order; a name's addresses as the book has them"
    );
    let again = g.members(&book.load());
    let (MembersRef::Resolved(a), MembersRef::Resolved(b)) = (m, again) else {
        panic!("a named group's set is shared");
    };
    assert!(Arc::ptr_eq(&a, &b), "the same book: the same set");
    // Another name changes: this set's sources are the same, the set is kept.
    set(&book, "unrelated.internal", &["10.9.9.9"]);
    assert!(Arc::ptr_eq(
        &a,
        &g.members(&book.load()).into_shared().expect("shared")
    ));
    // A name of the group changes: a new set.
    set(&book, "more.internal", &["10.0.0.9", "10.0.0.3"]);
    let m = g.members(&book.load());
    assert_eq!(
        addrs(&m),
        [
            ("10.0.0.2:8080".into(), 1, Some("orders.internal".into())),
            ("10.0.0.1:8080".into(), 1, Some("orders.internal".into())),
            ("10.0.0.9:8080".into(), 2, None),
            ("10.0.0.9:9090".into(), 1, Some("more.internal".into())),
            ("10.0.0.3:9090".into(), 1, Some("more.internal".into())),
        ]
    );
    // Every target gets its turns by weight.
    let picks: Vec<SocketAddr> = (0..12)
        .filter_map(|_| m.next_target())
        .map(|t| t.addr)
        .collect();
    let of = |a: &str| picks.iter().filter(|p| p.to_string() == a).count();
    assert_eq!(
        (
            of("10.0.0.9:8080"),
            of("10.0.0.1:8080"),
            of("10.0.0.3:9090")
        ),
        (4, 2, 2)
    );
}

#[test]
fn an_address_two_entries_give_is_one_target() {
    let t = table("upstreams:\n  g: { targets: [\"10.0.0.1:80\", \"a.internal:80\", { addr: \"b.internal:80\", weight: 5 }] }\nroutes:\n  - { name: r, split: [{ upstream: g, weight: 1 }] }\n");
    let g = t.group(0).expect("group");
    let book = AddressBook::default();
    set(&book, "a.internal", &["10.0.0.1", "10.0.0.2"]);
    set(&book, "b.internal", &["10.0.0.2"]);
    assert_eq!(
        addrs(&g.members(&book.load())),
        [
            ("10.0.0.1:80".into(), 1, None),
            ("10.0.0.2:80".into(), 1, Some("a.internal".into())),
        ]
    );
}

#[test]
fn a_group_whose_names_have_no_address_routes_nowhere_until_they_do() {
    let t = table("upstreams:\n  g: { targets: [\"a.internal:80\"] }\nroutes:\n  - { name: r, split: [{ upstream: g, weight: 1 }] }\n");
    let g = t.group(0).expect("group");
    let book = AddressBook::default();
    assert!(g.members(&book.load()).is_empty());
    assert!(g.members(&book.load()).next_target().is_none());
    assert!(!routed(&t, &book));
    assert!(!routed(&t, AddressBook::empty()));
    set(&book, "a.internal", &["10.0.0.1"]);
    assert!(routed(&t, &book));
    assert_eq!(
        g.members(&book.load())
            .next_target()
            .map(|t| t.addr.to_string()),
        Some("10.0.0.1:80".into())
    );
}

#[test]
fn tls_to_a_name_verifies_the_name_unless_sni_is_given() {
    let t = table("upstreams:\n  a: { targets: [\"api.internal:443\", \"10.0.0.5:443\"], tls: {} }\n  b: { targets: [\"api.internal:443\"], tls: { sni: front.example } }\n  c: { targets: [\"api.internal:80\"] }\nroutes:\n  - { name: r, split: [{ upstream: a, weight: 1 }, { upstream: b, weight: 1 }, { upstream: c, weight: 1 }] }\n");
    let book = AddressBook::default();
    set(&book, "api.internal", &["10.0.0.7"]);
    let sni = |g: usize| -> Vec<(String, String, bool)> {
        let m = t.group(g).expect("group").members(&book.load());
        (m.peers().iter())
            .map(|p| {
                let verified = p.is_tls() && p.options.verify_hostname;
                (p.sni.clone(), p._address.to_string(), verified)
            })
            .collect()
    };
    assert_eq!(
        sni(0),
        [
            ("api.internal".into(), "10.0.0.7:443".into(), true),
            ("10.0.0.5".into(), "10.0.0.5:443".into(), true),
        ]
    );
    assert_eq!(
        sni(1),
        [("front.example".into(), "10.0.0.7:443".into(), true)]
    );
    assert_eq!(sni(2), [(String::new(), "10.0.0.7:80".into(), false)]);
}
