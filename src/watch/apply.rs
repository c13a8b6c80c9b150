//! Applying one answer: change tracking, alert evaluation, and ONE store transaction holding
//! the new image state, its events, the alert state and the notifications they cause. Only
//! after the commit succeeds does memory (and so `/metrics` and the API) move on, so a crash
//! can never record a change without its notification or the other way round.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::alert::Notification;
use crate::alert::rules::{self, AlertRules, AlertState, CloudHealthFacts, ImageFacts};
use crate::cloud::{ApiError, ApiErrorKind, Image};
use crate::condition::{Condition, ConditionRules};
use crate::config::ChannelType;
use crate::config::settings::{CloudSettings, Settings, WatchedImage};
use crate::metrics::{ImageMetrics, Metrics};
use crate::state::{ChangeEvent, Commit, ImageState, NewOutboxRow, Store};

use super::cycle::{Runtime, Watcher};

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

/// Per-cloud health as the poller sees it (input of `WATCHER_DEGRADED`).
#[derive(Debug, Clone, Default)]
pub struct CloudHealth {
    pub last_success: Option<i64>,
    /// Reason label and message of the last failed poll, cleared by a success.
    pub last_error: Option<(String, String)>,
    pub config_or_auth_error: bool,
}

/// Alert state of every image and cloud, mirrored from the `alert_state` table.
#[derive(Default)]
pub struct AlertBook {
    /// Key: image id, or `cloud:{name}` for a watcher alert.
    pub states: Mutex<HashMap<String, AlertState>>,
    pub health: Mutex<HashMap<String, CloudHealth>>,
}

/// Alert-state key of a cloud's watcher alert.
pub fn cloud_key(cloud: &str) -> String {
    format!("cloud:{cloud}")
}

impl AlertBook {
    /// Loads saved alert state.
    pub fn load(store: &Store) -> anyhow::Result<Self> {
        let raw = store.load_alert_state()?;
        let mut states = HashMap::new();
        for (k, v) in raw {
            match serde_json::from_str::<AlertState>(&v) {
                Ok(s) => {
                    states.insert(k, s);
                }
                Err(e) => tracing::warn!(key = %k, error = %e, "ignoring unreadable alert state"),
            }
        }
        Ok(Self {
            states: Mutex::new(states),
            health: Mutex::new(HashMap::new()),
        })
    }

    /// Firing alerts: (key, state), for the Alertmanager sync and the status page.
    pub fn firing(&self) -> Vec<(String, AlertState)> {
        self.states
            .lock()
            .expect("alert lock")
            .iter()
            .filter(|(_, s)| s.condition.is_some())
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
    }

    /// Drops alert state whose key fails `keep`; returns the dropped keys.
    pub fn forget(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let mut states = self.states.lock().expect("alert lock");
        let dropped: Vec<String> = states.keys().filter(|k| !keep(k)).cloned().collect();
        for k in &dropped {
            states.remove(k);
        }
        self.health
            .lock()
            .expect("health lock")
            .retain(|c, _| keep(&cloud_key(c)));
        dropped
    }

    /// Evaluates every cloud's watcher health and commits changes. Returns notifications queued.
    pub fn evaluate_clouds(&self, w: &Watcher, runtime: &Runtime, now: i64) -> usize {
        let settings = &runtime.settings;
        let rules = alert_rules(settings);
        let mut queued = 0;
        for cloud in runtime.clouds.keys() {
            let health = self
                .health
                .lock()
                .expect("health lock")
                .get(cloud)
                .cloned()
                .unwrap_or_default();
            let facts = CloudHealthFacts {
                cloud: cloud.clone(),
                last_success: health.last_success,
                started_at: w.inner.started_at,
                last_error: health.last_error.clone(),
                config_or_auth_error: health.config_or_auth_error,
            };
            let key = cloud_key(cloud);
            let mut states = self.states.lock().expect("alert lock");
            let prev = states.get(&key);
            let eval = rules::evaluate_cloud(
                prev,
                &facts,
                settings.alerts.stale_after,
                rules.send_resolved,
                now,
            );
            if prev == Some(&eval.state) && eval.notifications.is_empty() {
                continue;
            }
            let outbox = outbox_rows(settings, None, &eval.notifications, now);
            let commit = Commit {
                image: None,
                events: &[],
                alert_state: vec![(
                    key.clone(),
                    Some(serde_json::to_string(&eval.state).expect("serializable")),
                )],
                outbox,
            };
            match w.inner.store.lock().expect("store lock").commit(&commit) {
                Ok(()) => {
                    for n in &eval.notifications {
                        tracing::warn!(cloud = %cloud, kind = n.kind.as_str(), event_id = %n.event_id, "{}", n.summary);
                    }
                    queued += commit.outbox.len();
                    states.insert(key, eval.state);
                }
                Err(e) => {
                    tracing::error!(cloud = %cloud, error = %e, "could not save watcher alert state; will retry next cycle");
                }
            }
        }
        self.publish_firing(&w.inner.metrics);
        queued
    }

