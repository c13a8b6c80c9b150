//! Poll cycles and the loop that runs them. `Watcher::poll_once` is the one-step entry point
//! tests drive; `Watcher::run` ticks it on the schedule and never lets two cycles overlap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::apply::{self, Applied};
use super::ratelimit::{RateLimiter, throttle_pause};
use super::schedule::Ticks;
use crate::cloud::{ApiErrorKind, ModelArtsClient};
use crate::config::settings::{CloudSettings, Schedule, Settings, WatchedImage};
use crate::metrics::Metrics;
use crate::sdnotify::Heartbeat;
use crate::state::{ImageState, Store};

/// Fleets at least this large have their requests spread over the interval.
const SPREAD_MIN_IMAGES: usize = 100;
/// Fraction of the interval the requests of one cycle are spread over.
const SPREAD_FRACTION: f64 = 0.8;

/// Per-cloud runtime: the client and the limiter all of this cloud's requests share.
pub struct CloudRuntime {
    pub settings: CloudSettings,
    pub client: Arc<ModelArtsClient>,
    pub limiter: Arc<RateLimiter>,
    /// Consecutive 429 answers, for the back-off step when no Retry-After comes.
    consecutive_429: AtomicU32,
}

/// What a reload swaps as a whole: the settings and the clients built from them.
pub struct Runtime {
    pub settings: Arc<Settings>,
    pub clouds: HashMap<String, Arc<CloudRuntime>>,
}

impl Runtime {
    /// Builds clients and limiters for every cloud.
    pub fn build(settings: Arc<Settings>, metrics: &Metrics) -> anyhow::Result<Self> {
        let mut clouds = HashMap::new();
        for c in &settings.clouds {
            let observer: Arc<dyn crate::cloud::client::RequestObserver> =
                Arc::new(metrics.clone());
            let client = ModelArtsClient::new(c, Some(observer))
                .map_err(|e| anyhow::anyhow!("cloud {:?}: {e:#}", c.name))?;
            clouds.insert(
                c.name.clone(),
                Arc::new(CloudRuntime {
                    settings: c.clone(),
                    client: Arc::new(client),
                    limiter: Arc::new(RateLimiter::new(c.max_requests_per_second, 1)),
                    consecutive_429: AtomicU32::new(0),
                }),
            );
        }
        Ok(Self { settings, clouds })
    }
}

/// Counts of one cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub polled: usize,
    pub ok: usize,
    pub not_found: usize,
    pub failed: usize,
    pub events: usize,
    pub notifications: usize,
}

/// The watcher: shared by the poll loop, the HTTP side and the reload path.
#[derive(Clone)]
pub struct Watcher {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Swapped whole on reload; readers clone the `Arc` and drop the lock at once.
    pub runtime: RwLock<Arc<Runtime>>,
    /// Last known state per image id (mirrors the `images` table).
    pub states: Mutex<HashMap<String, ImageState>>,
    /// The state database; every observation's effects are one transaction in it.
    pub store: Mutex<Store>,
    pub metrics: Metrics,
    pub alerts: apply::AlertBook,
    /// Woken after a commit that queued notifications.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// Unix seconds when the watcher started (for staleness before any success).
    pub started_at: i64,
    /// Ids of the watched set, changed together with `states` (under its lock) so an answer
    /// that arrives after a reload removed its image is dropped, not re-published.
    pub watched_ids: Mutex<std::collections::HashSet<String>>,
    /// Bookkeeping-only state updates waiting for the periodic batch commit.
    pub dirty: Mutex<HashMap<String, ImageState>>,
    /// Unix seconds of the last bookkeeping batch commit.
    pub last_flush: Mutex<i64>,
    /// Images contributed by each discovery source (index into `settings.discovery`).
    pub discovered: Mutex<HashMap<usize, super::discovery::Discovered>>,
    /// Bumped on every successful reload, so tasks built from settings can rebuild.
    pub generation: tokio::sync::watch::Sender<u64>,
}

