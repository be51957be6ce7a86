//! `tracestate` (W3C Trace Context Level 1, §3.3): a list of at most 32 `key=value` members,
//! possibly split over several header fields. The gateway adds no entry of its own, so it never
//! rewrites the header: a valid one is forwarded exactly as received, an invalid one is dropped
//! whole (what the W3C test suite expects for too many members, duplicated keys and bad
//! characters).

use super::trim_ows;

/// Header name.
pub const TRACESTATE: &str = "tracestate";
/// Most list members a `tracestate` may have.
pub const TRACESTATE_MAX_MEMBERS: usize = 32;

/// Why a `tracestate` is dropped. Indices count non-empty members from 0, across header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceStateError {
    /// More than [`TRACESTATE_MAX_MEMBERS`] members.
    TooManyMembers,
    /// A member without `=`.
    MissingEquals(usize),
    /// A key outside the spec's grammar (uppercase, bad character, too long, bad `@` form).
    Key(usize),
    /// A value outside the spec's grammar (empty, too long, `,` `=` or a control character).
    Value(usize),
    /// Two members with the same key.
    DuplicateKey(usize),
}

/// Checks every value of the request's `tracestate` headers as one list.
///
/// Returns the number of non-empty members (0 for empty or whitespace-only headers, which the
/// spec says to accept but not to send).
pub fn check_tracestate<'a, I>(values: I) -> Result<usize, TraceStateError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    // Keys of the members seen so far, for the duplicate check (at most 32, so a linear scan).
    let mut keys: [&[u8]; TRACESTATE_MAX_MEMBERS] = [&[]; TRACESTATE_MAX_MEMBERS];
    let mut n = 0;
    for value in values {
        for member in value.split(|b| *b == b',') {
            let member = trim_ows(member);
            if member.is_empty() {
                continue;
            }
            if n == TRACESTATE_MAX_MEMBERS {
                return Err(TraceStateError::TooManyMembers);
            }
            let eq = member
                .iter()
                .position(|b| *b == b'=')
                .ok_or(TraceStateError::MissingEquals(n))?;
            let (key, value) = (&member[..eq], &member[eq + 1..]);
            if !is_key(key) {
                return Err(TraceStateError::Key(n));
            }
            if !is_value(value) {
                return Err(TraceStateError::Value(n));
            }
            if keys[..n].contains(&key) {
                return Err(TraceStateError::DuplicateKey(n));
            }
            keys[n] = key;
            n += 1;
        }
    }
    Ok(n)
}

fn is_lcalpha(b: u8) -> bool {
    b.is_ascii_lowercase()
}

fn is_keychar(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
}

/// `simple-key = lcalpha 0*255(keychar)` or
/// `multi-tenant-key = (lcalpha / DIGIT) 0*240(keychar) "@" lcalpha 0*13(keychar)`.
fn is_key(key: &[u8]) -> bool {
    match key.iter().position(|b| *b == b'@') {
        None => {
            matches!(key.first(), Some(b) if is_lcalpha(*b))
                && key.len() <= 256
                && key.iter().all(|b| is_keychar(*b))
        }
        Some(at) => {
            let (tenant, system) = (&key[..at], &key[at + 1..]);
            matches!(tenant.first(), Some(b) if is_lcalpha(*b) || b.is_ascii_digit())
                && tenant.len() <= 241
                && tenant.iter().all(|b| is_keychar(*b))
                && matches!(system.first(), Some(b) if is_lcalpha(*b))
                && system.len() <= 14
                && system.iter().all(|b| is_keychar(*b))
        }
    }
}

