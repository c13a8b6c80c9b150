//! Operating the daemon: reload on SIGHUP (a bad config keeps the old one), a corrupt state
//! file exits 78 with the way out, cron schedules, skipped cycles, the watcher-degraded page,
//! and `test-notify`.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{Daemon, aksk_cloud, bin, eventually, free_port, image, images_toml, start_sim};

const A: &str = "eeeeeeee-0000-4000-8000-00000000000a";
const B: &str = "eeeeeeee-0000-4000-8000-00000000000b";

fn write(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn base(sim_url: &str, secret: &str, poll: &str, port: u16, state: &std::path::Path) -> String {
    let timeout = if poll.contains("timeout") {
        ""
    } else {
        "timeout = \"1s\"\n"
    };
    format!(
        "{}[poll]\n{poll}\n{timeout}[web]\nlisten = \"127.0.0.1:{port}\"\n[state]\npath = \"{}\"\n",
        aksk_cloud(sim_url, secret),
        state.display()
    )
}

fn hup(d: &Daemon) {
    let pid = d.child.as_ref().unwrap().id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
}

async fn ids(d: &Daemon) -> Vec<String> {
    d.get_json("/api/v1/images")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_and_a_bad_config_keeps_the_old_one() {
    let sim = start_sim(vec![image(A, "a", "ACTIVE"), image(B, "b", "ACTIVE")]).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("config.toml");
    let good = base(
        &sim.url(),
        modelarts_image_exporter::sim::DEMO_SK,
        "interval = \"200ms\"",
        port,
        &dir.path().join("s.db"),
    );
    write(&cfg, &(good.clone() + &images_toml(&[A])));
    let d = Daemon::start(&cfg, port, &[]).await;
    assert_eq!(ids(&d).await, vec![A]);

    write(&cfg, &(good.clone() + &images_toml(&[A, B])));
    hup(&d);
    eventually("B watched after SIGHUP", || async {
        (ids(&d).await == vec![A, B]).then_some(())
    })
    .await;
    eventually("B polled and exported", || async {
        d.get_text("/metrics")
            .await
            .contains(&format!(
                "modelarts_image_status{{id=\"{B}\",name=\"b\",status=\"ACTIVE\"}} 1"
            ))
            .then_some(())
    })
    .await;

    write(&cfg, &(good.clone() + "[poll]\nbogus = 1\n"));
    hup(&d);
    eventually("reload failure exported", || async {
        d.get_text("/metrics")
            .await
            .contains("modelarts_config_last_reload_successful 0")
            .then_some(())
    })
    .await;
    assert_eq!(ids(&d).await, vec![A, B], "old config kept");
    assert!(d.logs().contains("reload rejected"), "{}", d.logs());

    // Removing B drops its series from /metrics.
    write(&cfg, &(good + &images_toml(&[A])));
    hup(&d);
    eventually("B gone from /metrics", || async {
        let m = d.get_text("/metrics").await;
        (!m.contains(B) && m.contains("modelarts_config_last_reload_successful 1")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_state_file_exits_78_naming_the_file() {
    let sim = start_sim(vec![image(A, "a", "ACTIVE")]).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    std::fs::write(
        &state,
        b"this is not a database, just garbage bytes ............................................",
    )
    .unwrap();
    let cfg = dir.path().join("config.toml");
    write(
        &cfg,
        &(base(
            &sim.url(),
            modelarts_image_exporter::sim::DEMO_SK,
            "interval = \"1s\"",
            free_port(),
            &state,
        ) + &images_toml(&[A])),
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin())
            .arg("--config.file")
            .arg(&cfg)
            .arg("run")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&state.display().to_string()), "{err}");
    assert!(err.contains("mv "), "says how to move it aside: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cron_schedule_polls_and_slow_cycles_skip_ticks() {
    use modelarts_image_exporter::sim::{FaultMode, FaultSpec};
    let sim = start_sim(vec![image(A, "a", "ACTIVE")]).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("config.toml");
    // Every second, UTC cron with seconds.
    write(
        &cfg,
        &(base(
            &sim.url(),
            modelarts_image_exporter::sim::DEMO_SK,
            "schedule = \"* * * * * *\"\ntimeout = \"10s\"",
            port,
            &dir.path().join("s.db"),
        ) + &images_toml(&[A])),
    );
    let d = Daemon::start(&cfg, port, &[]).await;
    eventually("polled on the cron schedule", || async {
        (sim.stats().total("show_image") >= 2).then_some(())
    })
    .await;
    // Answers slower than the schedule (2.5 s, within the 10 s timeout): ticks come while a
    // cycle runs and are skipped.
    sim.set_fault(FaultSpec::new(FaultMode::Slow).delay_ms(2500).count(2))
        .unwrap();
    let skipped = "modelarts_poll_cycles_skipped_total{cloud=\"sim\"}";
    eventually("a skipped tick counted", || async {
        let m = d.get_text("/metrics").await;
        m.lines()
            .find(|l| l.starts_with(skipped))
            .filter(|l| !l.ends_with(" 0"))
            .map(|_| ())
    })
    .await;
    assert!(d.logs().contains("tick skipped"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_credentials_page_watcher_degraded() {
    let sim = start_sim(vec![image(A, "a", "ACTIVE")]).await;
    let hook = support::webhook_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("config.toml");
    let channel = format!(
        "[[channels]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}/h\"\n",
        hook.uri()
    );
    write(
        &cfg,
        &(base(
            &sim.url(),
            "wrong-secret-key",
            "interval = \"200ms\"",
            port,
            &dir.path().join("s.db"),
        ) + &images_toml(&[A])
            + &channel),
    );
    let d = Daemon::start(&cfg, port, &[]).await;
    let body: Value = eventually("WATCHER_DEGRADED delivered", || async {
        let reqs = hook.received_requests().await.unwrap_or_default();
        reqs.first()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
    })
    .await;
    assert_eq!(body["condition"], "WATCHER_DEGRADED");
    assert_eq!(body["kind"], "firing");
    assert_eq!(body["cloud"], "sim");
    let m = d.get_text("/metrics").await;
    assert!(
        m.contains("modelarts_alerts_firing{condition=\"WATCHER_DEGRADED\"} 1"),
        "{m}"
    );
    assert!(m.contains("modelarts_poll_failures_total{cloud=\"sim\",reason=\"unauthorized\"}"));
    // The image itself never pages: credentials are not an image problem.
    let v = d.get_json("/api/v1/images").await;
    assert!(v[0]["condition"].is_null());
    assert!(
        !d.logs().contains("wrong-secret-key"),
        "the secret never reaches the logs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_notify_reports_per_channel() {
    let hook = support::webhook_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    let channels = format!(
        "[[channels]]\nname = \"good\"\ntype = \"webhook\"\nurl = \"{}/h\"\n[[channels]]\nname = \"dead\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{}/h\"\n",
        hook.uri(),
        free_port()
    );
    write(
        &cfg,
        &(base(
            "http://127.0.0.1:9",
            modelarts_image_exporter::sim::DEMO_SK,
            "interval = \"1s\"",
            free_port(),
            &dir.path().join("s.db"),
        ) + &images_toml(&[A])
            + &channels),
    );
    let c2 = cfg.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin())
            .arg("--config.file")
            .arg(&c2)
            .args(["test-notify"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "one channel failed: {stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("good") && l.ends_with("ok")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("dead") && l.contains("FAILED")),
        "{stdout}"
    );
    let reqs = hook.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(body["kind"], "test");
    assert!(body["summary"].as_str().unwrap().contains("[TEST]"));
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin())
            .arg("--config.file")
            .arg(&cfg)
            .args(["test-notify", "good"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_tls_certificate_exits_78_before_ready() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    write(&cert, "not a certificate\n");
    write(&key, "not a key\n");
    let cfg = dir.path().join("config.toml");
    let web = format!(
        "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let text = base(
        "http://127.0.0.1:9",
        modelarts_image_exporter::sim::DEMO_SK,
        "interval = \"1s\"",
        free_port(),
        &dir.path().join("s.db"),
    )
    .replace("[state]", &format!("{web}[state]"))
        + &images_toml(&[A]);
    write(&cfg, &text);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin())
            .arg("--config.file")
            .arg(&cfg)
            .arg("run")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("cert.pem"), "names the file: {err}");
}
