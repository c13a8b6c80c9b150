//! Alert rules (PRODUCT 3.3): from (previous alert state, an observation, now) to (new alert
//! state, notifications). Pure: no I/O, no clock reads, no logging — the caller persists the
//! returned state and queues the notifications in one transaction.
//!
//! Contract with the caller:
//! - Call [`evaluate`] after every *successful* observation of an image (a 200 or a not-found
//!   answer). A poll that failed transiently (timeout, 5xx, 429, parse error) must NOT call it:
//!   the last known state stays, so no false firing or resolution can come out of a flaky API.
//! - [`evaluate`] is idempotent: called again with the same facts and time it emits nothing.
//! - Event ids are `"{image_id}:alert:{seq}"` with `seq` kept in [`AlertState`], so a replay of
//!   an observation whose transaction was lost produces the same ids.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alert::{Notification, NotificationKind};
use crate::cloud::ImageStatus;
use crate::condition::{Condition, ConditionRules};

/// What is known about an image after an observation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageFacts {
    pub id: String,
    pub name: Option<String>,
    /// The last status the API reported (kept while the image answers not-found).
    pub status: Option<String>,
    /// Consecutive not-found answers; 0 when the last answer was a 200.
    pub consecutive_not_found: u32,
    pub status_message: Option<String>,
    pub size_bytes: Option<u64>,
    /// UTC milliseconds, as the API gives it.
    pub update_at: Option<i64>,
    pub swr_path: Option<String>,
    pub cloud: String,
    pub project_id: Option<String>,
    /// Labels from the config; they travel with every notification.
    pub labels: BTreeMap<String, String>,
    /// Channels this image notifies; `None` means every channel (see [`routes`]).
    pub channels: Option<Vec<String>>,
}

/// Persistent alert state of one image (or one cloud, for `WATCHER_DEGRADED`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    /// The condition currently firing; `None` when not firing.
    pub condition: Option<Condition>,
    /// Unix seconds when the alert started firing; kept across condition switches.
    pub firing_since: Option<i64>,
    /// Unix seconds of the last firing/repeat notification (the repeat clock).
    pub last_sent: Option<i64>,
    /// Number of alert notifications emitted so far; the next one gets `seq + 1`.
    pub seq: u64,
    /// The status (API status or `NOT_FOUND`) seen at the last evaluation: the
    /// `previous_status` of the next notification.
    #[serde(default)]
    pub last_status: Option<String>,
}

/// The alerting settings the rules need (from `[alerts]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertRules {
    pub conditions: ConditionRules,
    pub send_resolved: bool,
    /// Re-send a firing alert this often; `None` (or zero) = never.
    pub repeat_interval: Option<Duration>,
    /// Send `Change` notifications (see [`change_notification`]).
    pub notify_on_change: bool,
}

/// The outcome of one evaluation: the state to persist and what to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub state: AlertState,
    pub notifications: Vec<Notification>,
}

/// The status to show for an image: `NOT_FOUND` once the not-found answers are believed,
/// else the last API status.
fn shown_status(facts: &ImageFacts, rules: &ConditionRules) -> Option<String> {
    if facts.consecutive_not_found > 0
        && facts.consecutive_not_found >= rules.not_found_after.max(1)
    {
        Some(Condition::NotFound.as_str().to_string())
    } else {
        facts.status.clone()
    }
}

fn display_name(facts: &ImageFacts) -> &str {
    facts.name.as_deref().unwrap_or(&facts.id)
}

fn firing_summary(name: &str, condition: Condition, previous: Option<Condition>) -> String {
    let now = match condition {
        Condition::NotFound => format!("ModelArts image {name} is gone (NOT_FOUND)"),
        c => format!("ModelArts image {name} is {c}"),
    };
    match previous {
        Some(p) => format!("{now} (was {p})"),
        None => now,
    }
}

