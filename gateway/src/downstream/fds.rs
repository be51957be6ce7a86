//! The open-file limit and `limits.max_connections`: a cap above what the process may open
//! never triggers, and then `accept` fails with "Too many open files" (Pingora's accept loop
//! sleeps a second on it) while normal clients wait. At startup the soft limit is raised to the
//! hard one, and the cap is lowered, with a warning, to what leaves room for the upstream
//! connections, the admin API and files.

/// Share of the open-file limit kept for everything but downstream connections.
const RESERVED_DIVISOR: u64 = 4;
/// Descriptors kept aside at least (listeners, admin, state files, logs).
const RESERVED_MIN: u64 = 64;

/// Raises the soft open-file limit to the hard one and returns the connection cap to enforce:
/// `configured`, or less when the limit cannot hold it.
pub fn connection_cap(configured: usize) -> usize {
    let Some(limit) = raise_nofile() else {
        return configured;
    };
    let reserved = (limit / RESERVED_DIVISOR).max(RESERVED_MIN);
    let room = usize::try_from(limit.saturating_sub(reserved))
        .unwrap_or(usize::MAX)
        .max(1);
    if configured > room {
        log::warn!(
            "limits.max_connections {configured} does not fit the open-file limit {limit}: capped at {room} \
             (a quarter of the limit is kept for upstream connections and files; raise LimitNOFILE or ulimit -n)"
        );
        room
    } else {
        configured
    }
}

/// The soft `RLIMIT_NOFILE` after raising it to the hard limit; `None` if it cannot be read.
fn raise_nofile() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid, correctly sized struct owned by this frame.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    Some(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_within_the_limit_is_kept_and_one_past_it_is_lowered() {
        assert_eq!(connection_cap(10), 10);
        let limit = raise_nofile().expect("RLIMIT_NOFILE");
        let cap = connection_cap(usize::MAX);
        assert!(
            cap < limit as usize && cap >= (limit as usize) / 2,
            "cap {cap} of {limit}"
        );
    }
}
