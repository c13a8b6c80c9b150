//! Pure planning for the delivery worker: how due rows become messages, and when a failed one
//! is tried again. No I/O, no clock.

use std::collections::HashMap;
use std::time::Duration;

use super::OutboxItem;

/// First retry delay.
pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// Longest retry delay (also the delay after a permanent failure).
pub const BACKOFF_CAP: Duration = Duration::from_secs(3600);

/// The delay before the next attempt after `attempts` earlier failed ones:
/// `10 s · 2^attempts` capped at 1 h (the cap right away for a permanent failure), scaled by
/// `jitter` (clamped to 0.8–1.2), and never shorter than the receiver's `Retry-After`
/// (itself capped at 1 h, so a hostile header cannot park a page for a year).
pub fn retry_delay(
    attempts: u32,
    permanent: bool,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let base = if permanent {
        BACKOFF_CAP
    } else {
        BACKOFF_BASE
            .saturating_mul(2u32.saturating_pow(attempts))
            .min(BACKOFF_CAP)
    };
    let delay = base.mul_f64(jitter.clamp(0.8, 1.2));
    match retry_after {
        Some(ra) => delay.max(ra.min(BACKOFF_CAP)),
        None => delay,
    }
}

/// Splits one channel's due rows (oldest first) into messages, in order: rows written in the
/// same cycle (same `created_at`) go out as one grouped message when there are more than
/// `group_threshold` of them, placed where the first of them was; all others go one by one.
pub fn units(items: Vec<OutboxItem>, group_threshold: usize) -> Vec<Vec<OutboxItem>> {
    let mut per_cycle: HashMap<i64, usize> = HashMap::new();
    for i in &items {
        *per_cycle.entry(i.created_at).or_default() += 1;
    }
    let mut out: Vec<Vec<OutboxItem>> = Vec::new();
    let mut group_at: HashMap<i64, usize> = HashMap::new();
    for item in items {
        if per_cycle[&item.created_at] > group_threshold {
            if let Some(&at) = group_at.get(&item.created_at) {
                out[at].push(item);
            } else {
                group_at.insert(item.created_at, out.len());
                out.push(vec![item]);
            }
        } else {
            out.push(vec![item]);
        }
    }
    out
}
