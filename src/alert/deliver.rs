//! The delivery worker: drains the durable outbox into the channels — grouping storms, keeping
//! per-channel rate limits, per channel+image order, and retrying with backoff until `max_age`.
//! It must not decide what to send (that is `rules`) nor render payloads (that is the senders);
//! it knows the store and the channels only through the small traits below.
//!
//! Delivery is at-least-once: a row is marked delivered only after its send succeeded, so a
//! crash between the two re-sends it with the same event id, which receivers de-duplicate.
//! A permanent failure (e.g. 400 Bad Request) is logged at error and retried at the backoff cap
//! rather than dropped: the channel's config may be fixed by a reload, and nothing is dropped
//! silently. Every row — failing or for a channel no longer configured — is dropped only once
//! it is older than `max_age`, and that drop is counted and logged.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::alert::Notification;

mod api;
mod plan;
#[cfg(test)]
mod tests;

pub use api::{
    DeliveryConfig, DeliveryObserver, DeliveryReport, NoopObserver, Outbox, OutboxItem, SendError,
    SendFuture, Sender,
};
pub use plan::{BACKOFF_BASE, BACKOFF_CAP, retry_delay};

/// Unix seconds from the system clock (what `run` uses unless told otherwise).
pub fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The delivery worker. Build it with [`Deliverer::new`], drive it with [`Deliverer::run`]
/// (or [`Deliverer::deliver_once`] in tests).
pub struct Deliverer {
    outbox: Arc<dyn Outbox>,
    senders: HashMap<String, Arc<dyn Sender>>,
    observer: Arc<dyn DeliveryObserver>,
    config: DeliveryConfig,
    /// Send instants of the last minute per channel (tokio clock). Locked only briefly, never
    /// across an await.
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Wall clock for `run` (Unix seconds); replaceable for tests.
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

impl Deliverer {
    /// A worker over `outbox` delivering to `senders` (keyed by their names).
    pub fn new(
        outbox: Arc<dyn Outbox>,
        senders: Vec<Arc<dyn Sender>>,
        observer: Arc<dyn DeliveryObserver>,
        config: DeliveryConfig,
    ) -> Self {
        Self {
            outbox,
            senders: senders
                .into_iter()
                .map(|s| (s.name().to_string(), s))
                .collect(),
            observer,
            config,
            windows: Mutex::new(HashMap::new()),
            clock: Arc::new(system_now),
        }
    }

    /// Replaces the wall clock `run` reads (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> i64 + Send + Sync>) -> Self {
        self.clock = clock;
        self
    }