/// Evaluates one image after a successful observation (see the module docs for the contract).
///
/// - enters a condition (also on first sight, `prev` = `None`): one `Firing`;
/// - moves to another condition: one `Firing` for the new one, `previous_condition` set,
///   `firing_since` kept;
/// - leaves every condition: one `Resolved` (only with `send_resolved`; the state is cleared
///   either way). A `Resolved` carries the condition that resolved in both `condition` and
///   `previous_condition`, and the `firing_since` of the alert it ends;
/// - still firing `repeat_interval` after the last firing/repeat: one `Repeat`.
pub fn evaluate(
    prev: Option<&AlertState>,
    facts: &ImageFacts,
    rules: &AlertRules,
    now: i64,
) -> Evaluation {
    let prev = prev.cloned().unwrap_or_default();
    let status = shown_status(facts, &rules.conditions);
    let parsed = facts.status.as_deref().map(ImageStatus::parse);
    let current = rules
        .conditions
        .condition_of(parsed.as_ref(), facts.consecutive_not_found);
    let name = display_name(facts);

    let mut state = AlertState {
        last_status: status.clone(),
        ..prev.clone()
    };
    let mut out = Vec::new();
    let mut emit = |state: &mut AlertState,
                    kind: NotificationKind,
                    condition: Condition,
                    previous: Option<Condition>,
                    summary: String| {
        state.seq += 1;
        let mut n = base_notification(facts, format!("{}:alert:{}", facts.id, state.seq), now);
        n.kind = kind;
        n.condition = Some(condition.as_str().to_string());
        n.previous_condition = previous.map(|c| c.as_str().to_string());
        n.previous_status.clone_from(&prev.last_status);
        n.status.clone_from(&status);
        n.firing_since = state.firing_since;
        n.summary = summary;
        out.push(n);
    };

    match (prev.condition, current) {
        (None, Some(c)) => {
            state.condition = Some(c);
            state.firing_since = Some(now);
            state.last_sent = Some(now);
            emit(
                &mut state,
                NotificationKind::Firing,
                c,
                None,
                firing_summary(name, c, None),
            );
        }
        (Some(p), Some(c)) if p != c => {
            state.condition = Some(c);
            state.firing_since = Some(prev.firing_since.unwrap_or(now));
            state.last_sent = Some(now);
            emit(
                &mut state,
                NotificationKind::Firing,
                c,
                Some(p),
                firing_summary(name, c, Some(p)),
            );
        }
        (Some(c), Some(_)) => {
            let every = rules.repeat_interval.filter(|d| !d.is_zero());
            let due = match (every, prev.last_sent) {
                (Some(every), Some(last)) => {
                    now.saturating_sub(last) >= i64::try_from(every.as_secs()).unwrap_or(i64::MAX)
                }
                // A firing state without a send time (older state): start the clock now.
                (Some(_), None) => {
                    state.last_sent = Some(now);
                    false
                }
                (None, _) => false,
            };
            if due {
                state.last_sent = Some(now);
                emit(
                    &mut state,
                    NotificationKind::Repeat,
                    c,
                    None,
                    firing_summary(name, c, None),
                );
            }
        }
        (Some(p), None) => {
            if rules.send_resolved {
                let shown = status.as_deref().unwrap_or("no longer alerting");
                emit(
                    &mut state,
                    NotificationKind::Resolved,
                    p,
                    Some(p),
                    format!("ModelArts image {name} recovered ({shown})"),
                );
            }
            state.condition = None;
            state.firing_since = None;
            state.last_sent = None;
        }
        (None, None) => {}
    }
    Evaluation {
        state,
        notifications: out,
    }
}

/// A notification with the image's facts filled in and everything else empty.
fn base_notification(facts: &ImageFacts, event_id: String, now: i64) -> Notification {
    Notification {
        event_id,
        kind: NotificationKind::Change,
        condition: None,
        previous_condition: None,
        image_id: facts.id.clone(),
        image_name: facts.name.clone(),
        previous_status: None,
        status: facts.status.clone(),
        status_message: facts.status_message.clone(),
        size_bytes: facts.size_bytes,
        update_at: facts.update_at,
        swr_path: facts.swr_path.clone(),
        cloud: facts.cloud.clone(),
        project_id: facts.project_id.clone(),
        observed_at: now,
        firing_since: None,
        summary: String::new(),
        labels: facts.labels.clone(),
    }
}

/// An informational `Change` notification (`notify_on_change`) for one changed field
/// (`status`, `size_bytes`, `update_at`, ...). The caller passes the change event's id, which
/// is already deterministic, and decides whether `notify_on_change` is on.
pub fn change_notification(
    facts: &ImageFacts,
    field: &str,
    old: Option<&str>,
    new: Option<&str>,
    event_id: &str,
    now: i64,
) -> Notification {
    let mut n = base_notification(facts, event_id.to_string(), now);
    if field == "status" {
        n.previous_status = old.map(str::to_string);
        if let Some(new) = new {
            n.status = Some(new.to_string());
        }
    }
    n.summary = format!(
        "ModelArts image {} {field} changed: {} -> {}",
        display_name(facts),
        old.unwrap_or("none"),
        new.unwrap_or("none"),
    );
    n
}