    /// Updates `modelarts_alerts_firing{condition}`.
    pub fn publish_firing(&self, metrics: &Metrics) {
        let states = self.states.lock().expect("alert lock");
        for c in Condition::IMAGE
            .iter()
            .chain(std::iter::once(&Condition::WatcherDegraded))
        {
            let n = states.values().filter(|s| s.condition == Some(*c)).count();
            metrics.set_alerts_firing(c.as_str(), n);
        }
    }
}

/// The alert rules of a config.
pub fn alert_rules(settings: &Settings) -> AlertRules {
    AlertRules {
        conditions: ConditionRules {
            enabled: crate::once::conditions(settings),
            not_found_after: settings.alerts.not_found_after,
        },
        send_resolved: settings.alerts.send_resolved,
        repeat_interval: settings.alerts.repeat_interval,
        notify_on_change: settings.alerts.notify_on_change,
    }
}

/// Outbox rows for notifications: one per routed queue channel (email/webhook). The
/// Alertmanager channel is a state sync and takes no rows.
pub fn outbox_rows(
    settings: &Settings,
    routes: Option<&[String]>,
    notifications: &[Notification],
    now: i64,
) -> Vec<NewOutboxRow> {
    let queue_channels: Vec<String> = settings
        .channels
        .iter()
        .filter(|c| {
            !matches!(
                c.kind,
                crate::config::settings::ChannelKind::Alertmanager(_)
            )
        })
        .map(|c| c.name.clone())
        .collect();
    let _ = ChannelType::Email;
    let targets = rules::routes(routes, &queue_channels);
    let mut rows = Vec::new();
    for n in notifications {
        let payload = serde_json::to_string(n).expect("notification serializes");
        let image_key = if n.image_id.is_empty() {
            cloud_key(&n.cloud)
        } else {
            n.image_id.clone()
        };
        for ch in &targets {
            rows.push(NewOutboxRow {
                id: format!("{}@{ch}", n.event_id),
                channel: ch.clone(),
                image_key: image_key.clone(),
                payload: payload.clone(),
                created_at: now,
                next_attempt_at: now,
            });
        }
    }
    rows
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

/// Writes the batched bookkeeping updates in one transaction (end of a cycle, shutdown).
pub fn flush_dirty(w: &Watcher) {
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

/// Publishes one image's metrics from its state (or as unknown when never seen).
pub fn publish_image(metrics: &Metrics, img: &WatchedImage, state: Option<&ImageState>) {
    let id = img.id.as_str();
    let Some(s) = state else {
        metrics.set_image(&ImageMetrics {
            id,
            name: "",
            status: "UNKNOWN",
            size_bytes: None,
            created: None,
            updated: None,
            up: false,
            last_success: None,
            cloud: &img.cloud,
            info: &[],
            labels: &img.labels,
        });
        return;
    };
    let status = match s.effective_status() {
        Some("NOT_FOUND") => "NOT_FOUND",
        Some(st) => crate::cloud::ImageStatus::parse(st).metric_label(),
        None => "UNKNOWN",
    };
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let info_owned = [
        ("arch", opt(&s.arch)),
        ("image_type", opt(&s.image_type)),
        ("service_type", opt(&s.service_type)),
        ("origin", opt(&s.origin)),
        ("visibility", opt(&s.visibility)),
        ("namespace", opt(&s.namespace)),
        ("tag", opt(&s.tag)),
        ("swr_path", opt(&s.swr_path)),
        ("workspace_id", opt(&s.workspace_id)),
    ];
    let info: Vec<(&str, &str)> = info_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    #[allow(clippy::cast_precision_loss)] // timestamps in seconds fit f64 exactly
    let secs = |ms: Option<i64>| ms.map(|v| v as f64 / 1000.0);
    #[allow(clippy::cast_precision_loss)]
    let last_success = s.last_success.map(|v| v as f64);
    metrics.set_image(&ImageMetrics {
        id,
        name: s.name.as_deref().unwrap_or(""),
        status,
        size_bytes: s.size_bytes,
        created: secs(s.create_at),
        updated: secs(s.update_at),
        up: s.consecutive_failures == 0 && s.last_success.is_some(),
        last_success,
        cloud: &img.cloud,
        info: &info,
        labels: &img.labels,
    });
}
