//! The watcher driven one step at a time (`Watcher::poll_once`) against the simulator, with an
//! in-memory store: no schedule, no timers.

mod support;

use modelarts_image_exporter::config::{SecretMode, load::parse, resolve};
use modelarts_image_exporter::metrics::Metrics;
use modelarts_image_exporter::sim::{FaultMode, FaultSpec};
use modelarts_image_exporter::state::Store;
use modelarts_image_exporter::watch::Watcher;
use support::{aksk_cloud, image, images_toml, start_sim};

const A: &str = "ffffffff-0000-4000-8000-00000000000a";
const B: &str = "ffffffff-0000-4000-8000-00000000000b";

#[tokio::test]
async fn one_cycle_at_a_time() {
    let sim = start_sim(vec![image(A, "a", "ACTIVE"), image(B, "b", "CREATING")]).await;
    let text = aksk_cloud(&sim.url(), modelarts_image_exporter::sim::DEMO_SK)
        + &images_toml(&[A, B])
        + "[[channels]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/h\"\n";
    let loaded = parse(std::path::Path::new("step.toml"), text).unwrap();
    let settings = resolve(&loaded, SecretMode::Resolve).unwrap();
    let w = Watcher::new(
        settings,
        Store::open_in_memory().unwrap(),
        Metrics::new("t", "t"),
        1_000,
    )
    .unwrap();

    let r = w.poll_once().await;
    assert_eq!(
        (r.polled, r.ok, r.failed, r.events, r.notifications),
        (2, 2, 0, 0, 0)
    );

    sim.set_status(A, "CREATE_FAILED");
    sim.set_status(B, "ACTIVE");
    let r = w.poll_once().await;
    assert_eq!(
        r.notifications, 1,
        "one firing for A on the one channel: {r:?}"
    );
    assert!(r.events >= 2, "status changes of A and B: {r:?}");
    assert_eq!(w.with_store(|s| s.queue_len()).unwrap(), 1);

    // Nothing changed: nothing new, however often we poll.
    for _ in 0..3 {
        let r = w.poll_once().await;
        assert_eq!((r.events, r.notifications), (0, 0));
    }

    // Bookkeeping (last success) is batched; after a flush disk and memory agree.
    w.flush();
    let on_disk = w.with_store(|s| s.load_images()).unwrap();
    let in_memory = w.snapshot();
    for (img, state) in in_memory {
        assert_eq!(on_disk[img.id.as_str()], state.unwrap(), "{}", img.id);
    }

    // A transient fault is a failed poll, never a change.
    sim.set_fault(FaultSpec::new(FaultMode::Http500)).unwrap();
    let r = w.poll_once().await;
    assert_eq!((r.failed, r.events, r.notifications), (2, 0, 0));
    sim.clear_faults();

    // Recovery resolves.
    sim.set_status(A, "ACTIVE");
    let r = w.poll_once().await;
    assert_eq!(r.notifications, 1);
    assert_eq!(w.with_store(|s| s.queue_len()).unwrap(), 2);
    let ids: Vec<String> = w
        .with_store(|s| s.pending(i64::MAX, 10))
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        ids,
        vec![format!("{A}:alert:1@hook"), format!("{A}:alert:2@hook")]
    );
}

#[tokio::test]
async fn per_image_channel_routing() {
    let sim = start_sim(vec![image(A, "a", "CREATE_FAILED"), image(B, "b", "ERROR")]).await;
    let text = aksk_cloud(&sim.url(), modelarts_image_exporter::sim::DEMO_SK)
        + &format!(
            "[[images]]\nid = \"{A}\"\nchannels = [\"hook2\"]\n[[images]]\nid = \"{B}\"\nchannels = [\"am\"]\n"
        )
        + "[[channels]]\nname = \"hook1\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/h\"\n"
        + "[[channels]]\nname = \"hook2\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/h\"\n"
        + "[[channels]]\nname = \"am\"\ntype = \"alertmanager\"\nurl = \"http://127.0.0.1:9\"\n";
    let loaded = parse(std::path::Path::new("routing.toml"), text).unwrap();
    let settings = resolve(&loaded, SecretMode::Resolve).unwrap();
    let w = Watcher::new(
        settings,
        Store::open_in_memory().unwrap(),
        Metrics::new("t", "t"),
        1_000,
    )
    .unwrap();
    w.poll_once().await;
    let rows: Vec<(String, String)> = w
        .with_store(|s| s.pending(i64::MAX, 10))
        .unwrap()
        .into_iter()
        .map(|r| (r.channel, r.image_key))
        .collect();
    // A pages only hook2; B only the Alertmanager channel, which is a state sync (no queue rows).
    assert_eq!(rows, vec![("hook2".to_string(), A.to_string())]);
    assert_eq!(w.alert_book().firing().len(), 2, "both alerts fire");
}

/// An answer that arrives after a reload removed its image is dropped: the image does not
/// come back into `/metrics` or the API.
#[tokio::test(flavor = "multi_thread")]
async fn late_answer_for_a_removed_image_is_ignored() {
    let sim = start_sim(vec![image(A, "a", "ACTIVE"), image(B, "b", "ACTIVE")]).await;
    let cfg = |ids: &[&str]| {
        let text = aksk_cloud(&sim.url(), modelarts_image_exporter::sim::DEMO_SK)
            + "[poll]\ntimeout = \"5s\"\n"
            + &images_toml(ids);
        resolve(
            &parse(std::path::Path::new("c.toml"), text).unwrap(),
            SecretMode::Resolve,
        )
        .unwrap()
    };
    let w = Watcher::new(
        cfg(&[A, B]),
        Store::open_in_memory().unwrap(),
        Metrics::new("t", "t"),
        1_000,
    )
    .unwrap();
    w.poll_once().await;
    assert!(w.metrics().render().contains(B));

    sim.set_fault(
        FaultSpec::new(FaultMode::Slow)
            .image(B)
            .delay_ms(1500)
            .count(1),
    )
    .unwrap();
    sim.set_status(B, "ERROR");
    let before = sim.stats().total("show_image");
    let cycle = tokio::spawn({
        let w = w.clone();
        async move { w.poll_once().await }
    });
    support::eventually("B's request is in flight", || async {
        (sim.stats().total("show_image") > before).then_some(())
    })
    .await;
    w.reload(cfg(&[A])).unwrap();
    assert!(!w.metrics().render().contains(B), "removed at reload");
    let report = cycle.await.unwrap();
    assert_eq!(
        report.notifications, 0,
        "no page for an image no longer watched"
    );
    assert!(
        !w.metrics().render().contains(B),
        "the late answer did not bring B back"
    );
    assert_eq!(w.snapshot().len(), 1);
}
