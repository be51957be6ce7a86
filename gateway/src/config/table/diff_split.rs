//! The diff line of a route's split: each group's share of untagged traffic in percent, with the
//! weights as written when they are not percentages already.
//!
//! `shop: split shop-stable 95% -> 80%, shop-canary 5% -> 20%` (weights summing to 100), or
//! `all: split blue 3 -> 1 (75% -> 50%), green 1 (25% -> 50%)` (weights as written, then
//! shares). A route with a `rollout` shows shares alone: its weights in a version are the
//! rollout's own units (`9000` and `1000` for 90/10 of a 100/0 split), not what the operator wrote.

use super::model::SplitEntryConfig;

/// How the weights of one split read to an operator.
#[derive(Clone, Copy)]
enum Shown {
    /// Shares only (the weights are percentages, or a rollout's units).
    Shares,
    /// Written weights, then shares in parentheses.
    WeightsAndShares,
}

/// The line's text after `ROUTE: `, or `None` when no group's weight or share changed.
/// `rollout`: the route has a rollout in either version.
pub fn split_change(
    old: &[SplitEntryConfig],
    new: &[SplitEntryConfig],
    rollout: bool,
) -> Option<String> {
    let (old_total, new_total) = (total(old), total(new));
    let shown = if rollout || (old_total == 100 && new_total == 100) {
        Shown::Shares
    } else {
        Shown::WeightsAndShares
    };
    let share = |w: u32, t: u64| percent(w, t);
    let mut parts = Vec::new();
    for e in new {
        let now = share(e.weight.0, new_total);
        match old.iter().find(|x| x.upstream == e.upstream) {
            Some(x) => {
                let was = share(x.weight.0, old_total);
                let weight_changed = x.weight != e.weight;
                match shown {
                    _ if was == now && !weight_changed => {}
                    Shown::Shares if was == now => {}
                    Shown::Shares => parts.push(format!("{} {was} -> {now}", e.upstream)),
                    Shown::WeightsAndShares if !weight_changed => {
                        parts.push(format!("{} {} ({was} -> {now})", e.upstream, e.weight.0))
                    }
                    Shown::WeightsAndShares if was == now => parts.push(format!(
                        "{} {} -> {} ({now})",
                        e.upstream, x.weight.0, e.weight.0
                    )),
                    Shown::WeightsAndShares => parts.push(format!(
                        "{} {} -> {} ({was} -> {now})",
                        e.upstream, x.weight.0, e.weight.0
                    )),
                }
            }
            None => parts.push(match shown {
                Shown::Shares => format!("{} added {now}", e.upstream),
                Shown::WeightsAndShares => {
                    format!("{} added {} ({now})", e.upstream, e.weight.0)
                }
            }),
        }
    }
    for x in old {
        if !new.iter().any(|e| e.upstream == x.upstream) {
            let was = share(x.weight.0, old_total);
            parts.push(match shown {
                Shown::Shares => format!("{} removed (was {was})", x.upstream),
                Shown::WeightsAndShares => {
                    format!("{} removed (was {}, {was})", x.upstream, x.weight.0)
                }
            });
        }
    }
    (!parts.is_empty()).then(|| format!("split {}", parts.join(", ")))
}

fn total(split: &[SplitEntryConfig]) -> u64 {
    split.iter().map(|e| u64::from(e.weight.0)).sum()
}

/// `weight` of `total` in percent: whole (`20%`), else to two decimals (`33.33%`, `0.05%`);
/// a share too small for that is `<0.01%`, never `0%`.
pub fn percent(weight: u32, total: u64) -> String {
    if total == 0 || weight == 0 {
        return "0%".into();
    }
    let w = u64::from(weight);
    if (w * 100) % total == 0 {
        return format!("{}%", w * 100 / total);
    }
    // Hundredths of a percent, rounded half up.
    let hundredths = (w * 10_000 * 2 + total) / (2 * total);
    if hundredths == 0 {
        return "<0.01%".into();
    }
    let text = format!("{}.{:02}", hundredths / 100, hundredths % 100);
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::table::model::Weight;

    fn split(entries: &[(&str, u32)]) -> Vec<SplitEntryConfig> {
        (entries.iter())
            .map(|(u, w)| SplitEntryConfig {
                upstream: u.to_string(),
                weight: Weight(*w),
            })
            .collect()
    }

    #[test]
    fn percentages_as_written_show_shares_alone() {
        let old = split(&[("s", 95), ("c", 5)]);
        let new = split(&[("s", 80), ("c", 20)]);
        assert_eq!(
            split_change(&old, &new, false).as_deref(),
            Some("split s 95% -> 80%, c 5% -> 20%")
        );
        assert_eq!(split_change(&old, &old, false), None);
    }

    #[test]
    fn a_rollout_step_shows_shares_never_its_units() {
        // The file's 100/0, then the rollout's first step written as 9000/1000.
        let file = split(&[("demo-stable", 100), ("demo-canary", 0)]);
        let step = split(&[("demo-stable", 9000), ("demo-canary", 1000)]);
        assert_eq!(
            split_change(&file, &step, true).as_deref(),
            Some("split demo-stable 100% -> 90%, demo-canary 0% -> 10%")
        );
        let next = split(&[("demo-stable", 8000), ("demo-canary", 2000)]);
        assert_eq!(
            split_change(&step, &next, true).as_deref(),
            Some("split demo-stable 90% -> 80%, demo-canary 10% -> 20%")
        );
        // The same shares in other units: no traffic moves, no line.
        let same = split(&[("demo-stable", 90), ("demo-canary", 10)]);
        assert_eq!(split_change(&step, &same, true), None);
    }

    #[test]
    fn other_weights_show_as_written_with_shares() {
        let old = split(&[("blue", 3), ("green", 1)]);
        let new = split(&[("blue", 1), ("green", 1)]);
        assert_eq!(
            split_change(&old, &new, false).as_deref(),
            Some("split blue 3 -> 1 (75% -> 50%), green 1 (25% -> 50%)")
        );
        // Weights doubled: shares unchanged, the written change still shown.
        let doubled = split(&[("blue", 6), ("green", 2)]);
        assert_eq!(
            split_change(&old, &doubled, false).as_deref(),
            Some("split blue 3 -> 6 (75%), green 1 -> 2 (25%)")
        );
        let swapped = split(&[("red", 1)]);
        assert_eq!(
            split_change(&new, &swapped, false).as_deref(),
            Some("split red added 1 (100%), blue removed (was 1, 50%), green removed (was 1, 50%)")
        );
    }

    #[test]
    fn shares_are_whole_or_two_decimals() {
        assert_eq!(percent(1, 3), "33.33%");
        assert_eq!(percent(2, 3), "66.67%");
        assert_eq!(percent(1, 8), "12.5%");
        assert_eq!(percent(1, 20_000), "0.01%");
        assert_eq!(percent(1, 1_000_000), "<0.01%");
        assert_eq!(percent(0, 5), "0%");
        assert_eq!(percent(5, 5), "100%");
        assert_eq!(percent(1, 0), "0%");
    }
}
