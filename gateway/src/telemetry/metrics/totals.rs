//! Every (route, group) pair's requests and failed requests so far, read from the store's
//! atomics once a second by the live view's sampler ([`crate::telemetry::traffic`]).

use super::{lock, Metrics};
use crate::telemetry::grpc_status::GrpcStatus;
use crate::telemetry::status_class::StatusClass;
use std::sync::atomic::Ordering;

/// One pair's counts since the process started (or took over its counters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairTotal {
    pub route: String,
    pub group: String,
    pub requests: u64,
    /// 5xx, answers broken after their head, gRPC server errors: what the gates count.
    pub errors: u64,
}

impl Metrics {
    /// The totals of every pair the store knows.
    pub fn pair_totals(&self) -> Vec<PairTotal> {
        let failure = [StatusClass::ServerError.index(), StatusClass::Error.index()];
        let pairs: Vec<_> = (lock(&self.store).pairs.iter())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        pairs
            .into_iter()
            .map(|((route, group), p)| {
                let mut errors = 0;
                for (_, c) in lock(&p.tags).iter() {
                    errors += failure
                        .iter()
                        .filter_map(|i| c.get(*i))
                        .map(|n| n.load(Ordering::Relaxed))
                        .sum::<u64>();
                }
                for (_, c) in lock(&p.grpc_tags).iter() {
                    for (class, by_status) in c.iter().enumerate() {
                        for (status, n) in by_status.iter().enumerate() {
                            let server_error =
                                GrpcStatus::from_index(status).is_some_and(|s| s.is_server_error());
                            if failure.contains(&class) || server_error {
                                errors += n.load(Ordering::Relaxed);
                            }
                        }
                    }
                }
                PairTotal {
                    route,
                    group,
                    requests: p.duration.count.load(Ordering::Relaxed),
                    errors,
                }
            })
            .collect()
    }
}
