//! The ModelArts client against wiremock on 127.0.0.1: signing, paging, error mapping,
//! transport limits, IAM token caching/refresh and clock skew.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use modelarts_image_exporter::cloud::client::{ListFilter, ModelArtsClient, RequestObserver};
use modelarts_image_exporter::cloud::{ApiError, ApiErrorKind, ImageId, ProjectId, Region, sign};
use modelarts_image_exporter::config::Secret;
use modelarts_image_exporter::config::settings::{CloudSettings, Credentials, ProjectScope};
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PROJECT: &str = "0a1b2c3d4e5f";
const IMAGE: &str = "img-0001";
const SK: &str = "super-secret-sk";
const PASSWORD: &str = "hunter2-password";

fn settings(endpoint: &str, credentials: Credentials, project: Option<&str>) -> CloudSettings {
    CloudSettings {
        name: "test".into(),
        region: Region::parse("eu-de").unwrap(),
        endpoint: endpoint.into(),
        iam_endpoint: endpoint.into(),
        project_id: project.map(|p| ProjectId::parse(p).unwrap()),
        ca_file: None,
        credentials,
        max_requests_per_second: 10.0,
        timeout: Duration::from_secs(5),
    }
}

fn aksk() -> Credentials {
    Credentials::AkSk {
        access_key: "AKEXAMPLE".into(),
        secret_key: Secret::new(SK),
        security_token: Some(Secret::new("sec-token-value")),
    }
}

fn password(scope: ProjectScope) -> Credentials {
    Credentials::Password {
        user: "alice".into(),
        password: Secret::new(PASSWORD),
        domain: "acme".into(),
        scope,
    }
}

fn aksk_client(server: &MockServer) -> ModelArtsClient {
    ModelArtsClient::new(&settings(&server.uri(), aksk(), Some(PROJECT)), None).unwrap()
}

fn image_path() -> String {
    format!("/v1/{PROJECT}/images/{IMAGE}")
}

fn image_json(id: &str) -> serde_json::Value {
    json!({"id": id, "name": "train", "status": "ACTIVE", "size": 10})
}

fn id() -> ImageId {
    ImageId::parse(IMAGE).unwrap()
}

/// One ShowImage against a server answering `template`.
async fn show_error(template: ResponseTemplate) -> ApiError {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(image_path()))
        .respond_with(template)
        .mount(&server)
        .await;
    aksk_client(&server).show_image(&id()).await.unwrap_err()
}

#[tokio::test]
async fn aksk_request_is_signed_and_carries_project_and_security_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(image_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(image_json(IMAGE)))
        .expect(1)
        .mount(&server)
        .await;
    let image = aksk_client(&server).show_image(&id()).await.unwrap();
    assert_eq!(image.status.as_deref(), Some("ACTIVE"));

    let req = &server.received_requests().await.unwrap()[0];
    assert_eq!(req.url.path(), image_path());
    let h = |n: &str| req.headers.get(n).unwrap().to_str().unwrap().to_string();
    assert_eq!(h("x-project-id"), PROJECT);
    assert_eq!(h("x-security-token"), "sec-token-value");
    assert!(h("user-agent").starts_with("modelarts-image-exporter/"));
    let date = sign::parse_sdk_date(&h("x-sdk-date")).unwrap();
    let age = SystemTime::now().duration_since(date).unwrap_or_default();
    assert!(age < Duration::from_secs(60));

    let auth = h("authorization");
    let parsed = sign::parse_authorization(&auth).unwrap();
    assert_eq!(parsed.access_key, "AKEXAMPLE");
    for needed in ["host", "x-sdk-date", "x-project-id", "x-security-token"] {
        assert!(
            parsed.signed_headers.iter().any(|s| s == needed),
            "{needed} not signed"
        );
    }
    // Recompute the signature from what the server received.
    let signed: Vec<(String, String)> = parsed
        .signed_headers
        .iter()
        .map(|n| (n.clone(), h(n)))
        .collect();
    let query: Vec<(String, String)> = req.url.query_pairs().into_owned().collect();
    let again = sign::sign(
        &sign::Request {
            method: "GET",
            host: &h("host"),
            path: req.url.path(),
            query: &query,
            headers: &signed,
            body: &req.body,
        },
        "AKEXAMPLE",
        SK,
    );
    assert_eq!(again.authorization, auth);
    // A different secret would not match: the comparison above can fail.
    let wrong = sign::sign(
        &sign::Request {
            method: "GET",
            host: &h("host"),
            path: req.url.path(),
            query: &query,
            headers: &signed,
            body: &req.body,
        },
        "AKEXAMPLE",
        "other",
    );
    assert_ne!(wrong.authorization, auth);
}

