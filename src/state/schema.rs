//! The SQLite schema as an ordered list of migrations; `meta.schema_version` says how many
//! have run. It must only ever append: a shipped migration is never edited.

use rusqlite::{Connection, OptionalExtension};

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: images, bounded event history, alert state, notification outbox.
    r"
    CREATE TABLE images (
        id    TEXT PRIMARY KEY,
        state TEXT NOT NULL
    );
    CREATE TABLE events (
        n        INTEGER PRIMARY KEY AUTOINCREMENT,
        id       TEXT NOT NULL UNIQUE,
        image_id TEXT NOT NULL,
        seq      INTEGER NOT NULL,
        at       INTEGER NOT NULL,
        json     TEXT NOT NULL
    );
    CREATE INDEX events_by_image ON events (image_id, n);
    CREATE TABLE alert_state (
        key  TEXT PRIMARY KEY,
        json TEXT NOT NULL
    );
    CREATE TABLE outbox (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        id              TEXT NOT NULL UNIQUE CHECK (id <> ''),
        channel         TEXT NOT NULL CHECK (channel <> ''),
        image_key       TEXT NOT NULL,
        payload         TEXT NOT NULL CHECK (json_valid(payload)),
        created_at      INTEGER NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT
    );
    CREATE INDEX outbox_due ON outbox (next_attempt_at);
    CREATE INDEX outbox_by_key ON outbox (channel, image_key, seq);
    ",
];

/// The schema version this build writes.
#[allow(clippy::cast_possible_truncation)] // reason: a handful of migrations, never 2^32
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

/// What [`migrate`] found.
pub enum Migrated {
    /// The schema is at [`CURRENT_VERSION`] now.
    Ok,
    /// The file was written by a newer build (its version is given); nothing was changed.
    TooNew(u32),
}

/// Creates the `meta` table if needed and runs every migration not yet applied, each in its
/// own transaction together with the version bump.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<Migrated> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        [],
    )?;
    let found: u32 = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if found > CURRENT_VERSION {
        return Ok(Migrated::TooNew(found));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [(i + 1).to_string()],
        )?;
        tx.commit()?;
    }
    Ok(Migrated::Ok)
}
