//! A request's copies between the hooks that build them: admitted in `request_filter`, the
//! head taken as it goes upstream (`upstream_request_filter`: the tag, trace context and
//! forwarding headers already written), the body copied as it streams through
//! `request_body_filter` up to the largest `max_body_bytes`; sent when the body has ended.

use super::send::{Copy, Entry};
use super::{MirrorMetrics, Outcome};
use crate::routing::{Admission, Route};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Uri};
use std::net::SocketAddr;
use std::sync::Arc;

/// The copies of one request that are still being built.
pub struct Pending {
    route: Arc<Route>,
    /// `(mirror index, target)` of each admitted copy; each holds a place in its entry's
    /// `max_in_flight` until dropped.
    entries: Vec<Entry>,
    head: Option<(Method, Uri, HeaderMap)>,
    body: BytesMut,
    /// The largest `max_body_bytes` of the entries: past it no copy can be sent.
    limit: u64,
    too_large: bool,
}

impl Pending {
    /// The copies of a request to `route` (the request's table's `Arc`), one per mirror entry
    /// that samples it and has room; `target` picks the address a copy goes to in a group.
    /// `None` when no copy is to be sent.
    pub fn admit(
        route: &Arc<Route>,
        method: &Method,
        metrics: &MirrorMetrics,
        group_name: impl Fn(usize) -> Arc<str>,
        target: impl Fn(usize) -> Option<SocketAddr>,
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
                    match target(m.group) {
                        Some(addr) => entries.push(slot.to(addr)),
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
            route: route.clone(),
            entries,
            head: None,
            body: BytesMut::new(),
            limit,
            too_large: false,
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

    /// The body has ended: the copies, each to be sent from its own task; those whose body
    /// is past their `max_body_bytes` are counted and left out.
    pub fn finish(self: Box<Self>, metrics: &MirrorMetrics) -> Vec<Copy> {
        let Pending {
            route,
            entries,
            head,
            body,
            too_large,
            ..
        } = *self;
        let Some((method, uri, headers)) = head else {
            // Never went upstream: nothing to copy.
            return Vec::new();
        };
        let body = body.freeze();
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let fits = e
                .mirror()
                .is_some_and(|m| !too_large && body.len() as u64 <= m.max_body_bytes);
            if !fits {
                e.finish(metrics, Outcome::TooLarge);
                continue;
            }
            out.push(Copy {
                method: method.clone(),
                uri: uri.clone(),
                headers: headers.clone(),
                body: body.clone(),
                entry: e,
            });
        }
        drop(route);
        out
    }
}
