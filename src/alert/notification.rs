//! The notification payload: what every channel renders. Stored as JSON in the outbox, so its
//! serialized form is stable (add fields with `#[serde(default)]`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Why a notification was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    /// The image entered an alerting condition (or moved to another one).
    Firing,
    /// The image left every alerting condition.
    Resolved,
    /// Still firing after `repeat_interval`.
    Repeat,
    /// Informational: status/size/update_at changed (`notify_on_change`).
    Change,
    /// `test-notify`.
    Test,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
            Self::Repeat => "repeat",
            Self::Change => "change",
            Self::Test => "test",
        }
    }
}

/// One notification about one image (or, for `WATCHER_DEGRADED`, one cloud).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Stable across retries and restarts; receivers de-duplicate on it.
    pub event_id: String,
    pub kind: NotificationKind,
    /// `CREATE_FAILED`, `ERROR`, `DELETED`, `NOT_FOUND`, `WATCHER_DEGRADED`; `None` for changes.
    pub condition: Option<String>,
    /// The condition this one replaced (moving between conditions), or that resolved.
    #[serde(default)]
    pub previous_condition: Option<String>,
    /// Image id; for `WATCHER_DEGRADED`, empty.
    pub image_id: String,
    pub image_name: Option<String>,
    pub previous_status: Option<String>,
    /// API status or `NOT_FOUND`.
    pub status: Option<String>,
    pub status_message: Option<String>,
    pub size_bytes: Option<u64>,
    /// UTC milliseconds, as the API gives it.
    pub update_at: Option<i64>,
    pub swr_path: Option<String>,
    pub cloud: String,
    pub project_id: Option<String>,
    /// Unix seconds when the causing observation was made.
    pub observed_at: i64,
    /// Unix seconds when the alert started firing (stable; Alertmanager `startsAt`).
    #[serde(default)]
    pub firing_since: Option<i64>,
    /// One line, e.g. `ModelArts image pytorch-1.8 is CREATE_FAILED`.
    pub summary: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}
