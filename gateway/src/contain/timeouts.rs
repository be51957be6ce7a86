//! The timeouts of one attempt: the route's `timeouts`, each capped by what is left of
//! `total_ms` (the whole request, retries included), and which of `read_ms` and
//! `stream_idle_ms` bounds its reads.

use crate::routing::Timeouts;
use crate::telemetry::TimeoutKind;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use std::time::Duration;

/// Whether a request opens a stream, whose reads are bounded by `stream_idle_ms` instead of
/// `read_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamKind {
    /// A request and its answer: `read_ms`.
    #[default]
    None,
    /// An HTTP/1.1 upgrade (WebSocket) to an HTTP/1 group: `read_ms` for the response head
    /// (dyegate's own timer), `stream_idle_ms` for each read after it.
    Upgrade,
    /// A gRPC call to an `h2`/`h2c` group: `stream_idle_ms` for every read, the head's too
    /// (the connection is shared by many calls: one call's head wait cannot be cut alone).
    Grpc,
}

impl StreamKind {
    /// The kind of `req` sent to a group spoken to over HTTP/2 (`h2`) or HTTP/1.
    pub fn of(req: &RequestHeader, h2: bool) -> StreamKind {
        if h2 && is_grpc(req) {
            StreamKind::Grpc
        } else if !h2
            && req.version == http::Version::HTTP_11
            && req.headers.contains_key(http::header::UPGRADE)
        {
            // What Pingora 0.9.1 proxies as an upgrade (`v1::common::is_upgrade_req`).
            StreamKind::Upgrade
        } else {
            StreamKind::None
        }
    }

    /// Whether the attempt's per-read timeout is `stream_idle_ms`.
    pub fn is_stream(self) -> bool {
        self != StreamKind::None
    }
}

/// Whether the request is a gRPC call: `content-type: application/grpc` (or `application/grpc+…`).
pub fn is_grpc(req: &RequestHeader) -> bool {
    req.headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// What one attempt may wait for, each capped by the time left before the request's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptTimeouts {
    pub connect: Duration,
    /// `None`: no read timeout (`read_ms: 0` and no `total_ms`).
    pub read: Option<Duration>,
    pub write: Duration,
    /// Each read of a stream (`stream_idle_ms`), in place of `read`.
    pub stream_idle: Duration,
}

/// The timeouts of an attempt starting `elapsed` into the request; `None` when `total_ms` has
/// already passed (the request answers 504 without another attempt).
pub fn attempt_timeouts(
    t: &Timeouts,
    default_connect: Duration,
    elapsed: impl FnOnce() -> Duration,
) -> Option<AttemptTimeouts> {
    // The clock is read only for a route with a total deadline.
    let left = match t.total {
        Some(total) => match total.checked_sub(elapsed()) {
            Some(left) if !left.is_zero() => Some(left),
            _ => return None,
        },
        None => None,
    };
    let cap = |d: Duration| left.map_or(d, |l| d.min(l));
    Some(AttemptTimeouts {
        connect: cap(t.connect.unwrap_or(default_connect)),
        // No read timeout, but a deadline: the deadline bounds each read.
        read: t.read.map(cap).or(left),
        write: cap(t.write),
        stream_idle: cap(t.stream_idle),
    })
}

impl AttemptTimeouts {
    /// The per-read timeout handed to Pingora for an attempt of `kind`.
    pub fn per_read(&self, kind: StreamKind) -> Option<Duration> {
        match kind {
            StreamKind::None => self.read,
            StreamKind::Upgrade | StreamKind::Grpc => Some(self.stream_idle),
        }
    }

    /// How long dyegate itself waits for the response head of an attempt of `kind`, when the
    /// per-read timeout does not bound it: an upgrade's head keeps `read_ms`.
    pub fn head_wait(&self, kind: StreamKind) -> Option<Duration> {
        match kind {
            StreamKind::Upgrade => self.read,
            StreamKind::None | StreamKind::Grpc => None,
        }
    }
}

