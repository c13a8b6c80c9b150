//! Background alert tasks of the daemon: the outbox delivery worker (email/webhook channels)
//! and the Alertmanager state sync. Both rebuild themselves from the settings on reload.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::observers::{ChannelSender, StoreOutbox};
use crate::alert::channel::{AmAlert, Channel, am_alert};
use crate::alert::deliver::{Deliverer, DeliveryConfig, Sender};
use crate::alert::{Notification, NotificationKind};
use crate::config::settings::{ChannelKind, Schedule, Settings};
use crate::watch::Watcher;
use crate::watch::apply::unix_now;

/// A named background task.
pub type Task = (
    &'static str,
    Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>,
);

/// The alert tasks to run beside the poll loop.
pub fn tasks(watcher: &Watcher, shutdown: CancellationToken) -> Vec<Task> {
    let w = watcher.clone();
    let sd = shutdown.clone();
    let mut out: Vec<Task> = vec![("delivery", Box::pin(delivery_loop(w, sd)))];

    let w = watcher.clone();
    out.push(("alertmanager sync", Box::pin(am_sync_loop(w, shutdown))));
    out
}

fn build_deliverer(w: &Watcher, settings: &Settings) -> Deliverer {
    let mut senders: Vec<Arc<dyn Sender>> = Vec::new();
    for ch in &settings.channels {
        if matches!(ch.kind, ChannelKind::Alertmanager(_)) {
            continue;
        }
        match Channel::new(ch) {
            Ok(c) => senders.push(Arc::new(ChannelSender(c))),
            // Its rows stay queued (and are retried) until the channel works or max_age.
            Err(e) => tracing::error!(channel = %ch.name, "channel cannot be set up: {e:#}"),
        }
    }
    let config = DeliveryConfig {
        group_threshold: settings.alerts.group_threshold,
        max_age: settings.alerts.max_age,
        ..DeliveryConfig::default()
    };
    Deliverer::new(
        Arc::new(StoreOutbox(w.clone())),
        senders,
        Arc::new(w.metrics().clone()),
        config,
    )
}

