//! The ModelArts routes: ShowImage, ListImage and the gateway's 404 for anything else. Each
//! handler authenticates (via `auth`), checks the project, then lets an armed fault change
//! the answer. Does not edit images.

// reason: the Err is the HTTP answer to send as is; boxing it buys nothing on this path.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::RequestId;
use super::auth;
use super::conn::ConnKill;
use super::faults::{self, FaultMode, FaultSpec, FaultTarget, api_error, json_bytes};
use super::state::Shared;
use super::store::ListQuery;

/// The id an `id_mismatch` answer carries.
const OTHER_ID: &str = "ffffffff-ffff-4fff-8fff-ffffffffffff";

/// What every ModelArts request goes through before its own work.
struct Checked {
    fault: Option<FaultSpec>,
}

/// Authentication, project check, then the fault (if any) that this request takes.
/// `slow` sleeps here; `reset` kills the connection and returns the (never sent) answer.
async fn gate(
    sim: &Shared,
    conn: &ConnKill,
    rid: &str,
    project: &str,
    image_id: Option<&str>,
    req: (&Method, &Uri, &HeaderMap, &[u8]),
) -> Result<Checked, Response> {
    let (method, uri, headers, body) = req;
    auth::check(sim, method, uri, headers, body, rid)?;
    if project != sim.cfg.project_id {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "ModelArts.2786",
            "The project id in url does not match the token.",
            rid,
        ));
    }
    let fault = sim.faults.take(FaultTarget::Modelarts, image_id);
    match fault.as_ref().map(|f| f.mode) {
        Some(FaultMode::Slow) => {
            let ms = fault.as_ref().and_then(|f| f.delay_ms).unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Some(FaultMode::Reset) => {
            conn.kill();
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
        _ => {}
    }
    Ok(Checked { fault })
}

/// The body to send, or a fault's replacement for it.
fn finish(fault: Option<&FaultSpec>, status: StatusCode, body: Vec<u8>, rid: &str) -> Response {
    if let Some(resp) = fault.and_then(|f| faults::replacement(f, &body, rid)) {
        return resp;
    }
    let mut resp = json_bytes(body);
    *resp.status_mut() = status;
    resp
}

/// `GET /v1/{project_id}/images/{id}`.
#[allow(clippy::too_many_arguments)] // reason: axum extractors, one per request part
pub(crate) async fn show_image(
    State(sim): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnKill>,
    Extension(RequestId(rid)): Extension<RequestId>,
    Path((project, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let checked = match gate(
        &sim,
        &conn,
        &rid,
        &project,
        Some(&id),
        (&method, &uri, &headers, &body),
    )
    .await
    {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let found = {
        let store = sim.store.read().expect("store lock");
        store
            .get(&id)
            .cloned()
            .ok_or_else(|| store.gone_as_400(&id))
    };
    let (status, body) = match found {
        Ok(mut img) => {
            let mode = checked.fault.as_ref().map(|f| f.mode);
            if mode == Some(FaultMode::IdMismatch) {
                img.id = Some(OTHER_ID.to_string());
            }
            let body = if mode == Some(FaultMode::NoStatus) {
                let mut v = serde_json::to_value(&img).expect("image json");
                if let Value::Object(m) = &mut v {
                    m.remove("status");
                }
                serde_json::to_vec(&v)
            } else {
                serde_json::to_vec(&img)
            };
            (StatusCode::OK, body.expect("image json"))
        }
        Err(as_400) => {
            let status = if as_400 {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::NOT_FOUND
            };
            let msg = if as_400 {
                "The image does not exist.".to_string()
            } else {
                format!("Image {id} not found.")
            };
            let body = serde_json::json!({"error_code": "ModelArts.6404", "error_msg": msg});
            (status, serde_json::to_vec(&body).expect("json"))
        }
    };
    finish(checked.fault.as_ref(), status, body, &rid)
}

/// `GET /v1/{project_id}/images` (ListImage).
#[allow(clippy::too_many_arguments)] // reason: axum extractors, one per request part
pub(crate) async fn list_images(
    State(sim): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnKill>,
    Extension(RequestId(rid)): Extension<RequestId>,
    Path(project): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let checked = match gate(
        &sim,
        &conn,
        &rid,
        &project,
        None,
        (&method, &uri, &headers, b""),
    )
    .await
    {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let Ok(Query(query)) = query else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "ModelArts.0101",
            "Invalid query parameter: limit and offset are integers, name_fuzzy_match is true or false.",
            &rid,
        );
    };
    let page = sim.store.read().expect("store lock").list(&query);
    let body = if checked.fault.as_ref().map(|f| f.mode) == Some(FaultMode::NoStatus) {
        let mut v = serde_json::to_value(&page).expect("list json");
        if let Some(Value::Array(items)) = v.get_mut("data") {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                item.remove("status");
            }
        }
        serde_json::to_vec(&v)
    } else {
        serde_json::to_vec(&page)
    };
    finish(
        checked.fault.as_ref(),
        StatusCode::OK,
        body.expect("list json"),
        &rid,
    )
}

/// Any other path: the gateway's 404.
pub(crate) async fn unknown_route(Extension(RequestId(rid)): Extension<RequestId>) -> Response {
    faults::wrong_route(&rid)
}
