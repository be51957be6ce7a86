//! `traceparent` (W3C Trace Context Level 1, §3.2): `version-trace_id-parent_id-flags`, lowercase
//! hex, fixed lengths. Version `00` must be exactly 55 characters; a higher version (except the
//! forbidden `ff`) is read by the forward-compatibility rule: the first 55 characters in the
//! version-00 layout, then nothing or a dash followed by fields this version does not know.

use super::trim_ows;

/// Header name (sent lowercase; matched in any case by the HTTP layer).
pub const TRACEPARENT: &str = "traceparent";
/// W3C Trace Context Level 2 response header: the server's trace id and span id, for the client.
pub const TRACERESPONSE: &str = "traceresponse";
/// Length of a version-00 value: `2 + 1 + 32 + 1 + 16 + 1 + 2`.
pub const TRACEPARENT_LEN: usize = 55;
/// The only flag of version 00: the caller may have recorded trace data.
pub const FLAG_SAMPLED: u8 = 0x01;

/// A valid incoming `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub version: u8,
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    /// All eight bits as received; only [`FLAG_SAMPLED`] has a meaning in version 00.
    pub flags: u8,
}

/// Why a `traceparent` was not used (the trace restarts with new ids in every case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceParentError {
    /// No `traceparent` header.
    Absent,
    /// More than one `traceparent` header: which one is meant cannot be known.
    Duplicated,
    /// The version is not two lowercase hex digits followed by a dash.
    VersionFormat,
    /// Version `ff` is forbidden.
    ForbiddenVersion,
    /// Version 00 not exactly 55 characters, or a higher version shorter than 55.
    Length,
    /// A dash is missing between fields, or a higher version has data after the flags that does
    /// not start with a dash.
    Delimiter,
    TraceIdFormat,
    /// The trace id is all zeros.
    TraceIdZero,
    ParentIdFormat,
    /// The parent id is all zeros.
    ParentIdZero,
    FlagsFormat,
}

impl TraceParentError {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceParentError::Absent => "absent",
            TraceParentError::Duplicated => "duplicated",
            TraceParentError::VersionFormat => "version_format",
            TraceParentError::ForbiddenVersion => "forbidden_version",
            TraceParentError::Length => "length",
            TraceParentError::Delimiter => "delimiter",
            TraceParentError::TraceIdFormat => "trace_id_format",
            TraceParentError::TraceIdZero => "trace_id_zero",
            TraceParentError::ParentIdFormat => "parent_id_format",
            TraceParentError::ParentIdZero => "parent_id_zero",
            TraceParentError::FlagsFormat => "flags_format",
        }
    }
}

impl TraceParent {
    /// Reads the `traceparent` of a request from all its header values: exactly one is expected.
    pub fn from_headers<'a, I>(values: I) -> Result<TraceParent, TraceParentError>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut values = values.into_iter();
        let first = values.next().ok_or(TraceParentError::Absent)?;
        if values.next().is_some() {
            return Err(TraceParentError::Duplicated);
        }
        TraceParent::parse(first)
    }

    /// Parses one header value; surrounding spaces and tabs are ignored.
    pub fn parse(value: &[u8]) -> Result<TraceParent, TraceParentError> {
        let v = trim_ows(value);
        if v.len() < 3 || v[2] != b'-' {
            return Err(TraceParentError::VersionFormat);
        }
        let version = hex_byte(v[0], v[1]).ok_or(TraceParentError::VersionFormat)?;
        if version == 0xff {
            return Err(TraceParentError::ForbiddenVersion);
        }
        let layout_ok = if version == 0 {
            v.len() == TRACEPARENT_LEN
        } else {
            v.len() >= TRACEPARENT_LEN
        };
        if !layout_ok {
            return Err(TraceParentError::Length);
        }
        if v[35] != b'-' || v[52] != b'-' {
            return Err(TraceParentError::Delimiter);
        }
        // A higher version may append fields, each introduced by a dash.
        if v.len() > TRACEPARENT_LEN && v[TRACEPARENT_LEN] != b'-' {
            return Err(TraceParentError::Delimiter);
        }
        let mut trace_id = [0u8; 16];
        hex_into(&v[3..35], &mut trace_id).ok_or(TraceParentError::TraceIdFormat)?;
        if trace_id == [0; 16] {
            return Err(TraceParentError::TraceIdZero);
        }
        let mut parent_id = [0u8; 8];
        hex_into(&v[36..52], &mut parent_id).ok_or(TraceParentError::ParentIdFormat)?;
        if parent_id == [0; 8] {
            return Err(TraceParentError::ParentIdZero);
        }
        let flags = hex_byte(v[53], v[54]).ok_or(TraceParentError::FlagsFormat)?;
        Ok(TraceParent {
            version,
            trace_id,
            parent_id,
            flags,
        })
    }

    pub fn sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }
}

