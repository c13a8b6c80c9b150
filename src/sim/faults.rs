//! Fault injection: which faults are armed, which request takes one, and what the faulty
//! answer looks like. Does no routing and no authentication.

use std::sync::Mutex;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum FaultMode {
    /// 500 `ModelArts.0010`.
    #[serde(rename = "http_500")]
    Http500,
    /// 503 in the `code`/`message` error style.
    #[serde(rename = "http_503")]
    Http503,
    /// 429 `APIGW.0308` with `Retry-After`.
    #[serde(rename = "http_429")]
    Http429,
    /// Waits `delay_ms`, then answers normally.
    #[serde(rename = "slow")]
    Slow,
    /// 200 with valid JSON cut in half.
    #[serde(rename = "truncated")]
    Truncated,
    /// 200 with a body that is not JSON.
    #[serde(rename = "garbage")]
    Garbage,
    /// 200 with a 2.5 MiB JSON body.
    #[serde(rename = "oversized")]
    Oversized,
    /// The connection closes without an answer.
    #[serde(rename = "reset")]
    Reset,
    /// Not armed: every issued token expires at once (an action).
    #[serde(rename = "expire_tokens")]
    ExpireTokens,
    /// 400 `ModelArts.2786`, as if the project did not match the token.
    #[serde(rename = "wrong_project")]
    WrongProject,
    /// 404 `APIGW.0101`, as if the path did not exist.
    #[serde(rename = "wrong_route")]
    WrongRoute,
    /// ShowImage: 200 with another image's id.
    #[serde(rename = "id_mismatch")]
    IdMismatch,
    /// ShowImage: 200 without `status`.
    #[serde(rename = "no_status")]
    NoStatus,
}

/// Which server a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultTarget {
    /// ShowImage and ListImage.
    #[default]
    Modelarts,
    /// `POST /v3/auth/tokens`.
    Iam,
}

/// One armed fault (`POST /_sim/faults` body).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub mode: FaultMode,
    /// Only ShowImage requests for this id (else every request of the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// Hits left; `None` = until cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// `Retry-After` seconds of `http_429` (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Delay of `slow` (default 1000 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub target: FaultTarget,
}

impl FaultSpec {
    /// A fault hitting every ModelArts request until cleared.
    pub fn new(mode: FaultMode) -> Self {
        Self {
            mode,
            image_id: None,
            count: None,
            retry_after: None,
            delay_ms: None,
            target: FaultTarget::Modelarts,
        }
    }

    /// Limits the fault to ShowImage of one image.
    #[must_use]
    pub fn image(mut self, id: &str) -> Self {
        self.image_id = Some(id.to_string());
        self
    }

    /// Limits the fault to `n` hits.
    #[must_use]
    pub fn count(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }

    /// Sets `Retry-After` for `http_429`.
    #[must_use]
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Sets the delay of `slow`.
    #[must_use]
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = Some(ms);
        self
    }

    /// Aims the fault at IAM instead of ModelArts.
    #[must_use]
    pub fn on_iam(mut self) -> Self {
        self.target = FaultTarget::Iam;
        self
    }

    /// Says why the fault cannot be armed, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        let show_only = matches!(
            self.mode,
            FaultMode::IdMismatch | FaultMode::NoStatus | FaultMode::WrongProject
        );
        if show_only && self.target == FaultTarget::Iam {
            return Err(format!("mode {:?} applies to ModelArts only", self.mode));
        }
        if self.image_id.is_some() && self.target == FaultTarget::Iam {
            return Err("image_id makes no sense with target \"iam\"".to_string());
        }
        if self.count == Some(0) {
            return Err("count must be at least 1 (omit it for \"until cleared\")".to_string());
        }
        Ok(())
    }
}

/// The armed faults, first match wins.
#[derive(Debug, Default)]
pub(crate) struct Faults(Mutex<Vec<FaultSpec>>);

impl Faults {
    pub(crate) fn arm(&self, spec: FaultSpec) {
        self.0.lock().expect("faults lock").push(spec);
    }

    pub(crate) fn clear(&self) {
        self.0.lock().expect("faults lock").clear();
    }

    pub(crate) fn list(&self) -> Vec<FaultSpec> {
        self.0.lock().expect("faults lock").clone()
    }

