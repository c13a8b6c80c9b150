//! Gateway authentication: signatures, clock skew, the server clock, IAM tokens.

use super::*;

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
