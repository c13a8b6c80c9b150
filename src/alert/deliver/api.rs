//! The delivery worker's vocabulary: the queued row, the store/sender/observer traits the
//! lead wires to the real SQLite outbox, channels and metrics, and the worker's settings.
//! Definitions only; no behaviour beyond trivial constructors.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::alert::Notification;

/// One queued notification for one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    /// Row id, unique in the outbox (e.g. `"{event_id}:{channel}"`).
    pub id: String,
    pub channel: String,
    /// Ordering key: notifications with the same channel and key go out strictly in order
    /// (the image id, or `cloud:{name}` for watcher alerts).
    pub image_key: String,
    pub payload: Notification,
    /// Unix seconds when the row was written; rows of one poll cycle share it.
    pub created_at: i64,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// The durable queue, as the worker sees it. Methods are called from the async worker and must
/// be quick (a local SQLite statement).
pub trait Outbox: Send + Sync {
    /// Due rows (`next_attempt_at <= now`), oldest first, at most `limit`. A later row for the
    /// same channel+image is never returned while an earlier one is still queued and not due.
    fn pending(&self, now: i64, limit: usize) -> anyhow::Result<Vec<OutboxItem>>;
    /// Removes delivered rows.
    fn mark_delivered(&self, ids: &[String]) -> anyhow::Result<()>;
    /// Counts a failed attempt and schedules the next one.
    fn mark_failed(&self, ids: &[String], next_attempt_at: i64, error: &str) -> anyhow::Result<()>;
    /// Removes and returns rows created more than `max_age_secs` before `now`.
    fn drop_expired(&self, now: i64, max_age_secs: i64) -> anyhow::Result<Vec<OutboxItem>>;
    /// Rows still queued.
    fn queue_len(&self) -> anyhow::Result<u64>;
}

/// Why a send failed. `message` ends up in logs and the store: senders keep secrets (URLs with
/// tokens, passwords) out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Retrying the same payload cannot help (e.g. 400, 404, rejected recipient).
    pub permanent: bool,
    pub message: String,
    /// The receiver asked to wait this long (HTTP `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl SendError {
    /// A failure worth retrying soon.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            permanent: false,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A failure that needs a config change to go away.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            permanent: true,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SendError {}

/// The future a [`Sender`] returns.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// One configured channel. A batch of more than one notification is a grouped storm message
/// and must be rendered as one message.
pub trait Sender: Send + Sync {
    /// The channel name from the config (the outbox's `channel`).
    fn name(&self) -> &str;
    /// Messages per minute this channel may send (0 is treated as 1).
    fn max_per_minute(&self) -> u32;
    /// Sends one message about `batch` (one or more notifications).
    fn send<'a>(&'a self, batch: &'a [Notification]) -> SendFuture<'a>;
}

/// Where delivery outcomes are counted (the metrics).
pub trait DeliveryObserver: Send + Sync {
    /// `n` notifications delivered on `channel`.
    fn sent(&self, channel: &str, n: usize);
    /// `n` notifications failed an attempt on `channel` (they stay queued).
    fn failed(&self, channel: &str, n: usize);
    /// `n` notifications given up after `max_age`.
    fn dropped(&self, channel: &str, n: usize);
    /// Rows still queued after a round.
    fn queue_length(&self, n: u64);
}

/// An observer that counts nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl DeliveryObserver for NoopObserver {
    fn sent(&self, _: &str, _: usize) {}
    fn failed(&self, _: &str, _: usize) {}
    fn dropped(&self, _: &str, _: usize) {}
    fn queue_length(&self, _: u64) {}
}

/// Worker settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// More notifications than this from one cycle for one channel go out as one message.
    pub group_threshold: usize,
    /// Give up on a row this long after it was written.
    pub max_age: Duration,
    /// Rows fetched per round.
    pub batch_limit: usize,
    /// Upper bound on one send, so a hung receiver cannot stall its channel forever.
    pub send_timeout: Duration,
    /// How often `run` looks at the queue when not woken.
    pub period: Duration,
    /// How long `run` may spend on the last round at shutdown.
    pub final_flush: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            group_threshold: 5,
            max_age: Duration::from_secs(24 * 3600),
            batch_limit: 5000,
            send_timeout: Duration::from_secs(60),
            period: Duration::from_secs(1),
            final_flush: Duration::from_secs(5),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Notifications delivered.
    pub sent: usize,
    /// Notifications whose attempt failed (still queued).
    pub failed: usize,
    /// Notifications left queued untried: over the rate limit, or behind a failed one.
    pub held: usize,
    /// Notifications given up after `max_age`.
    pub dropped: usize,
    /// Store calls that failed (logged).
    pub store_errors: usize,
}

impl DeliveryReport {
    pub(super) fn add(&mut self, o: &DeliveryReport) {
        self.sent += o.sent;
        self.failed += o.failed;
        self.held += o.held;
        self.dropped += o.dropped;
        self.store_errors += o.store_errors;
    }
}
