//! Applying one answer: change tracking, alert evaluation, and ONE store transaction holding
//! the new image state, its events, the alert state and the notifications they cause. Only
//! after the commit succeeds does memory (and so `/metrics` and the API) move on, so a crash
//! can never record a change without its notification or the other way round.

use crate::alert::Notification;
use crate::alert::rules::{self, ImageFacts};
use crate::cloud::{ApiError, ApiErrorKind, Image};
use crate::config::settings::{CloudSettings, Settings, WatchedImage};
use crate::metrics::Metrics;
use crate::state::{ChangeEvent, Commit, ImageState};

pub use super::alerts::{AlertBook, CloudHealth, alert_rules, cloud_key, outbox_rows};
use super::cycle::Watcher;
pub use super::publish::publish_image;

/// How one poll ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    NotFound,
    Failed,
}

/// What applying one answer did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub outcome: Outcome,
    pub events: usize,
    pub notifications: usize,
}

impl Applied {
    pub fn failed() -> Self {
        Self {
            outcome: Outcome::Failed,
            events: 0,
            notifications: 0,
        }
    }
}

/// Seconds since the Unix epoch, wall clock.
pub fn unix_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
    .unwrap_or(i64::MAX)
}

fn facts(img: &WatchedImage, cloud: &CloudSettings, s: &ImageState) -> ImageFacts {
    ImageFacts {
        id: img.id.to_string(),
        name: s.name.clone(),
        status: s.status.clone(),
        consecutive_not_found: s.consecutive_not_found,
        status_message: s.status_message.clone(),
        size_bytes: s.size_bytes,
        update_at: s.update_at,
        swr_path: s.swr_path.clone(),
        cloud: cloud.name.clone(),
        project_id: cloud.project_id.as_ref().map(ToString::to_string),
        labels: img.labels.clone(),
        channels: img.channels.clone(),
    }
}

/// Applies one poll answer. See the module doc for the ordering guarantees.
pub fn apply(
    w: &Watcher,
    settings: &Settings,
    cloud: &CloudSettings,
    img: &WatchedImage,
    result: &Result<Image, ApiError>,
    now: i64,
) -> Applied {
    let inner = &w.inner;
    let id = img.id.as_str();
    let outcome = match result {
        Ok(_) => Outcome::Ok,
        Err(e) if e.kind == ApiErrorKind::NotFound => Outcome::NotFound,
        Err(_) => Outcome::Failed,
    };
    record_health(&inner.alerts, &inner.metrics, &cloud.name, id, result, now);

    let mut states = inner.states.lock().expect("states lock");
    if !inner.watched_ids.lock().expect("watched lock").contains(id) {
        // Removed by a reload while this answer was on its way.
        return Applied::failed();
    }
    let prev = states.get(id);
    let observed = crate::state::track::observe(prev, &img.id, result, now);
    let mut notifications: Vec<Notification> = Vec::new();
    let mut alert_update = None;
    let mut alerts = inner.alerts.states.lock().expect("alert lock");
    if outcome != Outcome::Failed {
        let rules = alert_rules(settings);
        let f = facts(img, cloud, &observed.state);
        let eval = rules::evaluate(alerts.get(id), &f, &rules, now);
        if alerts.get(id) != Some(&eval.state) {
            alert_update = Some(eval.state);
        }
        notifications.extend(eval.notifications);
        if rules.notify_on_change {
            for ev in &observed.events {
                notifications.push(rules::change_notification(
                    &f,
                    ev.field.as_str(),
                    ev.old.as_deref(),
                    ev.new.as_deref(),
                    &ev.id,
                    now,
                ));
            }
        }
    }
    let outbox = outbox_rows(settings, img.channels.as_deref(), &notifications, now);
    // Bookkeeping-only updates (last success, failure counters) are batched per cycle: one
    // fsync per cycle instead of one per poll. Anything that could page, or that a restart
    // must not repeat, is committed now.
    let significant = !observed.events.is_empty()
        || alert_update.is_some()
        || !outbox.is_empty()
        || prev.map(durable_view) != Some(durable_view(&observed.state));
    if significant {
        inner.dirty.lock().expect("dirty lock").remove(id);
        let commit = Commit {
            image: Some(&observed.state),
            events: &observed.events,
            alert_state: alert_update
                .iter()
                .map(|s| {
                    (
                        id.to_string(),
                        Some(serde_json::to_string(s).expect("serializable")),
                    )
                })
                .collect(),
            outbox,
        };
        if let Err(e) = inner.store.lock().expect("store lock").commit(&commit) {
            // Memory does not move on: the next poll sees the same change and tries again.
            tracing::error!(image = %id, error = %e, "could not save state; the change will be retried on the next poll");
            return Applied::failed();
        }
    } else if prev != Some(&observed.state) {
        inner
            .dirty
            .lock()
            .expect("dirty lock")
            .insert(id.to_string(), observed.state.clone());
    }
    let queued = notifications.len();
    log_events(&observed.events);
    for n in &notifications {
        tracing::warn!(image = %id, kind = n.kind.as_str(), condition = n.condition.as_deref().unwrap_or(""), event_id = %n.event_id, "{}", n.summary);
    }
    for ev in &observed.events {
        inner.metrics.inc_change(id, ev.field.as_str());
    }
    if let Some(s) = alert_update {
        alerts.insert(id.to_string(), s);
    }
    drop(alerts);
    publish_image(&inner.metrics, img, Some(&observed.state));
    states.insert(id.to_string(), observed.state);
    drop(states);
    if queued > 0 {
        inner.alerts.publish_firing(&inner.metrics);
    }
    Applied {
        outcome,
        events: observed.events.len(),
        notifications: queued,
    }
}

