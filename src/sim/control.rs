//! The control side of the simulator: [`SimControl`] for in-process use and the `/_sim/` HTTP
//! routes that mirror it (no auth; the server only listens on loopback). Does not serve the
//! ModelArts API.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::faults::{FaultMode, FaultSpec};
use super::state::{Shared, SimStats};
use super::store::ImagePatch;
use crate::cloud::model::Image;

/// In-process control of a running simulator; cheap to clone.
#[derive(Debug, Clone)]
pub struct SimControl {
    pub(crate) sim: Arc<Shared>,
}

impl SimControl {
    /// Every image, ordered by id.
    pub fn images(&self) -> Vec<Image> {
        self.sim.store.read().expect("store lock").all()
    }

    /// One image, if present.
    pub fn image(&self, id: &str) -> Option<Image> {
        self.sim.store.read().expect("store lock").get(id).cloned()
    }

    /// Number of images.
    pub fn image_count(&self) -> usize {
        self.sim.store.read().expect("store lock").len()
    }

    /// Adds or replaces an image; false if it has no `id`.
    pub fn put_image(&self, img: Image) -> bool {
        self.sim.store.write().expect("store lock").put(img)
    }

    /// Applies a partial update (`update_at` becomes the server's now unless given); `None` if
    /// the image does not exist.
    pub fn patch_image(&self, id: &str, patch: &ImagePatch) -> Option<Image> {
        let now = self.sim.now_ms();
        self.sim
            .store
            .write()
            .expect("store lock")
            .patch(id, patch, now)
    }

    /// Sets the status (and bumps `update_at`); false if the image does not exist.
    pub fn set_status(&self, id: &str, status: &str) -> bool {
        self.patch_image(
            id,
            &ImagePatch {
                status: Some(status.to_string()),
                ..ImagePatch::default()
            },
        )
        .is_some()
    }

    /// Sets the size in KB (and bumps `update_at`).
    pub fn set_size(&self, id: &str, size_kb: u64) -> bool {
        self.patch_image(
            id,
            &ImagePatch {
                size: Some(size_kb),
                ..ImagePatch::default()
            },
        )
        .is_some()
    }

    /// Sets `update_at` (UTC ms).
    pub fn set_update_at(&self, id: &str, ms: i64) -> bool {
        self.patch_image(
            id,
            &ImagePatch {
                update_at: Some(ms),
                ..ImagePatch::default()
            },
        )
        .is_some()
    }

    /// Sets the name (and bumps `update_at`).
    pub fn set_name(&self, id: &str, name: &str) -> bool {
        self.patch_image(
            id,
            &ImagePatch {
                name: Some(name.to_string()),
                ..ImagePatch::default()
            },
        )
        .is_some()
    }

    /// Sets the status message (and bumps `update_at`).
    pub fn set_status_message(&self, id: &str, msg: &str) -> bool {
        self.patch_image(
            id,
            &ImagePatch {
                status_message: Some(msg.to_string()),
                ..ImagePatch::default()
            },
        )
        .is_some()
    }

    /// Once `id` is gone, answer 400 + `ModelArts.6404` (true) or 404 (false, the default).
    pub fn set_not_found_as_400(&self, id: &str, as_400: bool) {
        let now = self.sim.now_ms();
        let patch = ImagePatch {
            not_found_as_400: Some(as_400),
            ..ImagePatch::default()
        };
        self.sim
            .store
            .write()
            .expect("store lock")
            .patch(id, &patch, now);
    }

    /// Deletes an image (later ShowImage calls answer not-found); false if absent.
    pub fn delete_image(&self, id: &str) -> bool {
        self.sim.store.write().expect("store lock").delete(id)
    }

    /// Arms a fault; `expire_tokens` is applied at once instead.
    pub fn set_fault(&self, spec: FaultSpec) -> Result<(), String> {
        spec.check()?;
        if spec.mode == FaultMode::ExpireTokens {
            self.sim.expire_tokens();
        } else {
            self.sim.faults.arm(spec);
        }
        Ok(())
    }

    /// The armed faults (with their remaining counts).
    pub fn faults(&self) -> Vec<FaultSpec> {
        self.sim.faults.list()
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        self.sim.faults.clear();
    }

    /// Expires every issued token; returns how many.
    pub fn expire_tokens(&self) -> usize {
        self.sim.expire_tokens()
    }

    /// Puts the server clock `secs` ahead of (negative: behind) the local clock.
    pub fn set_clock_offset_secs(&self, secs: i64) {
        self.sim.set_clock_offset_ms(secs.saturating_mul(1000));
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        self.sim.stats.lock().expect("stats lock").clone()
    }
}

fn bad_request(msg: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg}))).into_response()
}

fn not_found(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": format!("no image {id}")})),
    )
        .into_response()
}

/// The `/_sim/` routes.
pub(crate) fn routes() -> Router<SimControl> {
    Router::new()
        .route("/_sim/images", get(list_images).put(put_image))
        .route("/_sim/images/{id}", patch(patch_image).delete(delete_image))
        .route(
            "/_sim/faults",
            get(list_faults).post(post_fault).delete(clear_faults),
        )
        .route("/_sim/stats", get(stats))
        .route("/_sim/clock", put(put_clock))
}

async fn list_images(State(c): State<SimControl>) -> Json<Vec<Image>> {
    Json(c.images())
}

async fn put_image(
    State(c): State<SimControl>,
    body: Result<Json<Image>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(img)) if img.id.is_some() => {
            c.put_image(img.clone());
            Json(img).into_response()
        }
        Ok(_) => bad_request("the image needs an \"id\""),
        Err(e) => bad_request(&e.body_text()),
    }
}

async fn patch_image(
    State(c): State<SimControl>,
    Path(id): Path<String>,
    body: Result<Json<ImagePatch>, JsonRejection>,
) -> Response {
    let patch = match body {
        Ok(Json(p)) => p,
        Err(e) => return bad_request(&e.body_text()),
    };
    match c.patch_image(&id, &patch) {
        Some(img) => Json(img).into_response(),
        None => not_found(&id),
    }
}

async fn delete_image(State(c): State<SimControl>, Path(id): Path<String>) -> Response {
    if c.delete_image(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found(&id)
    }
}

async fn list_faults(State(c): State<SimControl>) -> Json<Vec<FaultSpec>> {
    Json(c.faults())
}

async fn post_fault(
    State(c): State<SimControl>,
    body: Result<Json<FaultSpec>, JsonRejection>,
) -> Response {
    let spec = match body {
        Ok(Json(s)) => s,
        Err(e) => return bad_request(&e.body_text()),
    };
    match c.set_fault(spec) {
        Ok(()) => (StatusCode::CREATED, Json(c.faults())).into_response(),
        Err(msg) => bad_request(&msg),
    }
}

async fn clear_faults(State(c): State<SimControl>) -> StatusCode {
    c.clear_faults();
    StatusCode::NO_CONTENT
}

async fn stats(State(c): State<SimControl>) -> Json<SimStats> {
    Json(c.stats())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    offset_secs: i64,
}

async fn put_clock(
    State(c): State<SimControl>,
    body: Result<Json<ClockBody>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(b)) => {
            c.set_clock_offset_secs(b.offset_secs);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad_request(&e.body_text()),
    }
}
