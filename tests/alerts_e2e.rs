//! Pages end to end: the real daemon pages a real SMTP server (aiosmtpd), a real Alertmanager
//! and a webhook receiver exactly once per transition; a webhook receiver that is down gets
//! its notifications when it returns, also across a SIGKILL of the daemon.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{
    Alertmanager, Child, Daemon, aksk_cloud, eventually, find_alert, free_port, image, images_toml,
    start_sim, venv_python, wait_for_port,
};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const IMG: &str = "cccccccc-0000-4000-8000-00000000000c";

fn base_config(sim_url: &str, port: u16, state: &std::path::Path) -> String {
    format!(
        "{}[poll]\ninterval = \"200ms\"\ntimeout = \"1s\"\n{}[web]\nlisten = \"127.0.0.1:{port}\"\n[state]\npath = \"{}\"\n",
        aksk_cloud(sim_url, modelarts_image_exporter::sim::DEMO_SK),
        images_toml(&[IMG]),
        state.display()
    )
}

/// (kind, condition, event id) of every notification a wiremock receiver got.
async fn hook_notifications(hook: &MockServer) -> Vec<(String, String, String)> {
    hook.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            (
                v["kind"].as_str().unwrap_or("").into(),
                v["condition"].as_str().unwrap_or("").into(),
                v["event_id"].as_str().unwrap_or("").into(),
            )
        })
        .collect()
}