    /// One round: drop expired rows, send what is due (channels in parallel), record outcomes.
    pub async fn deliver_once(&self, now: i64) -> DeliveryReport {
        let mut report = DeliveryReport::default();
        self.drop_expired(now, &mut report);

        let items = match self.outbox.pending(now, self.config.batch_limit) {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "reading the notification outbox failed");
                report.store_errors += 1;
                Vec::new()
            }
        };
        let mut by_channel: Vec<(String, Vec<OutboxItem>)> = Vec::new();
        for item in items {
            match by_channel.iter_mut().find(|(c, _)| *c == item.channel) {
                Some((_, v)) => v.push(item),
                None => by_channel.push((item.channel.clone(), vec![item])),
            }
        }
        let rounds = by_channel
            .into_iter()
            .map(|(channel, items)| self.deliver_channel(channel, items, now));
        for r in futures::future::join_all(rounds).await {
            report.add(&r);
        }

        match self.outbox.queue_len() {
            Ok(n) => self.observer.queue_length(n),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "counting the notification outbox failed");
                report.store_errors += 1;
            }
        }
        report
    }

    fn drop_expired(&self, now: i64, report: &mut DeliveryReport) {
        let max_age = i64::try_from(self.config.max_age.as_secs()).unwrap_or(i64::MAX);
        let expired = match self.outbox.drop_expired(now, max_age) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "dropping expired notifications failed");
                report.store_errors += 1;
                return;
            }
        };
        let mut per_channel: HashMap<&str, Vec<&OutboxItem>> = HashMap::new();
        for item in &expired {
            per_channel.entry(&item.channel).or_default().push(item);
        }
        for (channel, items) in per_channel {
            let ids: Vec<&str> = items.iter().map(|i| i.payload.event_id.as_str()).collect();
            tracing::warn!(
                channel,
                count = items.len(),
                event_ids = ?ids,
                max_age = %humantime::format_duration(self.config.max_age),
                "giving up on notifications not delivered within max_age"
            );
            self.observer.dropped(channel, items.len());
            report.dropped += items.len();
        }
    }

    async fn deliver_channel(
        &self,
        channel: String,
        items: Vec<OutboxItem>,
        now: i64,
    ) -> DeliveryReport {
        let mut report = DeliveryReport::default();
        let Some(sender) = self.senders.get(&channel).cloned() else {
            let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
            let msg = format!(
                "unknown channel {channel:?} (removed from the configuration?); \
                 dropped after max_age"
            );
            tracing::error!(channel, count = ids.len(), "{msg}");
            let next = now.saturating_add(secs_ceil(BACKOFF_CAP));
            note_store(&mut report, self.outbox.mark_failed(&ids, next, &msg));
            self.observer.failed(&channel, ids.len());
            report.failed += ids.len();
            return report;
        };

        let units = plan::units(items, self.config.group_threshold);
        let mut blocked: HashSet<String> = HashSet::new();
        let mut iter = units.into_iter();
        while let Some(unit) = iter.next() {
            // Per channel+image order: nothing overtakes a failed notification.
            let (unit, behind): (Vec<_>, Vec<_>) = unit
                .into_iter()
                .partition(|i| !blocked.contains(&i.image_key));
            report.held += behind.len();
            if unit.is_empty() {
                continue;
            }
            if !self.take_token(&channel, sender.max_per_minute()) {
                report.held += unit.len() + iter.by_ref().map(|u| u.len()).sum::<usize>();
                tracing::debug!(channel, held = report.held, "rate limit reached");
                break;
            }
            let ids: Vec<String> = unit.iter().map(|i| i.id.clone()).collect();
            let batch: Vec<Notification> = unit.iter().map(|i| i.payload.clone()).collect();
            let outcome =
                match tokio::time::timeout(self.config.send_timeout, sender.send(&batch)).await {
                    Ok(r) => r,
                    Err(_) => Err(SendError::transient(format!(
                        "no answer within {}",
                        humantime::format_duration(self.config.send_timeout)
                    ))),
                };
            match outcome {
                Ok(()) => {
                    note_store(&mut report, self.outbox.mark_delivered(&ids));
                    self.observer.sent(&channel, ids.len());
                    report.sent += ids.len();
                }
                Err(err) => {
                    blocked.extend(unit.iter().map(|i| i.image_key.clone()));
                    let attempts = unit.iter().map(|i| i.attempts).max().unwrap_or(0);
                    let jitter = rand::rng().random_range(0.8..=1.2);
                    let delay = retry_delay(attempts, err.permanent, err.retry_after, jitter);
                    let next = now.saturating_add(secs_ceil(delay));
                    let event_ids: Vec<&str> = batch.iter().map(|n| n.event_id.as_str()).collect();
                    if err.permanent {
                        tracing::error!(
                            channel, event_ids = ?event_ids, attempts = attempts + 1,
                            retry_in = %humantime::format_duration(delay), error = %err,
                            "channel rejected the notification; fix its config (retried until max_age)"
                        );
                    } else {
                        tracing::warn!(
                            channel, event_ids = ?event_ids, attempts = attempts + 1,
                            retry_in = %humantime::format_duration(delay), error = %err,
                            "sending a notification failed; will retry"
                        );
                    }
                    note_store(
                        &mut report,
                        self.outbox.mark_failed(&ids, next, &err.message),
                    );
                    self.observer.failed(&channel, ids.len());
                    report.failed += ids.len();
                }
            }
        }
        report
    }

    /// Takes one send from the channel's sliding one-minute window, if there is room.
    fn take_token(&self, channel: &str, max_per_minute: u32) -> bool {
        let now = Instant::now();
        let mut windows = self.windows.lock().expect("rate window lock poisoned");
        let window = windows.entry(channel.to_string()).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            window.pop_front();
        }
        if window.len() >= max_per_minute.max(1) as usize {
            return false;
        }
        window.push_back(now);
        true
    }

    /// Delivers until `shutdown`: a round every `period` or whenever `wake` is notified (the
    /// poller notifies after committing new rows). At shutdown, one last round bounded by
    /// `final_flush`; what it cannot send stays queued for the next start.
    pub async fn run(self, shutdown: CancellationToken, wake: Arc<Notify>) {
        let mut tick = tokio::time::interval(self.config.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = wake.notified() => {}
                _ = tick.tick() => {}
            }
            self.deliver_once((self.clock)()).await;
        }
        let last = self.deliver_once((self.clock)());
        if tokio::time::timeout(self.config.final_flush, last)
            .await
            .is_err()
        {
            tracing::warn!(
                "final notification flush did not finish in time; the rest stays queued"
            );
        }
    }
}

/// Whole seconds, rounded up.
fn secs_ceil(d: Duration) -> i64 {
    i64::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(i64::MAX)
}

/// Logs and counts a failed outbox update; the row stays as it was (at worst re-sent later).
fn note_store(report: &mut DeliveryReport, r: anyhow::Result<()>) {
    if let Err(e) = r {
        tracing::error!(error = %format!("{e:#}"), "updating the notification outbox failed");
        report.store_errors += 1;
    }
}
