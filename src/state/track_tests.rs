//! Unit and property tests of the pure change tracker.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::*;

fn id() -> ImageId {
    ImageId::parse("img-1").unwrap()
}

#[allow(clippy::unnecessary_wraps)] // reason: builds the poll result `observe` takes
fn img(status: &str, size_kb: Option<u64>, update_at: Option<i64>) -> Result<Image, ApiError> {
    Ok(Image {
        id: Some("img-1".into()),
        name: Some("pytorch".into()),
        status: Some(status.into()),
        size: size_kb,
        update_at,
        ..Image::default()
    })
}

fn err(kind: ApiErrorKind) -> Result<Image, ApiError> {
    Err(ApiError::new(kind))
}

/// Runs a sequence from a fresh state, returning the final state and all events.
fn run(results: &[Result<Image, ApiError>]) -> (Option<ImageState>, Vec<ChangeEvent>) {
    let mut state: Option<ImageState> = None;
    let mut events = Vec::new();
    for (i, r) in results.iter().enumerate() {
        let o = observe(state.as_ref(), &id(), r, 1000 + i64::try_from(i).unwrap());
        events.extend(o.events);
        state = Some(o.state);
    }
    (state, events)
}

#[test]
fn first_sight_sets_state_without_events() {
    let o = observe(None, &id(), &img("CREATE_FAILED", Some(2), Some(5)), 100);
    assert!(o.events.is_empty());
    assert_eq!(o.state.status.as_deref(), Some("CREATE_FAILED"));
    assert_eq!(o.state.size_bytes, Some(2048));
    assert_eq!(o.state.first_seen, Some(100));
    assert_eq!(o.state.last_seen, Some(100));
    assert_eq!(o.state.last_success, Some(100));
    assert_eq!(o.state.next_seq, 1);
    assert_eq!(o.state.last_change, None);
}

#[test]
fn status_change_is_an_event_with_old_and_new() {
    let s = observe(None, &id(), &img("CREATING", None, None), 100).state;
    let o = observe(Some(&s), &id(), &img("ACTIVE", None, None), 160);
    assert_eq!(o.events.len(), 1);
    let e = &o.events[0];
    assert_eq!(e.id, "img-1:1");
    assert_eq!(e.field, Field::Status);
    assert_eq!(e.old.as_deref(), Some("CREATING"));
    assert_eq!(e.new.as_deref(), Some("ACTIVE"));
    assert_eq!(e.at, 160);
    assert_eq!(e.image_name.as_deref(), Some("pytorch"));
    assert_eq!(o.state.next_seq, 2);
    assert_eq!(o.state.last_change, Some(160));
}

#[test]
fn not_told_keeps_last_value() {
    let s = observe(None, &id(), &img("ACTIVE", Some(10), Some(7)), 100).state;
    let o = observe(
        Some(&s),
        &id(),
        &Ok(Image {
            status: Some("ACTIVE".into()),
            ..Image::default()
        }),
        160,
    );
    assert!(o.events.is_empty());
    assert_eq!(o.state.size_bytes, Some(10 * 1024));
    assert_eq!(o.state.update_at, Some(7));
    assert_eq!(o.state.name.as_deref(), Some("pytorch"));
}

#[test]
fn size_and_update_at_changes_get_consecutive_seqs() {
    let s = observe(None, &id(), &img("ACTIVE", Some(1), Some(1)), 100).state;
    let o = observe(Some(&s), &id(), &img("ACTIVE", Some(2), Some(3)), 160);
    let got: Vec<_> = o
        .events
        .iter()
        .map(|e| (e.seq, e.field, e.old.clone(), e.new.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, Field::Size, Some("1024".into()), Some("2048".into())),
            (2, Field::UpdateAt, Some("1".into()), Some("3".into())),
        ]
    );
}

