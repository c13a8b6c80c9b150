//! Channels against real receivers: every webhook format against wiremock (headers, signatures,
//! bodies, error classification, redaction), email against a real SMTP server (aiosmtpd) and
//! the push against a real Alertmanager.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use modelarts_image_exporter::alert::channel::{Channel, am_alert, chat_sign, stdwebhooks};
use modelarts_image_exporter::alert::{Notification, NotificationKind};
use modelarts_image_exporter::config::settings::{
    AlertmanagerSettings, ChannelKind, ChannelSettings, EmailSettings, WebhookSettings,
};
use modelarts_image_exporter::config::{Secret, SmtpTls, WebhookFormat};
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn firing() -> Notification {
    Notification {
        event_id: "278e88d1-5b71-4766-8502-b3ba72e824d9-7".to_string(),
        kind: NotificationKind::Firing,
        condition: Some("CREATE_FAILED".to_string()),
        previous_condition: None,
        image_id: "278e88d1-5b71-4766-8502-b3ba72e824d9".to_string(),
        image_name: Some("pytorch-1.8".to_string()),
        previous_status: Some("CREATING".to_string()),
        status: Some("CREATE_FAILED".to_string()),
        status_message: Some("build <failed>".to_string()),
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

fn settings(kind: ChannelKind) -> ChannelSettings {
    ChannelSettings {
        name: "test-channel".into(),
        max_per_minute: 20,
        timeout: Duration::from_secs(5),
        ca_file: None,
        kind,
    }
}

fn webhook(url: &str, format: WebhookFormat, secret: Option<&str>) -> Channel {
    Channel::new(&settings(ChannelKind::Webhook(WebhookSettings {
        url: Secret::new(url),
        format,
        secret: secret.map(Secret::new),
    })))
    .unwrap()
}

/// The single request the server received (waits are bounded by wiremock itself: the request
/// already completed when `send` returned).
async fn only_request(server: &MockServer) -> wiremock::Request {
    let mut requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "expected exactly one request");
    requests.remove(0)
}

fn header(req: &wiremock::Request, name: &str) -> String {
    req.headers
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn json_is_signed_per_standard_webhooks_and_verifiable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let channel = webhook(
        &format!("{}/hook", server.uri()),
        WebhookFormat::Json,
        Some(secret),
    );
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    channel.send(&[firing()]).await.unwrap();
    let req = only_request(&server).await;
    assert_eq!(header(&req, "content-type"), "application/json");
    let id = header(&req, "webhook-id");
    let ts: i64 = header(&req, "webhook-timestamp").parse().unwrap();
    assert_eq!(id, firing().event_id);
    assert!(
        (i64::try_from(before).unwrap() - ts).abs() <= 5,
        "timestamp is fresh"
    );
    assert_eq!(
        header(&req, "webhook-signature"),
        stdwebhooks::signature(secret, &id, ts, &req.body)
    );
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["version"], "1");
    assert_eq!(body["event_id"], firing().event_id);
    assert_eq!(body["labels"]["team"], "ml-platform");
}

#[tokio::test]
async fn every_format_is_delivered_with_its_body() {
    type BodyCheck = fn(&Value) -> bool;
    let cases: [(WebhookFormat, BodyCheck); 7] = [
        (WebhookFormat::Json, |b| b["group"] == true),
        (WebhookFormat::Alertmanager, |b| {
            b["version"] == "4" && b["alerts"].as_array().unwrap().len() == 2
        }),
        (WebhookFormat::Slack, |b| {
            b["text"] == "[FIRING] 2 ModelArts images need attention"
        }),
        (WebhookFormat::Teams, |b| {
            b["attachments"][0]["content"]["type"] == "AdaptiveCard"
        }),
        (WebhookFormat::Feishu, |b| {
            b["msg_type"] == "text" && b.get("sign").is_none()
        }),
        (WebhookFormat::Dingtalk, |b| b["msgtype"] == "markdown"),
        (WebhookFormat::Wecom, |b| {
            b["markdown"]["content"]
                .as_str()
                .unwrap()
                .contains("2 ModelArts images")
        }),
    ];
    let mut second = firing();
    second.event_id = "second-1".into();
    second.image_id = "second".into();
    for (format, check) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"code":0,"errcode":0}"#))
            .mount(&server)
            .await;
        let channel = webhook(&format!("{}/h", server.uri()), format, None);
        channel.send(&[firing(), second.clone()]).await.unwrap();
        let req = only_request(&server).await;
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert!(check(&body), "{format:?}: unexpected body {body}");
        assert!(
            req.headers.get("webhook-signature").is_none(),
            "{format:?}: no secret, no signature"
        );
    }
}

