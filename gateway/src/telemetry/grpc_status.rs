//! The `grpc_status` of a request to an HTTP/2 upstream, as the `grpc_status` label and access
//! log field carry it: one of the 17 gRPC codes (`0`..`16`), `other` for anything else the
//! upstream sent, or `none` when no `grpc-status` arrived (plain HTTP/2, a broken stream).

/// A bounded `grpc_status` value: a gRPC code, `other` or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcStatus(u8);

/// Every label value, by [`GrpcStatus::index`].
pub const GRPC_STATUS_LABELS: [&str; GRPC_STATUS_COUNT] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    "other", "none",
];
/// How many label values there are.
pub const GRPC_STATUS_COUNT: usize = 19;

impl GrpcStatus {
    /// No `grpc-status` arrived.
    pub const NONE: GrpcStatus = GrpcStatus(18);
    /// A `grpc-status` that is not one of the 17 codes.
    pub const OTHER: GrpcStatus = GrpcStatus(17);

    /// A `grpc-status` header or trailer value.
    pub fn parse(value: &[u8]) -> GrpcStatus {
        match value {
            [d @ b'0'..=b'9'] => GrpcStatus(d - b'0'),
            [b'1', d @ b'0'..=b'6'] => GrpcStatus(10 + d - b'0'),
            _ => GrpcStatus::OTHER,
        }
    }

    /// The status of `headers` (a trailers block, or the head of a trailers-only answer), if
    /// they carry one.
    pub fn of(headers: &http::HeaderMap) -> Option<GrpcStatus> {
        headers
            .get("grpc-status")
            .map(|v| GrpcStatus::parse(v.as_bytes()))
    }

    /// The value at `index` in [`GRPC_STATUS_LABELS`].
    pub fn from_index(index: usize) -> Option<GrpcStatus> {
        u8::try_from(index)
            .ok()
            .filter(|i| usize::from(*i) < GRPC_STATUS_COUNT)
            .map(GrpcStatus)
    }

    /// Position in [`GRPC_STATUS_LABELS`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// Whether the status is the server's failure, as a 5xx is: `UNKNOWN` (2),
    /// `DEADLINE_EXCEEDED` (4), `UNIMPLEMENTED` (12), `INTERNAL` (13), `UNAVAILABLE` (14),
    /// `DATA_LOSS` (15) — the codes gRPC's HTTP mapping gives 5xx statuses — and a status that is
    /// not a gRPC code at all. The caller's own mistakes (`INVALID_ARGUMENT`, `NOT_FOUND`,
    /// `PERMISSION_DENIED`, ...) are not, as a 4xx is not. Rollout gates count these as errors.
    pub fn is_server_error(self) -> bool {
        matches!(self.0, 2 | 4 | 12 | 13 | 14 | 15 | 17)
    }

    pub fn label(self) -> &'static str {
        GRPC_STATUS_LABELS
            .get(self.index())
            .copied()
            .unwrap_or("other")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_are_the_5xx_codes_and_garbage() {
        let errors: Vec<u8> = (0..=16u8)
            .filter(|c| GrpcStatus::parse(c.to_string().as_bytes()).is_server_error())
            .collect();
        assert_eq!(errors, vec![2, 4, 12, 13, 14, 15]);
        assert!(GrpcStatus::parse(b"99").is_server_error());
        assert!(!GrpcStatus::NONE.is_server_error());
    }

    #[test]
    fn codes_other_and_none() {
        for code in 0..=16u8 {
            let s = GrpcStatus::parse(code.to_string().as_bytes());
            assert_eq!(s.label(), code.to_string());
            assert_eq!(s.index(), usize::from(code));
        }
        for other in [&b"17"[..], b"", b"-1", b"01", b"abc", b"100", b" 0"] {
            assert_eq!(GrpcStatus::parse(other), GrpcStatus::OTHER, "{other:?}");
        }
        assert_eq!(GrpcStatus::OTHER.label(), "other");
        assert_eq!(GrpcStatus::NONE.label(), "none");
        let mut h = http::HeaderMap::new();
        assert_eq!(GrpcStatus::of(&h), None);
        h.insert("grpc-status", http::HeaderValue::from_static("14"));
        assert_eq!(GrpcStatus::of(&h).map(GrpcStatus::label), Some("14"));
    }
}
