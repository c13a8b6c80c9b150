//! Tests of the SQLite store: atomic commits, restart, replay, pruning, corruption.

use std::path::Path;

use super::*;
use crate::cloud::{ApiError, ApiErrorKind, Image, ImageId};
use crate::state::StoreError;
use crate::state::outbox::{NewOutboxRow, OutboxRow};
use crate::state::track::{ChangeEvent, ImageState, observe};

fn state(id: &str, status: &str) -> ImageState {
    let mut s = ImageState::new(&ImageId::parse(id).unwrap());
    s.status = Some(status.into());
    s.first_seen = Some(1);
    s
}

/// An image that went ACTIVE → ERROR, with its event.
fn changed(id: &str) -> (ImageState, Vec<ChangeEvent>) {
    let iid = ImageId::parse(id).unwrap();
    let ok = |st: &str| -> Result<Image, ApiError> {
        Ok(Image {
            status: Some(st.into()),
            ..Image::default()
        })
    };
    let s = observe(None, &iid, &ok("ACTIVE"), 10).state;
    let o = observe(Some(&s), &iid, &ok("ERROR"), 20);
    assert_eq!(o.events.len(), 1);
    (o.state, o.events)
}

/// An outbox row for tests (shared with the outbox tests).
pub(crate) fn row(id: &str, channel: &str, key: &str, at: i64) -> NewOutboxRow {
    NewOutboxRow {
        id: id.into(),
        channel: channel.into(),
        image_key: key.into(),
        payload: format!(r#"{{"event_id":"{id}"}}"#),
        created_at: at,
        next_attempt_at: at,
    }
}

/// The ids of rows, in order.
pub(crate) fn ids(rows: &[OutboxRow]) -> Vec<&str> {
    rows.iter().map(|r| r.id.as_str()).collect()
}

#[test]
fn commit_round_trip() {
    let mut store = Store::open_in_memory().unwrap();
    let (s, events) = changed("img-1");
    store
        .commit(&Commit {
            image: Some(&s),
            events: &events,
            alert_state: vec![("img-1".into(), Some(r#"{"firing":"ERROR"}"#.into()))],
            outbox: vec![row("n1", "mail", "img-1", 20)],
        })
        .unwrap();
    assert_eq!(store.load_images().unwrap()["img-1"], s);
    assert_eq!(store.recent_events(10, None).unwrap(), events);
    assert_eq!(
        store.load_alert_state().unwrap()["img-1"],
        r#"{"firing":"ERROR"}"#
    );
    let pending = store.pending(20, 10).unwrap();
    assert_eq!(ids(&pending), ["n1"]);
    assert_eq!(pending[0].attempts, 0);
    // None deletes an alert state.
    store
        .commit(&Commit {
            alert_state: vec![("img-1".into(), None)],
            ..Commit::default()
        })
        .unwrap();
    assert!(store.load_alert_state().unwrap().is_empty());
}

#[test]
fn a_failing_commit_leaves_nothing_behind() {
    let mut store = Store::open_in_memory().unwrap();
    let before = state("img-1", "ACTIVE");
    store
        .commit(&Commit {
            image: Some(&before),
            ..Commit::default()
        })
        .unwrap();
    let (after, events) = changed("img-1");
    let mut bad = row("n2", "mail", "img-1", 20);
    bad.payload = "not json {".into();
    let err = store
        .commit(&Commit {
            image: Some(&after),
            events: &events,
            alert_state: vec![("img-1".into(), Some("{}".into()))],
            outbox: vec![row("n1", "mail", "img-1", 20), bad],
        })
        .unwrap_err();
    assert!(err.to_string().contains(":memory:"), "{err}");
    assert_eq!(store.load_images().unwrap()["img-1"], before);
    assert!(store.recent_events(10, None).unwrap().is_empty());
    assert!(store.load_alert_state().unwrap().is_empty());
    assert_eq!(store.queue_len().unwrap(), 0);
}

#[test]
fn commit_many_is_atomic_too() {
    let mut store = Store::open_in_memory().unwrap();
    let a = state("img-a", "ACTIVE");
    let b = state("img-b", "ACTIVE");
    let bad = row("n1", "", "img-b", 0); // empty channel: violates a CHECK constraint
    let good = Commit {
        image: Some(&a),
        ..Commit::default()
    };
    let failing = Commit {
        image: Some(&b),
        outbox: vec![bad],
        ..Commit::default()
    };
    assert!(store.commit_many(&[good.clone(), failing]).is_err());
    assert!(store.load_images().unwrap().is_empty());
    store.commit_many(&[good]).unwrap();
    assert_eq!(store.load_images().unwrap().len(), 1);
}

#[test]
fn replay_does_not_duplicate_events_or_notifications() {
    let mut store = Store::open_in_memory().unwrap();
    let (s, events) = changed("img-1");
    let c = Commit {
        image: Some(&s),
        events: &events,
        alert_state: vec![],
        outbox: vec![row("n1", "mail", "img-1", 20)],
    };
    store.commit(&c).unwrap();
    store.mark_failed("n1", 50, "timeout").unwrap();
    store.commit(&c).unwrap();
    assert_eq!(store.recent_events(10, None).unwrap().len(), 1);
    assert_eq!(store.queue_len().unwrap(), 1);
    // The replay did not reset the retry bookkeeping either.
    let row = &store.pending(50, 10).unwrap()[0];
    assert_eq!(
        (row.attempts, row.last_error.as_deref()),
        (1, Some("timeout"))
    );
}

#[test]
fn restart_resumes_state_events_and_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (s, events) = changed("img-1");
    {
        let mut store = Store::open(&path).unwrap();
        store
            .commit(&Commit {
                image: Some(&s),
                events: &events,
                alert_state: vec![("img-1".into(), Some("{}".into()))],
                outbox: vec![
                    row("n1", "mail", "img-1", 20),
                    row("n2", "hook", "img-1", 20),
                ],
            })
            .unwrap();
        store.mark_delivered("n2").unwrap();
        store.mark_failed("n1", 30, "smtp 421").unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.load_images().unwrap()["img-1"], s);
    assert_eq!(store.recent_events(10, Some("img-1")).unwrap(), events);
    assert_eq!(store.load_alert_state().unwrap().len(), 1);
    assert!(store.pending(29, 10).unwrap().is_empty());
    let rows = store.pending(30, 10).unwrap();
    assert_eq!(ids(&rows), ["n1"]);
    assert_eq!(rows[0].attempts, 1);
}

#[test]
fn event_history_is_bounded_newest_kept() {
    let mut store = Store::open_in_memory().unwrap().with_max_events(3);
    let iid = ImageId::parse("img-1").unwrap();
    let mut s = observe(
        None,
        &iid,
        &Ok(Image {
            status: Some("ACTIVE".into()),
            size: Some(0),
            ..Image::default()
        }),
        0,
    )
    .state;
    for kb in 1..=5 {
        let o = observe(
            Some(&s),
            &iid,
            &Ok(Image {
                status: Some("ACTIVE".into()),
                size: Some(kb),
                ..Image::default()
            }),
            kb.cast_signed(),
        );
        store
            .commit(&Commit {
                image: Some(&o.state),
                events: &o.events,
                ..Commit::default()
            })
            .unwrap();
        s = o.state;
    }
    let seqs: Vec<u64> = store
        .recent_events(10, None)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, [5, 4, 3]);
    assert_eq!(store.recent_events(2, Some("img-1")).unwrap().len(), 2);
    assert!(store.recent_events(10, Some("other")).unwrap().is_empty());
}

fn assert_corrupt_error(path: &Path) {
    let err = Store::open(path).unwrap_err();
    let msg = err.to_string();
    let shown = path.display().to_string();
    assert!(err.is_corrupt(), "{msg}");
    assert!(msg.contains(&shown), "{msg}");
    assert!(
        msg.contains(&format!("mv {shown} {shown}.corrupt")),
        "{msg}"
    );
}

#[test]
fn garbage_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(
        &path,
        b"this is not a database at all, just some bytes.".repeat(100),
    )
    .unwrap();
    assert_corrupt_error(&path);
    assert!(err_text(&path).contains("not a valid SQLite database"));
}

fn err_text(path: &Path) -> String {
    Store::open(path).unwrap_err().to_string()
}

#[test]
fn damaged_pages_are_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let mut store = Store::open(&path).unwrap();
        let states: Vec<ImageState> = (0..300)
            .map(|i| state(&format!("img-{i}"), "ACTIVE"))
            .collect();
        let commits: Vec<Commit> = states
            .iter()
            .map(|s| Commit {
                image: Some(s),
                ..Commit::default()
            })
            .collect();
        store.commit_many(&commits).unwrap();
    }
    // Keep the header page, smash everything after it.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8192, "{}", bytes.len());
    for b in &mut bytes[4096..] {
        *b = 0xA5;
    }
    std::fs::write(&path, bytes).unwrap();
    assert_corrupt_error(&path);
}

