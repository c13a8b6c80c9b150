//! The simulator seen from a client: gateway auth (AK/SK, tokens, skew), ShowImage/ListImage,
//! every fault mode and the control API, over real loopback sockets.

use std::time::{Duration, SystemTime};

use modelarts_image_exporter::cloud::model::{Image, ImageList};
use modelarts_image_exporter::cloud::sign;
use modelarts_image_exporter::sim::{
    self, DEMO_AK, DEMO_DOMAIN, DEMO_PASSWORD, DEMO_PROJECT_ID, DEMO_PROJECT_NAME, DEMO_SK,
    DEMO_USER, FaultMode, FaultSpec, SimConfig, SimHandle, generated_id,
};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(10);

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(T).build().unwrap()
}

async fn start(cfg: SimConfig) -> SimHandle {
    sim::spawn(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn show_path(id: &str) -> String {
    format!("/v1/{DEMO_PROJECT_ID}/images/{id}")
}

/// A GET signed with `ak`/`sk` at `date`, sent the way the client sends it.
async fn signed_at(
    sim: &SimHandle,
    path: &str,
    query: &[(&str, &str)],
    (ak, sk): (&str, &str),
    date: SystemTime,
) -> reqwest::Result<reqwest::Response> {
    let query: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    let host = sim.addr.to_string();
    let headers = vec![
        (sign::DATE_HEADER.to_string(), sign::sdk_date(date)),
        ("X-Project-Id".to_string(), DEMO_PROJECT_ID.to_string()),
    ];
    let req = sign::Request {
        method: "GET",
        host: &host,
        path,
        query: &query,
        headers: &headers,
        body: b"",
    };
    let sig = sign::sign(&req, ak, sk);
    let mut builder = client().get(format!("{}{}", sim.url(), sign::request_uri(path, &query)));
    for (k, v) in &headers {
        builder = builder.header(k, v);
    }
    builder
        .header("Authorization", sig.authorization)
        .send()
        .await
}

async fn signed(sim: &SimHandle, path: &str, query: &[(&str, &str)]) -> reqwest::Response {
    signed_at(sim, path, query, (DEMO_AK, DEMO_SK), SystemTime::now())
        .await
        .unwrap()
}

async fn error_code(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap();
    (
        status,
        v["error_code"].as_str().unwrap_or_default().to_string(),
        v["error_msg"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn good_signature_gets_the_image_with_date_and_request_id() {
    let sim = start(SimConfig::default().with_generated(3)).await;
    let id = generated_id(1);
    let resp = signed(&sim, &show_path(&id), &[]).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("date"));
    assert_eq!(resp.headers()["x-request-id"].len(), 32);
    let img: Image = resp.json().await.unwrap();
    assert_eq!(img.id.as_deref(), Some(id.as_str()));
    assert_eq!(img.status.as_deref(), Some("ACTIVE"));
    assert_eq!(img.name.as_deref(), Some("image-00001"));
    assert!(img.size.unwrap() > 0 && img.update_at.unwrap() > 1_700_000_000_000);
    assert_eq!(sim.stats().count("show_image", 200), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_secret_or_unknown_key_is_apigw_0301() {
    let sim = start(SimConfig::default().with_generated(1)).await;
    let path = show_path(&generated_id(0));
    for creds in [(DEMO_AK, "wrong-secret"), ("OTHERAK", DEMO_SK)] {
        let resp = signed_at(&sim, &path, &[], creds, SystemTime::now())
            .await
            .unwrap();
        let (status, code, msg) = error_code(resp).await;
        assert_eq!((status, code.as_str()), (401, "APIGW.0301"));
        assert!(msg.contains("verify aksk signature fail"), "{msg}");
    }
    // A signature over other query parameters than those sent must fail too.
    let resp = signed_at(
        &sim,
        &path,
        &[("a", "1")],
        (DEMO_AK, DEMO_SK),
        SystemTime::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "signed query pairs are verified, not ignored"
    );
    let bad = client()
        .get(format!("{}{path}?a=2", sim.url()))
        .header("X-Sdk-Date", sign::sdk_date(SystemTime::now()))
        .header(
            "Authorization",
            format!(
                "{} Access={DEMO_AK}, SignedHeaders=host;x-sdk-date, Signature=00",
                sign::ALGORITHM
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert_eq!(sim.stats().signature_failures, 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn skew_beyond_fifteen_minutes_is_refused_and_date_follows_the_server_clock() {
    let sim = start(SimConfig::default().with_generated(1)).await;
    let path = show_path(&generated_id(0));
    let past = SystemTime::now() - Duration::from_secs(20 * 60);
    let resp = signed_at(&sim, &path, &[], (DEMO_AK, DEMO_SK), past)
        .await
        .unwrap();
    let (status, code, msg) = error_code(resp).await;
    assert_eq!((status, code.as_str()), (401, "APIGW.0303"));
    assert!(msg.contains("X-Sdk-Date") && msg.contains("900 s"), "{msg}");
    // 10 minutes is within the allowed skew.
    let near = SystemTime::now() - Duration::from_secs(10 * 60);
    let resp = signed_at(&sim, &path, &[], (DEMO_AK, DEMO_SK), near)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Server clock 20 minutes ahead: a correct local clock is now "skewed".
    sim.set_clock_offset_secs(1200);
    let resp = signed(&sim, &path, &[]).await;
    let date = httpdate::parse_http_date(resp.headers()["date"].to_str().unwrap()).unwrap();
    let ahead = date.duration_since(SystemTime::now()).unwrap();
    assert!(
        ahead > Duration::from_secs(1190) && ahead < Duration::from_secs(1210),
        "{ahead:?}"
    );
    assert_eq!(resp.status(), 401);
    sim.shutdown().await;
}

#[tokio::test]
async fn clock_offset_from_config_shows_in_date() {
    let sim = start(SimConfig::default().clock_offset_secs(-3600)).await;
    let resp = client()
        .get(format!("{}/nothing", sim.url()))
        .send()
        .await
        .unwrap();
    let date = httpdate::parse_http_date(resp.headers()["date"].to_str().unwrap()).unwrap();
    let behind = SystemTime::now().duration_since(date).unwrap();
    assert!(behind > Duration::from_secs(3590) && behind < Duration::from_secs(3610));
    sim.shutdown().await;
}

fn token_body(password: &str, scope: &Value) -> Value {
    json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": DEMO_USER, "password": password, "domain": {"name": DEMO_DOMAIN}}}},
        "scope": {"project": scope}}})
}

async fn get_token(sim: &SimHandle, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/v3/auth/tokens", sim.url()))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn with_token(sim: &SimHandle, path: &str, token: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", sim.url()))
        .header("X-Auth-Token", token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn token_flow_issue_use_expire_refresh() {
    let sim = start(SimConfig::default().with_generated(1)).await;
    let path = show_path(&generated_id(0));

    let resp = get_token(&sim, &token_body("nope", &json!({"id": DEMO_PROJECT_ID}))).await;
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "The username or password is wrong.");
    assert_eq!(v["error"]["code"], 401);

    let resp = get_token(
        &sim,
        &token_body(DEMO_PASSWORD, &json!({"name": DEMO_PROJECT_NAME})),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let token = resp.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_string();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["token"]["project"]["id"], DEMO_PROJECT_ID);
    let expires = time::OffsetDateTime::parse(
        v["token"]["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(left > time::Duration::hours(23) && left <= time::Duration::hours(24));

    assert_eq!(with_token(&sim, &path, &token).await.status(), 200);
    let (status, code, _) = error_code(with_token(&sim, &path, "MIIforged").await).await;
    assert_eq!((status, code.as_str()), (401, "APIGW.0301"));

    sim.set_fault(FaultSpec::new(FaultMode::ExpireTokens))
        .unwrap();
    let (status, code, msg) = error_code(with_token(&sim, &path, &token).await).await;
    assert_eq!(
        (status, code.as_str(), msg.as_str()),
        (401, "APIGW.0307", "The token must be updated.")
    );

    let resp = get_token(
        &sim,
        &token_body(DEMO_PASSWORD, &json!({"id": DEMO_PROJECT_ID})),
    )
    .await;
    let fresh = resp.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(fresh, token);
    assert_eq!(with_token(&sim, &path, &fresh).await.status(), 200);
    let counters = sim.stats();
    assert_eq!(counters.tokens_issued, 2);
    assert_eq!(counters.count("iam_tokens", 401), 1);

    // A scope naming another project is refused.
    let resp = get_token(
        &sim,
        &token_body(DEMO_PASSWORD, &json!({"name": "elsewhere"})),
    )
    .await;
    assert_eq!(resp.status(), 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn token_ttl_is_honoured_by_the_server_clock() {
    let sim = start(
        SimConfig::default()
            .with_generated(1)
            .token_ttl(Duration::from_secs(60)),
    )
    .await;
    let resp = get_token(
        &sim,
        &token_body(DEMO_PASSWORD, &json!({"id": DEMO_PROJECT_ID})),
    )
    .await;
    let token = resp.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_string();
    let path = show_path(&generated_id(0));
    assert_eq!(with_token(&sim, &path, &token).await.status(), 200);
    sim.set_clock_offset_secs(61);
    let (status, code, _) = error_code(with_token(&sim, &path, &token).await).await;
    assert_eq!((status, code.as_str()), (401, "APIGW.0307"));
    sim.shutdown().await;
}

#[tokio::test]
async fn no_credentials_wrong_project_and_unknown_route() {
    let sim = start(SimConfig::default().with_generated(1)).await;
    let path = show_path(&generated_id(0));
    let resp = client()
        .get(format!("{}{path}", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let other = format!(
        "/v1/ffffffffffffffffffffffffffffffff/images/{}",
        generated_id(0)
    );
    let (status, code, _) = error_code(signed(&sim, &other, &[]).await).await;
    assert_eq!((status, code.as_str()), (400, "ModelArts.2786"));

    let (status, code, _) = error_code(signed(&sim, "/v2/x/images", &[]).await).await;
    assert_eq!((status, code.as_str()), (404, "APIGW.0101"));
    let resp = signed(&sim, "/v2/x/images", &[]).await;
    assert!(resp.headers().contains_key("x-request-id"));
    sim.shutdown().await;
}

#[tokio::test]
async fn deleted_image_is_404_or_400_6404_when_flagged() {
    let sim = start(SimConfig::default().with_generated(2)).await;
    let (a, b) = (generated_id(0), generated_id(1));
    assert!(sim.delete_image(&a));
    let (status, code, msg) = error_code(signed(&sim, &show_path(&a), &[]).await).await;
    assert_eq!((status, code.as_str()), (404, "ModelArts.6404"));
    assert!(msg.contains(&a));

    sim.set_not_found_as_400(&b, true);
    assert_eq!(signed(&sim, &show_path(&b), &[]).await.status(), 200);
    assert!(sim.delete_image(&b));
    let (status, code, _) = error_code(signed(&sim, &show_path(&b), &[]).await).await;
    assert_eq!((status, code.as_str()), (400, "ModelArts.6404"));
    sim.shutdown().await;
}

#[tokio::test]
async fn list_pages_and_defaults_to_build_in() {
    let sim = start(SimConfig::default().with_generated(450)).await;
    let path = format!("/v1/{DEMO_PROJECT_ID}/images");
    let page: ImageList = signed(&sim, &path, &[]).await.json().await.unwrap();
    assert_eq!(
        (page.total, page.data.len()),
        (Some(0), 0),
        "type defaults to BUILD_IN"
    );

    let mut ids = Vec::new();
    let mut offset = 0usize;
    loop {
        let off = offset.to_string();
        let q = [
            ("type", "DEDICATED"),
            ("limit", "200"),
            ("offset", off.as_str()),
        ];
        let resp = signed(&sim, &path, &q).await;
        assert_eq!(resp.status(), 200);
        let page: ImageList = resp.json().await.unwrap();
        assert_eq!(
            (page.total, page.pages, page.size),
            (Some(450), Some(3), Some(200))
        );
        if page.data.is_empty() {
            break;
        }
        offset += page.data.len();
        ids.extend(page.data.into_iter().map(|i| i.id.unwrap()));
    }
    assert_eq!(ids.len(), 450);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 450);

    let q = [("type", "DEDICATED"), ("name", "image-00042")];
    let page: ImageList = signed(&sim, &path, &q).await.json().await.unwrap();
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.data[0].id.as_deref(), Some(generated_id(42).as_str()));

    let (status, _, _) = error_code(signed(&sim, &path, &[("limit", "many")]).await).await;
    assert_eq!(status, 400);
    sim.shutdown().await;
}

/// Arms `spec` (count 1) and returns the answer to one ShowImage of image 0.
async fn one_fault(sim: &SimHandle, spec: FaultSpec) -> reqwest::Result<reqwest::Response> {
    sim.set_fault(spec.count(1)).unwrap();
    signed_at(
        sim,
        &show_path(&generated_id(0)),
        &[],
        (DEMO_AK, DEMO_SK),
        SystemTime::now(),
    )
    .await
}

#[tokio::test]
async fn each_fault_mode_as_the_client_sees_it() {
    let sim = start(SimConfig::default().with_generated(2)).await;
    let id = generated_id(0);
    let good = signed(&sim, &show_path(&id), &[])
        .await
        .bytes()
        .await
        .unwrap();

    let (s, c, _) = error_code(
        one_fault(&sim, FaultSpec::new(FaultMode::Http500))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, c.as_str()), (500, "ModelArts.0010"));

    let resp = one_fault(&sim, FaultSpec::new(FaultMode::Http503))
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], "APIGW.0613");

    let resp = one_fault(&sim, FaultSpec::new(FaultMode::Http429).retry_after(7))
        .await
        .unwrap();
    assert_eq!(resp.headers()["retry-after"], "7");
    let (s, c, _) = error_code(resp).await;
    assert_eq!((s, c.as_str()), (429, "APIGW.0308"));

    let started = std::time::Instant::now();
    let resp = one_fault(&sim, FaultSpec::new(FaultMode::Slow).delay_ms(150))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(150));

    let resp = one_fault(&sim, FaultSpec::new(FaultMode::Truncated))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    assert!(!body.is_empty() && good.starts_with(&body) && body.len() < good.len());

    let resp = one_fault(&sim, FaultSpec::new(FaultMode::Garbage))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(serde_json::from_slice::<Value>(&resp.bytes().await.unwrap()).is_err());

    let resp = one_fault(&sim, FaultSpec::new(FaultMode::Oversized))
        .await
        .unwrap();
    assert!(resp.bytes().await.unwrap().len() > 2 * 1024 * 1024);

    let err = one_fault(&sim, FaultSpec::new(FaultMode::Reset))
        .await
        .unwrap_err();
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");

    let (s, c, _) = error_code(
        one_fault(&sim, FaultSpec::new(FaultMode::WrongProject))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, c.as_str()), (400, "ModelArts.2786"));
    let (s, c, _) = error_code(
        one_fault(&sim, FaultSpec::new(FaultMode::WrongRoute))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, c.as_str()), (404, "APIGW.0101"));

    let resp = one_fault(&sim, FaultSpec::new(FaultMode::IdMismatch))
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert!(v["id"].is_string() && v["id"] != id.as_str());

    let resp = one_fault(&sim, FaultSpec::new(FaultMode::NoStatus))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert!(v.get("status").is_none() && v["id"] == id.as_str());

    // Every count-1 fault was used up: the next answer is the good one again.
    assert!(sim.faults().is_empty());
    let after = signed(&sim, &show_path(&id), &[])
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(after, good);
    sim.shutdown().await;
}

#[tokio::test]
async fn counted_fault_turns_off_and_image_fault_spares_others() {
    let sim = start(SimConfig::default().with_generated(2)).await;
    let (a, b) = (generated_id(0), generated_id(1));
    sim.set_fault(FaultSpec::new(FaultMode::Http500).image(&a).count(2))
        .unwrap();
    assert_eq!(signed(&sim, &show_path(&b), &[]).await.status(), 200);
    assert_eq!(signed(&sim, &show_path(&a), &[]).await.status(), 500);
    assert_eq!(signed(&sim, &show_path(&a), &[]).await.status(), 500);
    assert_eq!(signed(&sim, &show_path(&a), &[]).await.status(), 200);

    sim.set_fault(FaultSpec::new(FaultMode::Http503)).unwrap();
    for _ in 0..3 {
        assert_eq!(signed(&sim, &show_path(&b), &[]).await.status(), 503);
    }
    sim.clear_faults();
    assert_eq!(signed(&sim, &show_path(&b), &[]).await.status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn iam_faults_hit_only_iam() {
    let sim = start(SimConfig::default().with_generated(1)).await;
    sim.set_fault(FaultSpec::new(FaultMode::Http500).on_iam().count(1))
        .unwrap();
    assert_eq!(
        signed(&sim, &show_path(&generated_id(0)), &[])
            .await
            .status(),
        200
    );
    let body = token_body(DEMO_PASSWORD, &json!({"id": DEMO_PROJECT_ID}));
    assert_eq!(get_token(&sim, &body).await.status(), 500);
    assert_eq!(get_token(&sim, &body).await.status(), 201);
    sim.shutdown().await;
}

#[tokio::test]
async fn control_api_over_http() {
    let sim = start(SimConfig::default().with_generated(1)).await;
    let c = client();
    let id = generated_id(0);
    let before = sim.image(&id).unwrap().update_at.unwrap();

    let resp = c
        .patch(format!("{}/_sim/images/{id}", sim.url()))
        .json(&json!({"status": "CREATE_FAILED", "status_message": "build broke"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let img: Image = signed(&sim, &show_path(&id), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(img.status.as_deref(), Some("CREATE_FAILED"));
    assert_eq!(img.status_message.as_deref(), Some("build broke"));
    assert!(img.update_at.unwrap() > before);

    let resp = c
        .put(format!("{}/_sim/images", sim.url()))
        .json(&json!({"id": "new-1", "status": "INIT", "size": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let all: Vec<Image> = c
        .get(format!("{}/_sim/images", sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all.len(), 2);

    let resp = c
        .post(format!("{}/_sim/faults", sim.url()))
        .json(&json!({"mode": "http_429", "image_id": "new-1", "count": 1, "retry_after": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = signed(&sim, &show_path("new-1"), &[]).await;
    assert_eq!(
        (resp.status().as_u16(), &resp.headers()["retry-after"]),
        (429, &"3".parse::<reqwest::header::HeaderValue>().unwrap())
    );
    let bad = c
        .post(format!("{}/_sim/faults", sim.url()))
        .json(&json!({"mode": "boom"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let resp = c
        .delete(format!("{}/_sim/images/new-1", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(signed(&sim, &show_path("new-1"), &[]).await.status(), 404);
    assert_eq!(
        c.delete(format!("{}/_sim/faults", sim.url()))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );

    let stats: Value = c
        .get(format!("{}/_sim/stats", sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests"]["show_image"]["200"], 1);
    assert_eq!(stats["requests"]["show_image"]["429"], 1);
    assert_eq!(stats["requests"]["show_image"]["404"], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn refuses_non_loopback_addresses() {
    let err = sim::spawn(SimConfig::default(), "0.0.0.0:0".parse().unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}
