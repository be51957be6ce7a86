//! `baggage` (W3C Baggage): `key=value;property` members, possibly split over several header
//! fields. The gateway owns one member, the dye tag (`env-tag=<tag>` by default): it sets it to
//! the tag the request travels with upstream, or removes it when the request travels untagged, so
//! services behind the gateway can never read a lane the gateway did not route.
//!
//! A rewritten header keeps to the spec's limits, counted over the whole header: at most 180
//! members (the grammar's `list-member 0*179(...)`) and 8192 bytes (the size every platform must
//! propagate). The gateway's member goes first; the others follow in their order, trimmed of
//! surrounding whitespace; members that are invalid, or would overflow a limit, are left out
//! whole (the spec forbids partial members). A header the gateway has nothing to change in is
//! forwarded as it is.

use super::trim_ows;
use std::borrow::Cow;

/// Header name.
pub const BAGGAGE: &str = "baggage";
/// Most members of a rewritten `baggage`.
pub const BAGGAGE_MAX_MEMBERS: usize = 180;
/// Longest rewritten `baggage`, commas included.
pub const BAGGAGE_MAX_BYTES: usize = 8192;

/// What the upstream request's `baggage` must become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaggageEdit {
    /// Forward the request's headers (if any) as they are.
    Unchanged,
    /// Remove every `baggage` header.
    Remove,
    /// Replace every `baggage` header with this one value.
    Set(String),
}

/// Sets (`Some`) or removes (`None`) the member `key` in the request's `baggage` values.
///
/// `key` must satisfy [`is_baggage_key`]; `value` is percent-encoded as the spec requires.
pub fn set_baggage_member<'a, I>(values: I, key: &str, value: Option<&str>) -> BaggageEdit
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut out = String::new();
    let mut members = 0;
    if let Some(v) = value {
        let v = encode_baggage_value(v);
        // One allocation for the usual case, the tag alone (room for a few members more).
        out.reserve(key.len() + 1 + v.len() + 64);
        out.push_str(key);
        out.push('=');
        out.push_str(&v);
        members = 1;
    }
    let mut found = false;
    for header in values {
        for member in header.split(|b| *b == b',') {
            let member = trim_ows(member);
            let Some(member_key) = member_key(member) else {
                continue; // empty or invalid: dropped from a rewritten header
            };
            if member_key == key.as_bytes() {
                found = true;
                continue;
            }
            let Ok(text) = std::str::from_utf8(member) else {
                continue; // unreachable: a valid member is ASCII
            };
            let sep = usize::from(!out.is_empty());
            if members < BAGGAGE_MAX_MEMBERS && out.len() + sep + text.len() <= BAGGAGE_MAX_BYTES {
                if sep == 1 {
                    out.push(',');
                }
                out.push_str(text);
                members += 1;
            }
        }
    }
    if value.is_none() && !found {
        BaggageEdit::Unchanged
    } else if out.is_empty() {
        BaggageEdit::Remove
    } else {
        BaggageEdit::Set(out)
    }
}

/// The key of a valid member (`key OWS "=" OWS value *(OWS ";" OWS property)`), `None` for an
/// empty or invalid one.
fn member_key(member: &[u8]) -> Option<&[u8]> {
    let mut parts = member.split(|b| *b == b';');
    let first = parts.next()?;
    let eq = first.iter().position(|b| *b == b'=')?;
    let key = trim_ows(&first[..eq]);
    if !is_token(key) || !is_octets(trim_ows(&first[eq + 1..])) {
        return None;
    }
    for property in parts {
        let property = trim_ows(property);
        let ok = match property.iter().position(|b| *b == b'=') {
            Some(eq) => {
                is_token(trim_ows(&property[..eq])) && is_octets(trim_ows(&property[eq + 1..]))
            }
            None => is_token(property),
        };
        if !ok {
            return None;
        }
    }
    Some(key)
}

/// RFC 7230 `token`: one or more `tchar`.
fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// `baggage-octet`: printable ASCII except space, `"`, `,`, `;` and `\`.
fn is_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

fn is_octets(s: &[u8]) -> bool {
    s.iter().all(|b| is_octet(*b))
}

