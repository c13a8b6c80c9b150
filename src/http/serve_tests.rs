use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::routing::get;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

use super::*;

/// Every wait in these tests gives up after this long.
const WAIT: Duration = Duration::from_secs(10);

struct Certs {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    pem: String,
}

fn self_signed() -> Certs {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let pem = ck.cert.pem();
    std::fs::write(&cert, &pem).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    Certs {
        _dir: dir,
        cert,
        key,
        pem,
    }
}

fn client(pem: Option<&str>) -> reqwest::Client {
    crate::cloud::ensure_crypto_provider();
    let mut b = reqwest::Client::builder().timeout(WAIT);
    if let Some(pem) = pem {
        b = b.tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()]);
    }
    b.build().unwrap()
}

fn web(certs: Option<&Certs>, users: BTreeMap<String, String>) -> WebConfig {
    WebConfig {
        tls_cert_file: certs.map(|c| c.cert.clone()),
        tls_key_file: certs.map(|c| c.key.clone()),
        basic_auth_users: users,
        ..WebConfig::default()
    }
}

/// Starts `serve` on a loopback port; returns the address and the server task.
async fn start(
    app: Router,
    web: WebConfig,
    sd: CancellationToken,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { serve(listener, app, &web, sd).await });
    (addr, task)
}

#[test]
fn tls_errors_name_the_files() {
    let c = self_signed();
    let missing = c.cert.with_file_name("nope.crt");
    let e = format!("{:#}", tls_config(&missing, &c.key).unwrap_err());
    assert!(e.contains("nope.crt") && e.contains("tls_cert_file"), "{e}");

    let e = format!("{:#}", tls_config(&c.cert, &c.cert).unwrap_err());
    assert!(e.contains("tls.crt") && e.contains("tls_key_file"), "{e}");

    let other = self_signed();
    let e = format!("{:#}", tls_config(&c.cert, &other.key).unwrap_err());
    assert!(e.contains("does not fit"), "{e}");

    let half = WebConfig {
        tls_cert_file: Some(c.cert.clone()),
        ..WebConfig::default()
    };
    assert!(load_tls(&half).is_err());
    assert!(load_tls(&WebConfig::default()).unwrap().is_none());
    assert!(tls_config(&c.cert, &c.key).is_ok());
}

#[tokio::test]
async fn tls_survives_broken_clients_and_drains_on_shutdown() {
    let certs = self_signed();
    // `notify_one` keeps a permit when nobody waits yet, so neither side can miss the other.
    let (started, gate) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (s, g) = (started.clone(), gate.clone());
    let app = Router::new()
        .route("/fast", get(|| async { "fast" }))
        .route(
            "/slow",
            get(move || {
                let (s, g) = (s.clone(), g.clone());
                async move {
                    s.notify_one();
                    g.notified().await;
                    "slow"
                }
            }),
        );
    let sd = CancellationToken::new();
    let (addr, task) = start(app, web(Some(&certs), BTreeMap::new()), sd.clone()).await;
    let https = client(Some(&certs.pem));
    let base = format!("https://127.0.0.1:{}", addr.port());

    // One client sends garbage, another connects and says nothing: neither blocks others.
    let mut garbage = tokio::net::TcpStream::connect(addr).await.unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let r = https.get(format!("{base}/fast")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "fast");
    // Plain HTTP on the TLS port gets no HTTP answer.
    assert!(
        client(None)
            .get(format!("http://127.0.0.1:{}/fast", addr.port()))
            .send()
            .await
            .is_err()
    );

    // A request in flight when shutdown starts still gets its answer.
    let slow = tokio::spawn({
        let (https, base) = (https.clone(), base.clone());
        async move { https.get(format!("{base}/slow")).send().await }
    });
    tokio::time::timeout(WAIT, started.notified())
        .await
        .expect("slow handler never started");
    sd.cancel();
    gate.notify_one();
    let r = tokio::time::timeout(WAIT, slow)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "slow");
    tokio::time::timeout(WAIT, task)
        .await
        .expect("serve did not return after shutdown")
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn plain_http_with_auth_keeps_health_open() {
    let hash = bcrypt::hash("pw", 4).unwrap();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route("/metrics", get(|| async { "m 1" }));
    let sd = CancellationToken::new();
    let users = BTreeMap::from([("prom".to_string(), hash)]);
    let (addr, task) = start(app, web(None, users), sd.clone()).await;
    let c = client(None);
    let url = |p: &str| format!("http://{addr}{p}");
    assert_eq!(c.get(url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(url("/readyz")).send().await.unwrap().status(), 200);
    let r = c.get(url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = c
        .get(url("/metrics"))
        .basic_auth("prom", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "m 1");
    sd.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