fn mails(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir.join("new"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
#[allow(clippy::too_many_lines)] // reason: one end-to-end story across three real receivers
async fn one_page_per_transition_on_every_channel() {
    let sim = start_sim(vec![image(IMG, "notebook-base", "ACTIVE")]).await;
    // Real SMTP server.
    let smtp_port = free_port();
    let maildir = tempfile::tempdir().unwrap();
    let mbox = maildir.path().join("mbox");
    let _smtp = Child::spawn(
        Command::new(venv_python())
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{smtp_port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&mbox),
    );
    wait_for_port(smtp_port).await;
    // Real Alertmanager.
    let am = Alertmanager::start().await;
    // Webhook receiver.
    let hook = support::webhook_receiver().await;

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("config.toml");
    let channels = format!(
        "[[channels]]\nname = \"mail\"\ntype = \"email\"\nsmtp = \"127.0.0.1:{smtp_port}\"\ntls = \"none\"\nfrom = \"watch@example.com\"\nto = [\"oncall@example.com\", \"lead@example.com\"]\n\
         [[channels]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}/hook\"\nformat = \"json\"\n\
         [[channels]]\nname = \"am\"\ntype = \"alertmanager\"\nurl = \"{}\"\n",
        hook.uri(),
        am.url
    );
    std::fs::write(
        &cfg,
        base_config(&sim.url(), port, &dir.path().join("state.db")) + &channels,
    )
    .unwrap();
    let d = Daemon::start(&cfg, port, &[]).await;
    eventually("first poll", || async {
        d.get_text("/api/v1/images")
            .await
            .contains("\"ACTIVE\"")
            .then_some(())
    })
    .await;

    sim.set_status(IMG, "CREATE_FAILED");
    sim.set_status_message(IMG, "save image failed: layer push timeout");
    eventually("webhook firing", || async {
        (!hook_notifications(&hook).await.is_empty()).then_some(())
    })
    .await;
    eventually("mail firing", || async {
        (!mails(&mbox).is_empty()).then_some(())
    })
    .await;
    let alert = eventually("Alertmanager has the alert", || async {
        find_alert(&am.alerts("?active=true").await, IMG).cloned()
    })
    .await;
    assert_eq!(alert["labels"]["name"], "notebook-base");
    assert_eq!(alert["labels"]["cloud"], "sim");
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("CREATE_FAILED"),
        "{alert}"
    );
    let mail = &mails(&mbox)[0];
    assert!(
        mail.contains("[FIRING] ModelArts image notebook-base is CREATE_FAILED"),
        "{mail}"
    );
    assert!(mail.contains("oncall@example.com") && mail.contains("lead@example.com"));
    assert!(mail.contains("layer push timeout"));

    sim.set_status(IMG, "ACTIVE");
    eventually("webhook resolved", || async {
        (hook_notifications(&hook).await.len() >= 2).then_some(())
    })
    .await;
    eventually("mail resolved", || async {
        (mails(&mbox).len() >= 2).then_some(())
    })
    .await;
    eventually("Alertmanager resolved", || async {
        find_alert(&am.alerts("?active=true").await, IMG)
            .is_none()
            .then_some(())
    })
    .await;
    // Let a few more cycles run: still exactly one firing and one resolved per channel.
    let polls = sim.stats().total("show_image");
    eventually("more cycles", || async {
        (sim.stats().total("show_image") >= polls + 5).then_some(())
    })
    .await;
    let hooks = hook_notifications(&hook).await;
    assert_eq!(
        hooks
            .iter()
            .map(|h| (h.0.as_str(), h.1.as_str()))
            .collect::<Vec<_>>(),
        vec![("firing", "CREATE_FAILED"), ("resolved", "CREATE_FAILED")],
        "{hooks:?}"
    );
    let all = mails(&mbox);
    assert_eq!(all.len(), 2);
    assert_eq!(all.iter().filter(|m| m.contains("[RESOLVED]")).count(), 1);
    assert!(
        all.iter().any(|m| m.contains(&hooks[0].2)),
        "the mail carries the same event id as the webhook"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_pages_survive_receiver_outage_and_sigkill() {
    let sim = start_sim(vec![image(IMG, "notebook-base", "ACTIVE")]).await;
    // Reserve a port for the receiver, which is down at first.
    let hook_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_port = hook_listener.local_addr().unwrap().port();
    drop(hook_listener);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("config.toml");
    let channel = format!(
        "[[channels]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\nformat = \"json\"\n"
    );
    std::fs::write(
        &cfg,
        base_config(&sim.url(), port, &dir.path().join("state.db")) + &channel,
    )
    .unwrap();
    let mut d = Daemon::start(&cfg, port, &[]).await;
    eventually("first poll", || async {
        d.get_text("/api/v1/images")
            .await
            .contains("\"ACTIVE\"")
            .then_some(())
    })
    .await;

    sim.set_status(IMG, "ERROR");
    eventually("a failed delivery attempt", || async {
        d.get_text("/metrics")
            .await
            .contains("modelarts_notifications_failed_total{channel=\"hook\"} 1")
            .then_some(())
    })
    .await;
    assert!(
        d.get_text("/metrics")
            .await
            .contains("modelarts_notification_queue_length 1")
    );
    d.kill(); // SIGKILL with the page queued

    // The receiver comes back on its port; the restarted daemon delivers the same page.
    let listener = std::net::TcpListener::bind(("127.0.0.1", hook_port)).unwrap();
    let hook = MockServer::builder().listener(listener).start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let d2 = Daemon::start(&cfg, port, &[]).await;
    // The first retry is ~10 s after the failure (backoff); allow for it.
    let got = eventually_long("queued page delivered after restart", || async {
        let n = hook_notifications(&hook).await;
        (!n.is_empty()).then_some(n)
    })
    .await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "firing");
    assert_eq!(got[0].1, "ERROR");
    assert_eq!(
        got[0].2,
        format!("{IMG}:alert:1"),
        "the event id is the one queued before the crash"
    );
    let headers = &hook.received_requests().await.unwrap()[0].headers;
    assert!(headers.get("content-type").is_some());
    eventually("queue empty", || async {
        d2.get_text("/metrics")
            .await
            .contains("modelarts_notification_queue_length 0")
            .then_some(())
    })
    .await;
}

/// Like `eventually`, for waits that include one delivery back-off step (up to 40 s).
async fn eventually_long<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
