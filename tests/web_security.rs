//! The real daemon's listener security: HTTPS with a test certificate, basic auth against a
//! bcrypt hash, and `POST /-/reload` (forbidden by default; when enabled, a broken config is
//! rejected and the old one kept).

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use support::{Daemon, aksk_cloud, free_port, image, images_toml, start_sim};

const A: &str = "cccccccc-0000-4000-8000-00000000000a";
const B: &str = "cccccccc-0000-4000-8000-00000000000b";

fn config(sim_url: &str, port: u16, state: &Path, ids: &[&str], web_extra: &str) -> String {
    format!(
        "{}[poll]\ninterval = \"200ms\"\ntimeout = \"1s\"\n{}[web]\nlisten = \"127.0.0.1:{port}\"\n{web_extra}[state]\npath = \"{}\"\n",
        aksk_cloud(sim_url, modelarts_image_exporter::sim::DEMO_SK),
        images_toml(ids),
        state.display()
    )
}

fn client() -> reqwest::Client {
    modelarts_image_exporter::cloud::ensure_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A self-signed certificate for 127.0.0.1/localhost: (cert path, key path, cert PEM).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key, ck.cert.pem())
}

#[tokio::test]
async fn https_with_a_trusted_certificate_and_no_plain_http() {
    let sim = start_sim(vec![image(A, "a", "ACTIVE")]).await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, pem) = self_signed(dir.path());
    let port = free_port();
    let tls = format!(
        "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        config(&sim.url(), port, &dir.path().join("s.db"), &[A], &tls),
    )
    .unwrap();
    modelarts_image_exporter::cloud::ensure_crypto_provider();
    let https = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{port}");
    let d = Daemon::start_with(&cfg, &base, &https, &[]).await;

    let r = https.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("modelarts_"));
    // localhost is in the certificate too.
    let r = https
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Plain HTTP gets no HTTP answer; a client that does not trust the cert is refused.
    let plain = client()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await;
    assert!(plain.is_err(), "plain http answered: {plain:?}");
    assert!(
        client()
            .get(format!("{base}/metrics"))
            .send()
            .await
            .is_err()
    );
    // ...and neither broke the listener for others.
    let r = https.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", d.logs());
}

#[tokio::test]
async fn basic_auth_guards_everything_but_health() {
    let sim = start_sim(vec![image(A, "a", "ACTIVE")]).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Cost 4 keeps the test fast; the daemon accepts any cost.
    let hash = bcrypt::hash("correct horse", 4).unwrap();
    let users = format!("basic_auth_users = {{ prom = \"{hash}\" }}\n");
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        config(&sim.url(), port, &dir.path().join("s.db"), &[A], &users),
    )
    .unwrap();
    let d = Daemon::start(&cfg, port, &[]).await;
    let c = client();
    let url = |p: &str| format!("{}{p}", d.base);

    for path in ["/metrics", "/", "/api/v1/images", "/api/v1/events"] {
        let r = c.get(url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Basic realm=\"modelarts-image-exporter\"",
            "{path}"
        );
    }
    let r = c.post(url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for (user, pass) in [("prom", "wrong"), ("other", "correct horse"), ("prom", "")] {
        let r = c
            .get(url("/metrics"))
            .basic_auth(user, Some(pass))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{user}:{pass}");
    }
    for _ in 0..3 {
        let r = c
            .get(url("/metrics"))
            .basic_auth("prom", Some("correct horse"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.text().await.unwrap().contains("modelarts_"));
    }
    for path in ["/healthz", "/readyz"] {
        let r = c.get(url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path} stays open for probes");
    }
    assert!(
        !d.logs().contains("correct horse"),
        "a password reached the logs"
    );
}

#[tokio::test]
async fn reload_is_forbidden_unless_enabled() {
    let sim = start_sim(vec![image(A, "a", "ACTIVE")]).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        config(&sim.url(), port, &dir.path().join("s.db"), &[A], ""),
    )
    .unwrap();
    let d = Daemon::start(&cfg, port, &[]).await;
    let r = client()
        .post(format!("{}/-/reload", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

async fn image_ids(d: &Daemon) -> Vec<String> {
    let v = d.get_json("/api/v1/images").await;
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn enabled_reload_applies_good_configs_and_keeps_the_old_one_on_errors() {
    let sim = start_sim(vec![image(A, "a", "ACTIVE"), image(B, "b", "ACTIVE")]).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let state = dir.path().join("s.db");
    let cfg = dir.path().join("config.toml");
    let on = "enable_reload = true\n";
    std::fs::write(&cfg, config(&sim.url(), port, &state, &[A], on)).unwrap();
    let d = Daemon::start(&cfg, port, &[]).await;
    let c = client();
    let reload = format!("{}/-/reload", d.base);
    assert_eq!(image_ids(&d).await, [A]);

    std::fs::write(&cfg, config(&sim.url(), port, &state, &[A, B], on)).unwrap();
    let r = c.post(&reload).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(image_ids(&d).await, [A, B]);

    // Broken: not even TOML. The answer says why; the running config stays.
    std::fs::write(&cfg, "[[images]\nid = ").unwrap();
    let r = c.post(&reload).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("old config kept"));
    assert_eq!(image_ids(&d).await, [A, B]);
    let m = d.get_text("/metrics").await;
    assert!(
        m.lines()
            .any(|l| l == "modelarts_config_last_reload_successful 0"),
        "{m}"
    );
}