#[test]
fn not_found_enters_and_leaves_with_status_events() {
    let (state, events) = run(&[
        img("ACTIVE", None, None),
        err(ApiErrorKind::NotFound),
        err(ApiErrorKind::NotFound),
        img("ACTIVE", None, None),
    ]);
    let pairs: Vec<_> = events
        .iter()
        .map(|e| (e.old.as_deref(), e.new.as_deref()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (Some("ACTIVE"), Some(NOT_FOUND)),
            (Some(NOT_FOUND), Some("ACTIVE"))
        ]
    );
    let state = state.unwrap();
    assert_eq!(state.consecutive_not_found, 0);
    assert_eq!(state.effective_status(), Some("ACTIVE"));
}

#[test]
fn not_found_counts_and_is_a_valid_answer() {
    let (state, events) = run(&[
        err(ApiErrorKind::NotFound),
        err(ApiErrorKind::Timeout),
        err(ApiErrorKind::NotFound),
    ]);
    let state = state.unwrap();
    assert!(events.is_empty(), "first sight as not-found is no change");
    assert_eq!(state.consecutive_not_found, 2);
    assert_eq!(state.consecutive_failures, 0);
    assert_eq!(state.effective_status(), Some(NOT_FOUND));
    assert_eq!(state.first_seen, Some(1000));
    assert_eq!(state.last_seen, None);
    assert_eq!(state.last_success, Some(1002));
}

#[test]
fn errors_keep_state_and_count_failures() {
    let (state, events) = run(&[
        img("ACTIVE", Some(1), Some(1)),
        err(ApiErrorKind::Server),
        err(ApiErrorKind::Unauthorized),
    ]);
    let state = state.unwrap();
    assert!(events.is_empty());
    assert_eq!(state.status.as_deref(), Some("ACTIVE"));
    assert_eq!(state.consecutive_failures, 2);
    assert_eq!(state.last_error.as_deref(), Some("unauthorized"));
    assert_eq!(state.last_success, Some(1000));
    let o = observe(Some(&state), &id(), &img("ACTIVE", Some(1), Some(1)), 2000);
    assert_eq!(o.state.consecutive_failures, 0);
    assert_eq!(o.state.last_error, None);
}

#[test]
fn errors_before_first_answer_do_not_make_first_sight_a_change() {
    let (state, events) = run(&[err(ApiErrorKind::Timeout), img("ERROR", None, None)]);
    assert!(events.is_empty());
    assert_eq!(state.unwrap().first_seen, Some(1001));
}

#[test]
fn a_200_without_status_or_with_another_id_is_a_decode_error() {
    let s = observe(None, &id(), &img("ACTIVE", Some(1), None), 100).state;
    let no_status = Ok(Image {
        size: Some(99),
        ..Image::default()
    });
    let o = observe(Some(&s), &id(), &no_status, 160);
    assert!(o.events.is_empty());
    assert_eq!(o.state.size_bytes, Some(1024));
    assert_eq!(o.state.last_error.as_deref(), Some("decode"));
    let other = Ok(Image {
        id: Some("img-2".into()),
        status: Some("ERROR".into()),
        ..Image::default()
    });
    let o = observe(Some(&s), &id(), &other, 160);
    assert!(o.events.is_empty());
    assert_eq!(o.state.status.as_deref(), Some("ACTIVE"));
}

