//! The durable notification outbox (PRODUCT 3.4): rows are queued in the same transaction as
//! the change that caused them, handed out in order per channel and image, and removed when
//! delivered or expired. It stores and orders; it does not send, back off or decide.

use std::collections::BTreeMap;

use rusqlite::{Row, Transaction, params};

use super::error::StoreError;
use super::store::Store;

/// A notification to queue. `payload` must be JSON (the database checks it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxRow {
    /// Deterministic notification id: queuing the same id twice keeps the first.
    pub id: String,
    /// Channel name from the config.
    pub channel: String,
    /// Ordering key within the channel: the image id (or e.g. `cloud:<name>`).
    pub image_key: String,
    /// The serialized notification (never signed headers: those are made per attempt).
    pub payload: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; usually `created_at`.
    pub next_attempt_at: i64,
}

/// A queued notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Queue position: delivery order.
    pub seq: i64,
    pub id: String,
    pub channel: String,
    pub image_key: String,
    pub payload: String,
    pub created_at: i64,
    pub next_attempt_at: i64,
    /// Failed attempts so far.
    pub attempts: u32,
    pub last_error: Option<String>,
}

const COLUMNS: &str =
    "seq, id, channel, image_key, payload, created_at, next_attempt_at, attempts, last_error";

fn row_of(r: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        channel: r.get(2)?,
        image_key: r.get(3)?,
        payload: r.get(4)?,
        created_at: r.get(5)?,
        next_attempt_at: r.get(6)?,
        attempts: r.get(7)?,
        last_error: r.get(8)?,
    })
}

/// Queues one row inside a caller's transaction; a known id is skipped.
pub(super) fn insert_outbox(tx: &Transaction<'_>, row: &NewOutboxRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO outbox (id, channel, image_key, payload, created_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
    )?
    .execute(params![
        row.id,
        row.channel,
        row.image_key,
        row.payload,
        row.created_at,
        row.next_attempt_at
    ])?;
    Ok(())
}

impl Store {
    /// Up to `limit` rows due at `now`, in queue order, leaving out any row whose channel and
    /// image key has an earlier row that is not yet due (so per channel and image, delivery is
    /// strictly in order). Several rows of one key may come back: the caller must deliver them
    /// in the order given and stop that key at its first failure.
    pub fn pending(&self, now: i64, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM outbox o
                 WHERE o.next_attempt_at <= ?1
                   AND NOT EXISTS (
                       SELECT 1 FROM outbox p
                       WHERE p.channel = o.channel AND p.image_key = o.image_key
                         AND p.seq < o.seq AND p.next_attempt_at > ?1)
                 ORDER BY o.seq LIMIT ?2"
            ))
            .map_err(|e| self.sql_err(e))?;
        stmt.query_map(params![now, limit], row_of)
            .and_then(Iterator::collect)
            .map_err(|e| self.sql_err(e))
    }

    /// Removes a delivered row. Returns false if it was not queued (already removed).
    pub fn mark_delivered(&mut self, id: &str) -> Result<bool, StoreError> {
        self.conn
            .execute("DELETE FROM outbox WHERE id = ?1", [id])
            .map(|n| n > 0)
            .map_err(|e| self.sql_err(e))
    }

    /// Records a failed attempt and when to try again. Returns false if the row is gone.
    pub fn mark_failed(
        &mut self,
        id: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3
                 WHERE id = ?1",
                params![id, next_attempt_at, error],
            )
            .map(|n| n > 0)
            .map_err(|e| self.sql_err(e))
    }

    /// Removes rows queued `max_age_secs` or longer ago and returns them, so the caller can
    /// log and count what it gave up on.
    pub fn drop_expired(
        &mut self,
        now: i64,
        max_age_secs: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let cutoff = now.saturating_sub(max_age_secs);
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        let dropped: Vec<OutboxRow> = tx
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM outbox WHERE created_at <= ?1 ORDER BY seq"
            ))
            .and_then(|mut s| s.query_map([cutoff], row_of)?.collect())
            .map_err(err)?;
        if !dropped.is_empty() {
            tx.execute("DELETE FROM outbox WHERE created_at <= ?1", [cutoff])
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(dropped)
    }

    /// Number of queued notifications.
    pub fn queue_len(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))
            .map(count)
            .map_err(|e| self.sql_err(e))
    }

    /// Number of queued notifications per channel (channels with none are absent).
    pub fn queue_len_by_channel(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT channel, COUNT(*) FROM outbox GROUP BY channel")
            .map_err(|e| self.sql_err(e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, count(r.get(1)?))))
            .and_then(Iterator::collect)
            .map_err(|e| self.sql_err(e))
    }
}

/// SQLite counts are never negative.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