#[tokio::test]
async fn list_images_pages_with_the_canonical_query() {
    let server = MockServer::start().await;
    let list_path = format!("/v1/{PROJECT}/images");
    for (offset, ids) in [
        ("0", vec!["a", "b"]),
        ("2", vec!["c", "d"]),
        ("4", vec!["e"]),
    ] {
        let data: Vec<_> = ids.iter().map(|i| image_json(i)).collect();
        Mock::given(method("GET"))
            .and(path(list_path.clone()))
            .and(query_param("offset", offset))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"total": 5, "data": data})),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let filter = ListFilter {
        image_type: Some("DEDICATED".into()),
        namespace: Some("team a~b".into()),
        page_size: 2,
        ..ListFilter::default()
    };
    let images = aksk_client(&server).list_images(&filter).await.unwrap();
    let ids: Vec<_> = images.iter().map(|i| i.id.clone().unwrap()).collect();
    assert_eq!(ids, ["a", "b", "c", "d", "e"]);
    let queries: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.query().unwrap().to_string())
        .collect();
    assert_eq!(
        queries,
        [0, 2, 4].map(|o| format!("limit=2&namespace=team%20a~b&offset={o}&type=DEDICATED"))
    );
    server.verify().await;
}

#[tokio::test]
async fn list_images_stops_on_an_empty_page_without_total() {
    let server = MockServer::start().await;
    let list_path = format!("/v1/{PROJECT}/images");
    Mock::given(path(list_path.clone()))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [image_json("a")]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(list_path))
        .and(query_param("offset", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .expect(1)
        .mount(&server)
        .await;
    let filter = ListFilter {
        page_size: 500,
        ..ListFilter::default()
    };
    let images = aksk_client(&server).list_images(&filter).await.unwrap();
    assert_eq!(images.len(), 1);
    let first = &server.received_requests().await.unwrap()[0];
    assert_eq!(first.url.query(), Some("limit=200&offset=0"));
}

#[tokio::test]
async fn http_errors_are_classified() {
    let e = show_error(ResponseTemplate::new(404)).await;
    assert_eq!(e.kind, ApiErrorKind::NotFound);
    let e = show_error(
        ResponseTemplate::new(400)
            .set_body_json(json!({"error_code": "ModelArts.6404", "error_msg": "gone"})),
    )
    .await;
    assert_eq!(e.kind, ApiErrorKind::NotFound);
    let e = show_error(
        ResponseTemplate::new(404)
            .insert_header("X-Request-Id", "rid-42")
            .set_body_json(json!({"error_code": "APIGW.0101", "error_msg": "no route"})),
    )
    .await;
    assert_eq!(e.kind, ApiErrorKind::WrongEndpoint);
    assert_eq!(e.request_id.as_deref(), Some("rid-42"));
    let e = show_error(ResponseTemplate::new(429).insert_header("Retry-After", "7")).await;
    assert_eq!(
        e.kind,
        ApiErrorKind::Throttled {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    let e = show_error(ResponseTemplate::new(500)).await;
    assert_eq!(e.kind, ApiErrorKind::Server);
    assert_eq!(e.http_status, Some(500));
}

#[tokio::test]
async fn bad_200_bodies_are_decode_errors() {
    let truncated =
        ResponseTemplate::new(200).set_body_raw(r#"{"id":"img-0001","stat"#, "application/json");
    assert_eq!(show_error(truncated).await.kind, ApiErrorKind::Decode);
    let garbage = ResponseTemplate::new(200).set_body_raw("<html>oops</html>", "text/html");
    assert_eq!(show_error(garbage).await.kind, ApiErrorKind::Decode);
    let no_status = ResponseTemplate::new(200).set_body_json(json!({"id": IMAGE}));
    assert_eq!(show_error(no_status).await.kind, ApiErrorKind::Decode);
    let other = ResponseTemplate::new(200).set_body_json(image_json("img-9999"));
    let e = show_error(other).await;
    assert_eq!(e.kind, ApiErrorKind::Decode);
    assert!(e.to_string().contains("img-9999"), "{e}");
}

#[tokio::test]
async fn oversized_body_is_too_large() {
    let big = "x".repeat(1024 * 1024 + 1);
    let e = show_error(ResponseTemplate::new(200).set_body_raw(big, "application/json")).await;
    assert_eq!(e.kind, ApiErrorKind::TooLarge);
}

#[derive(Default)]
struct Recorder {
    codes: Mutex<Vec<String>>,
    skews: Mutex<Vec<f64>>,
}

impl RequestObserver for Recorder {
    fn observe(&self, _cloud: &str, code: &str, _seconds: f64) {
        self.codes.lock().unwrap().push(code.to_string());
    }
    fn clock_skew(&self, _cloud: &str, seconds: f64) {
        self.skews.lock().unwrap().push(seconds);
    }
}

#[tokio::test]
async fn slow_answer_times_out_and_is_observed() {
    let server = MockServer::start().await;
    Mock::given(path(image_path()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(image_json(IMAGE))
                .set_delay(Duration::from_secs(10)),
        )
        .mount(&server)
        .await;
    let mut s = settings(&server.uri(), aksk(), Some(PROJECT));
    s.timeout = Duration::from_millis(200);
    let rec = Arc::new(Recorder::default());
    let client = ModelArtsClient::new(&s, Some(rec.clone())).unwrap();
    let started = std::time::Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(5), client.show_image(&id()))
        .await
        .expect("the client's own timeout fires first")
        .unwrap_err();
    assert_eq!(e.kind, ApiErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(*rec.codes.lock().unwrap(), ["timeout"]);
}

#[tokio::test]
async fn connection_refused_is_connect_without_url() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = settings(&format!("http://127.0.0.1:{port}"), aksk(), Some(PROJECT));
    let e = ModelArtsClient::new(&s, None)
        .unwrap()
        .show_image(&id())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ApiErrorKind::Connect);
    let text = e.to_string();
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(!text.contains("http://") && !text.contains(SK), "{text}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = MockServer::start().await;
    Mock::given(path(image_path()))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "/elsewhere"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/elsewhere"))
        .respond_with(ResponseTemplate::new(200).set_body_json(image_json(IMAGE)))
        .expect(0)
        .mount(&server)
        .await;
    let e = aksk_client(&server).show_image(&id()).await.unwrap_err();
    assert_eq!(e.http_status, Some(302));
    assert_eq!(e.kind, ApiErrorKind::WrongEndpoint);
    assert!(e.to_string().contains("redirect"), "{e}");
    server.verify().await;
}

#[tokio::test]
async fn skew_from_a_date_far_in_the_past_is_named_in_a_401() {
    let server = MockServer::start().await;
    let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(1250));
    Mock::given(path(image_path()))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("Date", past.as_str())
                .set_body_json(json!({"error_code": "APIGW.0301", "error_msg": "Incorrect IAM authentication information"})),
        )
        .mount(&server)
        .await;
    let rec = Arc::new(Recorder::default());
    let client = ModelArtsClient::new(
        &settings(&server.uri(), aksk(), Some(PROJECT)),
        Some(rec.clone()),
    )
    .unwrap();
    let e = client.show_image(&id()).await.unwrap_err();
    assert_eq!(e.kind, ApiErrorKind::Unauthorized);
    let text = e.to_string();
    assert!(text.contains("s ahead of the server"), "{text}");
    assert!(
        text.contains("signature rejected: check access_key/secret_key"),
        "{text}"
    );
    let skew = client.clock_skew_seconds().unwrap();
    assert!((1249.0..1253.0).contains(&skew), "{skew}");
    assert_eq!(rec.skews.lock().unwrap().len(), 1);
    assert_eq!(*rec.codes.lock().unwrap(), ["401"]);
}

#[test]
fn plain_http_endpoint_is_refused() {
    let e = ModelArtsClient::new(&settings("http://example.com", aksk(), Some(PROJECT)), None)
        .unwrap_err();
    assert!(e.to_string().contains("plain http"), "{e}");
    assert!(ModelArtsClient::new(&settings("https://example.com", aksk(), None), None).is_err());
}

#[test]
fn debug_never_shows_secrets() {
    for creds in [aksk(), password(ProjectScope::Name("p".into()))] {
        let s = settings("https://example.com", creds, Some(PROJECT));
        let client = ModelArtsClient::new(&s, None).unwrap();
        for text in [format!("{s:?}"), format!("{client:?}")] {
            assert!(!text.contains(SK) && !text.contains(PASSWORD), "{text}");
            assert!(!text.contains("sec-token-value"), "{text}");
        }
    }
}

#[path = "client/password.rs"]
mod password;

#[test]
fn unreadable_or_empty_ca_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("ca.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    for ca in [junk, dir.path().join("missing.pem")] {
        let mut s = settings("https://example.com", aksk(), Some(PROJECT));
        s.ca_file = Some(ca.clone());
        let e = ModelArtsClient::new(&s, None).unwrap_err();
        assert!(format!("{e:#}").contains("ca_file"), "{e:#}");
    }
}