#[test]
fn state_json_tolerates_missing_fields() {
    let s: ImageState = serde_json::from_str(r#"{"id":"img-1","status":"ACTIVE"}"#).unwrap();
    assert_eq!(s.status.as_deref(), Some("ACTIVE"));
    let e = ChangeEvent {
        id: "a:1".into(),
        image_id: "a".into(),
        seq: 1,
        field: Field::UpdateAt,
        old: None,
        new: Some("1".into()),
        at: 0,
        image_name: None,
    };
    let json = serde_json::to_string(&e).unwrap();
    assert!(json.contains(r#""field":"update_at""#), "{json}");
    assert_eq!(serde_json::from_str::<ChangeEvent>(&json).unwrap(), e);
}

// ---- property tests ----

fn arb_result() -> impl Strategy<Value = Result<Image, ApiError>> {
    prop_oneof![
        4 => (
            prop::sample::select(vec!["ACTIVE", "CREATING", "ERROR", "CREATE_FAILED", "FROZEN"]),
            prop::option::of(0u64..3),
            prop::option::of(0i64..3),
            prop::option::of(prop::sample::select(vec!["a", "b"])),
        )
            .prop_map(|(st, size, upd, name)| Ok(Image {
                id: Some("img-1".into()),
                name: name.map(str::to_string),
                status: Some(st.into()),
                size,
                update_at: upd,
                ..Image::default()
            })),
        2 => Just(err(ApiErrorKind::NotFound)),
        1 => Just(err(ApiErrorKind::Server)),
        1 => Just(err(ApiErrorKind::Timeout)),
        1 => Just(err(ApiErrorKind::Throttled { retry_after: None })),
        1 => Just(err(ApiErrorKind::Decode)),
        1 => Just(err(ApiErrorKind::Unauthorized)),
        1 => Just(err(ApiErrorKind::WrongEndpoint)),
    ]
}

fn arb_error() -> impl Strategy<Value = Result<Image, ApiError>> {
    arb_result().prop_filter("errors other than not-found", |r| {
        r.as_ref().is_err_and(|e| e.kind != ApiErrorKind::NotFound)
    })
}

proptest! {
    #[test]
    fn stable_image_never_emits_events(first in arb_result(), n in 1usize..20) {
        let seq: Vec<_> = std::iter::repeat_n(first, n).collect();
        let (_, events) = run(&seq);
        prop_assert!(events.is_empty());
    }

    #[test]
    fn errors_never_change_tracked_fields(
        prefix in prop::collection::vec(arb_result(), 0..10),
        errors in prop::collection::vec(arb_error(), 1..10),
    ) {
        let (start, _) = run(&prefix);
        let mut state = start.clone();
        for (i, e) in errors.iter().enumerate() {
            let o = observe(state.as_ref(), &id(), e, 5000 + i64::try_from(i).unwrap());
            prop_assert!(o.events.is_empty());
            if let Some(s) = &start {
                prop_assert_eq!(o.state.effective_status(), s.effective_status());
                prop_assert_eq!(o.state.size_bytes, s.size_bytes);
                prop_assert_eq!(o.state.update_at, s.update_at);
                prop_assert_eq!(o.state.next_seq, s.next_seq);
                prop_assert_eq!(o.state.consecutive_failures, s.consecutive_failures + 1 + u32::try_from(i).unwrap());
            }
            state = Some(o.state);
        }
    }

    #[test]
    fn events_chain_and_ids_are_unique(results in prop::collection::vec(arb_result(), 0..40)) {
        let (state, events) = run(&results);
        let mut last: HashMap<Field, Option<String>> = HashMap::new();
        let mut ids = HashSet::new();
        let mut prev_seq = 0;
        for e in &events {
            prop_assert_ne!(&e.old, &e.new);
            if let Some(prev_new) = last.get(&e.field) {
                prop_assert_eq!(prev_new, &e.old);
            }
            last.insert(e.field, e.new.clone());
            prop_assert!(e.seq > prev_seq);
            prev_seq = e.seq;
            prop_assert_eq!(&e.id, &format!("img-1:{}", e.seq));
            prop_assert!(ids.insert(e.id.clone()));
        }
        // The final state agrees with the last event of each field.
        if let Some(s) = state {
            if let Some(st) = last.get(&Field::Status) {
                prop_assert_eq!(st.as_deref(), s.effective_status());
            }
            prop_assert_eq!(s.next_seq, prev_seq + 1);
        }
    }

    #[test]
    fn replay_gives_identical_events(
        prefix in prop::collection::vec(arb_result(), 0..10),
        rest in prop::collection::vec(arb_result(), 0..20),
    ) {
        let (start, _) = run(&prefix);
        let replay = |start: Option<ImageState>| {
            let mut s = start;
            let mut out = Vec::new();
            for (i, r) in rest.iter().enumerate() {
                let o = observe(s.as_ref(), &id(), r, 9000 + i64::try_from(i).unwrap());
                out.extend(o.events);
                s = Some(o.state);
            }
            (s, out)
        };
        prop_assert_eq!(replay(start.clone()), replay(start));
    }
}
