//! Adapters between modules that must not know each other: the client's and the delivery
//! worker's observers are the metrics; the worker's outbox is the state store.

use crate::alert::Notification;
use crate::alert::channel::Channel;
use crate::alert::deliver::{DeliveryObserver, Outbox, OutboxItem, SendError, SendFuture, Sender};
use crate::cloud::RequestObserver;
use crate::metrics::Metrics;
use crate::state::OutboxRow;
use crate::watch::Watcher;

impl RequestObserver for Metrics {
    fn observe(&self, cloud: &str, code: &str, seconds: f64) {
        self.api_request(cloud, code, seconds);
    }
    fn clock_skew(&self, cloud: &str, seconds: f64) {
        Metrics::clock_skew(self, cloud, seconds);
    }
}

impl DeliveryObserver for Metrics {
    fn sent(&self, channel: &str, n: usize) {
        for _ in 0..n {
            self.notification_sent(channel);
        }
    }
    fn failed(&self, channel: &str, n: usize) {
        for _ in 0..n {
            self.notification_failed(channel);
        }
    }
    fn dropped(&self, channel: &str, n: usize) {
        for _ in 0..n {
            self.notification_dropped(channel);
        }
    }
    fn queue_length(&self, n: u64) {
        self.set_queue_length(usize::try_from(n).unwrap_or(usize::MAX));
    }
}

/// The delivery worker's view of the state store's outbox table.
pub struct StoreOutbox(pub Watcher);

fn item(row: OutboxRow) -> Option<OutboxItem> {
    match serde_json::from_str::<Notification>(&row.payload) {
        Ok(payload) => Some(OutboxItem {
            id: row.id,
            channel: row.channel,
            image_key: row.image_key,
            payload,
            created_at: row.created_at,
            attempts: row.attempts,
        }),
        Err(e) => {
            tracing::error!(id = %row.id, channel = %row.channel, error = %e, "queued notification is unreadable; it stays until max_age drops it");
            None
        }
    }
}

impl Outbox for StoreOutbox {
    fn pending(&self, now: i64, limit: usize) -> anyhow::Result<Vec<OutboxItem>> {
        let rows = self.0.with_store(|s| s.pending(now, limit))?;
        Ok(rows.into_iter().filter_map(item).collect())
    }

    fn mark_delivered(&self, ids: &[String]) -> anyhow::Result<()> {
        self.0.with_store(|s| {
            for id in ids {
                s.mark_delivered(id)?;
            }
            Ok(())
        })
    }

    fn mark_failed(&self, ids: &[String], next_attempt_at: i64, error: &str) -> anyhow::Result<()> {
        self.0.with_store(|s| {
            for id in ids {
                s.mark_failed(id, next_attempt_at, error)?;
            }
            Ok(())
        })
    }

    fn drop_expired(&self, now: i64, max_age_secs: i64) -> anyhow::Result<Vec<OutboxItem>> {
        let rows = self.0.with_store(|s| s.drop_expired(now, max_age_secs))?;
        Ok(rows.into_iter().filter_map(item).collect())
    }

    fn queue_len(&self) -> anyhow::Result<u64> {
        Ok(self.0.with_store(|s| s.queue_len())?)
    }
}

/// A configured email/webhook channel as the worker's sender.
pub struct ChannelSender(pub Channel);

impl Sender for ChannelSender {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn max_per_minute(&self) -> u32 {
        self.0.max_per_minute()
    }
    fn send<'a>(&'a self, batch: &'a [Notification]) -> SendFuture<'a> {
        Box::pin(async move {
            self.0.send(batch).await.map_err(|e| SendError {
                permanent: e.permanent,
                message: e.message,
                retry_after: e.retry_after,
            })
        })
    }
}