/// Whether `key` can name a baggage member (an RFC 7230 token).
pub fn is_baggage_key(key: &str) -> bool {
    is_token(key.as_bytes())
}

/// A baggage value: UTF-8, percent-encoded where a byte is not a `baggage-octet` (and `%`
/// itself, so that decoding gives the original back).
pub fn encode_baggage_value(value: &str) -> Cow<'_, str> {
    let keep = |b: u8| is_octet(b) && b != b'%';
    if value.bytes().all(keep) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for b in value.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 0x0f)]));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn edit(values: &[&str], value: Option<&str>) -> BaggageEdit {
        set_baggage_member(values.iter().map(|v| v.as_bytes()), "env-tag", value)
    }

    fn set(s: &str) -> BaggageEdit {
        BaggageEdit::Set(s.to_string())
    }

    #[test]
    fn adds_the_member_first() {
        assert_eq!(edit(&[], Some("canary")), set("env-tag=canary"));
        assert_eq!(
            edit(&["userId=alice,isProduction=false"], Some("canary")),
            set("env-tag=canary,userId=alice,isProduction=false")
        );
        assert_eq!(
            edit(&["userId=alice", "serverNode=DF%2028"], Some("canary")),
            set("env-tag=canary,userId=alice,serverNode=DF%2028")
        );
    }

    #[test]
    fn replaces_every_existing_member() {
        assert_eq!(
            edit(
                &["a=1, env-tag = old ;p, b=2", "env-tag=older"],
                Some("canary")
            ),
            set("env-tag=canary,a=1,b=2")
        );
    }

    #[test]
    fn removes_the_member_without_a_tag() {
        assert_eq!(edit(&["a=1,env-tag=evil,b=2"], None), set("a=1,b=2"));
        assert_eq!(edit(&["env-tag=evil"], None), BaggageEdit::Remove);
        assert_eq!(edit(&["a=1", "b=2"], None), BaggageEdit::Unchanged);
        assert_eq!(edit(&[], None), BaggageEdit::Unchanged);
    }

    #[test]
    fn keeps_members_with_properties_and_whitespace_inside() {
        assert_eq!(
            edit(
                &["key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue"],
                Some("t")
            ),
            set("env-tag=t,key1=value1;property1;property2,key2 = value2,key3=value3; propertyKey=propertyValue")
        );
        assert_eq!(edit(&["k=a=b=="], Some("t")), set("env-tag=t,k=a=b=="));
        assert_eq!(edit(&["k="], Some("t")), set("env-tag=t,k="), "empty value");
    }

    #[test]
    fn drops_invalid_members() {
        for bad in [
            "novalue",
            "=v",
            "k y=v",
            "k=v w",
            "k=\"q\"",
            "k=back\\slash",
            "k=v;bad prop",
            "k=v;=x",
            "k=caf\u{e9}",
        ] {
            assert_eq!(
                edit(&[&format!("a=1,{bad},b=2")], Some("t")),
                set("env-tag=t,a=1,b=2"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn keeps_to_the_member_limit() {
        let many: Vec<String> = (0..200).map(|i| format!("k{i}=v")).collect();
        let BaggageEdit::Set(out) = edit(&[&many.join(",")], Some("t")) else {
            panic!("rewritten")
        };
        assert_eq!(out.split(',').count(), BAGGAGE_MAX_MEMBERS);
        assert!(out.starts_with("env-tag=t,k0=v,"));
        assert!(out.ends_with(",k178=v"));
    }

    #[test]
    fn keeps_to_the_byte_limit_with_whole_members() {
        let big = format!("big={}", "x".repeat(5000));
        let other = format!("other={}", "y".repeat(5000));
        let BaggageEdit::Set(out) = edit(&[&format!("{big},{other},small=1")], Some("t")) else {
            panic!("rewritten")
        };
        assert!(out.len() <= BAGGAGE_MAX_BYTES);
        assert_eq!(out, format!("env-tag=t,{big},small=1"));
    }

    /// The gateway's baggage cases, as `tests/observability/tracing.rs` sent them (with the tag routing gave:
    /// given, set by the split, or none when untagged or untrusted), and the exact result.
    #[test]
    fn the_gateway_cases() {
        let big = |c: char| format!("{c}{c}={}", c.to_string().repeat(3000));
        let oversize = format!("{},{},{}", big('a'), big('b'), big('c'));
        let many = (0..200)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        let many_kept = std::iter::once("env-tag=canary".to_string())
            .chain((0..179).map(|i| format!("k{i}=v")))
            .collect::<Vec<_>>()
            .join(",");
        let cases: Vec<(&str, Vec<&str>, Option<&str>, BaggageEdit)> = vec![
            (
                "untagged: forwarded as it is",
                vec!["userId=alice,isProduction=false"],
                None,
                BaggageEdit::Unchanged,
            ),
            (
                "the given tag goes first",
                vec!["userId=alice"],
                Some("canary"),
                set("env-tag=canary,userId=alice"),
            ),
            (
                "tag without baggage",
                vec![],
                Some("canary"),
                set("env-tag=canary"),
            ),
            (
                "forged member removed",
                vec!["userId=alice, env-tag=canary"],
                None,
                set("userId=alice"),
            ),
            (
                "only a forged member: header removed",
                vec!["env-tag=canary"],
                None,
                BaggageEdit::Remove,
            ),
            (
                "untrusted tag: the member is removed",
                vec!["env-tag=canary,u=1"],
                None,
                set("u=1"),
            ),
            (
                "oversize: whole members kept",
                vec![&oversize],
                Some("canary"),
                BaggageEdit::Set(format!("env-tag=canary,{},{}", big('a'), big('b'))),
            ),
            (
                "200 members: 180 kept",
                vec![&many],
                Some("canary"),
                BaggageEdit::Set(many_kept),
            ),
            (
                "invalid members dropped on rewrite",
                vec!["a=1,bad key=2,b=\"q\",c=3;p"],
                Some("canary"),
                set("env-tag=canary,a=1,c=3;p"),
            ),
        ];
        for (name, values, tag, want) in cases {
            assert_eq!(edit(&values, tag), want, "{name}");
        }
    }

    #[test]
    fn encodes_values() {
        assert_eq!(encode_baggage_value("canary-1.2_x"), "canary-1.2_x");
        assert_eq!(encode_baggage_value("a b,c;d%"), "a%20b%2Cc%3Bd%25");
        assert_eq!(encode_baggage_value("é"), "%C3%A9");
        assert!(is_baggage_key("env-tag"));
        assert!(!is_baggage_key("env tag"));
        assert!(!is_baggage_key(""));
    }

    proptest! {
        #[test]
        fn output_is_valid_bounded_and_carries_the_tag(
            headers in proptest::collection::vec(
                prop_oneof![
                    "[ -~]{0,300}",
                    "( ?[a-z-]{1,8} ?= ?[a-z0-9=%]{0,6}(;p)?,){0,60}",
                    "(env-tag=[a-z]{1,4},k=v{1,300},)+",
                ],
                0..5,
            ),
            tag in proptest::option::of("[A-Za-z0-9._-]{1,64}"),
        ) {
            let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
            match edit(&refs, tag.as_deref()) {
                BaggageEdit::Set(out) => {
                    prop_assert!(out.len() <= BAGGAGE_MAX_BYTES);
                    let members: Vec<&str> = out.split(',').collect();
                    prop_assert!(members.len() <= BAGGAGE_MAX_MEMBERS);
                    for m in &members {
                        prop_assert!(member_key(m.as_bytes()).is_some(), "invalid member {:?}", m);
                    }
                    let ours: Vec<String> = members
                        .iter()
                        .filter(|m| m.starts_with("env-tag="))
                        .map(|m| m.to_string())
                        .collect();
                    match &tag {
                        Some(t) => prop_assert_eq!(ours, vec![format!("env-tag={t}")]),
                        None => prop_assert!(ours.is_empty()),
                    }
                }
                BaggageEdit::Remove => prop_assert!(tag.is_none()),
                BaggageEdit::Unchanged => prop_assert!(tag.is_none()),
            }
        }
    }
}