/// What is known about one cloud's watcher health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudHealthFacts {
    pub cloud: String,
    /// Unix seconds of the last poll of this cloud that succeeded.
    pub last_success: Option<i64>,
    /// Unix seconds when watching started (staleness counts from here when never succeeded).
    pub started_at: i64,
    /// The last error, as (short reason, message); the message must hold no secret.
    pub last_error: Option<(String, String)>,
    /// The last poll got a config/auth error (401/403, wrong endpoint, wrong project).
    pub config_or_auth_error: bool,
}

/// Evaluates `WATCHER_DEGRADED` for one cloud: fires when the last poll got a config/auth
/// error or nothing succeeded for `stale_after`; resolves (with `send_resolved`) on recovery,
/// i.e. a successful poll since the alert started firing.
/// Event ids are `"cloud:{name}:alert:{seq}"`; `image_id` is empty. Idempotent like
/// [`evaluate`]; never repeats.
pub fn evaluate_cloud(
    prev: Option<&AlertState>,
    facts: &CloudHealthFacts,
    stale_after: Duration,
    send_resolved: bool,
    now: i64,
) -> Evaluation {
    let prev = prev.cloned().unwrap_or_default();
    let since = facts.last_success.unwrap_or(facts.started_at);
    let stale_secs = i64::try_from(stale_after.as_secs()).unwrap_or(i64::MAX);
    let is_stale = now.saturating_sub(since) >= stale_secs;
    let degraded = facts.config_or_auth_error || is_stale;
    // Resolve only on evidence: a successful poll since the alert started and no config/auth
    // error in the last one. "Not stale yet" is not recovery — after a restart the clock
    // starts again, and a connect error after a 401 proves nothing either.
    let recovered = !facts.config_or_auth_error
        && facts
            .last_success
            .is_some_and(|t| prev.firing_since.is_none_or(|f| t >= f));
    let cond = Condition::WatcherDegraded;

    let mut state = prev.clone();
    let mut out = Vec::new();
    let mut emit = |state: &mut AlertState, kind: NotificationKind, summary: String| {
        state.seq += 1;
        out.push(Notification {
            event_id: format!("cloud:{}:alert:{}", facts.cloud, state.seq),
            kind,
            condition: Some(cond.as_str().to_string()),
            previous_condition: (kind == NotificationKind::Resolved)
                .then(|| cond.as_str().to_string()),
            image_id: String::new(),
            image_name: None,
            previous_status: None,
            status: None,
            status_message: facts.last_error.as_ref().map(|(_, m)| m.clone()),
            size_bytes: None,
            update_at: None,
            swr_path: None,
            cloud: facts.cloud.clone(),
            project_id: None,
            observed_at: now,
            firing_since: state.firing_since,
            summary,
            labels: BTreeMap::new(),
        });
    };

    match (prev.condition.is_some(), degraded) {
        (false, true) => {
            state.condition = Some(cond);
            state.firing_since = Some(now);
            state.last_sent = Some(now);
            let why = match (&facts.last_error, facts.config_or_auth_error) {
                (Some((reason, _)), true) => reason.clone(),
                (None, true) => "configuration or credentials rejected".to_string(),
                _ => format!(
                    "no successful poll for {}",
                    humantime::format_duration(Duration::from_secs(
                        u64::try_from(now.saturating_sub(since)).unwrap_or(0)
                    ))
                ),
            };
            let summary = format!(
                "ModelArts watcher for cloud {} is degraded: {why}",
                facts.cloud
            );
            emit(&mut state, NotificationKind::Firing, summary);
        }
        (true, false) if recovered => {
            if send_resolved {
                let summary = format!("ModelArts watcher for cloud {} recovered", facts.cloud);
                emit(&mut state, NotificationKind::Resolved, summary);
            }
            state.condition = None;
            state.firing_since = None;
            state.last_sent = None;
        }
        _ => {}
    }
    Evaluation {
        state,
        notifications: out,
    }
}

/// The channels an image's notifications go to: its own list (deduplicated, in its order), or
/// every channel when it has none. Names not in `all` are kept on purpose: config validation
/// rejects them, and should one slip through, delivery fails loudly instead of a page vanishing.
pub fn routes(channels: Option<&[String]>, all: &[String]) -> Vec<String> {
    let list = channels.unwrap_or(all);
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for c in list {
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests;
