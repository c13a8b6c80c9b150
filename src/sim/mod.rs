//! The built-in ModelArts + IAM simulator (`simulate`): the fixture of tests, demo and
//! benchmarks. It listens on loopback only and never talks to a real cloud.
//!
//! # What it serves
//!
//! - `GET /v1/{project_id}/images/{id}` (ShowImage) and `GET /v1/{project_id}/images`
//!   (ListImage: `limit` ≤ 200, `offset` in records, `type` defaulting to `BUILD_IN`,
//!   `namespace`, `name`, `name_fuzzy_match`, `service_type`, `workspace_id`).
//! - `POST /v3/auth/tokens` (IAM, password method, project scope by id or name): 201 with
//!   `X-Subject-Token`.
//! - Gateway behaviour: `SDK-HMAC-SHA256` signatures verified with [`crate::cloud::sign`]
//!   (401 `APIGW.0301` on mismatch or unknown AK, 401 `APIGW.0303` when `X-Sdk-Date` is missing
//!   or more than the allowed skew from the server clock), `X-Auth-Token` (401 `APIGW.0301`
//!   unknown, `APIGW.0307` expired), 400 `ModelArts.2786` for another project in the URL,
//!   404 `APIGW.0101` for any other path. Every answer has `Date` (server clock, offset
//!   included) and `X-Request-Id`.
//!
//! # Control API (no auth; loopback only)
//!
//! | request | effect |
//! |---|---|
//! | `GET /_sim/images` | every image (JSON array) |
//! | `PUT /_sim/images` | add or replace one image (ShowImage JSON with `id`) |
//! | `PATCH /_sim/images/{id}` | merge `status`, `size` (KB), `update_at` (ms), `name`, `status_message`, `not_found_as_400`; `update_at` becomes now unless given; 404 if absent |
//! | `DELETE /_sim/images/{id}` | delete: ShowImage then answers 404 (or 400 + `ModelArts.6404` when flagged `not_found_as_400`) |
//! | `GET /_sim/faults` | armed faults with remaining counts |
//! | `POST /_sim/faults` | arm `{"mode", "image_id"?, "count"?, "retry_after"?, "delay_ms"?, "target"?: "modelarts"\|"iam"}` → 201 |
//! | `DELETE /_sim/faults` | disarm all |
//! | `GET /_sim/stats` | `{"requests": {route: {status: n}}, "tokens_issued", "signature_failures", "token_failures"}` |
//! | `PUT /_sim/clock` | `{"offset_secs": n}`: move the server clock |
//!
//! Fault modes: `http_500`, `http_503`, `http_429` (+ `Retry-After`), `slow`, `truncated`,
//! `garbage`, `oversized`, `reset` (connection closed, no answer), `expire_tokens` (applied at
//! once, not armed), `wrong_project`, `wrong_route`, `id_mismatch`, `no_status`. A fault with
//! `image_id` hits only ShowImage of that image; with `count` it hits N requests, else until
//! cleared; faults act after authentication succeeded. [`SimControl`] does the same in-process.

mod api;
mod auth;
mod cli;
mod config;
mod conn;
mod control;
mod faults;
mod iam;
mod state;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

pub use cli::{SimulateArgs, run};
pub use config::{
    DEMO_AK, DEMO_DOMAIN, DEMO_PASSWORD, DEMO_PROJECT_ID, DEMO_PROJECT_NAME, DEMO_SK, DEMO_USER,
    SimConfig, generate_images, generated_id, load_images,
};
pub use control::SimControl;
pub use faults::{FaultMode, FaultSpec, FaultTarget};
pub use iam::SUBJECT_TOKEN_HEADER;
pub use state::SimStats;
pub use store::{ImagePatch, MAX_PAGE};

use conn::{ConnKill, SimListener};
use state::Shared;

/// The id of the request being answered (also sent as `X-Request-Id`).
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) String);

/// A running simulator. Dereferences to [`SimControl`] for in-process control.
#[derive(Debug)]
pub struct SimHandle {
    /// The bound address (the real port when 0 was asked for).
    pub addr: SocketAddr,
    control: SimControl,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`: the ModelArts and the IAM endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A clonable control of this simulator.
    pub fn control(&self) -> SimControl {
        self.control.clone()
    }

    /// Stops serving; in-flight requests get up to 5 s to finish.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

impl std::ops::Deref for SimHandle {
    type Target = SimControl;
    fn deref(&self) -> &SimControl {
        &self.control
    }
}

/// Binds `addr` (loopback only; port 0 picks one) and serves in a background task.
pub async fn spawn(cfg: SimConfig, addr: SocketAddr) -> anyhow::Result<SimHandle> {
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "the simulator listens on loopback only (its control API has no auth); got {addr}, use 127.0.0.1"
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind the simulator to {addr}"))?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(cfg));
    let control = SimControl {
        sim: shared.clone(),
    };
    let app = router(shared, control.clone());
    let stop = CancellationToken::new();
    let signal = stop.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<ConnKill>();
        if let Err(e) = axum::serve(SimListener(listener), service)
            .with_graceful_shutdown(signal)
            .await
        {
            tracing::error!(error = %e, "simulator server stopped");
        }
    });
    Ok(SimHandle {
        addr,
        control,
        stop,
        task,
    })
}

fn router(shared: Arc<Shared>, control: SimControl) -> Router {
    let api = Router::new()
        .route("/v1/{project_id}/images", get(api::list_images))
        .route("/v1/{project_id}/images/{id}", get(api::show_image))
        .route("/v3/auth/tokens", post(iam::issue_token))
        .with_state(shared.clone());
    api.merge(control::routes().with_state(control))
        .fallback(api::unknown_route)
        .layer(middleware::from_fn_with_state(shared, stamp))
}

/// Which stats bucket a path falls in.
fn route_label(path: &str) -> &'static str {
    if path.starts_with("/_sim/") {
        "control"
    } else if path == "/v3/auth/tokens" {
        "iam_tokens"
    } else if let Some(rest) = path.strip_prefix("/v1/") {
        let mut parts = rest.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(_), Some("images"), None, _) => "list_images",
            (Some(_), Some("images"), Some(_), None) => "show_image",
            _ => "unknown",
        }
    } else {
        "unknown"
    }
}

/// Gives every request an id, and every answer `Date` and `X-Request-Id`; counts answers.
async fn stamp(State(sim): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let route = route_label(req.uri().path());
    let rid = sim.next_request_id();
    req.extensions_mut().insert(RequestId(rid.clone()));
    let mut resp = next.run(req).await;
    sim.record(route, resp.status().as_u16());
    let date = httpdate::fmt_http_date(sim.now());
    let headers = resp.headers_mut();
    headers.insert(
        axum::http::header::DATE,
        HeaderValue::from_str(&date).expect("http date is ascii"),
    );
    headers.insert(
        "x-request-id",
        HeaderValue::from_str(&rid).expect("hex request id"),
    );
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn routes_are_labelled() {
        assert_eq!(super::route_label("/v1/p/images"), "list_images");
        assert_eq!(super::route_label("/v1/p/images/x"), "show_image");
        assert_eq!(super::route_label("/v1/p/images/x/y"), "unknown");
        assert_eq!(super::route_label("/v3/auth/tokens"), "iam_tokens");
        assert_eq!(super::route_label("/_sim/stats"), "control");
    }
}
