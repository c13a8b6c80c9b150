//! The durable state store (PRODUCT 3.2, 3.4, 4): image states, a bounded event history, alert
//! state and the notification outbox in one SQLite file. It stores what it is given and decides
//! nothing; the outbox half lives in `outbox.rs`.
//!
//! Durability: WAL with `synchronous = FULL`. In WAL mode `NORMAL` already survives a killed
//! process, but a power cut may roll back the last transactions; with `FULL` a transaction is
//! on disk when [`Store::commit`] returns, so a notification the daemon has recorded (and
//! maybe reported as queued) cannot vanish, and one it has marked delivered is not sent again.
//! The cost is one fsync per transaction, which [`Store::commit_many`] amortises over a whole
//! poll cycle.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, Transaction, params};

use super::error::StoreError;
use super::outbox::{NewOutboxRow, insert_outbox};
use super::schema::{self, Migrated};
use super::track::{ChangeEvent, ImageState};

/// Default number of change events kept (newest first, over all images).
pub const DEFAULT_MAX_EVENTS: usize = 10_000;

/// How long a writer waits for a lock held by another connection (e.g. `sqlite3` CLI).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything one observation changes, written in one transaction.
#[derive(Debug, Default, Clone)]
pub struct Commit<'a> {
    /// The new state of the observed image, if it is to be saved.
    pub image: Option<&'a ImageState>,
    /// Change events; an id already stored is skipped (replay after a crash).
    pub events: &'a [ChangeEvent],
    /// Alert state by key: `Some(json)` sets it, `None` deletes it.
    pub alert_state: Vec<(String, Option<String>)>,
    /// Notifications to queue; an id already queued is skipped (replay after a crash).
    pub outbox: Vec<NewOutboxRow>,
}

/// The SQLite state store. One connection; not `Sync` — wrap it in a mutex or own it in one
/// task.
pub struct Store {
    pub(super) conn: Connection,
    /// Shown in every error.
    pub(super) path: String,
    max_events: usize,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("max_events", &self.max_events)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if missing) the database at `path`, checks its integrity and brings its
    /// schema up to date. The directory must exist.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let conn = Connection::open(path).map_err(|e| StoreError::Open {
            path: shown.clone(),
            source: e,
        })?;
        Self::init(conn, shown, true)
    }

    /// A private in-memory database (tests, `once`).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let shown = ":memory:".to_string();
        let conn = Connection::open_in_memory().map_err(|e| StoreError::Open {
            path: shown.clone(),
            source: e,
        })?;
        Self::init(conn, shown, false)
    }

    /// Sets how many change events are kept (default [`DEFAULT_MAX_EVENTS`]).
    #[must_use]
    pub fn with_max_events(mut self, max_events: usize) -> Self {
        self.max_events = max_events;
        self
    }

    /// The file this store uses, as shown in errors.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn init(mut conn: Connection, path: String, on_disk: bool) -> Result<Self, StoreError> {
        let err = |e| StoreError::from_sqlite(&path, e);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        // The first statement reads the header: a non-database fails here with NOTADB.
        if on_disk {
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
                .map_err(err)?;
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        let mut problems = Vec::new();
        {
            let mut stmt = conn.prepare("PRAGMA quick_check").map_err(err)?;
            let mut rows = stmt.query([]).map_err(err)?;
            while let Some(row) = rows.next().map_err(err)? {
                let line: String = row.get(0).map_err(err)?;
                if line != "ok" && problems.len() < 3 {
                    problems.push(line);
                }
            }
        }
        if !problems.is_empty() {
            return Err(StoreError::Corrupt {
                detail: format!("integrity check failed: {}", problems.join("; ")),
                path,
            });
        }
        match schema::migrate(&mut conn).map_err(err)? {
            Migrated::Ok => {}
            Migrated::TooNew(found) => {
                return Err(StoreError::TooNew {
                    path,
                    found,
                    supported: schema::CURRENT_VERSION,
                });
            }
        }
        Ok(Self {
            conn,
            path,
            max_events: DEFAULT_MAX_EVENTS,
        })
    }

    pub(super) fn sql_err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::from_sqlite(&self.path, e)
    }

    /// Writes one observation's effects atomically: all of it lands, or none of it.
    pub fn commit(&mut self, c: &Commit<'_>) -> Result<(), StoreError> {
        self.commit_many(std::slice::from_ref(c))
    }

    /// Writes many observations' effects in one transaction (one fsync for a whole cycle).
    /// All of them land, or none.
    pub fn commit_many(&mut self, commits: &[Commit<'_>]) -> Result<(), StoreError> {
        let max_events = self.max_events;
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| StoreError::from_sqlite(&path, e))?;
        let mut any_events = false;
        for c in commits {
            any_events |= !c.events.is_empty();
            write_commit(&tx, c, &path)?;
        }
        if any_events {
            prune_events(&tx, max_events).map_err(|e| StoreError::from_sqlite(&path, e))?;
        }
        // Dropping `tx` on an early return above rolls everything back.
        tx.commit().map_err(|e| StoreError::from_sqlite(&path, e))
    }

    /// Every stored image state, by image id.
    pub fn load_images(&self) -> Result<HashMap<String, ImageState>, StoreError> {
        let rows = self.query_pairs("SELECT id, state FROM images")?;
        rows.into_iter()
            .map(|(id, json)| {
                let state = serde_json::from_str(&json).map_err(|source| StoreError::Decode {
                    path: self.path.clone(),
                    what: format!("state of image {id}"),
                    source,
                })?;
                Ok((id, state))
            })
            .collect()
    }

    /// Every stored alert state, key → JSON (the alert module owns the format).
    pub fn load_alert_state(&self) -> Result<HashMap<String, String>, StoreError> {
        Ok(self
            .query_pairs("SELECT key, json FROM alert_state")?
            .into_iter()
            .collect())
    }

    /// The newest `limit` change events, newest first, of one image or of all.
    pub fn recent_events(
        &self,
        limit: usize,
        image_id: Option<&str>,
    ) -> Result<Vec<ChangeEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, json FROM events WHERE ?1 IS NULL OR image_id = ?1
                 ORDER BY n DESC LIMIT ?2",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map(params![image_id, limit], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| self.sql_err(e))?;
        rows.into_iter()
            .map(|(id, json)| {
                serde_json::from_str(&json).map_err(|source| StoreError::Decode {
                    path: self.path.clone(),
                    what: format!("event {id}"),
                    source,
                })
            })
            .collect()
    }

    /// Forgets an image: its state and its event history (queued notifications stay and are
    /// delivered). Its sequence numbers restart at 1 if it is watched again, so event ids
    /// would repeat: callers should keep the state of images dropped from the config unless
    /// they are sure (it is one small row).
    pub fn delete_image(&mut self, id: &str) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute("DELETE FROM images WHERE id = ?1", [id])
            .map_err(err)?;
        tx.execute("DELETE FROM events WHERE image_id = ?1", [id])
            .map_err(err)?;
        tx.commit().map_err(err)
    }

    fn query_pairs(&self, sql: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.sql_err(e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(|e| self.sql_err(e))
    }
}

