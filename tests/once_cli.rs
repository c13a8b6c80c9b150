//! `once` end to end: the real binary against the simulator on loopback, with AK/SK and with
//! password auth; plus every simulator fault mapped to the client's error kind.

mod support;

use std::process::Command;

use modelarts_image_exporter::cloud::{ApiErrorKind, ImageId, ModelArtsClient};
use modelarts_image_exporter::sim::{FaultMode, FaultSpec};
use serde_json::Value;
use support::{aksk_cloud, bin, image, images_toml, password_cloud, start_sim};

const ACTIVE: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const FAILED: &str = "aaaaaaaa-0000-4000-8000-000000000002";
const GONE: &str = "aaaaaaaa-0000-4000-8000-000000000003";
const GONE_400: &str = "aaaaaaaa-0000-4000-8000-000000000004";

async fn fleet_sim() -> modelarts_image_exporter::sim::SimHandle {
    let sim = start_sim(vec![
        image(ACTIVE, "pytorch-train", "ACTIVE"),
        image(FAILED, "notebook-base", "CREATE_FAILED"),
        image(GONE, "old-one", "ACTIVE"),
        image(GONE_400, "older-one", "ACTIVE"),
    ])
    .await;
    sim.set_not_found_as_400(GONE_400, true);
    assert!(sim.delete_image(GONE));
    assert!(sim.delete_image(GONE_400));
    sim
}

