//! The real daemon against the simulator on loopback: change tracking, metrics, API, events,
//! restart without duplicates, transient faults that page nobody, systemd notify, promtool.

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::{Daemon, aksk_cloud, eventually, free_port, image, images_toml, start_sim};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const A: &str = "bbbbbbbb-0000-4000-8000-00000000000a";
const B: &str = "bbbbbbbb-0000-4000-8000-00000000000b";

fn config(sim_url: &str, port: u16, state: &std::path::Path, hook: &str, ids: &[&str]) -> String {
    format!(
        "{}[poll]\ninterval = \"200ms\"\ntimeout = \"1s\"\n{}[[channels]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{hook}\"\nformat = \"json\"\n[web]\nlisten = \"127.0.0.1:{port}\"\n[state]\npath = \"{}\"\n",
        aksk_cloud(sim_url, modelarts_image_exporter::sim::DEMO_SK),
        images_toml(ids),
        state.display()
    )
}

async fn image_view(d: &Daemon, id: &str) -> Value {
    let all = d.get_json("/api/v1/images").await;
    all.as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .cloned()
        .unwrap()
}

/// Notifications the webhook received, as (kind, condition, image_id, event_id).
async fn received(hook: &MockServer) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for r in hook.received_requests().await.unwrap_or_default() {
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let items = v
            .get("notifications")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| vec![v.clone()]);
        for n in items {
            out.push((
                n["kind"].as_str().unwrap_or("").to_string(),
                n["condition"].as_str().unwrap_or("").to_string(),
                n["image_id"].as_str().unwrap_or("").to_string(),
                n["event_id"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    out
}

fn count(rx: &[(String, String, String, String)], kind: &str, cond: &str, id: &str) -> usize {
    rx.iter()
        .filter(|(k, c, i, _)| k == kind && c == cond && i == id)
        .count()
}

/// Runs `promtool check metrics` on a scrape; returns its findings (empty when clean).
fn promtool(metrics: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is missing: run scripts/test-deps.sh (Debian package prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let findings =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        String::new()
    } else {
        findings
    }
}

/// Series identities (name + sorted labels) that occur more than once.
fn duplicate_series(metrics: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut dups = Vec::new();
    for line in metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let series = line.rsplit_once(' ').map_or(line, |(s, _)| s).to_string();
        if !seen.insert(series.clone()) {
            dups.push(series);
        }
    }
    dups
}

fn status_line(metrics: &str, id: &str, status: &str) -> Option<String> {
    metrics
        .lines()
        .find(|l| {
            l.starts_with("modelarts_image_status{")
                && l.contains(&format!("id=\"{id}\""))
                && l.contains(&format!("status=\"{status}\""))
        })
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread")]
#[allow(clippy::too_many_lines)] // reason: one end-to-end story, step by step
async fn tracks_changes_alerts_once_and_survives_restart() {
    let sim = start_sim(vec![
        image(A, "pytorch-train", "ACTIVE"),
        image(B, "notebook-base", "ACTIVE"),
    ])
    .await;
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        config(
            &sim.url(),
            port,
            &dir.path().join("state.db"),
            &format!("{}/hook", hook.uri()),
            &[A, B],
        ),
    )
    .unwrap();
    let mut d = Daemon::start(&cfg, port, &[]).await;

    eventually("both images ACTIVE", || async {
        let (a, b) = (image_view(&d, A).await, image_view(&d, B).await);
        (a["status"] == "ACTIVE" && b["status"] == "ACTIVE").then_some(())
    })
    .await;
    let m = d.get_text("/metrics").await;
    assert!(status_line(&m, A, "ACTIVE").unwrap().ends_with(" 1"), "{m}");
    assert!(status_line(&m, A, "CREATE_FAILED").unwrap().ends_with(" 0"));

    // ACTIVE -> CREATE_FAILED: one firing notification, a status event, metrics follow.
    sim.set_status(A, "CREATE_FAILED");
    eventually("A firing", || async {
        (image_view(&d, A).await["condition"] == "CREATE_FAILED").then_some(())
    })
    .await;
    let m = d.get_text("/metrics").await;
    assert!(
        status_line(&m, A, "CREATE_FAILED").unwrap().ends_with(" 1"),
        "{m}"
    );
    assert!(status_line(&m, A, "ACTIVE").unwrap().ends_with(" 0"));
    eventually("firing delivered", || async {
        (count(&received(&hook).await, "firing", "CREATE_FAILED", A) == 1).then_some(())
    })
    .await;

    // Back to ACTIVE: one resolved notification.
    sim.set_status(A, "ACTIVE");
    eventually("A resolved", || async {
        let v = image_view(&d, A).await;
        (v["status"] == "ACTIVE" && v["condition"].is_null()).then_some(())
    })
    .await;
    eventually("resolved delivered", || async {
        (count(&received(&hook).await, "resolved", "CREATE_FAILED", A) == 1).then_some(())
    })
    .await;

    // B deleted: the API answers 404 -> NOT_FOUND fires.
    sim.delete_image(B);
    eventually("B not found", || async {
        (image_view(&d, B).await["condition"] == "NOT_FOUND").then_some(())
    })
    .await;
    eventually("NOT_FOUND delivered", || async {
        (count(&received(&hook).await, "firing", "NOT_FOUND", B) == 1).then_some(())
    })
    .await;
    let m = d.get_text("/metrics").await;
    assert!(status_line(&m, B, "NOT_FOUND").unwrap().ends_with(" 1"));
    assert!(
        m.contains(&format!(
            "modelarts_image_changes_total{{id=\"{A}\",field=\"status\"}} 2"
        )),
        "{m}"
    );

    let events = d.get_json("/api/v1/events?limit=100").await;
    let events = events.as_array().unwrap().clone();
    let trail: Vec<(String, String, String)> = events
        .iter()
        .filter(|e| e["field"] == "status")
        .map(|e| {
            (
                e["image_id"].as_str().unwrap().into(),
                e["old"].as_str().unwrap_or("").into(),
                e["new"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert!(
        trail.contains(&(A.into(), "ACTIVE".into(), "CREATE_FAILED".into())),
        "{trail:?}"
    );
    assert!(trail.contains(&(A.into(), "CREATE_FAILED".into(), "ACTIVE".into())));
    assert!(trail.contains(&(B.into(), "ACTIVE".into(), "NOT_FOUND".into())));
    assert_eq!(
        d.get_json("/api/v1/events?limit=1")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The real scrape is clean for promtool, and no series repeats.
    let findings = promtool(&m);
    assert!(
        findings.is_empty(),
        "promtool check metrics: {findings}\n{m}"
    );
    assert!(
        duplicate_series(&m).is_empty(),
        "{:?}",
        duplicate_series(&m)
    );
    // gzip when the scraper accepts it.
    let gz = reqwest::Client::builder()
        .no_gzip()
        .build()
        .unwrap()
        .get(format!("{}/metrics", d.base))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");

    // Restart: state and history survive, nothing is sent again, no duplicate events.
    assert_eq!(d.stop().await, Some(0), "{}", d.logs());
    let before_restart = received(&hook).await.len();
    let polls_before = sim.stats().total("show_image");
    let d2 = Daemon::start(&cfg, port, &[]).await;
    assert_eq!(
        image_view(&d2, A).await["status"],
        "ACTIVE",
        "state loaded before the first poll"
    );
    assert_eq!(
        image_view(&d2, B).await["condition"],
        "NOT_FOUND",
        "alert state survived"
    );
    eventually("several cycles after restart", || async {
        (sim.stats().total("show_image") >= polls_before + 6).then_some(())
    })
    .await;
    let events_after = d2.get_json("/api/v1/events?limit=100").await;
    assert_eq!(
        events_after.as_array().unwrap(),
        &events,
        "no new or duplicate events after restart"
    );
    assert_eq!(
        received(&hook).await.len(),
        before_restart,
        "no page re-sent after restart"
    );
    let ids: Vec<String> = received(&hook).await.into_iter().map(|r| r.3).collect();
    assert_eq!(
        ids.len(),
        ids.iter().collect::<HashSet<_>>().len(),
        "event ids unique: {ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_faults_page_nobody() {
    use modelarts_image_exporter::sim::{FaultMode, FaultSpec};
    let sim = start_sim(vec![image(A, "pytorch-train", "ACTIVE")]).await;
    let hook = support::webhook_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        config(
            &sim.url(),
            port,
            &dir.path().join("state.db"),
            &format!("{}/hook", hook.uri()),
            &[A],
        ),
    )
    .unwrap();
    let d = Daemon::start(&cfg, port, &[]).await;
    eventually("A ACTIVE", || async {
        (image_view(&d, A).await["status"] == "ACTIVE").then_some(())
    })
    .await;
    let modes = [
        (FaultSpec::new(FaultMode::Http500).count(3), "server"),
        (
            FaultSpec::new(FaultMode::Http429).retry_after(1).count(2),
            "throttled",
        ),
        (
            FaultSpec::new(FaultMode::Slow).delay_ms(1500).count(2),
            "timeout",
        ),
        (FaultSpec::new(FaultMode::Garbage).count(2), "decode"),
        (FaultSpec::new(FaultMode::Truncated).count(2), "decode"),
        (FaultSpec::new(FaultMode::Reset).count(2), "connect"),
        (FaultSpec::new(FaultMode::Oversized).count(1), "too_large"),
    ];
    for (spec, reason) in modes {
        sim.set_fault(spec).unwrap();
        eventually(&format!("{reason} fault consumed"), || async {
            sim.faults().is_empty().then_some(())
        })
        .await;
        let needle = format!("modelarts_poll_failures_total{{cloud=\"sim\",reason=\"{reason}\"}}");
        eventually(&format!("{reason} counted"), || async {
            d.get_text("/metrics").await.contains(&needle).then_some(())
        })
        .await;
        let v = image_view(&d, A).await;
        assert_eq!(v["status"], "ACTIVE", "{reason} must not change the status");
        assert!(v["condition"].is_null());
    }
    eventually("A polled fine again", || async {
        (image_view(&d, A).await["consecutive_failures"] == 0).then_some(())
    })
    .await;
    assert!(
        received(&hook).await.is_empty(),
        "transient faults sent {:?}",
        received(&hook).await
    );
    let events = d.get_json("/api/v1/events").await;
    assert!(events.as_array().unwrap().is_empty(), "{events}");
}

#[tokio::test(flavor = "multi_thread")]
async fn systemd_notify_ready_and_watchdog() {
    use tokio::net::UnixDatagram;
    let sim = start_sim(vec![image(A, "pytorch-train", "ACTIVE")]).await;
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let port = free_port();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        config(
            &sim.url(),
            port,
            &dir.path().join("state.db"),
            "http://127.0.0.1:9/hook",
            &[A],
        ),
    )
    .unwrap();
    let mut d = Daemon::start(
        &cfg,
        port,
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    )
    .await;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while !(got.iter().any(|m: &String| m.contains("READY=1"))
        && got.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2)
    {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .expect("READY=1 and WATCHDOG=1 within 15 s")
            .unwrap();
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(
        got.iter().any(|m| m.contains("STATUS=watching 1 images")),
        "{got:?}"
    );
    assert_eq!(d.stop().await, Some(0));
    let mut rest = Vec::new();
    while let Ok(Ok(n)) =
        tokio::time::timeout(std::time::Duration::from_millis(500), sock.recv(&mut buf)).await
    {
        rest.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(rest.iter().any(|m| m.contains("STOPPING=1")), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_watches_listed_images_and_sees_their_deletion() {
    let ids = [
        "dddddddd-0000-4000-8000-000000000001",
        "dddddddd-0000-4000-8000-000000000002",
        "dddddddd-0000-4000-8000-000000000003",
    ];
    let sim = start_sim(ids.iter().map(|id| image(id, "found", "ACTIVE")).collect()).await;
    let hook = support::webhook_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("config.toml");
    let text = config(
        &sim.url(),
        port,
        &dir.path().join("state.db"),
        &format!("{}/hook", hook.uri()),
        &[],
    ) + "[[discovery]]\ncloud = \"sim\"\ntype = \"DEDICATED\"\nrefresh = \"10m\"\nlabels = { source = \"discovery\" }\n";
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::start(&cfg, port, &[]).await;
    eventually("all listed images polled", || async {
        let all = d.get_json("/api/v1/images").await;
        let all = all.as_array().unwrap();
        (all.len() == 3 && all.iter().all(|v| v["status"] == "ACTIVE")).then_some(())
    })
    .await;
    let m = d.get_text("/metrics").await;
    assert!(
        m.contains("source=\"discovery\""),
        "config labels of the source reach _info"
    );
    // Deleted: gone from ListImage too, but still polled until it answers 404 -> alert.
    sim.delete_image(ids[1]);
    eventually("NOT_FOUND fired for the discovered image", || async {
        (count(&received(&hook).await, "firing", "NOT_FOUND", ids[1]) == 1).then_some(())
    })
    .await;
    assert!(sim.stats().total("list_images") >= 1);
}