#[test]
fn missing_directory_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope").join("state.db");
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(err.to_string().contains("nope/state.db"), "{err}");
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE meta SET value = '999' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 999, .. }),
        "{err}"
    );
}

#[test]
fn delete_image_forgets_state_and_history_but_not_the_queue() {
    let mut store = Store::open_in_memory().unwrap();
    let (s, events) = changed("img-1");
    store
        .commit(&Commit {
            image: Some(&s),
            events: &events,
            outbox: vec![row("n1", "mail", "img-1", 0)],
            ..Commit::default()
        })
        .unwrap();
    store.delete_image("img-1").unwrap();
    assert!(store.load_images().unwrap().is_empty());
    assert!(store.recent_events(10, None).unwrap().is_empty());
    assert_eq!(store.queue_len().unwrap(), 1);
}

#[test]
fn ten_thousand_images_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut store = Store::open(&path).unwrap();
    let states: Vec<ImageState> = (0..10_000)
        .map(|i| state(&format!("img-{i}"), "ACTIVE"))
        .collect();
    let commits: Vec<Commit> = states
        .iter()
        .map(|s| Commit {
            image: Some(s),
            ..Commit::default()
        })
        .collect();
    store.commit_many(&commits).unwrap();
    drop(store);
    let loaded = Store::open(&path).unwrap().load_images().unwrap();
    assert_eq!(loaded.len(), 10_000);
    assert_eq!(loaded["img-9999"], states[9999]);
}

#[test]
fn not_found_state_survives_reload() {
    let mut store = Store::open_in_memory().unwrap();
    let iid = ImageId::parse("img-1").unwrap();
    let o = observe(None, &iid, &Err(ApiError::new(ApiErrorKind::NotFound)), 5);
    store
        .commit(&Commit {
            image: Some(&o.state),
            ..Commit::default()
        })
        .unwrap();
    assert_eq!(
        store.load_images().unwrap()["img-1"].effective_status(),
        Some("NOT_FOUND")
    );
}