/// Runs the delivery worker; on reload, lets the current one stop and builds a new one.
async fn delivery_loop(w: Watcher, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut reloads = w.subscribe_reload();
    loop {
        let settings = w.settings();
        let generation = shutdown.child_token();
        let worker =
            tokio::spawn(build_deliverer(&w, &settings).run(generation.clone(), w.outbox_wake()));
        tokio::select! {
            () = shutdown.cancelled() => {
                // The worker sees the parent's cancellation and does its bounded final flush.
                let _ = worker.await;
                return Ok(());
            }
            changed = reloads.changed() => {
                generation.cancel();
                let _ = worker.await;
                if changed.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

/// How often the Alertmanager sync pushes: the poll interval, within 5 s … 60 s.
fn am_period(settings: &Settings) -> Duration {
    match settings.poll.schedule {
        Schedule::Interval(iv) => iv.clamp(Duration::from_secs(5), Duration::from_secs(60)),
        Schedule::Cron(_) => Duration::from_secs(60),
    }
}

/// Resolved alerts are re-sent with `endsAt` = resolution time for this long.
const RESOLVED_RESEND: i64 = 15 * 60;

/// Pushes every firing alert to each Alertmanager channel every period (with `endsAt` a few
/// periods ahead, so a dead daemon's alerts expire on their own), and resolved ones for 15 min.
async fn am_sync_loop(w: Watcher, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut resolved: HashMap<String, (Notification, i64)> = HashMap::new();
    let mut previous: HashMap<String, Notification> = HashMap::new();
    loop {
        let settings = w.settings();
        let period = am_period(&settings);
        let channels: Vec<Channel> = settings
            .channels
            .iter()
            .filter(|c| matches!(c.kind, ChannelKind::Alertmanager(_)))
            .filter_map(|c| {
                Channel::new(c)
                    .map_err(|e| tracing::error!(channel = %c.name, "{e:#}"))
                    .ok()
            })
            .collect();
        let now = unix_now();
        let firing = firing_notifications(&w, now);
        for (key, n) in previous.drain() {
            if !firing.contains_key(&key) {
                resolved.insert(key, (n, now));
            }
        }
        resolved.retain(|k, (_, at)| now - *at < RESOLVED_RESEND && !firing.contains_key(k));
        if !channels.is_empty() {
            let ends = now + i64::try_from(period.as_secs() * 4).unwrap_or(240).max(300);
            let image_channels = image_routes(&w);
            for ch in &channels {
                // Per-image `channels` routing applies here too (watcher alerts go everywhere).
                let routed = |n: &Notification| {
                    image_channels.get(&n.image_id).is_none_or(|r| {
                        r.as_ref()
                            .is_none_or(|list| list.iter().any(|c| c == ch.name()))
                    })
                };
                let mut alerts: Vec<AmAlert> = firing
                    .values()
                    .filter(|n| routed(n))
                    .map(|n| am_alert(n, ends, None))
                    .collect();
                alerts.extend(
                    resolved
                        .values()
                        .filter(|(n, _)| routed(n))
                        .map(|(n, at)| am_alert(n, *at, None)),
                );
                if alerts.is_empty() {
                    continue;
                }
                match ch.push(&alerts).await {
                    Ok(()) => w.metrics().notification_sent(ch.name()),
                    Err(e) => {
                        w.metrics().notification_failed(ch.name());
                        tracing::warn!(channel = %ch.name(), "Alertmanager push failed (retried next period): {e}");
                    }
                }
            }
        }
        previous = firing;
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(period) => {}
        }
    }
}

/// Each watched image's channel list (`None`: every channel).
fn image_routes(w: &Watcher) -> HashMap<String, Option<Vec<String>>> {
    w.watched_images()
        .into_iter()
        .map(|i| (i.id.to_string(), i.channels))
        .collect()
}

/// One notification per firing alert, rebuilt from the current state (stable `startsAt`).
fn firing_notifications(w: &Watcher, now: i64) -> HashMap<String, Notification> {
    let settings = w.settings();
    let snapshot: HashMap<String, _> = w
        .snapshot()
        .into_iter()
        .map(|(img, s)| (img.id.to_string(), (img, s)))
        .collect();
    let mut out = HashMap::new();
    for (key, st) in w.alert_book().firing() {
        let Some(cond) = st.condition else { continue };
        let (image_id, name, cloud, labels, s) = if let Some(cloud) = key.strip_prefix("cloud:") {
            (
                String::new(),
                None,
                cloud.to_string(),
                std::collections::BTreeMap::default(),
                None,
            )
        } else if let Some((img, s)) = snapshot.get(&key) {
            (
                key.clone(),
                s.as_ref().and_then(|s| s.name.clone()),
                img.cloud.clone(),
                img.labels.clone(),
                s.clone(),
            )
        } else {
            continue; // no longer configured
        };
        let project_id = settings
            .clouds
            .iter()
            .find(|c| c.name == cloud)
            .and_then(|c| c.project_id.as_ref().map(ToString::to_string));
        let what = name.clone().unwrap_or_else(|| image_id.clone());
        let summary = if image_id.is_empty() {
            format!("ModelArts watcher for cloud {cloud} is degraded")
        } else {
            format!("ModelArts image {what} is {cond}")
        };
        out.insert(
            key.clone(),
            Notification {
                event_id: format!("{key}:am"),
                kind: NotificationKind::Firing,
                condition: Some(cond.to_string()),
                previous_condition: None,
                image_id,
                image_name: name,
                previous_status: None,
                status: s
                    .as_ref()
                    .and_then(|s| s.effective_status().map(str::to_string)),
                status_message: s.as_ref().and_then(|s| s.status_message.clone()),
                size_bytes: s.as_ref().and_then(|s| s.size_bytes),
                update_at: s.as_ref().and_then(|s| s.update_at),
                swr_path: s.as_ref().and_then(|s| s.swr_path.clone()),
                cloud,
                project_id,
                observed_at: s.as_ref().and_then(|s| s.last_success).unwrap_or(now),
                firing_since: st.firing_since,
                summary,
                labels,
            },
        );
    }
    out
}
