//! The open-file limit and the connection caps (`limits.max_connections`,
//! `admin.limits.max_connections`): a cap above what the process may open never triggers, and
//! then `accept` fails with "Too many open files" (Pingora's accept loop sleeps a second on it)
//! while normal clients wait. At startup the soft limit is raised to the hard one, and each cap
//! is lowered, with a warning, to its share: the proxy listeners get what leaves a quarter of the
//! limit for upstream connections, the admin API and files; the admin listener at most a quarter
//! of that reserve. So admin clients can never take the descriptors the proxy's cap counts on.

/// Share of the open-file limit kept for everything but downstream proxy connections.
const RESERVED_DIVISOR: u64 = 4;
/// Descriptors kept aside at least (listeners, admin, state files, logs).
const RESERVED_MIN: u64 = 64;
/// Share of the reserve the admin listener's connections may take at most.
const ADMIN_DIVISOR: u64 = 4;

/// The connection caps to enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub proxy: usize,
    pub admin: usize,
}

/// Raises the soft open-file limit to the hard one and returns the connection caps to enforce:
/// the configured ones, or less when the limit cannot hold them.
pub fn connection_caps(proxy: usize, admin: usize) -> Caps {
    let Some(limit) = raise_nofile() else {
        return Caps { proxy, admin };
    };
    let caps = caps_within(limit, proxy, admin);
    if caps.proxy < proxy {
        log::warn!(
            "limits.max_connections {proxy} does not fit the open-file limit {limit}: capped at {} \
             (a quarter of the limit is kept for upstream connections and files; raise LimitNOFILE or ulimit -n)",
            caps.proxy
        );
    }
    if caps.admin < admin {
        log::warn!(
            "admin.limits.max_connections {admin} does not fit the open-file limit {limit}: capped at {} \
             (the admin listener takes at most a quarter of the descriptors kept out of limits.max_connections)",
            caps.admin
        );
    }
    caps
}

/// The caps for an open-file limit of `limit`.
fn caps_within(limit: u64, proxy: usize, admin: usize) -> Caps {
    let reserved = (limit / RESERVED_DIVISOR).max(RESERVED_MIN);
    let room = |n: u64| usize::try_from(n).unwrap_or(usize::MAX).max(1);
    Caps {
        proxy: proxy.min(room(limit.saturating_sub(reserved))),
        admin: admin.min(room(reserved / ADMIN_DIVISOR)),
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
    fn caps_within_the_limit_are_kept_and_ones_past_it_are_lowered() {
        assert_eq!(
            connection_caps(10, 5),
            Caps {
                proxy: 10,
                admin: 5
            }
        );
        let limit = raise_nofile().expect("RLIMIT_NOFILE");
        let caps = connection_caps(usize::MAX, usize::MAX);
        assert!(
            caps.proxy < limit as usize && caps.proxy >= (limit as usize) / 2,
            "{caps:?} of {limit}"
        );
        assert!(
            caps.proxy + caps.admin < limit as usize,
            "{caps:?} of {limit}"
        );
    }

    #[test]
    fn the_admin_cap_comes_out_of_the_reserve() {
        // Issue 27's gateway: 2,048 descriptors; 512 kept out of the proxy's cap, 128 of them
        // at most for admin connections.
        assert_eq!(
            caps_within(2048, 20_000, 10_000),
            Caps {
                proxy: 1536,
                admin: 128
            }
        );
        assert_eq!(
            caps_within(2048, 100, 32),
            Caps {
                proxy: 100,
                admin: 32
            }
        );
        // The smallest reserve (64 descriptors) still holds 16 admin connections.
        assert_eq!(
            caps_within(256, 20_000, 32),
            Caps {
                proxy: 192,
                admin: 16
            }
        );
    }
}