#[tokio::test]
async fn feishu_and_dingtalk_signatures_verify() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"code":0,"msg":"success"}"#))
        .mount(&server)
        .await;
    webhook(
        &format!("{}/feishu/TOKEN", server.uri()),
        WebhookFormat::Feishu,
        Some("fs-secret"),
    )
    .send(&[firing()])
    .await
    .unwrap();
    let req = only_request(&server).await;
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    let ts: i64 = body["timestamp"].as_str().unwrap().parse().unwrap();
    assert_eq!(body["sign"], chat_sign::feishu_sign("fs-secret", ts));

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/robot/send"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"errcode":0,"errmsg":"ok"}"#))
        .mount(&server)
        .await;
    let url = format!("{}/robot/send?access_token=TOKEN", server.uri());
    webhook(&url, WebhookFormat::Dingtalk, Some("SECdt"))
        .send(&[firing()])
        .await
        .unwrap();
    let req = only_request(&server).await;
    let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
    assert_eq!(q["access_token"], "TOKEN");
    let ts: i64 = q["timestamp"].parse().unwrap();
    assert!(ts > 1_600_000_000_000, "milliseconds");
    assert_eq!(q["sign"], chat_sign::dingtalk_sign("SECdt", ts));
}

async fn outcome(
    format: WebhookFormat,
    response: ResponseTemplate,
) -> Result<(), modelarts_image_exporter::alert::channel::DeliveryError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(response)
        .mount(&server)
        .await;
    webhook(
        &format!("{}/hook/SECRETTOKEN?key=SECRETKEY", server.uri()),
        format,
        None,
    )
    .send(&[firing()])
    .await
}

#[tokio::test]
async fn errors_are_classified() {
    let e = outcome(WebhookFormat::Json, ResponseTemplate::new(500))
        .await
        .unwrap_err();
    assert!(!e.permanent && e.message.contains("500"), "{e}");
    let e = outcome(WebhookFormat::Json, ResponseTemplate::new(400))
        .await
        .unwrap_err();
    assert!(e.permanent, "{e}");
    let e = outcome(WebhookFormat::Json, ResponseTemplate::new(408))
        .await
        .unwrap_err();
    assert!(!e.permanent, "{e}");
    let e = outcome(
        WebhookFormat::Slack,
        ResponseTemplate::new(429).insert_header("Retry-After", "3"),
    )
    .await
    .unwrap_err();
    assert!(!e.permanent);
    assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
    let e = outcome(
        WebhookFormat::Dingtalk,
        ResponseTemplate::new(200)
            .set_body_string(r#"{"errcode":310000,"errmsg":"sign not match"}"#),
    )
    .await
    .unwrap_err();
    assert!(e.permanent && e.message.contains("310000"), "{e}");
    let e = outcome(
        WebhookFormat::Feishu,
        ResponseTemplate::new(200).set_body_string(r#"{"code":11232,"msg":"frequency limited"}"#),
    )
    .await
    .unwrap_err();
    assert!(!e.permanent, "rate limits are transient: {e}");
    // A 200 with errcode 0 is success; the json format ignores reply bodies.
    outcome(
        WebhookFormat::Wecom,
        ResponseTemplate::new(200).set_body_string(r#"{"errcode":0,"errmsg":"ok"}"#),
    )
    .await
    .unwrap();
    outcome(
        WebhookFormat::Json,
        ResponseTemplate::new(200).set_body_string(r#"{"code":5}"#),
    )
    .await
    .unwrap();
    // Redirects are not followed: a moved hook is a configuration problem.
    let e = outcome(
        WebhookFormat::Json,
        ResponseTemplate::new(302).insert_header("Location", "http://127.0.0.1:1/x"),
    )
    .await
    .unwrap_err();
    assert!(e.permanent, "{e}");
}

#[tokio::test]
async fn errors_never_show_the_url_token() {
    // The receiver echoes the URL back in its error body.
    let e = outcome(
        WebhookFormat::Json,
        ResponseTemplate::new(404).set_body_string("no hook at /hook/SECRETTOKEN?key=SECRETKEY"),
    )
    .await
    .unwrap_err();
    assert!(e.permanent);
    for shown in [e.message.clone(), e.to_string(), format!("{e:?}")] {
        assert!(!shown.contains("SECRET"), "leaked: {shown}");
        assert!(shown.contains("http://127.0.0.1/…"), "{shown}");
    }
    // Transport error: nothing listens on the port.
    let port = support::free_port();
    let e = webhook(
        &format!("http://127.0.0.1:{port}/hook/SECRETTOKEN"),
        WebhookFormat::Slack,
        None,
    )
    .send(&[firing()])
    .await
    .unwrap_err();
    assert!(!e.permanent);
    assert!(!e.message.contains("SECRETTOKEN"), "{e}");
    let channel = webhook(
        "https://hooks.example.com/SECRETTOKEN",
        WebhookFormat::Json,
        None,
    );
    assert!(!format!("{channel:?}").contains("SECRET"));
    // An invalid URL is refused without echoing it.
    let err = Channel::new(&settings(ChannelKind::Webhook(WebhookSettings {
        url: Secret::new("hooks.example.com/SECRETTOKEN"),
        format: WebhookFormat::Json,
        secret: None,
    })))
    .unwrap_err();
    assert!(!format!("{err:#}").contains("SECRET"));
}

#[tokio::test]
async fn email_reaches_a_real_smtp_server() {
    let python = support::venv_python();
    let port = support::free_port();
    let root = tempfile::tempdir().unwrap();
    let maildir = root.path().join("mail");
    let _server = support::Child::spawn(
        std::process::Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir),
    );
    support::wait_for_port(port).await;
    let channel = Channel::new(&settings(ChannelKind::Email(EmailSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        from: "watch@example.com".into(),
        to: vec!["oncall@example.com".into(), "second@example.org".into()],
        username: None,
        password: None,
    })))
    .unwrap();
    channel.send(&[firing()]).await.unwrap();

    let file = support::wait_for_file(&maildir.join("new")).await;
    // Decode with Python's email package: MIME encodings are not this test's subject.
    let script = r"
import email, sys
from email import policy
m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.default)
print('SUBJECT:' + m['subject'])
print('TO:' + m['to'])
for part in m.walk():
    if part.get_content_maintype() == 'text':
        print('PART:' + part.get_content_type())
        print(part.get_content())
";
    let out = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("SUBJECT:[FIRING] ModelArts image pytorch-1.8 is CREATE_FAILED"),
        "{text}"
    );
    assert!(
        text.contains("oncall@example.com") && text.contains("second@example.org"),
        "{text}"
    );
    assert!(
        text.contains("PART:text/plain") && text.contains("PART:text/html"),
        "{text}"
    );
    assert!(
        text.contains("Event id: 278e88d1-5b71-4766-8502-b3ba72e824d9-7"),
        "{text}"
    );
    assert!(
        text.contains("build &lt;failed&gt;"),
        "HTML part escapes: {text}"
    );
    assert!(text.contains("Status message: build <failed>"), "{text}");

    // With auth and STARTTLS required, a server without STARTTLS gets nothing: no fallback.
    let guarded = Channel::new(&settings(ChannelKind::Email(EmailSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::Starttls,
        from: "watch@example.com".into(),
        to: vec!["oncall@example.com".into()],
        username: Some("u".into()),
        password: Some(Secret::new("hunter2")),
    })))
    .unwrap();
    let e = guarded.send(&[firing()]).await.unwrap_err();
    assert!(!e.message.contains("hunter2"), "{e}");
    assert_eq!(
        std::fs::read_dir(maildir.join("new")).unwrap().count(),
        1,
        "no second mail"
    );
}

