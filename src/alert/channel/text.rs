//! Shared wording for every channel: headlines, subjects and the field list of a notification.
//! Pure (no I/O, no clock); escaping for a target format is the renderer's job, not this one's.

use std::fmt::Write as _;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::alert::{Notification, NotificationKind};

/// The bracketed tag of a subject line: `FIRING`, `RESOLVED`, `CHANGE` or `TEST`.
pub fn tag(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Firing | NotificationKind::Repeat => "FIRING",
        NotificationKind::Resolved => "RESOLVED",
        NotificationKind::Change => "CHANGE",
        NotificationKind::Test => "TEST",
    }
}

/// The tag of a batch: `FIRING` when any member fires, else the members' common tag, else
/// `CHANGE`.
pub fn batch_tag(batch: &[Notification]) -> &'static str {
    if batch.iter().any(|n| tag(n.kind) == "FIRING") {
        return "FIRING";
    }
    match batch.first() {
        Some(first) if batch.iter().all(|n| n.kind == first.kind) => tag(first.kind),
        _ => "CHANGE",
    }
}

/// One line: `[FIRING] ModelArts image pytorch-1.8 is CREATE_FAILED` for one notification,
/// `[FIRING] 12 ModelArts images need attention` for a batch.
pub fn headline(batch: &[Notification]) -> String {
    if let [one] = batch {
        return format!("[{}] {}", tag(one.kind), one.summary);
    }
    let tag = batch_tag(batch);
    let what = match tag {
        "FIRING" => "ModelArts images need attention",
        "RESOLVED" => "ModelArts image alerts resolved",
        _ => "ModelArts image notifications",
    };
    format!("[{tag}] {} {what}", batch.len())
}

/// Unix seconds as RFC 3339 (UTC); the number itself when out of range.
pub fn rfc3339(unix_seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix_seconds.to_string())
}

/// Unix milliseconds (the API's `update_at`) as RFC 3339 (UTC).
pub fn rfc3339_millis(unix_millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_millis) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix_millis.to_string())
}

/// Bytes with a binary unit, e.g. `5368709120 (5.0 GiB)`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    #[allow(clippy::cast_precision_loss)] // reason: a human-readable approximation
    let mut value = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    if unit == "B" {
        format!("{bytes} B")
    } else {
        format!("{bytes} ({value:.1} {unit})")
    }
}

const NONE: &str = "-";

fn opt(value: Option<&String>) -> String {
    value.map_or_else(|| NONE.to_string(), Clone::clone)
}

/// Every field of a notification as (label, value) pairs, in display order. Values are raw
/// (unescaped) text; absent values are `-`.
pub fn fields(n: &Notification) -> Vec<(&'static str, String)> {
    let labels = if n.labels.is_empty() {
        NONE.to_string()
    } else {
        n.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        ("Summary", n.summary.clone()),
        ("Event id", n.event_id.clone()),
        ("Kind", n.kind.as_str().to_string()),
        ("Condition", opt(n.condition.as_ref())),
        ("Previous condition", opt(n.previous_condition.as_ref())),
        ("Image id", n.image_id.clone()),
        ("Image name", opt(n.image_name.as_ref())),
        ("Previous status", opt(n.previous_status.as_ref())),
        ("Status", opt(n.status.as_ref())),
        ("Status message", opt(n.status_message.as_ref())),
        ("Size", n.size_bytes.map_or_else(|| NONE.to_string(), size)),
        (
            "Updated at",
            n.update_at.map_or_else(|| NONE.to_string(), rfc3339_millis),
        ),
        ("SWR path", opt(n.swr_path.as_ref())),
        ("Cloud", n.cloud.clone()),
        ("Project", opt(n.project_id.as_ref())),
        ("Observed at", rfc3339(n.observed_at)),
        (
            "Firing since",
            n.firing_since.map_or_else(|| NONE.to_string(), rfc3339),
        ),
        ("Labels", labels),
    ]
}