    /// Takes one hit of the first fault that applies to a request (`image_id` is the id of a
    /// ShowImage request, `None` for ListImage and IAM); a fault whose count runs out is removed.
    pub(crate) fn take(&self, target: FaultTarget, image_id: Option<&str>) -> Option<FaultSpec> {
        let mut armed = self.0.lock().expect("faults lock");
        let pos = armed.iter().position(|f| {
            f.target == target
                && match f.image_id.as_deref() {
                    None => true,
                    Some(want) => Some(want) == image_id,
                }
        })?;
        let spec = armed[pos].clone();
        if let Some(n) = &mut armed[pos].count {
            *n -= 1;
            if *n == 0 {
                armed.remove(pos);
            }
        }
        Some(spec)
    }
}

/// An error answer in the usual `error_code`/`error_msg` shape.
pub(crate) fn api_error(status: StatusCode, code: &str, msg: &str, request_id: &str) -> Response {
    let body = serde_json::json!({"error_code": code, "error_msg": msg, "request_id": request_id});
    (status, axum::Json(body)).into_response()
}

/// The answer of a fault that replaces the normal one, or `None` for faults that change the
/// normal answer instead (`slow`, `reset`, `id_mismatch`, `no_status`). `good_body` is the JSON
/// the request would have got (used by `truncated`).
pub(crate) fn replacement(
    spec: &FaultSpec,
    good_body: &[u8],
    request_id: &str,
) -> Option<Response> {
    let resp = match spec.mode {
        FaultMode::Http500 => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ModelArts.0010",
            "Internal error.",
            request_id,
        ),
        FaultMode::Http503 => {
            let body = serde_json::json!({"code": "APIGW.0613", "message": "Service unavailable, try again later."});
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
        FaultMode::Http429 => {
            let mut resp = api_error(
                StatusCode::TOO_MANY_REQUESTS,
                "APIGW.0308",
                "The throttling threshold has been reached: policy user over ratelimit,limit:200,time:1 minute",
                request_id,
            );
            let secs = spec.retry_after.unwrap_or(1);
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            resp
        }
        FaultMode::Truncated => {
            let cut = good_body[..good_body.len() / 2].to_vec();
            json_bytes(cut)
        }
        FaultMode::Garbage => json_bytes(
            b"<html><body><h1>502 Bad Gateway</h1>upstream said: \x00\xff</body></html>".to_vec(),
        ),
        FaultMode::Oversized => {
            let filler = "x".repeat(5 * 512 * 1024);
            let body =
                serde_json::json!({"id": "oversized", "status": "ACTIVE", "description": filler});
            json_bytes(serde_json::to_vec(&body).expect("json"))
        }
        FaultMode::WrongProject => api_error(
            StatusCode::BAD_REQUEST,
            "ModelArts.2786",
            "The project id in url does not match the token.",
            request_id,
        ),
        FaultMode::WrongRoute => wrong_route(request_id),
        FaultMode::Slow
        | FaultMode::Reset
        | FaultMode::ExpireTokens
        | FaultMode::IdMismatch
        | FaultMode::NoStatus => return None,
    };
    Some(resp)
}

/// The gateway's answer to a path it does not know.
pub(crate) fn wrong_route(request_id: &str) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "APIGW.0101",
        "The API does not exist or has not been published in the environment",
        request_id,
    )
}

/// A 200 labelled as JSON, whatever the bytes are.
pub(crate) fn json_bytes(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_fault_runs_out_and_image_faults_stay_on_their_image() {
        let faults = Faults::default();
        faults.arm(FaultSpec::new(FaultMode::Http500).image("a").count(2));
        assert!(faults.take(FaultTarget::Modelarts, Some("b")).is_none());
        assert!(faults.take(FaultTarget::Modelarts, None).is_none());
        assert!(faults.take(FaultTarget::Iam, Some("a")).is_none());
        assert!(faults.take(FaultTarget::Modelarts, Some("a")).is_some());
        assert!(faults.take(FaultTarget::Modelarts, Some("a")).is_some());
        assert!(faults.take(FaultTarget::Modelarts, Some("a")).is_none());
        assert!(faults.list().is_empty());
    }

    #[test]
    fn modes_parse_from_the_documented_names() {
        let spec: FaultSpec =
            serde_json::from_str(r#"{"mode":"http_429","retry_after":7,"count":1}"#).unwrap();
        assert_eq!(
            spec,
            FaultSpec::new(FaultMode::Http429).retry_after(7).count(1)
        );
        assert!(serde_json::from_str::<FaultSpec>(r#"{"mode":"http429"}"#).is_err());
        assert!(
            FaultSpec::new(FaultMode::NoStatus)
                .on_iam()
                .check()
                .is_err()
        );
        assert!(FaultSpec::new(FaultMode::Reset).count(0).check().is_err());
    }
}
