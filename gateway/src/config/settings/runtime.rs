//! `pingora.threads` and `pingora.runtime`: how many worker threads serve the proxy listeners and
//! how they are laid out (benches/load/README.md, "Runtime layout").

use crate::config::range::Bound;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// Most worker threads accepted.
pub const MAX_THREADS: u64 = 1024;
/// `pingora.threads` when a number.
pub const THREADS_BOUND: Bound<u64> = Bound::whole(1, MAX_THREADS);

/// `pingora.threads`: a number of worker threads, or `auto`, one per core the process may run
/// on (`std::thread::available_parallelism`: CPU affinity and cgroup quotas included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    Count(usize),
    Auto,
}

impl Threads {
    /// The number of worker threads: `auto` resolved now (at least 1, at most [`MAX_THREADS`]).
    pub fn resolve(self) -> usize {
        match self {
            Threads::Count(n) => n,
            Threads::Auto => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_THREADS as usize),
        }
    }
}

impl fmt::Display for Threads {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Threads::Count(n) => write!(f, "{n}"),
            Threads::Auto => f.write_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for Threads {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Threads;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{}, or `auto` (one per core)", THREADS_BOUND.expected())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Threads, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Threads, E> {
                match usize::try_from(v) {
                    Ok(n) if THREADS_BOUND.contains(v) => Ok(Threads::Count(n)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Threads, E> {
                match v {
                    "auto" => Ok(Threads::Auto),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `pingora.runtime`: how the worker threads of the proxy listeners are laid out.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeLayout {
    /// One runtime with `threads` worker threads and one accept loop per listener; with
    /// `work_stealing`, an idle thread takes ready connections from a busy one. One upstream
    /// connection pool for all threads.
    #[default]
    Shared,
    /// `threads` one-thread runtimes, each with its own listening socket per address
    /// (`SO_REUSEPORT`: the kernel spreads new connections over them), its own accept loop and
    /// its own upstream connection pool; a connection stays on the thread that accepted it.
    PerCore,
}
