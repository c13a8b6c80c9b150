//! The simulator seen from a client: gateway auth (AK/SK, tokens, skew), ShowImage/ListImage,
//! every fault mode and the control API, over real loopback sockets.

#[path = "sim/api.rs"]
mod api;
#[path = "sim/auth.rs"]
mod auth;
#[path = "sim/faults.rs"]
mod faults;

use std::time::{Duration, SystemTime};

use modelarts_image_exporter::cloud::model::{Image, ImageList};
use modelarts_image_exporter::cloud::sign;
use modelarts_image_exporter::sim::{
    self, DEMO_AK, DEMO_DOMAIN, DEMO_PASSWORD, DEMO_PROJECT_ID, DEMO_PROJECT_NAME, DEMO_SK,
    DEMO_USER, FaultMode, FaultSpec, SimConfig, SimHandle, generated_id,
};
use serde_json::{Value, json};

pub(crate) const T: Duration = Duration::from_secs(10);

pub(crate) fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(T).build().unwrap()
}

pub(crate) async fn start(cfg: SimConfig) -> SimHandle {
    sim::spawn(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

pub(crate) fn show_path(id: &str) -> String {
    format!("/v1/{DEMO_PROJECT_ID}/images/{id}")
}

/// A GET signed with `ak`/`sk` at `date`, sent the way the client sends it.
pub(crate) async fn signed_at(
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

pub(crate) async fn signed(
    sim: &SimHandle,
    path: &str,
    query: &[(&str, &str)],
) -> reqwest::Response {
    signed_at(sim, path, query, (DEMO_AK, DEMO_SK), SystemTime::now())
        .await
        .unwrap()
}

pub(crate) async fn error_code(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap();
    (
        status,
        v["error_code"].as_str().unwrap_or_default().to_string(),
        v["error_msg"].as_str().unwrap_or_default().to_string(),
    )
}

pub(crate) fn token_body(password: &str, scope: &Value) -> Value {
    json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": DEMO_USER, "password": password, "domain": {"name": DEMO_DOMAIN}}}},
        "scope": {"project": scope}}})
}

pub(crate) async fn get_token(sim: &SimHandle, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/v3/auth/tokens", sim.url()))
        .json(body)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn with_token(sim: &SimHandle, path: &str, token: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", sim.url()))
        .header("X-Auth-Token", token)
        .send()
        .await
        .unwrap()
}
