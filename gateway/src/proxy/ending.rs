//! How a proxied answer ended: whole, or broken off after its head had gone to the client (a
//! body cut short by a reset or a read timeout, a reset HTTP/2 stream, a gRPC call that ended
//! without a `grpc-status`). The client of a broken answer holds a status (often 200) that says
//! nothing of the failure, so the status cannot tell: a broken answer is counted under
//! `status_class="error"`, which the rollout gates count as they count a 5xx, and it fails its
//! attempt for outlier detection. That is why an attempt whose head was good is judged here, when
//! its answer has ended, and not when its head arrived.

use super::ctx::RequestCtx;
use super::DyegateProxy;
use crate::contain::is_grpc;
use crate::health::Attempt;
use crate::telemetry::{GrpcStatus, StatusClass};
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

/// Whether the client already has a final head, so that a failure can no longer be answered
/// with a status (what Pingora's `write_error_response` checks before it writes one).
pub(super) fn head_sent(session: &Session) -> bool {
    session
        .response_written()
        .is_some_and(|r| !r.status.is_informational() || r.status == 101)
}

/// Whether an answer that reached its end broke off: it failed upstream after its head was sent
/// (`broken_after_head`), or, with no error on any side, it is a gRPC call (`grpc` is `Some` for
/// a group spoken to over HTTP/2) answered 2xx without a `grpc-status`, which only a broken
/// server (or a stream reset with `NO_ERROR`) leaves out. A failure on the client's side (it
/// left) is not the upstream's.
fn broken(
    broken_after_head: bool,
    error: Option<&Error>,
    status: u16,
    grpc: Option<GrpcStatus>,
    req: &RequestHeader,
) -> bool {
    broken_after_head
        || (error.is_none()
            && grpc == Some(GrpcStatus::NONE)
            && (200..300).contains(&status)
            && is_grpc(req))
}

impl DyegateProxy {
    /// The class a finished request is counted under, from the `status` the client got, the
    /// request's `error` and its `grpc_status` label (`grpc`); reports the attempt whose head
    /// was good to outlier detection: a success, or a failure when its answer broke.
    pub(super) fn ending(
        &self,
        session: &Session,
        error: Option<&Error>,
        ctx: &mut RequestCtx,
        status: u16,
        grpc: Option<GrpcStatus>,
    ) -> StatusClass {
        let broken = broken(
            ctx.broken_after_head,
            error,
            status,
            grpc,
            session.req_header(),
        );
        if std::mem::take(&mut ctx.awaiting_end) {
            self.report(
                ctx,
                if broken {
                    Attempt::Failure
                } else {
                    Attempt::Success
                },
            );
        }
        if broken {
            StatusClass::Error
        } else {
            StatusClass::of(status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(content_type: Option<&str>) -> RequestHeader {
        let mut req = RequestHeader::build("POST", b"/test.Feed/Watch", None).expect("head");
        if let Some(ct) = content_type {
            req.insert_header("content-type", ct).expect("header");
        }
        req
    }

    #[test]
    fn an_answer_broken_after_its_head_is_broken_whatever_its_status() {
        let req = request(None);
        let e = Error::new_up(ReadError);
        assert!(broken(true, Some(e.as_ref()), 200, None, &req));
        assert!(!broken(false, Some(e.as_ref()), 502, None, &req));
        assert!(!broken(false, None, 200, None, &req));
    }

    #[test]
    fn a_grpc_call_without_grpc_status_is_broken_unless_the_client_left() {
        let grpc = request(Some("application/grpc+proto"));
        let none = Some(GrpcStatus::NONE);
        assert!(broken(false, None, 200, none, &grpc));
        // With a status (any, even a failure's: that one is counted by its code), not broken.
        assert!(!broken(
            false,
            None,
            200,
            Some(GrpcStatus::parse(b"0")),
            &grpc
        ));
        assert!(!broken(
            false,
            None,
            200,
            Some(GrpcStatus::parse(b"14")),
            &grpc
        ));
        // A non-2xx answer has its own class; a client that went away broke it itself.
        assert!(!broken(false, None, 503, none, &grpc));
        let gone = Error::new(ErrorType::ConnectionClosed).into_down();
        assert!(!broken(false, Some(gone.as_ref()), 200, none, &grpc));
        // Plain HTTP/2 (not a gRPC call), and an HTTP/1 group: no `grpc-status` expected.
        assert!(!broken(
            false,
            None,
            200,
            none,
            &request(Some("application/json"))
        ));
        assert!(!broken(false, None, 200, none, &request(None)));
        assert!(!broken(false, None, 200, None, &grpc));
    }
}
