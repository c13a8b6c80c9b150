//! The Alertmanager channel: maps notifications to postable alerts (`/api/v2/alerts`) and
//! pushes them. It is a state sync, not a queue: deciding *which* alerts to push every cycle and
//! their `endsAt` is the caller's job, not this module's.
//!
//! Identity: an alert is identified by its labels only (`alertname`, `id`, `name`, `cloud` and
//! the image's config labels). The condition is deliberately an **annotation**, not a label:
//! when an image moves from `ERROR` to `DELETED`, the push updates the same alert (same
//! fingerprint, same `startsAt`) instead of opening a second alert and leaving the first to
//! time out — which matches PRODUCT 3.3 ("no resolved/firing pair in between").

use std::collections::BTreeMap;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::DeliveryError;
use super::http;
use super::text;
use crate::alert::Notification;

/// `alertname` of image alerts.
pub const IMAGE_ALERTNAME: &str = "ModelArtsImageAlert";
/// `alertname` of per-cloud watcher health alerts.
pub const DEGRADED_ALERTNAME: &str = "ModelArtsWatcherDegraded";
const DEGRADED: &str = "WATCHER_DEGRADED";

/// One postable alert of Alertmanager's API v2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339; stable for the life of the alert (`firing_since`).
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    /// RFC 3339; in the future while firing, `now` to resolve.
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

/// The condition a notification is about: its own, or for a resolution the one that resolved.
fn condition_of(n: &Notification) -> Option<&str> {
    n.condition.as_deref().or(n.previous_condition.as_deref())
}

/// Identifying labels. Config labels come first so they can never override ours.
pub fn am_labels(n: &Notification) -> BTreeMap<String, String> {
    let mut labels = n.labels.clone();
    let degraded = condition_of(n) == Some(DEGRADED);
    labels.insert(
        "alertname".into(),
        if degraded {
            DEGRADED_ALERTNAME
        } else {
            IMAGE_ALERTNAME
        }
        .into(),
    );
    labels.insert("cloud".into(), n.cloud.clone());
    if degraded {
        labels.remove("id");
        labels.remove("name");
    } else {
        labels.insert("id".into(), n.image_id.clone());
        labels.insert(
            "name".into(),
            n.image_name.clone().unwrap_or_else(|| n.image_id.clone()),
        );
    }
    labels
}

/// Annotations: `summary`, `description` (every field as text), `condition`, `status_message`.
pub fn am_annotations(n: &Notification) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::from([
        ("summary".to_string(), n.summary.clone()),
        ("description".to_string(), text::plain_block(n)),
    ]);
    if let Some(condition) = condition_of(n) {
        annotations.insert("condition".into(), condition.to_string());
    }
    if let Some(message) = &n.status_message {
        annotations.insert("status_message".into(), message.clone());
    }
    annotations
}

/// The alert for `n`, ending at `ends_at_unix` (a few intervals ahead while firing, now to
/// resolve). `startsAt` is `firing_since` (else the observation time), so re-pushes and
/// condition moves keep it stable.
pub fn am_alert(n: &Notification, ends_at_unix: i64, generator_url: Option<&str>) -> AmAlert {
    AmAlert {
        labels: am_labels(n),
        annotations: am_annotations(n),
        starts_at: text::rfc3339(n.firing_since.unwrap_or(n.observed_at)),
        ends_at: text::rfc3339(ends_at_unix),
        generator_url: generator_url.map(str::to_string),
    }
}

/// Pushes to one Alertmanager. Holds the URL (a secret) privately; errors name only its host.
pub(super) struct AlertmanagerChannel {
    pub(super) client: reqwest::Client,
    /// `{url}/api/v2/alerts`.
    pub(super) endpoint: Url,
}

impl AlertmanagerChannel {
    pub(super) fn new(client: reqwest::Client, base: &Url) -> Self {
        let mut endpoint = base.clone();
        let path = format!("{}/api/v2/alerts", base.path().trim_end_matches('/'));
        endpoint.set_path(&path);
        endpoint.set_query(None);
        Self { client, endpoint }
    }

    pub(super) async fn push(&self, alerts: &[AmAlert]) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(alerts).map_err(|e| DeliveryError {
            permanent: true,
            message: format!("cannot encode alerts: {e}"),
            retry_after: None,
        })?;
        let request = self
            .client
            .post(self.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        http::deliver(request, &self.endpoint, http::ReplyCheck::StatusOnly).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::NotificationKind;
    use crate::alert::channel::text::tests::firing;

    #[test]
    fn alert_json_is_the_postable_shape() {
        let alert = am_alert(&firing(), 1_700_000_400, Some("http://watch:9917/"));
        let v = serde_json::to_value(&alert).unwrap();
        assert_eq!(v["startsAt"], "2023-11-14T22:15:00Z");
        assert_eq!(v["endsAt"], "2023-11-14T22:20:00Z");
        assert_eq!(v["generatorURL"], "http://watch:9917/");
        assert_eq!(v["labels"]["alertname"], IMAGE_ALERTNAME);
        assert_eq!(v["labels"]["id"], "278e88d1-5b71-4766-8502-b3ba72e824d9");
        assert_eq!(v["labels"]["name"], "pytorch-1.8");
        assert_eq!(v["labels"]["team"], "ml-platform");
        assert!(v["labels"].get("condition").is_none());
        assert_eq!(v["annotations"]["condition"], "CREATE_FAILED");
        assert_eq!(
            v["annotations"]["status_message"],
            "build <failed> & \"stopped\""
        );
        let none = serde_json::to_value(am_alert(&firing(), 0, None)).unwrap();
        assert!(none.get("generatorURL").is_none());
    }

    #[test]
    fn moving_between_conditions_keeps_the_identity() {
        let first = firing();
        let mut moved = firing();
        moved.condition = Some("DELETED".into());
        moved.previous_condition = Some("CREATE_FAILED".into());
        moved.observed_at += 600;
        let (a, b) = (am_alert(&first, 1, None), am_alert(&moved, 2, None));
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.starts_at, b.starts_at);
        assert_eq!(b.annotations["condition"], "DELETED");
    }

    #[test]
    fn config_labels_cannot_override_identity_and_degraded_is_per_cloud() {
        let mut n = firing();
        n.labels.insert("alertname".into(), "Spoof".into());
        n.labels.insert("id".into(), "spoof".into());
        let labels = am_labels(&n);
        assert_eq!(labels["alertname"], IMAGE_ALERTNAME);
        assert_eq!(labels["id"], n.image_id);

        let mut d = firing();
        d.condition = Some(DEGRADED.into());
        d.image_id = String::new();
        d.image_name = None;
        let labels = am_labels(&d);
        assert_eq!(labels["alertname"], DEGRADED_ALERTNAME);
        assert_eq!(labels["cloud"], "otc-prod");
        assert!(!labels.contains_key("id"));

        let mut resolved = firing();
        resolved.kind = NotificationKind::Resolved;
        resolved.condition = None;
        resolved.previous_condition = Some("CREATE_FAILED".into());
        assert_eq!(am_annotations(&resolved)["condition"], "CREATE_FAILED");
    }
}
