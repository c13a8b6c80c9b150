//! Tests of the alert rules: fixed sequences and a property test of the state machine.

use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn rules() -> AlertRules {
    AlertRules {
        conditions: ConditionRules::default(),
        send_resolved: true,
        repeat_interval: None,
        notify_on_change: false,
    }
}

fn facts(status: &str) -> ImageFacts {
    ImageFacts {
        id: "img-1".into(),
        name: Some("pytorch-1.8".into()),
        status: Some(status.into()),
        cloud: "otc-prod".into(),
        labels: [("team".to_string(), "ml".to_string())].into(),
        size_bytes: Some(42),
        ..ImageFacts::default()
    }
}

fn not_found(last_status: &str, n: u32) -> ImageFacts {
    ImageFacts {
        consecutive_not_found: n,
        ..facts(last_status)
    }
}

/// Runs a sequence of observations, one per 60 s, returning every notification.
fn run(rules: &AlertRules, seq: &[ImageFacts]) -> (AlertState, Vec<Notification>) {
    let mut state: Option<AlertState> = None;
    let mut all = Vec::new();
    for (i, f) in (0i64..).zip(seq.iter()) {
        let ev = evaluate(state.as_ref(), f, rules, 1000 + 60 * i);
        all.extend(ev.notifications);
        state = Some(ev.state);
    }
    (state.unwrap_or_default(), all)
}

fn kinds(ns: &[Notification]) -> Vec<(NotificationKind, Option<&str>, Option<&str>)> {
    ns.iter()
        .map(|n| {
            (
                n.kind,
                n.condition.as_deref(),
                n.previous_condition.as_deref(),
            )
        })
        .collect()
}

#[test]
fn first_sight_in_condition_fires_with_all_fields() {
    let ev = evaluate(None, &facts("CREATE_FAILED"), &rules(), 1000);
    assert_eq!(ev.notifications.len(), 1);
    let n = &ev.notifications[0];
    assert_eq!(n.kind, NotificationKind::Firing);
    assert_eq!(n.event_id, "img-1:alert:1");
    assert_eq!(n.condition.as_deref(), Some("CREATE_FAILED"));
    assert_eq!(n.summary, "ModelArts image pytorch-1.8 is CREATE_FAILED");
    assert_eq!(n.firing_since, Some(1000));
    assert_eq!(n.observed_at, 1000);
    assert_eq!(n.status.as_deref(), Some("CREATE_FAILED"));
    assert_eq!(n.previous_status, None);
    assert_eq!(n.labels.get("team").map(String::as_str), Some("ml"));
    assert_eq!(n.size_bytes, Some(42));
    assert_eq!(ev.state.condition, Some(Condition::CreateFailed));
    assert_eq!(ev.state.seq, 1);
}

#[test]
fn first_sight_active_sends_nothing() {
    let ev = evaluate(None, &facts("ACTIVE"), &rules(), 1000);
    assert!(ev.notifications.is_empty());
    assert_eq!(ev.state.condition, None);
    assert_eq!(ev.state.seq, 0);
    assert_eq!(ev.state.last_status.as_deref(), Some("ACTIVE"));
}

#[test]
fn enter_then_leave_fires_then_resolves() {
    let (state, ns) = run(
        &rules(),
        &[
            facts("ACTIVE"),
            facts("ERROR"),
            facts("ERROR"),
            facts("ACTIVE"),
        ],
    );
    assert_eq!(
        kinds(&ns),
        vec![
            (NotificationKind::Firing, Some("ERROR"), None),
            (NotificationKind::Resolved, Some("ERROR"), Some("ERROR")),
        ]
    );
    assert_eq!(ns[0].previous_status.as_deref(), Some("ACTIVE"));
    assert_eq!(
        ns[1].summary,
        "ModelArts image pytorch-1.8 recovered (ACTIVE)"
    );
    assert_eq!(ns[1].previous_status.as_deref(), Some("ERROR"));
    assert_eq!(
        ns[1].firing_since, ns[0].firing_since,
        "resolved names its alert's start"
    );
    assert_eq!(ns[1].event_id, "img-1:alert:2");
    assert_eq!(state.condition, None);
    assert_eq!(state.firing_since, None);
}

