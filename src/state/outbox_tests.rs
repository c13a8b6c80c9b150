//! Tests of the outbox: per-key order, retries, expiry, counts.

use crate::state::store::tests::{ids, row};
use crate::state::store::{Commit, Store};

#[test]
fn pending_keeps_per_channel_and_image_order() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .commit(&Commit {
            outbox: vec![
                row("a1", "mail", "img-a", 0),
                row("b1", "mail", "img-b", 0),
                row("a2", "mail", "img-a", 0),
                row("a1-hook", "hook", "img-a", 0),
            ],
            ..Commit::default()
        })
        .unwrap();
    assert_eq!(
        ids(&store.pending(0, 10).unwrap()),
        ["a1", "b1", "a2", "a1-hook"]
    );
    assert_eq!(ids(&store.pending(0, 2).unwrap()), ["a1", "b1"]);
    // a1 failed and waits: a2 (same channel and image) must wait behind it; others go.
    store.mark_failed("a1", 100, "down").unwrap();
    assert_eq!(ids(&store.pending(10, 10).unwrap()), ["b1", "a1-hook"]);
    assert_eq!(
        ids(&store.pending(100, 10).unwrap()),
        ["a1", "b1", "a2", "a1-hook"]
    );
    assert!(store.mark_delivered("a1").unwrap());
    assert!(!store.mark_delivered("a1").unwrap());
    assert_eq!(
        ids(&store.pending(10, 10).unwrap()),
        ["b1", "a2", "a1-hook"]
    );
    let by_channel = store.queue_len_by_channel().unwrap();
    assert_eq!(by_channel["mail"], 2);
    assert_eq!(by_channel["hook"], 1);
    assert_eq!(store.queue_len().unwrap(), 3);
}

#[test]
fn drop_expired_returns_what_it_dropped() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .commit(&Commit {
            outbox: vec![
                row("old", "mail", "img-a", 0),
                row("new", "mail", "img-a", 50),
            ],
            ..Commit::default()
        })
        .unwrap();
    assert!(store.drop_expired(99, 100).unwrap().is_empty());
    let dropped = store.drop_expired(100, 100).unwrap();
    assert_eq!(ids(&dropped), ["old"]);
    assert_eq!(ids(&store.pending(100, 10).unwrap()), ["new"]);
}