/// `value = 0*255(chr) nblk-chr`: 1 to 256 printable ASCII characters except `,` and `=`, not
/// ending in a space (trailing spaces were already trimmed as list whitespace).
fn is_value(value: &[u8]) -> bool {
    let nblk = |b: u8| matches!(b, 0x21..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e);
    match value.last() {
        Some(last) if nblk(*last) => {
            value.len() <= 256 && value.iter().all(|b| *b == b' ' || nblk(*b))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(values: &[&str]) -> Result<usize, TraceStateError> {
        check_tracestate(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn valid_lists() {
        assert_eq!(check(&["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"]), Ok(2));
        assert_eq!(check(&["foo=1 \t , \t bar=2, \t baz=3"]), Ok(3));
        assert_eq!(check(&["foo=1", "bar=2,baz=3"]), Ok(3));
        assert_eq!(check(&["foo=1,bar=2", "baz=3"]), Ok(3));
        assert_eq!(check(&["", " , ,\t"]), Ok(0), "empty members are allowed");
        assert_eq!(check(&[" , "]), Ok(0));
        assert_eq!(check(&["foo=1", ""]), Ok(1));
        assert_eq!(check(&[]), Ok(0));
        // Leading spaces belong to the value.
        assert_eq!(check(&["foo=  x"]), Ok(1));
    }

    #[test]
    fn all_allowed_characters() {
        let key: String = ('a'..='z').chain('0'..='9').chain("_-*/".chars()).collect();
        let value: String = (0x20u8..=0x7e)
            .filter(|b| *b != b',' && *b != b'=')
            .map(char::from)
            .collect();
        assert_eq!(check(&[&format!("{key}={value}")]), Ok(1));
        assert_eq!(check(&[&format!("{key}@a-z0-9_-*/={value}")]), Ok(1));
    }

    #[test]
    fn member_count_limit() {
        let members: Vec<String> = (1..=33).map(|i| format!("bar{i:02}={i:02}")).collect();
        assert_eq!(check(&[&members[..32].join(",")]), Ok(32));
        assert_eq!(
            check(&[&members[..20].join(","), &members[20..].join(",")]),
            Err(TraceStateError::TooManyMembers)
        );
        assert_eq!(
            check(&[&members[..32].join(","), "bar33=33"]),
            Err(TraceStateError::TooManyMembers),
            "the 33rd member in a second header"
        );
    }

    #[test]
    fn key_length_limits() {
        assert_eq!(check(&[&format!("{}=1", "z".repeat(256))]), Ok(1));
        assert_eq!(
            check(&[&format!("{}=1", "z".repeat(257))]),
            Err(TraceStateError::Key(0))
        );
        assert_eq!(
            check(&[&format!("{}@{}=1", "t".repeat(241), "v".repeat(14))]),
            Ok(1)
        );
        assert_eq!(
            check(&[&format!("{}@v=1", "t".repeat(242))]),
            Err(TraceStateError::Key(0))
        );
        assert_eq!(
            check(&[&format!("t@{}=1", "v".repeat(15))]),
            Err(TraceStateError::Key(0))
        );
    }

    #[test]
    fn each_kind_of_invalid() {
        use TraceStateError::*;
        let cases: &[(&[&str], TraceStateError)] = &[
            (&["foo"], MissingEquals(0)),
            (&["foo =1"], Key(0)),
            (&["FOO=1"], Key(0)),
            (&["foo.bar=1"], Key(0)),
            (&["1foo=1"], Key(0)),
            (&["=1"], Key(0)),
            (&["ok=1,foo@=1"], Key(1)),
            (&["@foo=1,bar=2"], Key(0)),
            (&["foo@@bar=1"], Key(0)),
            (&["foo@bar@baz=1"], Key(0)),
            (&["foo@Bar=1"], Key(0)),
            (&["foo=bar=baz"], Value(0)),
            (&["foo=,bar=3"], Value(0)),
            (&["foo=a\u{7f}"], Value(0)),
            (&["foo=\u{e9}"], Value(0)),
            (&["foo=1,foo=1"], DuplicateKey(1)),
            (&["foo=1,foo=2"], DuplicateKey(1)),
            (&["foo=1", "foo=2"], DuplicateKey(1)),
        ];
        for (values, want) in cases {
            assert_eq!(check(values), Err(*want), "{values:?}");
        }
        assert_eq!(check(&[&format!("foo={}", "x".repeat(256))]), Ok(1));
        assert_eq!(
            check(&[&format!("foo={}", "x".repeat(257))]),
            Err(TraceStateError::Value(0))
        );
    }

    proptest! {
        #[test]
        fn generated_valid_lists_are_accepted(
            keys in proptest::collection::btree_set("[a-z][a-z0-9_*/-]{0,20}", 0..=32),
            value in "[ -+\\--<>-~]{0,20}[!-+\\--<>-~]",
            ows in "[ \t]{0,2}",
        ) {
            let list: Vec<String> = keys.iter().map(|k| format!("{ows}{k}={value}{ows}")).collect();
            let header = list.join(",");
            prop_assert_eq!(check(&[&header]), Ok(keys.len()));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = check_tracestate([bytes.as_slice()]);
        }
    }
}
