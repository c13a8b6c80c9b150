//! Delivery worker tests against an in-memory outbox and scripted senders, on tokio's paused
//! clock (no real sleeps).

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::alert::NotificationKind;

struct Row {
    item: OutboxItem,
    next_at: i64,
    last_error: Option<String>,
}

/// Keeps the store's ordering guarantee: a later row of a channel+image is hidden while an
/// earlier one is queued and not due.
#[derive(Default)]
struct FakeOutbox {
    rows: Mutex<Vec<Row>>,
}

impl FakeOutbox {
    fn push(&self, id: &str, channel: &str, image: &str, created_at: i64) {
        let mut payload = notification(id);
        payload.image_id = image.to_string();
        self.rows.lock().unwrap().push(Row {
            item: OutboxItem {
                id: id.to_string(),
                channel: channel.to_string(),
                image_key: image.to_string(),
                payload,
                created_at,
                attempts: 0,
            },
            next_at: created_at,
            last_error: None,
        });
    }
    fn row(&self, id: &str) -> Option<(i64, u32, Option<String>)> {
        let rows = self.rows.lock().unwrap();
        rows.iter()
            .find(|r| r.item.id == id)
            .map(|r| (r.next_at, r.item.attempts, r.last_error.clone()))
    }
    fn len(&self) -> usize {
        self.rows.lock().unwrap().len()
    }
}

impl Outbox for FakeOutbox {
    fn pending(&self, now: i64, limit: usize) -> anyhow::Result<Vec<OutboxItem>> {
        let rows = self.rows.lock().unwrap();
        let mut waiting = HashSet::new();
        let mut out = Vec::new();
        for r in rows.iter() {
            let key = (r.item.channel.clone(), r.item.image_key.clone());
            if waiting.contains(&key) {
                continue;
            }
            if r.next_at > now {
                waiting.insert(key);
                continue;
            }
            out.push(r.item.clone());
        }
        out.truncate(limit);
        Ok(out)
    }
    fn mark_delivered(&self, ids: &[String]) -> anyhow::Result<()> {
        self.rows
            .lock()
            .unwrap()
            .retain(|r| !ids.contains(&r.item.id));
        Ok(())
    }
    fn mark_failed(&self, ids: &[String], next: i64, error: &str) -> anyhow::Result<()> {
        for r in self.rows.lock().unwrap().iter_mut() {
            if ids.contains(&r.item.id) {
                r.item.attempts += 1;
                r.next_at = next;
                r.last_error = Some(error.to_string());
            }
        }
        Ok(())
    }
    fn drop_expired(&self, now: i64, max_age: i64) -> anyhow::Result<Vec<OutboxItem>> {
        let mut rows = self.rows.lock().unwrap();
        let (old, keep): (Vec<Row>, Vec<Row>) = rows
            .drain(..)
            .partition(|r| now - r.item.created_at > max_age);
        *rows = keep;
        Ok(old.into_iter().map(|r| r.item).collect())
    }
    fn queue_len(&self) -> anyhow::Result<u64> {
        Ok(self.len() as u64)
    }
}

/// Answers from a script (then `Ok`), recording every batch it was asked to send.
struct FakeSender {
    name: String,
    per_minute: u32,
    script: Mutex<VecDeque<Result<(), SendError>>>,
    calls: Mutex<Vec<(Vec<String>, bool)>>,
    hang: AtomicBool,
    called: Notify,
}

impl FakeSender {
    fn new(name: &str, per_minute: u32) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_string(),
            per_minute,
            script: Mutex::new(VecDeque::new()),
            calls: Mutex::new(Vec::new()),
            hang: AtomicBool::new(false),
            called: Notify::new(),
        })
    }
    fn fail_next(&self, e: SendError) {
        self.script.lock().unwrap().push_back(Err(e));
    }
    /// (event ids of the batch, whether it succeeded), in call order.
    fn calls(&self) -> Vec<(Vec<String>, bool)> {
        self.calls.lock().unwrap().clone()
    }
    fn delivered(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.1)
            .flat_map(|c| c.0)
            .collect()
    }
}

impl Sender for FakeSender {
    fn name(&self) -> &str {
        &self.name
    }
    fn max_per_minute(&self) -> u32 {
        self.per_minute
    }
    fn send<'a>(&'a self, batch: &'a [Notification]) -> SendFuture<'a> {
        Box::pin(async move {
            if self.hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            let r = self.script.lock().unwrap().pop_front().unwrap_or(Ok(()));
            let ids = batch.iter().map(|n| n.event_id.clone()).collect();
            self.calls.lock().unwrap().push((ids, r.is_ok()));
            self.called.notify_one();
            r
        })
    }
}