#[test]
fn switching_conditions_sends_one_firing_naming_the_previous() {
    let (state, ns) = run(
        &rules(),
        &[facts("ERROR"), facts("DELETED"), not_found("DELETED", 1)],
    );
    assert_eq!(
        kinds(&ns),
        vec![
            (NotificationKind::Firing, Some("ERROR"), None),
            (NotificationKind::Firing, Some("DELETED"), Some("ERROR")),
            (NotificationKind::Firing, Some("NOT_FOUND"), Some("DELETED")),
        ]
    );
    assert!(
        ns.iter().all(|n| n.firing_since == Some(1000)),
        "start kept"
    );
    assert_eq!(
        ns[2].summary,
        "ModelArts image pytorch-1.8 is gone (NOT_FOUND) (was DELETED)"
    );
    assert_eq!(ns[2].status.as_deref(), Some("NOT_FOUND"));
    assert_eq!(ns[2].previous_status.as_deref(), Some("DELETED"));
    assert_eq!(state.firing_since, Some(1000));
}

#[test]
fn gone_summary_on_first_sight() {
    let ev = evaluate(None, &not_found("ACTIVE", 1), &rules(), 5);
    assert_eq!(
        ev.notifications[0].summary,
        "ModelArts image pytorch-1.8 is gone (NOT_FOUND)"
    );
}

#[test]
fn not_found_after_waits_and_keeps_last_condition() {
    let mut r = rules();
    r.conditions.not_found_after = 3;
    let (_, ns) = run(
        &r,
        &[
            facts("ACTIVE"),
            not_found("ACTIVE", 1),
            not_found("ACTIVE", 2),
        ],
    );
    assert!(ns.is_empty());
    let (_, ns) = run(
        &r,
        &[
            facts("ERROR"),
            not_found("ERROR", 1),
            not_found("ERROR", 2),
            not_found("ERROR", 3),
        ],
    );
    assert_eq!(
        kinds(&ns),
        vec![
            (NotificationKind::Firing, Some("ERROR"), None),
            (NotificationKind::Firing, Some("NOT_FOUND"), Some("ERROR")),
        ],
        "an unconfirmed 404 must not resolve the ERROR alert"
    );
}

#[test]
fn same_facts_twice_emit_nothing_the_second_time() {
    let r = AlertRules {
        repeat_interval: Some(Duration::from_secs(3600)),
        ..rules()
    };
    for f in [facts("ACTIVE"), facts("ERROR"), not_found("ERROR", 1)] {
        let first = evaluate(None, &f, &r, 100);
        let second = evaluate(Some(&first.state), &f, &r, 100);
        assert!(second.notifications.is_empty(), "{f:?}");
        assert_eq!(second.state, first.state);
    }
}

#[test]
fn replay_gives_the_same_ids() {
    let seq = [facts("ERROR"), facts("ACTIVE"), facts("DELETED")];
    let (_, a) = run(&rules(), &seq);
    let (_, b) = run(&rules(), &seq);
    assert_eq!(a, b);
    let ids: Vec<_> = a.iter().map(|n| n.event_id.as_str()).collect();
    assert_eq!(ids, ["img-1:alert:1", "img-1:alert:2", "img-1:alert:3"]);
}

