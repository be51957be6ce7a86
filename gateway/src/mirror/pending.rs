//! A request's copies between the hooks that build them: admitted in `request_filter`, the
//! head taken as it goes upstream (`upstream_request_filter`: the tag, trace context and
//! forwarding headers already written), the body copied as it streams through
//! `request_body_filter` up to the largest `max_body_bytes`; sent when the body has ended.

use super::meet::{meeting, Primary, Request};
use super::pool::Outgoing;
use super::send::{Copy, Entry};
use super::{MirrorMetrics, Outcome};
use crate::routing::{Admission, Route};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Uri};
use pingora::upstreams::peer::HttpPeer;
use std::sync::Arc;
use std::time::Instant;

/// The copies of one request that are still being built.
pub struct Pending {
    /// `(mirror index, target)` of each admitted copy; each holds a place in its entry's
    /// `max_in_flight` until dropped.
    entries: Vec<Entry>,
    head: Option<(Method, Uri, HeaderMap)>,
    body: BytesMut,
    /// The largest `max_body_bytes` of the entries: past it no copy can be sent.
    limit: u64,
    too_large: bool,
    metrics: MirrorMetrics,
}

impl Drop for Pending {
    /// Copies admitted but never sent (the request never went upstream, or its body never
    /// ended: the client went away) are counted `primary_aborted`.
    fn drop(&mut self) {
        for e in self.entries.drain(..) {
            e.finish(&self.metrics, Outcome::PrimaryAborted);
        }
    }
}

impl Pending {
    /// The copies of a request to `route` (the request's table's `Arc`), one per mirror entry
    /// that samples it and has room; `target` picks the target a copy goes to in a group (its
    /// prepared peer).
    /// `None` when no copy is to be sent.
    pub fn admit(
        route: &Arc<Route>,
        method: &Method,
        metrics: &MirrorMetrics,
        group_name: impl Fn(usize) -> Arc<str>,
        target: impl Fn(usize) -> Option<HttpPeer>,
    ) -> Option<Box<Pending>> {
        let mut entries = Vec::new();
        for (i, m) in route.mirror.iter().enumerate() {
            match m.admit(method) {
                Admission::OtherMethod | Admission::NotSampled => {}
                Admission::Full => {
                    metrics.outcome(&route.name, &group_name(m.group), Outcome::Dropped)
                }
                Admission::Send => {
                    let slot = Entry::new(route.clone(), i, group_name(m.group));
                    let baseline = (m.compare.as_ref()).and_then(|c| c.baseline);
                    let slot = slot.baseline(baseline.and_then(&target));
                    match target(m.group) {
                        Some(peer) => entries.push(slot.to(peer)),
                        // No address to send to (its names not resolved): the shadow's failure.
                        None => slot.finish(metrics, Outcome::ShadowError),
                    }
                }
            }
        }
        if entries.is_empty() {
            return None;
        }
        let limit = (entries.iter())
            .map(|e| e.mirror().map_or(0, |m| m.max_body_bytes))
            .max()
            .unwrap_or(0);
        Some(Box::new(Pending {
            entries,
            head: None,
            body: BytesMut::new(),
            limit,
            too_large: false,
            metrics: metrics.clone(),
        }))
    }

    /// The head as it goes upstream (the first attempt's).
    pub fn head(&mut self, method: &Method, uri: &Uri, headers: &HeaderMap) {
        if self.head.is_none() {
            self.head = Some((method.clone(), uri.clone(), headers.clone()));
        }
    }

    /// A piece of the request's body, as it streams through.
    pub fn body(&mut self, chunk: Option<&Bytes>) {
        let Some(chunk) = chunk else { return };
        if self.too_large {
            return;
        }
        if (self.body.len() + chunk.len()) as u64 > self.limit {
            self.too_large = true;
            self.body = BytesMut::new();
        } else {
            self.body.extend_from_slice(chunk);
        }
    }

    /// The body has ended: the copies, each to be sent from its own task (those whose body is
    /// past their `max_body_bytes` are counted and left out), and with `compare` the real
    /// answer's side of their meetings (`started`: when the request came; `trace_id`: its
    /// trace, for `/mirrors`).
    pub fn finish(
        mut self: Box<Self>,
        metrics: &MirrorMetrics,
        started: Instant,
        trace_id: Option<String>,
    ) -> (Vec<Copy>, Option<Box<Primary>>) {
        let Some((method, uri, headers)) = self.head.take() else {
            // Never went upstream: nothing to copy (counted when dropped).
            return (Vec::new(), None);
        };
        let entries = std::mem::take(&mut self.entries);
        let body = std::mem::take(&mut self.body).freeze();
        let too_large = self.too_large;
        let request = Request {
            method: method.to_string(),
            path: uri.path().to_string(),
            trace_id,
        };
        let (mut copies, mut halves, mut limit) = (Vec::with_capacity(entries.len()), vec![], 0);
        for e in entries {
            let Some(m) = e.mirror() else { continue };
            if too_large || body.len() as u64 > m.max_body_bytes {
                e.finish(metrics, Outcome::TooLarge);
                continue;
            }
            let meet = m.compare.is_some().then(|| {
                limit = limit.max(m.max_body_bytes);
                let (primary, shadow) = meeting(
                    e.route.clone(),
                    e.index,
                    e.group.clone(),
                    request.clone(),
                    metrics.clone(),
                );
                halves.push(primary);
                shadow
            });
            let request = Outgoing {
                method: method.clone(),
                uri: uri.clone(),
                headers: headers.clone(),
                body: body.clone(),
            };
            copies.push(Copy {
                request,
                entry: e,
                meet,
            });
        }
        (copies, Primary::new(halves, limit, started))
    }
}
