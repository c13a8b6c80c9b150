//! Discovery: images found by ListImage (`[[discovery]]`) join the watched set. A failed or
//! partial listing never drops an image, and an image that disappears from the list is still
//! polled with ShowImage until it answers not-found (so its deletion is seen and alerted).
//! `merge` is the pure decision; `run` is the periodic I/O around it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Watcher;
use crate::cloud::{ImageId, ListFilter};
use crate::config::settings::{DiscoverySettings, WatchedImage};
use crate::state::ImageState;

/// The images one discovery source currently contributes, by id.
pub type Discovered = BTreeMap<String, WatchedImage>;

/// Merges one listing into a source's previous set.
///
/// `listed` is `None` when the listing failed (keep everything). Ids that fail validation are
/// skipped with a warning by the caller. An id that vanished from the list stays until its state
/// shows `not_found_after` consecutive not-found answers.
#[allow(clippy::implicit_hasher)] // reason: always the watcher's own state map
pub fn merge(
    previous: &Discovered,
    listed: Option<&[ImageId]>,
    source: &DiscoverySettings,
    states: &HashMap<String, ImageState>,
    not_found_after: u32,
) -> Discovered {
    let Some(listed) = listed else {
        return previous.clone();
    };
    let mut next: Discovered = listed
        .iter()
        .map(|id| {
            (
                id.to_string(),
                WatchedImage {
                    id: id.clone(),
                    cloud: source.cloud.clone(),
                    labels: source.labels.clone(),
                    channels: source.channels.clone(),
                },
            )
        })
        .collect();
    for (id, img) in previous {
        if next.contains_key(id) {
            continue;
        }
        let gone = states
            .get(id)
            .is_some_and(|s| s.consecutive_not_found >= not_found_after.max(1));
        if !gone {
            next.insert(id.clone(), img.clone());
        }
    }
    next
}

/// Validates listed ids; invalid ones are logged and skipped.
pub fn valid_ids(cloud: &str, raw: impl IntoIterator<Item = Option<String>>) -> Vec<ImageId> {
    raw.into_iter()
        .flatten()
        .filter_map(|id| match ImageId::parse(&id) {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::warn!(cloud = %cloud, "discovery skipped an image: {e}");
                None
            }
        })
        .collect()
}

/// Refreshes every discovery source on its own period until `shutdown`; rebuilt on reload.
pub async fn run(w: Watcher, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut reloads = w.subscribe_reload();
    loop {
        let settings = w.settings();
        let generation = shutdown.child_token();
        let mut tasks = tokio::task::JoinSet::new();
        for (index, source) in settings.discovery.iter().cloned().enumerate() {
            let (w, stop) = (w.clone(), generation.clone());
            tasks.spawn(async move { refresh_loop(w, index, source, stop).await });
        }
        w.retain_discovery_sources(settings.discovery.len());
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            changed = reloads.changed() => {
                generation.cancel();
                while tasks.join_next().await.is_some() {}
                if changed.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

async fn refresh_loop(
    w: Watcher,
    index: usize,
    source: DiscoverySettings,
    stop: CancellationToken,
) {
    let period = source.refresh.max(Duration::from_secs(10));
    loop {
        refresh_once(&w, index, &source).await;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
    }
}

/// One listing of one source, merged into the watched set.
pub async fn refresh_once(w: &Watcher, index: usize, source: &DiscoverySettings) {
    let runtime = w.runtime();
    let Some(cloud) = runtime.clouds.get(&source.cloud) else {
        return;
    };
    let filter = ListFilter {
        image_type: Some(source.image_type.clone()),
        namespace: source.namespace.clone(),
        name: source.name.clone(),
        workspace_id: source.workspace_id.clone(),
        ..ListFilter::default()
    };
    cloud.limiter.acquire().await;
    let listed = match cloud.client.list_images(&filter).await {
        Ok(images) => Some(valid_ids(&source.cloud, images.into_iter().map(|i| i.id))),
        Err(e) => {
            w.metrics().poll_failure(&source.cloud, e.kind.reason());
            tracing::warn!(cloud = %source.cloud, reason = e.kind.reason(), "discovery listing failed; keeping the images found before: {e}");
            None
        }
    };
    let not_found_after = runtime.settings.alerts.not_found_after;
    let changed = w.update_discovered(index, |previous, states| {
        merge(previous, listed.as_deref(), source, states, not_found_after)
    });
    if changed {
        tracing::info!(cloud = %source.cloud, images = w.watched_images().len(), "discovery changed the watched set");
        w.sync_watched();
        w.refresh_metrics();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> DiscoverySettings {
        DiscoverySettings {
            cloud: "c".into(),
            image_type: "DEDICATED".into(),
            namespace: None,
            name: None,
            workspace_id: None,
            refresh: Duration::from_secs(600),
            labels: BTreeMap::from([("team".to_string(), "ml".to_string())]),
            channels: None,
        }
    }

    fn ids(v: &[&str]) -> Vec<ImageId> {
        v.iter().map(|s| ImageId::parse(s).unwrap()).collect()
    }

    #[test]
    fn listing_adds_images_with_the_source_labels() {
        let d = merge(
            &Discovered::new(),
            Some(&ids(&["a", "b"])),
            &source(),
            &HashMap::new(),
            1,
        );
        assert_eq!(d.len(), 2);
        assert_eq!(d["a"].labels["team"], "ml");
        assert_eq!(d["a"].cloud, "c");
    }

    #[test]
    fn failed_listing_drops_nothing() {
        let d = merge(
            &Discovered::new(),
            Some(&ids(&["a", "b"])),
            &source(),
            &HashMap::new(),
            1,
        );
        assert_eq!(merge(&d, None, &source(), &HashMap::new(), 1), d);
    }

    #[test]
    fn vanished_image_is_kept_until_it_answers_not_found() {
        let d = merge(
            &Discovered::new(),
            Some(&ids(&["a", "b"])),
            &source(),
            &HashMap::new(),
            2,
        );
        let mut states = HashMap::new();
        let mut s = ImageState::new(&ImageId::parse("b").unwrap());
        s.consecutive_not_found = 1;
        states.insert("b".to_string(), s.clone());
        let d2 = merge(&d, Some(&ids(&["a"])), &source(), &states, 2);
        assert!(
            d2.contains_key("b"),
            "one not-found of two needed: still watched"
        );
        s.consecutive_not_found = 2;
        states.insert("b".to_string(), s);
        let d3 = merge(&d2, Some(&ids(&["a"])), &source(), &states, 2);
        assert!(!d3.contains_key("b"));
        assert!(d3.contains_key("a"));
    }

    #[test]
    fn invalid_ids_are_skipped() {
        let v = valid_ids("c", vec![Some("ok-1".into()), Some("../x".into()), None]);
        assert_eq!(v, ids(&["ok-1"]));
    }
}