/// Runs `once` with `config`, returns (exit code, stdout, stderr).
fn run_once(dir: &tempfile::TempDir, config: &str, output: &str) -> (i32, String, String) {
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(bin())
        .arg("--config.file")
        .arg(&path)
        .args(["once", "--output", output])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check_rows(stdout: &str) {
    let rows: Vec<Value> = serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(rows.len(), 4);
    let by_id = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap().clone();
    let a = by_id(ACTIVE);
    assert_eq!(a["status"], "ACTIVE");
    assert_eq!(a["name"], "pytorch-train");
    assert_eq!(a["size_bytes"], 1024 * 1024);
    assert_eq!(a["condition"], Value::Null);
    assert_eq!(a["error"], Value::Null);
    let f = by_id(FAILED);
    assert_eq!(f["status"], "CREATE_FAILED");
    assert_eq!(f["condition"], "CREATE_FAILED");
    for gone in [GONE, GONE_400] {
        let g = by_id(gone);
        assert_eq!(g["status"], "NOT_FOUND", "{gone}");
        assert_eq!(g["condition"], "NOT_FOUND", "{gone}");
        assert_eq!(g["error"], Value::Null);
    }
    // Config order is kept.
    assert_eq!(rows[0]["id"], ACTIVE);
}

#[tokio::test(flavor = "multi_thread")]
async fn once_with_aksk_reports_every_case() {
    let sim = fleet_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = aksk_cloud(&sim.url(), modelarts_image_exporter::sim::DEMO_SK)
        + &images_toml(&[ACTIVE, FAILED, GONE, GONE_400]);
    let (code, out, err) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || run_once(&dir, &cfg, "json")
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "alerting images exit 1; stderr: {err}");
    check_rows(&out);
    let dir = tempfile::tempdir().unwrap();
    let (code, table, _) = tokio::task::spawn_blocking(move || run_once(&dir, &cfg, "table"))
        .await
        .unwrap();
    assert_eq!(code, 1);
    assert!(table.starts_with("ID"));
    for s in [
        "pytorch-train",
        "notebook-base",
        "CREATE_FAILED",
        "NOT_FOUND",
        "1.0 MiB",
    ] {
        assert!(table.contains(s), "table lacks {s}:\n{table}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn once_with_password_auth_reports_every_case() {
    let sim = fleet_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = password_cloud(&sim.url()) + &images_toml(&[ACTIVE, FAILED, GONE, GONE_400]);
    let (code, out, err) = tokio::task::spawn_blocking(move || run_once(&dir, &cfg, "json"))
        .await
        .unwrap();
    assert_eq!(code, 1, "stderr: {err}");
    check_rows(&out);
    assert!(
        sim.stats().tokens_issued >= 1,
        "a token was obtained from the IAM simulator"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_fleet_exits_0_and_unpolled_exits_2() {
    let sim = start_sim(vec![image(ACTIVE, "pytorch-train", "ACTIVE")]).await;
    let cfg =
        aksk_cloud(&sim.url(), modelarts_image_exporter::sim::DEMO_SK) + &images_toml(&[ACTIVE]);
    let dir = tempfile::tempdir().unwrap();
    let c2 = cfg.clone();
    let (code, _, err) = tokio::task::spawn_blocking(move || run_once(&dir, &c2, "json"))
        .await
        .unwrap();
    assert_eq!(code, 0, "{err}");
    sim.set_fault(FaultSpec::new(FaultMode::Http500)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = tokio::task::spawn_blocking(move || run_once(&dir, &cfg, "json"))
        .await
        .unwrap();
    assert_eq!(code, 2);
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["status"], Value::Null);
    assert!(
        rows[0]["error"].as_str().unwrap().contains("server error"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_secret_key_says_signature_rejected() {
    let sim = start_sim(vec![image(ACTIVE, "pytorch-train", "ACTIVE")]).await;
    let cfg = aksk_cloud(&sim.url(), "not-the-right-secret-key") + &images_toml(&[ACTIVE]);
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = tokio::task::spawn_blocking(move || run_once(&dir, &cfg, "json"))
        .await
        .unwrap();
    assert_eq!(code, 2, "stderr: {err}");
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    let msg = rows[0]["error"].as_str().unwrap();
    assert!(msg.contains("signature rejected"), "{msg}");
    assert!(msg.contains("APIGW.0301"), "{msg}");
    assert!(
        !msg.contains("not-the-right-secret-key")
            && !out.contains("not-the-right-secret-key")
            && !err.contains("not-the-right-secret-key")
    );
    assert!(sim.stats().signature_failures >= 1);
}

/// Every fault the simulator injects maps to the error kind the poller branches on.
#[tokio::test(flavor = "multi_thread")]
async fn every_fault_mode_maps_to_its_error_kind() {
    let sim = start_sim(vec![image(ACTIVE, "pytorch-train", "ACTIVE")]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        aksk_cloud(&sim.url(), modelarts_image_exporter::sim::DEMO_SK)
            + "[poll]\ntimeout = \"300ms\"\n"
            + &images_toml(&[ACTIVE]),
    )
    .unwrap();
    let settings = modelarts_image_exporter::config::load_settings(&path).unwrap();
    let client = ModelArtsClient::new(&settings.clouds[0], None).unwrap();
    let id = ImageId::parse(ACTIVE).unwrap();
    let cases: Vec<(FaultSpec, ApiErrorKind)> = vec![
        (FaultSpec::new(FaultMode::Http500), ApiErrorKind::Server),
        (FaultSpec::new(FaultMode::Http503), ApiErrorKind::Server),
        (
            FaultSpec::new(FaultMode::Http429).retry_after(3),
            ApiErrorKind::Throttled {
                retry_after: Some(std::time::Duration::from_secs(3)),
            },
        ),
        (
            FaultSpec::new(FaultMode::Slow).delay_ms(2000),
            ApiErrorKind::Timeout,
        ),
        (FaultSpec::new(FaultMode::Truncated), ApiErrorKind::Decode),
        (FaultSpec::new(FaultMode::Garbage), ApiErrorKind::Decode),
        (FaultSpec::new(FaultMode::Oversized), ApiErrorKind::TooLarge),
        (FaultSpec::new(FaultMode::Reset), ApiErrorKind::Connect),
        (
            FaultSpec::new(FaultMode::WrongProject),
            ApiErrorKind::WrongProject,
        ),
        (
            FaultSpec::new(FaultMode::WrongRoute),
            ApiErrorKind::WrongEndpoint,
        ),
        (FaultSpec::new(FaultMode::IdMismatch), ApiErrorKind::Decode),
        (FaultSpec::new(FaultMode::NoStatus), ApiErrorKind::Decode),
    ];
    for (spec, want) in cases {
        let label = format!("{spec:?}");
        sim.clear_faults();
        sim.set_fault(spec).unwrap();
        let err = client.show_image(&id).await.expect_err(&label);
        assert_eq!(err.kind, want, "{label}: {err}");
    }
    sim.clear_faults();
    assert!(client.show_image(&id).await.is_ok());
}