#[test]
fn repeat_at_the_right_times() {
    let r = AlertRules {
        repeat_interval: Some(Duration::from_secs(600)),
        ..rules()
    };
    let mut state = evaluate(None, &facts("ERROR"), &r, 0).state;
    let mut repeats = Vec::new();
    for now in (60..=1800).step_by(60) {
        let ev = evaluate(Some(&state), &facts("ERROR"), &r, now);
        for n in &ev.notifications {
            assert_eq!(n.kind, NotificationKind::Repeat);
            assert_eq!(n.firing_since, Some(0));
            assert_eq!(n.condition.as_deref(), Some("ERROR"));
            repeats.push(now);
        }
        state = ev.state;
    }
    assert_eq!(repeats, [600, 1200, 1800]);
    // A switch restarts the repeat clock.
    let ev = evaluate(Some(&state), &facts("DELETED"), &r, 1900);
    assert_eq!(ev.notifications[0].kind, NotificationKind::Firing);
    let ev = evaluate(Some(&ev.state), &facts("DELETED"), &r, 2400);
    assert!(ev.notifications.is_empty(), "only 500 s after the switch");
}

#[test]
fn no_repeat_without_interval() {
    let (_, ns) = run(&rules(), &vec![facts("ERROR"); 500]);
    assert_eq!(ns.len(), 1);
}

#[test]
fn send_resolved_false_suppresses_resolves_but_clears_state() {
    let r = AlertRules {
        send_resolved: false,
        ..rules()
    };
    let (state, ns) = run(&r, &[facts("ERROR"), facts("ACTIVE"), facts("ERROR")]);
    assert_eq!(
        kinds(&ns),
        vec![
            (NotificationKind::Firing, Some("ERROR"), None),
            (NotificationKind::Firing, Some("ERROR"), None),
        ]
    );
    assert_ne!(ns[0].event_id, ns[1].event_id);
    assert_eq!(ns[1].firing_since, Some(1120), "a new alert, a new start");
    assert_eq!(state.condition, Some(Condition::Error));
}

#[test]
fn disabled_condition_does_not_fire() {
    let mut r = rules();
    r.conditions.enabled = vec![Condition::NotFound];
    let (_, ns) = run(&r, &[facts("ERROR"), facts("CREATE_FAILED")]);
    assert!(ns.is_empty());
}

