//! The `status_class` of a finished request, as `dyegate_requests_total` labels it: the class of
//! the HTTP status the client got (`1xx` .. `5xx`), or `error` when the answer broke off after its
//! head had gone out (a body cut short by a reset or a read timeout, a reset HTTP/2 stream, a
//! gRPC call that ended without a `grpc-status`). The client of such an answer holds a status
//! that says nothing of the failure; `error` is counted with `5xx` by the rollout gates, outlier
//! detection and the shipped alert rules.

/// A `status_class` label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    Informational,
    Success,
    Redirection,
    ClientError,
    ServerError,
    /// The answer broke off after its head.
    Error,
}

/// How many label values there are; every class but `error` is one of an HTTP status
/// ([`HTTP_STATUS_CLASSES`] of them, first).
pub const STATUS_CLASS_COUNT: usize = 6;
/// The classes an answer written whole has: dyegate's own answers (404, a refused tag) have only
/// these.
pub const HTTP_STATUS_CLASSES: usize = 5;
/// Every label value, by [`StatusClass::index`].
pub const STATUS_CLASS_LABELS: [&str; STATUS_CLASS_COUNT] =
    ["1xx", "2xx", "3xx", "4xx", "5xx", "error"];

impl StatusClass {
    /// The class of a status the client got. What is no valid status (0: none was written)
    /// counts as `5xx`.
    pub fn of(status: u16) -> StatusClass {
        match status {
            100..=199 => StatusClass::Informational,
            200..=299 => StatusClass::Success,
            300..=399 => StatusClass::Redirection,
            400..=499 => StatusClass::ClientError,
            _ => StatusClass::ServerError,
        }
    }

    /// Position in [`STATUS_CLASS_LABELS`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn label(self) -> &'static str {
        STATUS_CLASS_LABELS
            .get(self.index())
            .copied()
            .unwrap_or("error")
    }

    /// Whether the request failed on the upstream's side: a `5xx`, or an answer broken after
    /// its head. Rollout gates and outlier detection count these.
    pub fn is_failure(self) -> bool {
        matches!(self, StatusClass::ServerError | StatusClass::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_of_statuses_and_their_labels() {
        let cases = [
            (100, "1xx"),
            (101, "1xx"),
            (200, "2xx"),
            (299, "2xx"),
            (308, "3xx"),
            (404, "4xx"),
            (499, "4xx"),
            (500, "5xx"),
            (599, "5xx"),
            (0, "5xx"),
            (999, "5xx"),
        ];
        for (status, label) in cases {
            assert_eq!(StatusClass::of(status).label(), label, "{status}");
        }
        assert_eq!(StatusClass::Error.label(), "error");
        assert_eq!(StatusClass::Error.index(), HTTP_STATUS_CLASSES);
        assert!(!STATUS_CLASS_LABELS[..HTTP_STATUS_CLASSES].contains(&"error"));
    }

    #[test]
    fn failures_are_5xx_and_broken_answers() {
        let failing: Vec<&str> = [200u16, 302, 404, 503]
            .map(StatusClass::of)
            .into_iter()
            .chain([StatusClass::Error])
            .filter(|c| c.is_failure())
            .map(StatusClass::label)
            .collect();
        assert_eq!(failing, vec!["5xx", "error"]);
    }
}
