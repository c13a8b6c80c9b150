//! Every fault mode as the client sees it, counted and per-image faults, IAM faults.

use super::*;

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