/// The part of a state that must be durable at once: everything but per-poll bookkeeping.
fn durable_view(s: &ImageState) -> ImageState {
    ImageState {
        last_success: None,
        last_seen: None,
        consecutive_failures: 0,
        consecutive_not_found: 0,
        last_error: None,
        ..s.clone()
    }
}

/// How often per-poll bookkeeping (last success, failure counters, last error) is written.
/// None of it can page or un-page: after a crash it is at most this old, which only delays a
/// `not_found_after > 1` count by a few polls. Changes that matter are committed at once.
pub const BOOKKEEPING_FLUSH_EVERY: i64 = 300;

/// Writes the batched bookkeeping updates in one transaction, when `force` or when the last
/// write is `BOOKKEEPING_FLUSH_EVERY` seconds old (end of a cycle; forced at shutdown).
pub fn flush_dirty(w: &Watcher, now: i64, force: bool) {
    {
        let mut last = w.inner.last_flush.lock().expect("flush lock");
        if !force && now - *last < BOOKKEEPING_FLUSH_EVERY {
            return;
        }
        *last = now;
    }
    let dirty: Vec<ImageState> = {
        let mut d = w.inner.dirty.lock().expect("dirty lock");
        d.drain().map(|(_, s)| s).collect()
    };
    if dirty.is_empty() {
        return;
    }
    let commits: Vec<Commit> = dirty
        .iter()
        .map(|s| Commit {
            image: Some(s),
            ..Commit::default()
        })
        .collect();
    if let Err(e) = w
        .inner
        .store
        .lock()
        .expect("store lock")
        .commit_many(&commits)
    {
        tracing::warn!(error = %e, images = dirty.len(), "could not save poll bookkeeping (last success times); retried next cycle");
        let mut d = w.inner.dirty.lock().expect("dirty lock");
        for s in dirty {
            d.entry(s.id.clone()).or_insert(s);
        }
    }
}

fn log_events(events: &[ChangeEvent]) {
    for ev in events {
        tracing::info!(
            image = %ev.image_id,
            name = ev.image_name.as_deref().unwrap_or(""),
            field = ev.field.as_str(),
            old = ev.old.as_deref().unwrap_or(""),
            new = ev.new.as_deref().unwrap_or(""),
            event_id = %ev.id,
            "image changed"
        );
    }
}

fn record_health(
    book: &AlertBook,
    metrics: &Metrics,
    cloud: &str,
    id: &str,
    result: &Result<Image, ApiError>,
    now: i64,
) {
    let mut health = book.health.lock().expect("health lock");
    let h = health.entry(cloud.to_string()).or_default();
    match result {
        Ok(_) => {
            h.last_success = Some(now);
            h.last_error = None;
            h.config_or_auth_error = false;
        }
        Err(e) if e.kind == ApiErrorKind::NotFound => {
            h.last_success = Some(now);
            h.last_error = None;
            h.config_or_auth_error = false;
        }
        Err(e) => {
            metrics.poll_failure(cloud, e.kind.reason());
            tracing::warn!(
                image = %id,
                cloud = %cloud,
                reason = e.kind.reason(),
                http_status = e.http_status.unwrap_or(0),
                error_code = e.error_code.as_deref().unwrap_or(""),
                error_msg = e.error_msg.as_deref().unwrap_or(""),
                request_id = e.request_id.as_deref().unwrap_or(""),
                "poll failed: {e}"
            );
            h.last_error = Some((e.kind.reason().to_string(), e.to_string()));
            h.config_or_auth_error = e.kind.is_config_or_auth();
        }
    }
}
