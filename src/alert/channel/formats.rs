//! Webhook bodies for the formats that are not chat tools: our own `json` schema and the
//! Alertmanager webhook payload (version 4). Pure renderers: no I/O, no clock, no signing.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::alertmanager::{am_annotations, am_labels};
use super::text;
use crate::alert::{Notification, NotificationKind};

/// Version of our own `json` schema (`"version"` in every body).
pub const JSON_SCHEMA_VERSION: &str = "1";

/// Our `json` format. One notification: the notification's fields plus `"version":"1"`.
/// A batch: `{"version":"1","group":true,"summary":...,"notifications":[...]}`.
pub fn json(batch: &[Notification]) -> Value {
    if let [one] = batch {
        let mut object = notification_object(one);
        object.insert("version".into(), JSON_SCHEMA_VERSION.into());
        return Value::Object(object);
    }
    json!({
        "version": JSON_SCHEMA_VERSION,
        "group": true,
        "summary": text::headline(batch),
        "notifications": batch.iter().map(|n| Value::Object(notification_object(n))).collect::<Vec<_>>(),
    })
}

fn notification_object(n: &Notification) -> Map<String, Value> {
    match serde_json::to_value(n) {
        Ok(Value::Object(map)) => map,
        // A struct of strings, numbers and maps always serializes to an object.
        _ => Map::new(),
    }
}

/// The `webhook-id` of a message: the event id of a single notification, or for a batch a
/// deterministic id derived from its members' event ids (so a retried batch keeps its id).
pub fn message_id(batch: &[Notification]) -> String {
    if let [one] = batch {
        return one.event_id.clone();
    }
    let mut hasher = Sha256::new();
    for n in batch {
        hasher.update(n.event_id.as_bytes());
        hasher.update(b"\n");
    }
    format!("grp_{}", &hex::encode(hasher.finalize())[..32])
}

/// Alertmanager's "zero" time, which it sends as `endsAt` of firing alerts.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Alertmanager webhook payload version 4, as Alertmanager itself posts it, so existing
/// receivers (e.g. alertmanager-discord, prometheus-msteams) work unchanged. `receiver` is the
/// channel name. Firing alerts have the zero `endsAt`; resolved ones end at their observation.
pub fn alertmanager(batch: &[Notification], receiver: &str) -> Value {
    let alerts: Vec<Value> = batch
        .iter()
        .map(|n| {
            let labels = am_labels(n);
            let resolved = n.kind == NotificationKind::Resolved;
            json!({
                "status": if resolved { "resolved" } else { "firing" },
                "labels": labels,
                "annotations": am_annotations(n),
                "startsAt": text::rfc3339(n.firing_since.unwrap_or(n.observed_at)),
                "endsAt": if resolved { text::rfc3339(n.observed_at) } else { ZERO_TIME.to_string() },
                "generatorURL": "",
                "fingerprint": fingerprint(&labels),
            })
        })
        .collect();
    let all_labels: Vec<_> = batch.iter().map(am_labels).collect();
    let all_annotations: Vec<_> = batch.iter().map(am_annotations).collect();
    let common_labels = common(&all_labels);
    let common_annotations = common(&all_annotations);
    let status = if batch.iter().any(|n| n.kind != NotificationKind::Resolved) {
        "firing"
    } else {
        "resolved"
    };
    let group_labels = common_labels
        .get_key_value("alertname")
        .map(|(k, v)| Map::from_iter([(k.clone(), Value::from(v.clone()))]))
        .unwrap_or_default();
    let group_key = format!(
        "{{}}:{{{}}}",
        group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": common_annotations,
        "externalURL": "",
        "alerts": alerts,
    })
}

