//! The systemd notify protocol: `READY=1`, `STATUS=`, `RELOADING=1`, `STOPPING=1` and watchdog
//! pings tied to the poll loop's heartbeat (never to the cloud answering: an outage must not
//! become a restart loop). Every call is a no-op when `NOTIFY_SOCKET` is unset.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

/// Sends `READY=1` and a first `STATUS=`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Sends `STATUS=` with a one-line summary.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// Sends `RELOADING=1` (with the monotonic timestamp systemd wants) before a reload.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(ts) => send(&[NotifyState::Reloading, ts]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// Sends `READY=1` after a reload.
pub fn reloaded(status: &str) {
    ready(status);
}

/// Sends `STOPPING=1`.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// The watchdog interval systemd asked for (`WATCHDOG_USEC`, honouring `WATCHDOG_PID`).
pub fn watchdog_interval() -> Option<Duration> {
    std::env::var_os("NOTIFY_SOCKET")?;
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        // The watchdog is meant for another process (e.g. a wrapper); do not ping.
        if pid.parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// A heartbeat the poll loop beats while it is alive; the watchdog pings only while it is
/// fresh. Shared between the poll loop (writer) and the watchdog task (reader).
#[derive(Debug, Clone, Default)]
pub struct Heartbeat(Arc<AtomicU64>);

impl Heartbeat {
    /// Records "alive now" (milliseconds on tokio's clock since an arbitrary origin).
    pub fn beat(&self) {
        self.0.store(now_ms(), Ordering::Relaxed);
    }

    /// How long since the last beat.
    pub fn age(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.0.load(Ordering::Relaxed)))
    }
}

fn now_ms() -> u64 {
    static START: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(tokio::time::Instant::now);
    u64::try_from(
        tokio::time::Instant::now()
            .duration_since(start)
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// Pings `WATCHDOG=1` every `interval / 2` while the heartbeat is younger than `interval`.
pub async fn watchdog_task(interval: Duration, heartbeat: Heartbeat, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(interval / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                if heartbeat.age() < interval {
                    send(&[NotifyState::Watchdog]);
                } else {
                    tracing::error!(age = ?heartbeat.age(), "poll loop heartbeat is stale; withholding the watchdog ping");
                }
            }
        }
    }
}
