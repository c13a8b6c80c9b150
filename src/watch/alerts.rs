//! The watcher's alert book: per-image and per-cloud alert state mirrored from the store,
//! cloud health as the poller sees it, and turning notifications into outbox rows. Decisions
//! themselves are `alert::rules`; this module keeps their state and commits it.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::alert::Notification;
use crate::alert::rules::{self, AlertRules, AlertState, CloudHealthFacts};
use crate::condition::{Condition, ConditionRules};
use crate::config::settings::Settings;
use crate::metrics::Metrics;
use crate::state::{Commit, NewOutboxRow, Store};

use super::cycle::{Runtime, Watcher};

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
    let am_channels: Vec<&str> = settings
        .channels
        .iter()
        .filter(|c| {
            matches!(
                c.kind,
                crate::config::settings::ChannelKind::Alertmanager(_)
            )
        })
        .map(|c| c.name.as_str())
        .collect();
    // Alertmanager channels are served by the state sync, never by the queue.
    let targets: Vec<String> = rules::routes(routes, &queue_channels)
        .into_iter()
        .filter(|c| !am_channels.contains(&c.as_str()))
        .collect();
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
