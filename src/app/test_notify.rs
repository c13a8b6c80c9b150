//! `test-notify [CHANNEL]`: sends one clearly marked test notification through each channel
//! (or the one named) and reports per channel. Exit 0 when all succeeded, 1 otherwise.

use std::process::ExitCode;

use crate::alert::channel::{Channel, am_alert};
use crate::alert::{Notification, NotificationKind};
use crate::config::settings::Settings;
use crate::watch::apply::unix_now;

/// The test payload: kind `test`, marked in the summary, no real image.
pub fn test_notification(now: i64) -> Notification {
    Notification {
        event_id: format!("test:{now}"),
        kind: NotificationKind::Test,
        condition: None,
        previous_condition: None,
        image_id: "00000000-0000-0000-0000-000000000000".to_string(),
        image_name: Some("test-notification".to_string()),
        previous_status: None,
        status: Some("ACTIVE".to_string()),
        status_message: Some(
            "This is a test from `modelarts-image-exporter test-notify`; no action needed."
                .to_string(),
        ),
        size_bytes: None,
        update_at: None,
        swr_path: None,
        cloud: "test".to_string(),
        project_id: None,
        observed_at: now,
        firing_since: Some(now),
        summary: "[TEST] modelarts-image-exporter test notification: no action needed".to_string(),
        labels: std::collections::BTreeMap::new(),
    }
}

/// Sends and reports.
pub async fn run(settings: &Settings, only: Option<&str>) -> anyhow::Result<ExitCode> {
    let chosen: Vec<_> = settings
        .channels
        .iter()
        .filter(|c| only.is_none_or(|o| o == c.name))
        .collect();
    if chosen.is_empty() {
        let names: Vec<&str> = settings.channels.iter().map(|c| c.name.as_str()).collect();
        eprintln!(
            "no channel {}; configured channels: {}",
            only.map_or_else(|| "configured".to_string(), |o| format!("named {o:?}")),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
        return Ok(ExitCode::from(2));
    }
    let now = unix_now();
    let n = test_notification(now);
    let mut failed = 0;
    for ch in chosen {
        let result = match Channel::new(ch) {
            Err(e) => Err(format!("{e:#}")),
            Ok(c) if c.is_alertmanager() => {
                let mut a = am_alert(&n, now + 60, None);
                a.labels
                    .insert("alertname".into(), "ModelArtsExporterTest".into());
                a.labels.insert("test".into(), "true".into());
                c.push(&[a]).await.map_err(|e| e.to_string())
            }
            Ok(c) => c
                .send(std::slice::from_ref(&n))
                .await
                .map_err(|e| e.to_string()),
        };
        match result {
            Ok(()) => println!("{:<24} ok", ch.name),
            Err(e) => {
                failed += 1;
                println!("{:<24} FAILED: {e}", ch.name);
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