fn write_commit(tx: &Transaction<'_>, c: &Commit<'_>, path: &str) -> Result<(), StoreError> {
    let err = |e| StoreError::from_sqlite(path, e);
    if let Some(image) = c.image {
        let json = serde_json::to_string(image).map_err(|source| StoreError::Decode {
            path: path.to_string(),
            what: format!("state of image {}", image.id),
            source,
        })?;
        tx.prepare_cached(
            "INSERT INTO images (id, state) VALUES (?1, ?2)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state",
        )
        .and_then(|mut s| s.execute(params![image.id, json]))
        .map_err(err)?;
    }
    for e in c.events {
        let json = serde_json::to_string(e).map_err(|source| StoreError::Decode {
            path: path.to_string(),
            what: format!("event {}", e.id),
            source,
        })?;
        tx.prepare_cached(
            "INSERT INTO events (id, image_id, seq, at, json) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                e.id,
                e.image_id,
                i64::try_from(e.seq).unwrap_or(i64::MAX),
                e.at,
                json
            ])
        })
        .map_err(err)?;
    }
    for (key, value) in &c.alert_state {
        let res = match value {
            Some(json) => tx
                .prepare_cached(
                    "INSERT INTO alert_state (key, json) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET json = excluded.json",
                )
                .and_then(|mut s| s.execute(params![key, json])),
            None => tx
                .prepare_cached("DELETE FROM alert_state WHERE key = ?1")
                .and_then(|mut s| s.execute([key])),
        };
        res.map_err(err)?;
    }
    for row in &c.outbox {
        insert_outbox(tx, row).map_err(err)?;
    }
    Ok(())
}

/// Keeps the newest `max` events. Uses the `n` key (insertion order), so it costs an index
/// seek plus the rows deleted.
fn prune_events(tx: &Transaction<'_>, max: usize) -> rusqlite::Result<()> {
    let offset = i64::try_from(max).unwrap_or(i64::MAX);
    tx.prepare_cached(
        "DELETE FROM events WHERE n <= (SELECT n FROM events ORDER BY n DESC LIMIT 1 OFFSET ?1)",
    )?
    .execute([offset])?;
    Ok(())
}

#[cfg(test)]
#[path = "store_tests.rs"]
pub(crate) mod tests;
