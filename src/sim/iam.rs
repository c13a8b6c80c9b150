//! IAM's `POST /v3/auth/tokens` (password method, project scope): checks the credentials and
//! issues a token. Does not check tokens (that is the gateway's job, see `auth`).

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::RequestId;
use super::conn::ConnKill;
use super::faults::{self, FaultMode, FaultTarget};
use super::state::Shared;

/// The header carrying the issued token.
pub const SUBJECT_TOKEN_HEADER: &str = "X-Subject-Token";

fn iam_error(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = json!({"error": {"code": status.as_u16(), "message": message, "title": title}});
    (status, axum::Json(body)).into_response()
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// `POST /v3/auth/tokens`.
pub(crate) async fn issue_token(
    State(sim): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnKill>,
    Extension(RequestId(rid)): Extension<RequestId>,
    body: Bytes,
) -> Response {
    if let Some(spec) = sim.faults.take(FaultTarget::Iam, None) {
        match spec.mode {
            FaultMode::Slow => {
                let ms = spec.delay_ms.unwrap_or(1000);
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            FaultMode::Reset => {
                conn.kill();
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            _ => {
                let good = br#"{"token":{"expires_at":"2099-01-01T00:00:00.000000Z"}}"#;
                if let Some(resp) = faults::replacement(&spec, good, &rid) {
                    return resp;
                }
            }
        }
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return iam_error(
            StatusCode::BAD_REQUEST,
            "The request body is not valid JSON.",
        );
    };
    let methods_ok = req
        .pointer("/auth/identity/methods")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|x| x == "password"));
    if !methods_ok {
        return iam_error(
            StatusCode::BAD_REQUEST,
            "Only the \"password\" identity method is simulated.",
        );
    }
    let user = str_at(&req, "/auth/identity/password/user/name");
    let password = str_at(&req, "/auth/identity/password/user/password");
    let domain = str_at(&req, "/auth/identity/password/user/domain/name");
    let cfg = &sim.cfg;
    if user != Some(cfg.user.as_str())
        || password != Some(cfg.password.as_str())
        || domain != Some(cfg.domain.as_str())
    {
        return iam_error(
            StatusCode::UNAUTHORIZED,
            "The username or password is wrong.",
        );
    }
    let scope_id = str_at(&req, "/auth/scope/project/id");
    let scope_name = str_at(&req, "/auth/scope/project/name");
    let scope_ok = match (scope_id, scope_name) {
        (Some(id), _) => id == cfg.project_id,
        (None, Some(name)) => name == cfg.project_name,
        (None, None) => false,
    };
    if !scope_ok {
        return iam_error(
            StatusCode::BAD_REQUEST,
            "The project in the scope does not exist; scope by project id or name.",
        );
    }

    let token = format!(
        "MIIsim{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 48]>())
    );
    let now = sim.now();
    let expires = now + cfg.token_ttl;
    sim.tokens
        .lock()
        .expect("tokens lock")
        .insert(token.clone(), expires);
    sim.bump(|s| s.tokens_issued += 1);

    let body = json!({"token": {
        "expires_at": iam_time(expires),
        "issued_at": iam_time(now),
        "methods": ["password"],
        "project": {"id": cfg.project_id, "name": cfg.project_name,
                    "domain": {"id": "d0000000000000000000000000000001", "name": cfg.domain}},
        "user": {"id": "u0000000000000000000000000000001", "name": cfg.user,
                 "domain": {"id": "d0000000000000000000000000000001", "name": cfg.domain}},
        "roles": [{"id": "0", "name": "te_admin"}],
        "catalog": [],
    }});
    let mut resp = (StatusCode::CREATED, axum::Json(body)).into_response();
    resp.headers_mut().insert(
        SUBJECT_TOKEN_HEADER,
        HeaderValue::from_str(&token).expect("token is base64"),
    );
    resp
}

/// IAM's time format: `2026-01-04T09:05:22.701000Z`.
fn iam_time(t: std::time::SystemTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::from(t)
        .format(&fmt)
        .expect("fixed format")
}

#[cfg(test)]
mod tests {
    #[test]
    fn iam_time_is_rfc3339() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_392_800_701);
        let s = super::iam_time(t);
        assert_eq!(s, "2026-12-04T14:00:00.701000Z");
        time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).unwrap();
    }
}