impl Watcher {
    /// Creates a watcher from resolved settings and an opened store; loads saved state.
    pub fn new(
        settings: Settings,
        store: Store,
        metrics: Metrics,
        now: i64,
    ) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let runtime = Runtime::build(settings.clone(), &metrics)?;
        let states = store.load_images()?;
        let alerts = apply::AlertBook::load(&store)?;
        let w = Self {
            inner: Arc::new(Inner {
                runtime: RwLock::new(Arc::new(runtime)),
                states: Mutex::new(states),
                store: Mutex::new(store),
                metrics,
                alerts,
                outbox_wake: Arc::new(tokio::sync::Notify::new()),
                started_at: now,
                discovered: Mutex::new(HashMap::new()),
                dirty: Mutex::new(HashMap::new()),
                watched_ids: Mutex::new(std::collections::HashSet::new()),
                last_flush: Mutex::new(now),
                generation: tokio::sync::watch::Sender::new(0),
            }),
        };
        w.sync_watched();
        w.seed_cloud_health();
        w.refresh_metrics();
        Ok(w)
    }

    /// The current runtime (settings + clients).
    pub fn runtime(&self) -> Arc<Runtime> {
        self.inner.runtime.read().expect("runtime lock").clone()
    }

    /// The current settings.
    pub fn settings(&self) -> Arc<Settings> {
        self.runtime().settings.clone()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Alert state of every image and cloud.
    pub fn alert_book(&self) -> &apply::AlertBook {
        &self.inner.alerts
    }

    /// Notified when notifications were queued.
    pub fn outbox_wake(&self) -> Arc<tokio::sync::Notify> {
        self.inner.outbox_wake.clone()
    }

    /// A snapshot of every watched image's state, in config order.
    pub fn snapshot(&self) -> Vec<(WatchedImage, Option<ImageState>)> {
        let images = self.watched_images();
        let states = self.inner.states.lock().expect("states lock");
        images
            .into_iter()
            .map(|img| {
                let s = states.get(img.id.as_str()).cloned();
                (img, s)
            })
            .collect()
    }

    /// The watched set: configured images first, then discovered ones not configured.
    pub fn watched_images(&self) -> Vec<WatchedImage> {
        let settings = self.settings();
        let mut seen: std::collections::HashSet<String> =
            settings.images.iter().map(|i| i.id.to_string()).collect();
        let owned = |id: &str| settings.shard.is_none_or(|s| s.owns(id));
        let mut out: Vec<WatchedImage> = settings
            .images
            .iter()
            .filter(|i| owned(i.id.as_str()))
            .cloned()
            .collect();
        let discovered = self.inner.discovered.lock().expect("discovered lock");
        let mut keys: Vec<&usize> = discovered.keys().collect();
        keys.sort();
        for k in keys {
            for (id, img) in &discovered[k] {
                if owned(id) && seen.insert(id.clone()) {
                    out.push(img.clone());
                }
            }
        }
        out
    }

    /// Replaces one discovery source's set via `f(previous, states)`; true when it changed.
    pub fn update_discovered(
        &self,
        index: usize,
        f: impl FnOnce(
            &super::discovery::Discovered,
            &HashMap<String, ImageState>,
        ) -> super::discovery::Discovered,
    ) -> bool {
        let states = self.inner.states.lock().expect("states lock");
        let mut discovered = self.inner.discovered.lock().expect("discovered lock");
        let previous = discovered.get(&index).cloned().unwrap_or_default();
        let next = f(&previous, &states);
        let changed = next != previous;
        discovered.insert(index, next);
        changed
    }

    /// Updates the watched-id set: late answers for images no longer watched are ignored from
    /// now on. Their state is kept (in memory and on disk): an image that comes back continues
    /// its event sequence instead of reusing event ids. Returns the watched ids.
    pub fn sync_watched(&self) -> std::collections::HashSet<String> {
        let ids: std::collections::HashSet<String> = self
            .watched_images()
            .iter()
            .map(|i| i.id.to_string())
            .collect();
        // Under the states lock, so no `apply` is half-way while the set changes.
        let _states = self.inner.states.lock().expect("states lock");
        ids.clone_into(&mut self.inner.watched_ids.lock().expect("watched lock"));
        ids
    }

    /// Seeds each cloud's last success from the saved image states, so staleness after a
    /// restart counts from the last real success, not from the restart.
    fn seed_cloud_health(&self) {
        let images = self.watched_images();
        let states = self.inner.states.lock().expect("states lock");
        let mut health = self.inner.alerts.health.lock().expect("health lock");
        for img in images {
            if let Some(t) = states.get(img.id.as_str()).and_then(|s| s.last_success) {
                let h = health.entry(img.cloud.clone()).or_default();
                h.last_success = h.last_success.max(Some(t));
            }
        }
    }

    /// Forgets discovery sources that no longer exist after a reload.
    pub fn retain_discovery_sources(&self, n: usize) {
        self.inner
            .discovered
            .lock()
            .expect("discovered lock")
            .retain(|k, _| *k < n);
    }

    /// Runs with the store locked (for the HTTP API and the outbox).
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut g = self.inner.store.lock().expect("store lock");
        f(&mut g)
    }

    /// Polls every configured image once. Returns when every answer has been applied.
    pub async fn poll_once(&self) -> CycleReport {
        let started = Instant::now();
        let runtime = self.runtime();
        let settings = runtime.settings.clone();
        let images = self.watched_images();
        let n = images.len();
        let spread = match settings.poll.schedule {
            Schedule::Interval(iv) if n >= SPREAD_MIN_IMAGES => Some(iv.mul_f64(SPREAD_FRACTION)),
            _ => None,
        };
        let this = self.clone();
        let rt = runtime.clone();
        let results = futures::stream::iter(images.into_iter().enumerate())
            .map(move |(i, img)| {
                let runtime = rt.clone();
                let this = this.clone();
                async move {
                    if let Some(spread) = spread {
                        #[allow(clippy::cast_precision_loss)] // fleet sizes are far below 2^52
                        let offset = spread.mul_f64(i as f64 / n as f64);
                        tokio::time::sleep_until(started + offset).await;
                    }
                    this.poll_image(&runtime, &img).await
                }
            })
            .buffer_unordered(settings.poll.concurrency.max(1))
            .collect::<Vec<Applied>>()
            .await;
        let mut report = CycleReport {
            polled: results.len(),
            ..CycleReport::default()
        };
        for r in &results {
            match r.outcome {
                apply::Outcome::Ok => report.ok += 1,
                apply::Outcome::NotFound => report.not_found += 1,
                apply::Outcome::Failed => report.failed += 1,
            }
            report.events += r.events;
            report.notifications += r.notifications;
        }
        let secs = started.elapsed().as_secs_f64();
        for cloud in runtime.clouds.keys() {
            self.inner.metrics.poll_duration(cloud, secs);
        }
        let now = apply::unix_now();
        apply::flush_dirty(self, now, false);
        report.notifications += self.inner.alerts.evaluate_clouds(self, &runtime, now);
        if report.notifications > 0 {
            self.inner.outbox_wake.notify_one();
        }
        tracing::debug!(?report, seconds = secs, "poll cycle done");
        report
    }

    async fn poll_image(&self, runtime: &Runtime, img: &WatchedImage) -> Applied {
        let Some(cloud) = runtime.clouds.get(&img.cloud) else {
            return Applied::failed();
        };
        cloud.limiter.acquire().await;
        let result = cloud.client.show_image(&img.id).await;
        if let Err(e) = &result {
            if let ApiErrorKind::Throttled { retry_after } = e.kind {
                let n = cloud.consecutive_429.fetch_add(1, Ordering::Relaxed);
                let pause = throttle_pause(retry_after, n, rand::random::<f64>());
                cloud.limiter.pause(pause, Instant::now());
                tracing::warn!(cloud = %img.cloud, pause = ?pause, "throttled: slowing the whole cloud down");
            }
        } else {
            cloud.consecutive_429.store(0, Ordering::Relaxed);
        }
        apply::apply(
            self,
            &runtime.settings,
            &cloud.settings,
            img,
            &result,
            apply::unix_now(),
        )
    }

    /// Re-publishes every image's metrics from state and drops images no longer watched.
    pub fn refresh_metrics(&self) {
        let images = self.watched_images();
        let states = self.inner.states.lock().expect("states lock");
        let label_names: std::collections::BTreeSet<String> = images
            .iter()
            .flat_map(|i| i.labels.keys().cloned())
            .collect();
        self.inner
            .metrics
            .set_config_label_names(&label_names.into_iter().collect::<Vec<_>>());
        let keep: std::collections::HashSet<String> =
            images.iter().map(|i| i.id.to_string()).collect();
        self.inner.metrics.retain_images(&keep);
        for img in &images {
            apply::publish_image(&self.inner.metrics, img, states.get(img.id.as_str()));
        }
    }

    /// Swaps in new settings (reload). Images no longer watched leave the metrics and lose
    /// their alert state (a removed image that comes back alerts as new); their tracked state
    /// is kept so event ids never repeat.
    pub fn reload(&self, settings: Settings) -> anyhow::Result<()> {
        let sources = settings.discovery.len();
        let runtime = Runtime::build(Arc::new(settings), &self.inner.metrics)?;
        *self.inner.runtime.write().expect("runtime lock") = Arc::new(runtime);
        self.retain_discovery_sources(sources);
        let keep = self.sync_watched();
        let clouds: std::collections::HashSet<String> = self
            .settings()
            .clouds
            .iter()
            .map(|c| apply::cloud_key(&c.name))
            .collect();
        let dropped = self
            .inner
            .alerts
            .forget(|key| keep.contains(key) || clouds.contains(key));
        if !dropped.is_empty() {
            let commit = crate::state::Commit {
                alert_state: dropped.iter().map(|k| (k.clone(), None)).collect(),
                ..crate::state::Commit::default()
            };
            if let Err(e) = self.inner.store.lock().expect("store lock").commit(&commit) {
                tracing::warn!(error = %e, "could not forget the alert state of removed images");
            }
            tracing::info!(
                alerts = dropped.len(),
                "forgot alert state of images no longer watched"
            );
        }
        self.inner.alerts.publish_firing(&self.inner.metrics);
        self.refresh_metrics();
        self.inner.generation.send_modify(|g| *g += 1);
        Ok(())
    }

    /// Writes batched bookkeeping (last success times, failure counters) now. Runs at
    /// shutdown; tests call it to compare memory and disk.
    pub fn flush(&self) {
        apply::flush_dirty(self, apply::unix_now(), true);
    }

    /// A receiver that changes on every successful reload.
    pub fn subscribe_reload(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    /// Ticks cycles on the schedule until `shutdown`. A tick that comes while a cycle still
    /// runs is skipped and counted. The heartbeat beats every second while this loop lives.
    pub async fn run(
        self,
        shutdown: CancellationToken,
        heartbeat: Heartbeat,
    ) -> anyhow::Result<()> {
        let schedule = self.settings().poll.schedule.clone();
        let mut ticks = Ticks::start(&schedule, shutdown.clone()).await?;
        // Beat well inside the watchdog window (a quarter of it, at most every second), so a
        // short WatchdogSec never sees a stale heartbeat from a healthy loop.
        let beat_every = crate::sdnotify::watchdog_interval()
            .map_or(Duration::from_secs(1), |wd| {
                (wd / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
            });
        let mut beat = tokio::time::interval(beat_every);
        let mut cycle: Option<tokio::task::JoinHandle<CycleReport>> = None;
        heartbeat.beat();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = beat.tick() => heartbeat.beat(),
                tick = ticks.rx.recv() => {
                    if tick.is_none() { break; }
                    heartbeat.beat();
                    if cycle.as_ref().is_some_and(|h| !h.is_finished()) {
                        for cloud in self.runtime().clouds.keys() {
                            self.inner.metrics.cycle_skipped(cloud);
                        }
                        tracing::warn!("poll cycle still running at the next tick: tick skipped");
                        continue;
                    }
                    if let Some(h) = cycle.take() {
                        if let Err(e) = h.await {
                            anyhow::bail!("poll cycle task failed: {e}");
                        }
                    }
                    let w = self.clone();
                    cycle = Some(tokio::spawn(async move { w.poll_once().await }));
                }
            }
        }
        ticks.stop().await;
        if let Some(h) = cycle {
            h.abort();
        }
        self.flush();
        Ok(())
    }
}