/// Plain text: `Label: value` lines for one notification.
pub fn plain_block(n: &Notification) -> String {
    let mut out = String::new();
    for (label, value) in fields(n) {
        let _ = writeln!(out, "{label}: {value}");
    }
    out
}

/// Plain text of a whole message: the headline, then one block per notification.
pub fn plain(batch: &[Notification]) -> String {
    let mut out = headline(batch);
    out.push_str("\n\n");
    for (i, n) in batch.iter().enumerate() {
        if i > 0 {
            out.push_str("\n---\n\n");
        }
        out.push_str(&plain_block(n));
    }
    out
}

/// Cuts `s` to at most `max` bytes on a char boundary, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A firing notification with every field set.
    pub fn firing() -> Notification {
        Notification {
            event_id: "278e88d1-5b71-4766-8502-b3ba72e824d9-7".to_string(),
            kind: NotificationKind::Firing,
            condition: Some("CREATE_FAILED".to_string()),
            previous_condition: None,
            image_id: "278e88d1-5b71-4766-8502-b3ba72e824d9".to_string(),
            image_name: Some("pytorch-1.8".to_string()),
            previous_status: Some("CREATING".to_string()),
            status: Some("CREATE_FAILED".to_string()),
            status_message: Some("build <failed> & \"stopped\"".to_string()),
            size_bytes: Some(5_368_709_120),
            update_at: Some(1_700_000_000_123),
            swr_path: Some("swr.eu-de.otc.t-systems.com/team-ml/pytorch:1.8".to_string()),
            cloud: "otc-prod".to_string(),
            project_id: Some("0bf8e7b0c1a94b6a9d1c2f3e4a5b6c7d".to_string()),
            observed_at: 1_700_000_100,
            firing_since: Some(1_700_000_100),
            summary: "ModelArts image pytorch-1.8 is CREATE_FAILED".to_string(),
            labels: BTreeMap::from([("team".to_string(), "ml-platform".to_string())]),
        }
    }

    #[test]
    fn headlines() {
        let one = firing();
        assert_eq!(
            headline(std::slice::from_ref(&one)),
            "[FIRING] ModelArts image pytorch-1.8 is CREATE_FAILED"
        );
        let mut resolved = one.clone();
        resolved.kind = NotificationKind::Resolved;
        assert!(headline(std::slice::from_ref(&resolved)).starts_with("[RESOLVED] "));
        let mut test = one.clone();
        test.kind = NotificationKind::Test;
        assert!(headline(&[test]).starts_with("[TEST] "));
        let batch = vec![one.clone(); 12];
        assert_eq!(
            headline(&batch),
            "[FIRING] 12 ModelArts images need attention"
        );
        assert_eq!(
            headline(&[resolved.clone(), resolved]),
            "[RESOLVED] 2 ModelArts image alerts resolved"
        );
    }

    #[test]
    fn dates_sizes_and_truncation() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_millis(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(size(512), "512 B");
        assert_eq!(size(5_368_709_120), "5368709120 (5.0 GiB)");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcdef", 4), "a…");
        assert!(truncate("ééééé", 6).len() <= 6);
    }

    #[test]
    fn plain_text_names_every_field() {
        let text = plain(&[firing()]);
        for needle in [
            "Event id: 278e88d1-5b71-4766-8502-b3ba72e824d9-7",
            "Kind: firing",
            "Condition: CREATE_FAILED",
            "Previous condition: -",
            "Image name: pytorch-1.8",
            "Previous status: CREATING",
            "Status message: build <failed>",
            "Size: 5368709120 (5.0 GiB)",
            "Updated at: 2023-11-14T22:13:20.123Z",
            "SWR path: swr.eu-de",
            "Cloud: otc-prod",
            "Project: 0bf8e7b0",
            "Observed at: 2023-11-14T22:15:00Z",
            "Labels: team=ml-platform",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in {text}");
        }
    }
}