#[test]
fn smtp_auth_over_plain_text_is_refused() {
    let err = Channel::new(&settings(ChannelKind::Email(EmailSettings {
        host: "127.0.0.1".into(),
        port: 25,
        tls: SmtpTls::None,
        from: "watch@example.com".into(),
        to: vec!["oncall@example.com".into()],
        username: Some("u".into()),
        password: Some(Secret::new("hunter2")),
    })))
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("plain text") && !msg.contains("hunter2"),
        "{msg}"
    );
}

#[tokio::test]
async fn alertmanager_push_fires_and_resolves_a_real_alert() {
    let am = support::Alertmanager::start().await;
    let channel = Channel::new(&settings(ChannelKind::Alertmanager(AlertmanagerSettings {
        url: Secret::new(am.url.clone()),
    })))
    .unwrap();
    assert!(channel.send(&[firing()]).await.unwrap_err().permanent);

    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let mut n = firing();
    n.firing_since = Some(now - 60);
    channel
        .push(&[am_alert(&n, now + 300, Some("http://watch.example/"))])
        .await
        .unwrap();
    let alerts = am.alerts("").await;
    let ours = support::find_alert(&alerts, &n.image_id).expect("the pushed alert is listed");
    assert_eq!(ours["labels"]["alertname"], "ModelArtsImageAlert");
    assert_eq!(ours["labels"]["name"], "pytorch-1.8");
    assert_eq!(ours["labels"]["team"], "ml-platform");
    assert_eq!(ours["annotations"]["condition"], "CREATE_FAILED");
    assert_eq!(ours["annotations"]["summary"], n.summary);
    assert_eq!(ours["status"]["state"], "active");
    assert_eq!(ours["generatorURL"], "http://watch.example/");

    channel.push(&[am_alert(&n, now, None)]).await.unwrap();
    let alerts = am.alerts("?active=true").await;
    if let Some(still) = support::find_alert(&alerts, &n.image_id) {
        assert_ne!(still["status"]["state"], "active", "{still}");
    }
}
