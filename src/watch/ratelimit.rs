//! A per-cloud request pacer: a GCRA token bucket shared by all of a cloud's requests, which a
//! 429 can pause for the whole cloud. Uses tokio's clock, so tests run on a paused clock.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Shared by every request to one cloud (clone the `Arc` that holds it).
#[derive(Debug)]
pub struct RateLimiter {
    /// Time between two requests at the configured rate.
    emission: Duration,
    /// How many requests may go out back to back after a quiet period.
    burst: u32,
    /// Theoretical arrival time of the next request, and the end of a 429 pause.
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    tat: Instant,
    paused_until: Option<Instant>,
}

impl RateLimiter {
    /// `per_second` > 0; `burst` ≥ 1.
    pub fn new(per_second: f64, burst: u32) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            10.0
        };
        Self {
            emission: Duration::from_secs_f64(1.0 / per_second),
            burst: burst.max(1),
            inner: Mutex::new(Inner {
                tat: Instant::now(),
                paused_until: None,
            }),
        }
    }

    /// Reserves the next slot and returns how long to wait for it (zero: go now).
    pub fn reserve(&self, now: Instant) -> Duration {
        let mut g = self.inner.lock().expect("rate limiter lock");
        let start = match g.paused_until {
            Some(p) if p > now => p,
            _ => now,
        };
        // GCRA: allow up to `burst` requests ahead of the steady pace.
        let tolerance = self.emission * (self.burst - 1);
        let earliest = g.tat.checked_sub(tolerance).unwrap_or(g.tat);
        let at = earliest.max(start);
        g.tat = at.max(g.tat) + self.emission;
        at.saturating_duration_since(now)
    }

    /// Waits for the next slot.
    pub async fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// A 429 arrived: hold every request of this cloud for `pause` from now.
    pub fn pause(&self, pause: Duration, now: Instant) {
        let mut g = self.inner.lock().expect("rate limiter lock");
        let until = now + pause;
        if g.paused_until.is_none_or(|p| p < until) {
            g.paused_until = Some(until);
        }
    }
}

/// How long a 429 pauses a cloud: `Retry-After` when given (capped at 5 min), else an
/// exponential step with ±20 % jitter (`jitter` in 0..1, drawn by the caller).
pub fn throttle_pause(
    retry_after: Option<Duration>,
    consecutive_429: u32,
    jitter: f64,
) -> Duration {
    if let Some(r) = retry_after {
        return r.min(Duration::from_secs(300));
    }
    let base = Duration::from_secs(1) * 2u32.saturating_pow(consecutive_429.min(8));
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    base.mul_f64(factor).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paces_at_the_rate() {
        let rl = RateLimiter::new(10.0, 1);
        let now = Instant::now();
        let waits: Vec<Duration> = (0..5).map(|_| rl.reserve(now)).collect();
        assert_eq!(waits[0], Duration::ZERO);
        assert_eq!(waits[4], Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn burst_allows_back_to_back() {
        let rl = RateLimiter::new(10.0, 3);
        tokio::time::advance(Duration::from_secs(5)).await;
        let now = Instant::now();
        assert_eq!(rl.reserve(now), Duration::ZERO);
        assert_eq!(rl.reserve(now), Duration::ZERO);
        assert_eq!(rl.reserve(now), Duration::ZERO);
        assert!(rl.reserve(now) > Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_the_whole_cloud() {
        let rl = RateLimiter::new(100.0, 1);
        let now = Instant::now();
        rl.pause(Duration::from_secs(7), now);
        assert_eq!(rl.reserve(now), Duration::from_secs(7));
        let start = Instant::now();
        rl.acquire().await;
        assert!(Instant::now() - start >= Duration::from_millis(7010));
    }

    #[test]
    fn throttle_pause_honours_retry_after_and_backs_off() {
        assert_eq!(
            throttle_pause(Some(Duration::from_secs(3)), 5, 0.5),
            Duration::from_secs(3)
        );
        assert_eq!(
            throttle_pause(Some(Duration::from_secs(9999)), 0, 0.5),
            Duration::from_secs(300)
        );
        let a = throttle_pause(None, 0, 0.5);
        let b = throttle_pause(None, 3, 0.5);
        assert_eq!(a, Duration::from_secs(1));
        assert_eq!(b, Duration::from_secs(8));
        assert!(throttle_pause(None, 1, 0.0) < throttle_pause(None, 1, 1.0));
    }
}
