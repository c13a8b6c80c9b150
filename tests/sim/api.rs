//! ShowImage not-found forms, ListImage paging and filters, the control API, loopback only.

use super::*;

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