/// The pairs every map has in common (Alertmanager's `commonLabels`).
fn common(
    maps: &[std::collections::BTreeMap<String, String>],
) -> std::collections::BTreeMap<String, String> {
    let Some((first, rest)) = maps.split_first() else {
        return std::collections::BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A stable 16-hex-digit fingerprint of a label set (like Alertmanager's).
fn fingerprint(labels: &std::collections::BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (k, v) in labels {
        hasher.update(k.as_bytes());
        hasher.update([0xff]);
        hasher.update(v.as_bytes());
        hasher.update([0xff]);
    }
    hex::encode(&hasher.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::channel::text::tests::firing;

    #[test]
    fn json_single_is_exact() {
        let body = json(&[firing()]);
        assert_eq!(
            body,
            json!({
                "version": "1",
                "event_id": "278e88d1-5b71-4766-8502-b3ba72e824d9-7",
                "kind": "firing",
                "condition": "CREATE_FAILED",
                "previous_condition": null,
                "image_id": "278e88d1-5b71-4766-8502-b3ba72e824d9",
                "image_name": "pytorch-1.8",
                "previous_status": "CREATING",
                "status": "CREATE_FAILED",
                "status_message": "build <failed> & \"stopped\"",
                "size_bytes": 5_368_709_120_u64,
                "update_at": 1_700_000_000_123_i64,
                "swr_path": "swr.eu-de.otc.t-systems.com/team-ml/pytorch:1.8",
                "cloud": "otc-prod",
                "project_id": "0bf8e7b0c1a94b6a9d1c2f3e4a5b6c7d",
                "observed_at": 1_700_000_100,
                "firing_since": 1_700_000_100,
                "summary": "ModelArts image pytorch-1.8 is CREATE_FAILED",
                "labels": {"team": "ml-platform"}
            })
        );
    }

    #[test]
    fn json_batch_groups_members() {
        let mut second = firing();
        second.event_id = "other-1".into();
        let body = json(&[firing(), second]);
        assert_eq!(body["version"], "1");
        assert_eq!(body["group"], true);
        assert_eq!(
            body["summary"],
            "[FIRING] 2 ModelArts images need attention"
        );
        let members = body["notifications"].as_array().unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[1]["event_id"], "other-1");
        assert_eq!(members[0], {
            let mut one = json(&[firing()]);
            one.as_object_mut().unwrap().remove("version");
            one
        });
    }

    #[test]
    fn message_ids_are_stable() {
        assert_eq!(message_id(&[firing()]), firing().event_id);
        let mut second = firing();
        second.event_id = "other-1".into();
        let a = message_id(&[firing(), second.clone()]);
        assert_eq!(a, message_id(&[firing(), second.clone()]));
        assert_ne!(a, message_id(&[second, firing()]));
        assert!(a.starts_with("grp_") && a.len() == 36);
    }

    #[test]
    fn alertmanager_v4_single_is_exact() {
        let body = alertmanager(&[firing()], "ops-hook");
        let labels = json!({
            "alertname": "ModelArtsImageAlert",
            "cloud": "otc-prod",
            "id": "278e88d1-5b71-4766-8502-b3ba72e824d9",
            "name": "pytorch-1.8",
            "team": "ml-platform"
        });
        let fp = body["alerts"][0]["fingerprint"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(fp.len(), 16);
        let annotations = body["alerts"][0]["annotations"].clone();
        assert_eq!(annotations["condition"], "CREATE_FAILED");
        assert_eq!(
            annotations["summary"],
            "ModelArts image pytorch-1.8 is CREATE_FAILED"
        );
        assert!(
            annotations["description"]
                .as_str()
                .unwrap()
                .contains("Event id: 278e88d1")
        );
        assert_eq!(
            body,
            json!({
                "version": "4",
                "groupKey": "{}:{alertname=\"ModelArtsImageAlert\"}",
                "truncatedAlerts": 0,
                "status": "firing",
                "receiver": "ops-hook",
                "groupLabels": {"alertname": "ModelArtsImageAlert"},
                "commonLabels": labels,
                "commonAnnotations": annotations,
                "externalURL": "",
                "alerts": [{
                    "status": "firing",
                    "labels": labels,
                    "annotations": annotations,
                    "startsAt": "2023-11-14T22:15:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "",
                    "fingerprint": fp,
                }]
            })
        );
    }

    #[test]
    fn alertmanager_v4_resolved_batch() {
        let mut a = firing();
        a.kind = NotificationKind::Resolved;
        a.observed_at = 1_700_000_400;
        let mut b = a.clone();
        b.image_id = "other".into();
        let body = alertmanager(&[a, b], "r");
        assert_eq!(body["status"], "resolved");
        assert_eq!(body["alerts"].as_array().unwrap().len(), 2);
        assert_eq!(body["alerts"][1]["status"], "resolved");
        assert_eq!(body["alerts"][1]["endsAt"], "2023-11-14T22:20:00Z");
        assert!(body["commonLabels"].get("id").is_none());
        assert_eq!(body["commonLabels"]["cloud"], "otc-prod");
        assert_ne!(
            body["alerts"][0]["fingerprint"],
            body["alerts"][1]["fingerprint"]
        );
    }
}