#[derive(Default)]
struct CountingObserver {
    counts: Mutex<HashMap<(String, &'static str), usize>>,
    queue: Mutex<Option<u64>>,
}

impl CountingObserver {
    fn get(&self, channel: &str, what: &'static str) -> usize {
        let c = self.counts.lock().unwrap();
        c.get(&(channel.to_string(), what)).copied().unwrap_or(0)
    }
    fn add(&self, channel: &str, what: &'static str, n: usize) {
        *self
            .counts
            .lock()
            .unwrap()
            .entry((channel.to_string(), what))
            .or_default() += n;
    }
}

impl DeliveryObserver for CountingObserver {
    fn sent(&self, channel: &str, n: usize) {
        self.add(channel, "sent", n);
    }
    fn failed(&self, channel: &str, n: usize) {
        self.add(channel, "failed", n);
    }
    fn dropped(&self, channel: &str, n: usize) {
        self.add(channel, "dropped", n);
    }
    fn queue_length(&self, n: u64) {
        *self.queue.lock().unwrap() = Some(n);
    }
}

fn notification(event_id: &str) -> Notification {
    Notification {
        event_id: event_id.to_string(),
        kind: NotificationKind::Firing,
        condition: Some("ERROR".into()),
        previous_condition: None,
        image_id: "img".into(),
        image_name: None,
        previous_status: None,
        status: Some("ERROR".into()),
        status_message: None,
        size_bytes: None,
        update_at: None,
        swr_path: None,
        cloud: "c".into(),
        project_id: None,
        observed_at: 0,
        firing_since: Some(0),
        summary: "ModelArts image x is ERROR".into(),
        labels: std::collections::BTreeMap::new(),
    }
}

struct Harness {
    outbox: Arc<FakeOutbox>,
    sender: Arc<FakeSender>,
    observer: Arc<CountingObserver>,
    deliverer: Deliverer,
}

fn harness(per_minute: u32, config: DeliveryConfig) -> Harness {
    let outbox = Arc::new(FakeOutbox::default());
    let sender = FakeSender::new("hook", per_minute);
    let observer = Arc::new(CountingObserver::default());
    let deliverer = Deliverer::new(
        outbox.clone(),
        vec![sender.clone() as Arc<dyn Sender>],
        observer.clone(),
        config,
    );
    Harness {
        outbox,
        sender,
        observer,
        deliverer,
    }
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

#[tokio::test(start_paused = true)]
async fn delivered_once_and_removed() {
    let h = harness(60, DeliveryConfig::default());
    h.outbox.push("a1", "hook", "img-a", 100);
    let r = h.deliverer.deliver_once(100).await;
    assert_eq!(r.sent, 1);
    assert_eq!(h.outbox.len(), 0);
    let r = h.deliverer.deliver_once(101).await;
    assert_eq!(r, DeliveryReport::default());
    assert_eq!(h.sender.calls(), vec![(ids(&["a1"]), true)]);
    assert_eq!(h.observer.get("hook", "sent"), 1);
    assert_eq!(*h.observer.queue.lock().unwrap(), Some(0));
}

#[tokio::test(start_paused = true)]
async fn failing_sender_is_retried_with_growing_backoff_until_success() {
    let h = harness(60, DeliveryConfig::default());
    h.outbox.push("a1", "hook", "img-a", 0);
    for _ in 0..4 {
        h.sender.fail_next(SendError::transient("503"));
    }
    let mut now = 0;
    for attempt in 0..4u32 {
        let r = h.deliverer.deliver_once(now).await;
        assert_eq!(r.failed, 1, "attempt {attempt}");
        let (next, attempts, err) = h.outbox.row("a1").expect("still queued");
        assert_eq!(attempts, attempt + 1);
        assert_eq!(err.as_deref(), Some("503"));
        let base = 10 * 2i64.pow(attempt);
        let delay = next - now;
        assert!(
            (base * 8 / 10..=base * 12 / 10 + 1).contains(&delay),
            "attempt {attempt}: delay {delay} for base {base}"
        );
        // Not tried again before it is due.
        let r = h.deliverer.deliver_once(next - 1).await;
        assert_eq!(r.failed + r.sent, 0);
        now = next;
    }
    let r = h.deliverer.deliver_once(now).await;
    assert_eq!(r.sent, 1);
    assert_eq!(h.outbox.len(), 0);
    assert_eq!(h.sender.calls().len(), 5);
    assert_eq!(h.observer.get("hook", "failed"), 4);
    assert_eq!(h.observer.get("hook", "sent"), 1);
}

#[tokio::test(start_paused = true)]
async fn order_per_channel_and_image_survives_a_failure() {
    let h = harness(60, DeliveryConfig::default());
    h.outbox.push("a-firing", "hook", "img-a", 1);
    h.outbox.push("b-firing", "hook", "img-b", 1);
    h.outbox.push("a-resolved", "hook", "img-a", 2);
    h.sender.fail_next(SendError::transient("timeout"));
    let r = h.deliverer.deliver_once(2).await;
    assert_eq!((r.sent, r.failed, r.held), (1, 1, 1));
    assert_eq!(
        h.sender.calls(),
        vec![(ids(&["a-firing"]), false), (ids(&["b-firing"]), true)],
        "the resolution must not overtake its firing"
    );
    let (next, _, _) = h.outbox.row("a-firing").unwrap();
    h.deliverer.deliver_once(next).await;
    assert_eq!(
        h.sender.delivered(),
        ids(&["b-firing", "a-firing", "a-resolved"])
    );
}

#[tokio::test(start_paused = true)]
async fn a_storm_above_the_threshold_goes_out_as_one_message() {
    let h = harness(60, DeliveryConfig::default());
    for i in 0..7 {
        h.outbox
            .push(&format!("s{i}"), "hook", &format!("img-{i}"), 100);
    }
    for i in 0..3 {
        h.outbox
            .push(&format!("t{i}"), "hook", &format!("img-t{i}"), 160);
    }
    let r = h.deliverer.deliver_once(160).await;
    assert_eq!(r.sent, 10);
    let calls = h.sender.calls();
    assert_eq!(calls.len(), 4, "one grouped message + three single ones");
    assert_eq!(calls[0].0, ids(&["s0", "s1", "s2", "s3", "s4", "s5", "s6"]));
    assert_eq!(calls[1].0, ids(&["t0"]));
    assert_eq!(h.observer.get("hook", "sent"), 10);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_holds_messages_until_the_next_minute() {
    let h = harness(3, DeliveryConfig::default());
    for i in 0..5 {
        h.outbox
            .push(&format!("m{i}"), "hook", &format!("img-{i}"), i);
    }
    let r = h.deliverer.deliver_once(10).await;
    assert_eq!((r.sent, r.held, r.failed), (3, 2, 0));
    assert_eq!(h.outbox.len(), 2, "held rows stay queued");
    tokio::time::advance(Duration::from_secs(30)).await;
    let r = h.deliverer.deliver_once(40).await;
    assert_eq!((r.sent, r.held), (0, 2));
    tokio::time::advance(Duration::from_secs(31)).await;
    let r = h.deliverer.deliver_once(71).await;
    assert_eq!((r.sent, r.held), (2, 0));
    assert_eq!(h.sender.delivered(), ids(&["m0", "m1", "m2", "m3", "m4"]));
    assert_eq!(h.observer.get("hook", "failed"), 0);
}

#[tokio::test(start_paused = true)]
async fn expired_rows_are_dropped_and_counted() {
    let config = DeliveryConfig {
        max_age: Duration::from_secs(100),
        ..DeliveryConfig::default()
    };
    let h = harness(60, config);
    h.outbox.push("old", "hook", "img-a", 0);
    h.sender.fail_next(SendError::transient("down"));
    assert_eq!(h.deliverer.deliver_once(50).await.failed, 1);
    let r = h.deliverer.deliver_once(101).await;
    assert_eq!((r.dropped, r.sent), (1, 0));
    assert_eq!(h.outbox.len(), 0);
    assert_eq!(h.observer.get("hook", "dropped"), 1);
    assert_eq!(*h.observer.queue.lock().unwrap(), Some(0));
}

#[tokio::test(start_paused = true)]
async fn permanent_failure_is_retried_at_the_cap_until_max_age() {
    let h = harness(1000, DeliveryConfig::default());
    h.outbox.push("p", "hook", "img-a", 0);
    let max_age = 24 * 3600;
    let mut now = 0;
    let mut attempts = 0;
    while now <= max_age {
        h.sender.fail_next(SendError::permanent("400 bad request"));
        let r = h.deliverer.deliver_once(now).await;
        assert_eq!(r.dropped, 0, "dropped early at {now}");
        assert_eq!(r.failed, 1);
        attempts += 1;
        let (next, _, _) = h.outbox.row("p").unwrap();
        assert!((2880..=4321).contains(&(next - now)), "cap ±20 %");
        now = next;
        tokio::time::advance(Duration::from_secs(61)).await;
    }
    assert!(attempts >= 20, "kept retrying: {attempts}");
    let r = h.deliverer.deliver_once(now).await;
    assert_eq!(r.dropped, 1);
    assert_eq!(h.observer.get("hook", "dropped"), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let h = harness(60, DeliveryConfig::default());
    h.outbox.push("a", "hook", "img-a", 0);
    h.sender.fail_next(SendError {
        permanent: false,
        message: "429".into(),
        retry_after: Some(Duration::from_secs(300)),
    });
    h.deliverer.deliver_once(0).await;
    let (next, _, _) = h.outbox.row("a").unwrap();
    assert!(next >= 300, "next attempt at {next}");
}

#[tokio::test(start_paused = true)]
async fn unknown_channel_fails_loudly_and_stays_until_max_age() {
    let h = harness(60, DeliveryConfig::default());
    h.outbox.push("x", "removed", "img-a", 0);
    let r = h.deliverer.deliver_once(0).await;
    assert_eq!(r.failed, 1);
    let (next, attempts, err) = h.outbox.row("x").unwrap();
    assert_eq!((next, attempts), (3600, 1));
    assert!(err.unwrap().contains("unknown channel \"removed\""));
    assert_eq!(h.observer.get("removed", "failed"), 1);
    assert!(h.sender.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_hung_receiver_times_out_as_a_failure() {
    let h = harness(60, DeliveryConfig::default());
    h.outbox.push("a", "hook", "img-a", 0);
    h.sender.hang.store(true, Ordering::SeqCst);
    let r = h.deliverer.deliver_once(0).await;
    assert_eq!(r.failed, 1);
    let (_, _, err) = h.outbox.row("a").unwrap();
    assert_eq!(err.as_deref(), Some("no answer within 1m"));
}

#[tokio::test(start_paused = true)]
async fn run_delivers_when_woken_and_flushes_on_shutdown() {
    let h = harness(60, DeliveryConfig::default());
    let shutdown = CancellationToken::new();
    let wake = Arc::new(Notify::new());
    let sender = h.sender.clone();
    let outbox = h.outbox.clone();
    let worker = tokio::spawn(
        h.deliverer
            .with_clock(Arc::new(|| 1000))
            .run(shutdown.clone(), wake.clone()),
    );
    outbox.push("w", "hook", "img-a", 1000);
    wake.notify_one();
    tokio::time::timeout(Duration::from_secs(5), sender.called.notified())
        .await
        .expect("woken worker sends");
    assert_eq!(sender.delivered(), ids(&["w"]));

    // Queued after the shutdown signal (the worker has not run since): the final flush sends it.
    shutdown.cancel();
    outbox.push("last", "hook", "img-b", 1000);
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("worker stops")
        .unwrap();
    assert_eq!(sender.delivered(), ids(&["w", "last"]));
    assert_eq!(outbox.len(), 0);
}

#[test]
fn backoff_grows_caps_and_honours_retry_after() {
    let d = |a, p, ra| retry_delay(a, p, ra, 1.0).as_secs();
    assert_eq!(d(0, false, None), 10);
    assert_eq!(d(1, false, None), 20);
    assert_eq!(d(5, false, None), 320);
    assert_eq!(d(9, false, None), 3600);
    assert_eq!(d(60, false, None), 3600);
    assert_eq!(d(0, true, None), 3600);
    assert_eq!(d(0, false, Some(Duration::from_secs(90))), 90);
    assert_eq!(d(0, false, Some(Duration::from_secs(999_999))), 3600);
    assert_eq!(retry_delay(0, false, None, 0.8).as_secs(), 8);
    assert_eq!(
        retry_delay(0, false, None, 5.0).as_secs(),
        12,
        "jitter clamped"
    );
}

#[test]
fn units_group_only_big_cycles_and_keep_order() {
    let outbox = FakeOutbox::default();
    outbox.push("a", "c", "i1", 1);
    for i in 0..3 {
        outbox.push(&format!("g{i}"), "c", &format!("g{i}"), 2);
    }
    outbox.push("z", "c", "i1", 3);
    let items = outbox.pending(10, 100).unwrap();
    let u = plan::units(items.clone(), 2);
    let shape: Vec<Vec<&str>> = u
        .iter()
        .map(|u| u.iter().map(|i| i.id.as_str()).collect())
        .collect();
    assert_eq!(shape, vec![vec!["a"], vec!["g0", "g1", "g2"], vec!["z"]]);
    assert_eq!(plan::units(items, 3).len(), 5, "3 is not more than 3");
}