/// Which timeout an upstream error is, if it is one; a read timeout of an attempt whose reads
/// are bounded by `stream_idle_ms` (`stream`) is `stream_idle`.
pub fn timeout_kind(e: &Error, stream: bool) -> Option<TimeoutKind> {
    match e.etype() {
        ConnectTimedout => Some(TimeoutKind::Connect),
        ReadTimedout if stream => Some(TimeoutKind::StreamIdle),
        ReadTimedout => Some(TimeoutKind::Read),
        WriteTimedout => Some(TimeoutKind::Write),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn without_total_the_route_values_hold() {
        let t = Timeouts {
            connect: None,
            read: Some(ms(300)),
            write: ms(400),
            total: None,
            stream_idle: ms(5000),
        };
        // Without a total nothing depends on the time spent: the clock is not read.
        let no_clock = || -> Duration { panic!("the clock was read") };
        assert_eq!(
            attempt_timeouts(&t, ms(2000), no_clock),
            Some(AttemptTimeouts {
                connect: ms(2000),
                read: Some(ms(300)),
                write: ms(400),
                stream_idle: ms(5000),
            })
        );
    }

    #[test]
    fn total_caps_each_and_ends_the_request() {
        let t = Timeouts {
            connect: Some(ms(1000)),
            read: Some(ms(15_000)),
            write: ms(100),
            total: Some(ms(1000)),
            stream_idle: ms(300_000),
        };
        assert_eq!(
            attempt_timeouts(&t, ms(2000), || ms(700)),
            Some(AttemptTimeouts {
                connect: ms(300),
                read: Some(ms(300)),
                write: ms(100),
                stream_idle: ms(300),
            })
        );
        assert_eq!(attempt_timeouts(&t, ms(2000), || ms(1000)), None);
        let unbounded = Timeouts { read: None, ..t };
        assert_eq!(
            attempt_timeouts(&unbounded, ms(2000), || ms(700)).map(|a| a.read),
            Some(Some(ms(300)))
        );
        let none = Timeouts {
            total: None,
            ..unbounded
        };
        assert_eq!(
            attempt_timeouts(&none, ms(2000), || ms(700)).map(|a| a.read),
            Some(None)
        );
        assert_eq!(attempt_timeouts(&t, ms(2000), || ms(1500)), None);
    }

    fn request(version: http::Version, headers: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/ws", None).expect("head");
        req.set_version(version);
        for (name, value) in headers {
            req.insert_header(name.to_string(), *value).expect("header");
        }
        req
    }

    #[test]
    fn upgrades_and_grpc_calls_are_streams() {
        use http::Version;
        let ws = request(Version::HTTP_11, &[("upgrade", "websocket")]);
        assert_eq!(StreamKind::of(&ws, false), StreamKind::Upgrade);
        assert_eq!(
            StreamKind::of(&ws, true),
            StreamKind::None,
            "no upgrade over h2"
        );
        let h10 = request(Version::HTTP_10, &[("upgrade", "websocket")]);
        assert_eq!(StreamKind::of(&h10, false), StreamKind::None);
        let grpc = request(
            Version::HTTP_2,
            &[("content-type", "application/grpc+proto")],
        );
        assert_eq!(StreamKind::of(&grpc, true), StreamKind::Grpc);
        assert_eq!(StreamKind::of(&grpc, false), StreamKind::None);
        let json = request(Version::HTTP_2, &[("content-type", "application/json")]);
        assert_eq!(StreamKind::of(&json, true), StreamKind::None);
    }

    #[test]
    fn a_stream_reads_with_stream_idle_and_an_upgrade_waits_read_ms_for_its_head() {
        let a = AttemptTimeouts {
            connect: ms(1000),
            read: Some(ms(500)),
            write: ms(500),
            stream_idle: ms(3000),
        };
        assert_eq!(a.per_read(StreamKind::None), Some(ms(500)));
        assert_eq!(a.head_wait(StreamKind::None), None);
        assert_eq!(a.per_read(StreamKind::Upgrade), Some(ms(3000)));
        assert_eq!(a.head_wait(StreamKind::Upgrade), Some(ms(500)));
        assert_eq!(a.per_read(StreamKind::Grpc), Some(ms(3000)));
        assert_eq!(a.head_wait(StreamKind::Grpc), None);
        let unbounded = AttemptTimeouts { read: None, ..a };
        assert_eq!(unbounded.head_wait(StreamKind::Upgrade), None);
    }
}