#[test]
fn state_round_trips_through_json() {
    let ev = evaluate(None, &facts("DELETED"), &rules(), 7);
    let json = serde_json::to_string(&ev.state).unwrap();
    assert_eq!(serde_json::from_str::<AlertState>(&json).unwrap(), ev.state);
    // State written without `last_status` still loads.
    let old: AlertState =
        serde_json::from_str(r#"{"condition":"ERROR","firing_since":1,"last_sent":1,"seq":3}"#)
            .unwrap();
    assert_eq!(old.condition, Some(Condition::Error));
}

#[test]
fn change_notification_carries_old_and_new() {
    let n = change_notification(
        &facts("ACTIVE"),
        "status",
        Some("CREATING"),
        Some("ACTIVE"),
        "img-1:7",
        99,
    );
    assert_eq!(n.kind, NotificationKind::Change);
    assert_eq!(n.event_id, "img-1:7");
    assert_eq!(n.condition, None);
    assert_eq!(n.previous_status.as_deref(), Some("CREATING"));
    assert_eq!(n.status.as_deref(), Some("ACTIVE"));
    assert_eq!(n.observed_at, 99);
    assert_eq!(
        n.summary,
        "ModelArts image pytorch-1.8 status changed: CREATING -> ACTIVE"
    );
    let n = change_notification(&facts("ACTIVE"), "size_bytes", None, Some("42"), "x", 1);
    assert_eq!(n.previous_status, None);
    assert!(n.summary.contains("size_bytes changed: none -> 42"));
}

fn cloud(last_success: Option<i64>, auth: bool) -> CloudHealthFacts {
    CloudHealthFacts {
        cloud: "otc-prod".into(),
        last_success,
        started_at: 1000,
        last_error: auth.then(|| ("unauthorized".into(), "IAM rejected the AK/SK".into())),
        config_or_auth_error: auth,
    }
}

#[test]
fn watcher_degraded_fires_after_stale_after_from_start() {
    let stale = Duration::from_secs(900);
    let ev = evaluate_cloud(None, &cloud(None, false), stale, true, 1899);
    assert!(ev.notifications.is_empty());
    let ev = evaluate_cloud(Some(&ev.state), &cloud(None, false), stale, true, 1900);
    assert_eq!(ev.notifications.len(), 1);
    let n = &ev.notifications[0];
    assert_eq!(n.kind, NotificationKind::Firing);
    assert_eq!(n.condition.as_deref(), Some("WATCHER_DEGRADED"));
    assert_eq!(n.event_id, "cloud:otc-prod:alert:1");
    assert_eq!(n.image_id, "");
    assert_eq!(
        n.summary,
        "ModelArts watcher for cloud otc-prod is degraded: no successful poll for 15m"
    );
    // Still stale: nothing more.
    let again = evaluate_cloud(Some(&ev.state), &cloud(None, false), stale, true, 1960);
    assert!(again.notifications.is_empty());
    // A success resolves.
    let ok = evaluate_cloud(
        Some(&again.state),
        &cloud(Some(1970), false),
        stale,
        true,
        1970,
    );
    assert_eq!(ok.notifications.len(), 1);
    assert_eq!(ok.notifications[0].kind, NotificationKind::Resolved);
    assert_eq!(ok.notifications[0].event_id, "cloud:otc-prod:alert:2");
    assert_eq!(ok.notifications[0].firing_since, Some(1900));
    assert_eq!(ok.state.condition, None);
}

#[test]
fn watcher_degraded_stale_counts_from_last_success() {
    let stale = Duration::from_secs(900);
    let ev = evaluate_cloud(None, &cloud(Some(5000), false), stale, true, 5899);
    assert!(ev.notifications.is_empty());
    let ev = evaluate_cloud(None, &cloud(Some(5000), false), stale, true, 5900);
    assert_eq!(ev.notifications.len(), 1);
}

#[test]
fn watcher_degraded_fires_at_once_on_auth_error_and_resolves_quietly_if_asked() {
    let stale = Duration::from_secs(900);
    let ev = evaluate_cloud(None, &cloud(Some(1000), true), stale, false, 1001);
    assert_eq!(ev.notifications.len(), 1);
    assert_eq!(
        ev.notifications[0].summary,
        "ModelArts watcher for cloud otc-prod is degraded: unauthorized"
    );
    assert_eq!(
        ev.notifications[0].status_message.as_deref(),
        Some("IAM rejected the AK/SK")
    );
    let ok = evaluate_cloud(
        Some(&ev.state),
        &cloud(Some(1060), false),
        stale,
        false,
        1060,
    );
    assert!(ok.notifications.is_empty(), "send_resolved = false");
    assert_eq!(ok.state.condition, None);
}

#[test]
fn watcher_degraded_resolves_only_on_a_success_after_it_fired() {
    let stale = Duration::from_secs(900);
    // 401 at 2000: fires.
    let ev = evaluate_cloud(None, &cloud(Some(1500), true), stale, true, 2000);
    assert_eq!(ev.notifications.len(), 1);
    // Next poll: a connect error (not config/auth), no success since: still firing.
    let mut transient = cloud(Some(1500), false);
    transient.last_error = Some(("connect".into(), "connection refused".into()));
    let ev2 = evaluate_cloud(Some(&ev.state), &transient, stale, true, 2060);
    assert!(ev2.notifications.is_empty(), "no false 'recovered'");
    assert!(ev2.state.condition.is_some());
    // After a restart the start clock is fresh and nothing has succeeded yet: still firing.
    let mut restarted = cloud(None, false);
    restarted.started_at = 2100;
    let ev3 = evaluate_cloud(Some(&ev2.state), &restarted, stale, true, 2110);
    assert!(ev3.notifications.is_empty());
    // A real success resolves.
    let ev4 = evaluate_cloud(
        Some(&ev3.state),
        &cloud(Some(2170), false),
        stale,
        true,
        2170,
    );
    assert_eq!(ev4.notifications[0].kind, NotificationKind::Resolved);
}

#[test]
fn routes_default_to_all_and_dedupe() {
    let all = vec!["mail".to_string(), "hook".to_string()];
    assert_eq!(routes(None, &all), all);
    let own = vec!["hook".to_string(), "hook".to_string()];
    assert_eq!(routes(Some(&own), &all), vec!["hook".to_string()]);
    assert!(routes(Some(&[]), &all).is_empty());
}

fn observation() -> impl Strategy<Value = ImageFacts> {
    prop_oneof![
        Just(facts("ACTIVE")),
        Just(facts("CREATING")),
        Just(facts("ERROR")),
        Just(facts("CREATE_FAILED")),
        Just(facts("DELETED")),
        Just(facts("SOMETHING_NEW")),
        (1u32..4).prop_map(|n| not_found("ACTIVE", n)),
        (1u32..4).prop_map(|n| not_found("ERROR", n)),
    ]
}

proptest! {
    #[test]
    fn random_sequences_keep_the_alert_invariants(
        seq in proptest::collection::vec(observation(), 0..60),
        not_found_after in 1u32..4,
        send_resolved in any::<bool>(),
        repeat in proptest::option::of(60u64..400),
    ) {
        let r = AlertRules {
            conditions: ConditionRules { not_found_after, ..ConditionRules::default() },
            send_resolved,
            repeat_interval: repeat.map(Duration::from_secs),
            notify_on_change: false,
        };
        // Each observation is evaluated twice (a replayed poll): the second must be silent.
        let mut state: Option<AlertState> = None;
        let mut firing: Option<String> = None;
        let mut ids = HashSet::new();
        for (i, f) in (0i64..).zip(seq.iter()) {
            let now = 60 * i;
            let ev = evaluate(state.as_ref(), f, &r, now);
            let again = evaluate(Some(&ev.state), f, &r, now);
            prop_assert!(again.notifications.is_empty());
            prop_assert!(ev.notifications.len() <= 1, "one notification per transition");
            for n in &ev.notifications {
                prop_assert!(ids.insert(n.event_id.clone()), "duplicate id {}", n.event_id);
                match n.kind {
                    NotificationKind::Firing => {
                        match (&firing, &n.previous_condition) {
                            // A firing while firing must be a switch naming what it replaced.
                            (Some(cur), Some(prev)) => {
                                prop_assert_eq!(cur, prev);
                                prop_assert_ne!(Some(cur), n.condition.as_ref());
                            }
                            (Some(_), None) => prop_assert!(false, "two firings without resolve"),
                            (None, Some(_)) => prop_assert!(false, "switch from nothing"),
                            (None, None) => {}
                        }
                        firing.clone_from(&n.condition);
                    }
                    NotificationKind::Resolved => {
                        prop_assert!(send_resolved);
                        prop_assert_eq!(&firing, &n.condition, "resolved without its firing");
                        firing = None;
                    }
                    NotificationKind::Repeat => {
                        prop_assert!(repeat.is_some());
                        prop_assert_eq!(&firing, &n.condition);
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
            if !send_resolved && ev.state.condition.is_none() {
                firing = None; // cleared silently
            }
            // The state tracks the condition the facts are in, whatever was sent.
            let parsed = f.status.as_deref().map(ImageStatus::parse);
            prop_assert_eq!(
                ev.state.condition,
                r.conditions.condition_of(parsed.as_ref(), f.consecutive_not_found)
            );
            // The state agrees with what was sent.
            prop_assert_eq!(ev.state.condition.map(|c| c.as_str().to_string()), firing.clone());
            state = Some(ev.state);
        }
    }
}
