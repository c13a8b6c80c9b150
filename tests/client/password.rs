//! IAM password auth: one token fetched and reused, one refresh + one retry on a 401,
//! concurrent callers sharing one refresh, and the project taken from the token.

use super::*;

const TOKEN_PROJECT: &str = "fedcba987654";

fn token_answer(token: &str, expires_in: i64) -> ResponseTemplate {
    let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(expires_in);
    let expires = expires
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    ResponseTemplate::new(201)
        .insert_header("X-Subject-Token", token)
        .set_body_json(json!({"token": {
            "expires_at": expires,
            "project": {"id": TOKEN_PROJECT, "name": "eu-de"},
        }}))
}

async fn mount_iam(
    server: &MockServer,
    token: &str,
    expires_in: i64,
    times: Option<u64>,
    expect: u64,
) {
    let mut m = Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .respond_with(token_answer(token, expires_in));
    if let Some(n) = times {
        m = m.up_to_n_times(n);
    }
    m.expect(expect).mount(server).await;
}

async fn mount_image(server: &MockServer, project: &str, token: &str, status: u16, expect: u64) {
    let template = if status == 200 {
        ResponseTemplate::new(200).set_body_json(image_json(IMAGE))
    } else {
        ResponseTemplate::new(status)
            .set_body_json(json!({"error_code": "APIGW.0307", "error_msg": "token expired"}))
    };
    Mock::given(method("GET"))
        .and(path(format!("/v1/{project}/images/{IMAGE}")))
        .and(header("X-Auth-Token", token))
        .respond_with(template)
        .expect(expect)
        .mount(server)
        .await;
}

fn password_client(server: &MockServer, project: Option<&str>) -> ModelArtsClient {
    let scope = ProjectScope::Id(ProjectId::parse(TOKEN_PROJECT).unwrap());
    ModelArtsClient::new(&settings(&server.uri(), password(scope), project), None).unwrap()
}

#[tokio::test]
async fn token_is_fetched_once_and_reused() {
    let server = MockServer::start().await;
    mount_iam(&server, "tok-1", 24 * 3600, None, 1).await;
    mount_image(&server, PROJECT, "tok-1", 200, 3).await;
    let client = password_client(&server, Some(PROJECT));
    for _ in 0..3 {
        client.show_image(&id()).await.unwrap();
    }
    server.verify().await;
    let iam = server.received_requests().await.unwrap();
    let body: serde_json::Value = iam[0].body_json().unwrap();
    assert_eq!(
        body["auth"]["identity"]["password"]["user"]["name"],
        "alice"
    );
    assert_eq!(
        body["auth"]["identity"]["password"]["user"]["domain"]["name"],
        "acme"
    );
    assert_eq!(body["auth"]["scope"]["project"]["id"], TOKEN_PROJECT);
}

#[tokio::test]
async fn a_401_refreshes_once_and_retries_once() {
    let server = MockServer::start().await;
    mount_iam(&server, "tok-1", 24 * 3600, Some(1), 1).await;
    mount_iam(&server, "tok-2", 24 * 3600, None, 1).await;
    mount_image(&server, PROJECT, "tok-1", 401, 1).await;
    mount_image(&server, PROJECT, "tok-2", 200, 1).await;
    let client = password_client(&server, Some(PROJECT));
    client.show_image(&id()).await.unwrap();
    server.verify().await;
}

#[tokio::test]
async fn a_lasting_401_is_not_retried_in_a_loop() {
    let server = MockServer::start().await;
    mount_iam(&server, "tok", 24 * 3600, None, 2).await;
    mount_image(&server, PROJECT, "tok", 401, 2).await;
    let client = password_client(&server, Some(PROJECT));
    let e = client.show_image(&id()).await.unwrap_err();
    assert_eq!(e.kind, ApiErrorKind::Unauthorized);
    assert!(e.to_string().contains("local clock is within"), "{e}");
    server.verify().await;
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let server = MockServer::start().await;
    // The first token is already expired; the second one is good for a day.
    mount_iam(&server, "old", -3600, Some(1), 1).await;
    mount_iam(&server, "new", 24 * 3600, None, 1).await;
    mount_image(&server, PROJECT, "old", 200, 1).await;
    mount_image(&server, PROJECT, "new", 200, 10).await;
    let client = password_client(&server, Some(PROJECT));
    client.show_image(&id()).await.unwrap();
    let calls = (0..10).map(|_| {
        let c = client.clone();
        tokio::spawn(async move { c.show_image(&id()).await })
    });
    let results = tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(calls))
        .await
        .unwrap();
    for r in results {
        r.unwrap().unwrap();
    }
    server.verify().await;
}

#[tokio::test]
async fn project_comes_from_the_token_when_not_configured() {
    let server = MockServer::start().await;
    mount_iam(&server, "tok-1", 24 * 3600, None, 1).await;
    mount_image(&server, TOKEN_PROJECT, "tok-1", 200, 1).await;
    let client = password_client(&server, None);
    assert_eq!(client.project_id().await.unwrap().as_str(), TOKEN_PROJECT);
    client.show_image(&id()).await.unwrap();
    server.verify().await;
}

#[tokio::test]
async fn iam_rejection_is_unauthorized_with_its_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/auth/tokens"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {
            "code": 401, "message": "The username or password is wrong.", "title": "Unauthorized"
        }})))
        .expect(1)
        .mount(&server)
        .await;
    let e = password_client(&server, Some(PROJECT))
        .show_image(&id())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ApiErrorKind::Unauthorized);
    let text = e.to_string();
    assert!(
        text.contains("The username or password is wrong."),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
}