/// A version-00 `traceparent` (also the layout of `traceresponse`). Only the sampled flag is
/// ever set: version 00 requires the other bits to be zero.
pub fn format_traceparent(
    trace_id: &[u8; 16],
    span_id: &[u8; 8],
    sampled: bool,
) -> [u8; TRACEPARENT_LEN] {
    let mut out = [b'-'; TRACEPARENT_LEN];
    out[0] = b'0';
    out[1] = b'0';
    write_hex(trace_id, &mut out[3..35]);
    write_hex(span_id, &mut out[36..52]);
    out[53] = b'0';
    out[54] = if sampled { b'1' } else { b'0' };
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_hex(bytes: &[u8], out: &mut [u8]) {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0x0f)];
    }
}

/// Lowercase hex only: the spec's `HEXDIGLC`.
fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn hex_byte(hi: u8, lo: u8) -> Option<u8> {
    Some(hex_digit(hi)? << 4 | hex_digit(lo)?)
}

fn hex_into(text: &[u8], out: &mut [u8]) -> Option<()> {
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = hex_byte(pair[0], pair[1])?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";

    fn parse(s: &str) -> Result<TraceParent, TraceParentError> {
        TraceParent::parse(s.as_bytes())
    }

    #[test]
    fn valid_version_00() {
        let tp = parse(&format!("00-{TRACE}-{PARENT}-01")).expect("valid");
        assert_eq!(tp.version, 0);
        assert_eq!(tp.trace_id[0], 0x4b);
        assert_eq!(tp.parent_id[7], 0xb7);
        assert!(tp.sampled());
        let tp = parse(&format!("00-{TRACE}-{PARENT}-00")).expect("valid");
        assert!(!tp.sampled());
        // Unknown flag bits are accepted; only the sampled bit is read.
        let tp = parse(&format!("00-{TRACE}-{PARENT}-09")).expect("valid");
        assert_eq!(tp.flags, 0x09);
        assert!(tp.sampled());
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        for v in [
            format!(" 00-{TRACE}-{PARENT}-01"),
            format!("00-{TRACE}-{PARENT}-01\t"),
            format!("\t 00-{TRACE}-{PARENT}-01 \t"),
            format!("  00-{TRACE}-{PARENT}-01\t"),
        ] {
            assert!(parse(&v).is_ok(), "{v:?}");
        }
    }

    #[test]
    fn each_kind_of_invalid() {
        use TraceParentError::*;
        let cases: &[(String, TraceParentError)] = &[
            (String::new(), VersionFormat),
            (format!(".0-{TRACE}-{PARENT}-01"), VersionFormat),
            (format!("0-{TRACE}-{PARENT}-01"), VersionFormat),
            (format!("000-{TRACE}-{PARENT}-01"), VersionFormat),
            (format!("0A-{TRACE}-{PARENT}-01"), VersionFormat),
            (format!("0.-{TRACE}-{PARENT}-01"), VersionFormat),
            (format!("ff-{TRACE}-{PARENT}-01"), ForbiddenVersion),
            (format!("00-{TRACE}-{PARENT}-01."), Length),
            (format!("00-{TRACE}-{PARENT}-01-extra"), Length),
            (format!("00-{TRACE}-{PARENT}-1"), Length),
            (format!("00-{TRACE}-{PARENT}-001"), Length),
            (format!("00-{TRACE}0-{PARENT}-01"), Length),
            (format!("00-{TRACE}-{PARENT}0-01"), Length),
            (format!("00-{}-{PARENT}-01", &TRACE[1..]), Length),
            (format!("00-{TRACE}_{PARENT}-01"), Delimiter),
            (format!("00-{TRACE}-{PARENT}_01"), Delimiter),
            (format!("cc-{TRACE}-{PARENT}-01.future"), Delimiter),
            (
                format!("cc-{TRACE}-{PARENT}-01.what-the-future-will-not-be-like"),
                Delimiter,
            ),
            (
                format!("00-{}-{PARENT}-01", TRACE.to_uppercase()),
                TraceIdFormat,
            ),
            (format!("00-.{}-{PARENT}-01", &TRACE[1..]), TraceIdFormat),
            (format!("00-{}-{PARENT}-01", "0".repeat(32)), TraceIdZero),
            (
                format!("00-{TRACE}-{}-01", PARENT.to_uppercase()),
                ParentIdFormat,
            ),
            (format!("00-{TRACE}-{}-01", "0".repeat(16)), ParentIdZero),
            (format!("00-{TRACE}-{PARENT}-.0"), FlagsFormat),
            (format!("00-{TRACE}-{PARENT}-0G"), FlagsFormat),
            (format!("00-{TRACE}-{PARENT}-0x"), FlagsFormat),
        ];
        for (value, want) in cases {
            assert_eq!(parse(value), Err(*want), "{value:?}");
        }
    }

    #[test]
    fn higher_versions_by_the_forward_compatibility_rule() {
        let tp = parse(&format!("cc-{TRACE}-{PARENT}-01")).expect("exact length");
        assert_eq!(tp.version, 0xcc);
        assert!(tp.sampled());
        let tp = parse(&format!(
            "cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like"
        ))
        .expect("extra fields after a dash");
        assert_eq!(
            tp.trace_id,
            parse(&format!("00-{TRACE}-{PARENT}-01"))
                .expect("v0")
                .trace_id
        );
        assert_eq!(
            parse(&format!("cc-{TRACE}-{PARENT}")),
            Err(TraceParentError::Length),
            "shorter than 55"
        );
        assert_eq!(
            parse(&format!("01-{}-{PARENT}-01", "0".repeat(32))),
            Err(TraceParentError::TraceIdZero),
            "a higher version still needs valid ids"
        );
    }

    #[test]
    fn exactly_one_header() {
        let v = format!("00-{TRACE}-{PARENT}-01");
        assert!(TraceParent::from_headers([v.as_bytes()]).is_ok());
        assert_eq!(
            TraceParent::from_headers(std::iter::empty()),
            Err(TraceParentError::Absent)
        );
        assert_eq!(
            TraceParent::from_headers([v.as_bytes(), v.as_bytes()]),
            Err(TraceParentError::Duplicated)
        );
    }

    #[test]
    fn formats_version_00() {
        let tp = parse(&format!("00-{TRACE}-{PARENT}-01")).expect("valid");
        let out = format_traceparent(&tp.trace_id, &tp.parent_id, true);
        assert_eq!(out.as_slice(), format!("00-{TRACE}-{PARENT}-01").as_bytes());
        let out = format_traceparent(&tp.trace_id, &tp.parent_id, false);
        assert_eq!(out.as_slice(), format!("00-{TRACE}-{PARENT}-00").as_bytes());
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(
            trace_id in any::<[u8; 16]>(),
            span_id in any::<[u8; 8]>(),
            sampled in any::<bool>(),
        ) {
            prop_assume!(trace_id != [0; 16] && span_id != [0; 8]);
            let text = format_traceparent(&trace_id, &span_id, sampled);
            let tp = TraceParent::parse(&text).expect("own output parses");
            prop_assert_eq!(tp.trace_id, trace_id);
            prop_assert_eq!(tp.parent_id, span_id);
            prop_assert_eq!(tp.sampled(), sampled);
            prop_assert_eq!(tp.flags & !FLAG_SAMPLED, 0);
        }

        #[test]
        fn never_panics_and_accepts_only_the_layout(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(tp) = TraceParent::parse(&bytes) {
                let v = trim_ows(&bytes);
                prop_assert!(v.len() >= TRACEPARENT_LEN);
                prop_assert!(tp.version != 0xff);
                prop_assert!(tp.trace_id != [0; 16] && tp.parent_id != [0; 8]);
                // Whatever was accepted re-formats to the same ids.
                let again = format_traceparent(&tp.trace_id, &tp.parent_id, tp.sampled());
                prop_assert_eq!(&again[3..52], &v[3..52]);
            }
        }

        #[test]
        fn any_single_character_change_of_the_ids_to_a_non_hex_is_rejected(
            pos in 3usize..55,
            bad in prop::sample::select(vec![b'g', b'A', b'F', b'.', b' ', b'z', 0u8, 0xffu8]),
        ) {
            prop_assume!(pos != 35 && pos != 52);
            let mut v = format!("00-{TRACE}-{PARENT}-01").into_bytes();
            v[pos] = bad;
            prop_assert!(TraceParent::parse(&v).is_err());
        }
    }
}
