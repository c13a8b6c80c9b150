//! API error classification (PRODUCT 2): one enum the poller branches on.
//!
//! The rule for "image gone" is exact: HTTP 404 whose error code is not a gateway code
//! (`APIGW.*`/`APIG.*`) and not `ModelArts.2786`, or HTTP 400 with `ModelArts.6404`.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// What kind of failure an API call met. The poller branches on this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// The image does not exist (404 / 400 + `ModelArts.6404`). Not transient: it is an answer.
    NotFound,
    /// 404 with `APIGW.0101`: wrong endpoint or path (configuration error).
    WrongEndpoint,
    /// `ModelArts.2786`: the project in the URL does not match the credentials.
    WrongProject,
    /// 401: credentials rejected, token expired, or clock skew.
    Unauthorized,
    /// 403: no permission.
    Forbidden,
    /// 429 (or a throttling code): back off, honour `retry_after`.
    Throttled { retry_after: Option<Duration> },
    /// 5xx or another unexpected status.
    Server,
    /// The request or the answer took longer than `timeout`.
    Timeout,
    /// Could not connect / connection reset / TLS failure.
    Connect,
    /// The body could not be parsed, lacked `status`, or carried another image's id.
    Decode,
    /// The body was larger than the cap.
    TooLarge,
}

impl ApiErrorKind {
    /// A short, bounded label for metrics (`reason`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::WrongEndpoint => "wrong_endpoint",
            Self::WrongProject => "wrong_project",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::Throttled { .. } => "throttled",
            Self::Server => "server",
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Decode => "decode",
            Self::TooLarge => "too_large",
        }
    }

    /// Errors that say the watcher itself is misconfigured or locked out (they degrade the
    /// cloud's watcher rather than just failing one poll).
    pub fn is_config_or_auth(&self) -> bool {
        matches!(
            self,
            Self::WrongEndpoint | Self::WrongProject | Self::Unauthorized | Self::Forbidden
        )
    }
}

/// A failed API call, with everything worth logging. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ApiErrorKind,
    /// HTTP status, when an answer came.
    pub http_status: Option<u16>,
    pub error_code: Option<String>,
    pub error_msg: Option<String>,
    /// From the body or the `X-Request-Id` header.
    pub request_id: Option<String>,
    /// Extra context written by us (e.g. the measured clock skew, the transport error).
    pub detail: Option<String>,
}

impl ApiError {
    pub fn new(kind: ApiErrorKind) -> Self {
        Self {
            kind,
            http_status: None,
            error_code: None,
            error_msg: None,
            request_id: None,
            detail: None,
        }
    }

    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// A transient error never changes an image's state.
    pub fn is_transient(&self) -> bool {
        !matches!(self.kind, ApiErrorKind::NotFound) && !self.kind.is_config_or_auth()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.kind {
            ApiErrorKind::NotFound => "image not found",
            ApiErrorKind::WrongEndpoint => {
                "wrong endpoint or path (check `endpoint`/`region`/`provider`)"
            }
            ApiErrorKind::WrongProject => {
                "project id does not match the credentials (check `project_id`)"
            }
            ApiErrorKind::Unauthorized => "credentials rejected",
            ApiErrorKind::Forbidden => "permission denied (the user needs modelarts:image:get)",
            ApiErrorKind::Throttled { .. } => "throttled by the API",
            ApiErrorKind::Server => "server error",
            ApiErrorKind::Timeout => "request timed out",
            ApiErrorKind::Connect => "connection failed",
            ApiErrorKind::Decode => "invalid answer",
            ApiErrorKind::TooLarge => "answer too large",
        };
        f.write_str(what)?;
        if let Some(s) = self.http_status {
            write!(f, " (HTTP {s}")?;
            if let Some(c) = &self.error_code {
                write!(f, " {c}")?;
            }
            f.write_str(")")?;
        }
        if let Some(m) = &self.error_msg {
            write!(f, ": {m}")?;
        }
        if let Some(d) = &self.detail {
            write!(f, "; {d}")?;
        }
        if let Some(r) = &self.request_id {
            write!(f, " [request id {r}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// The error body, in both spellings services use.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorBody {
    error_code: Option<String>,
    error_msg: Option<String>,
    code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
}

const THROTTLE_CODES: [&str; 5] = [
    "APIGW.0308",
    "APIG.0308",
    "ModelArts.2799",
    "ModelArts.4206",
    "ModelArts.6101",
];

fn is_gateway_code(code: &str) -> bool {
    code.starts_with("APIGW.") || code.starts_with("APIG.")
}

/// Classifies a non-2xx answer. `retry_after` is the parsed `Retry-After` header,
/// `header_request_id` the `X-Request-Id` header.
pub fn classify(
    http_status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    header_request_id: Option<&str>,
) -> ApiError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = parsed.error_code.or(parsed.code);
    let msg = parsed
        .error_msg
        .or(parsed.message)
        .map(|m| truncate(&m, 300));
    let code_str = code.as_deref().unwrap_or("");
    let kind = if code_str == "ModelArts.2786" {
        ApiErrorKind::WrongProject
    } else if http_status == 404 && is_gateway_code(code_str) {
        ApiErrorKind::WrongEndpoint
    } else if http_status == 404 || (http_status == 400 && code_str == "ModelArts.6404") {
        ApiErrorKind::NotFound
    } else if http_status == 429 || THROTTLE_CODES.contains(&code_str) {
        ApiErrorKind::Throttled { retry_after }
    } else if http_status == 401 {
        ApiErrorKind::Unauthorized
    } else if http_status == 403 {
        ApiErrorKind::Forbidden
    } else if http_status == 408 || http_status == 504 {
        ApiErrorKind::Timeout
    } else {
        ApiErrorKind::Server
    };
    ApiError {
        kind,
        http_status: Some(http_status),
        error_code: code.map(|c| truncate(&c, 64)),
        error_msg: msg,
        request_id: parsed
            .request_id
            .or_else(|| header_request_id.map(str::to_string))
            .map(|r| truncate(&r, 128)),
        detail: None,
    }
}

/// Parses `Retry-After` (seconds or an HTTP date relative to `now`).
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(3600)));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(3600)),
    )
}

use crate::text::truncate;

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_case(name: &str) -> (u16, Vec<u8>) {
        let all: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/api_errors.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let case = &all[name];
        (
            u16::try_from(case["http"].as_u64().unwrap()).unwrap(),
            serde_json::to_vec(&case["body"]).unwrap(),
        )
    }

    fn kind_of(name: &str) -> ApiErrorKind {
        let (status, body) = fixture_case(name);
        classify(status, &body, None, None).kind
    }

    #[test]
    fn fixture_cases_classify() {
        assert_eq!(kind_of("not_found_404"), ApiErrorKind::NotFound);
        assert_eq!(kind_of("not_found_400_6404"), ApiErrorKind::NotFound);
        assert_eq!(kind_of("wrong_route_404"), ApiErrorKind::WrongEndpoint);
        assert_eq!(kind_of("bad_signature_401"), ApiErrorKind::Unauthorized);
        assert_eq!(kind_of("token_expired_401"), ApiErrorKind::Unauthorized);
        assert_eq!(kind_of("forbidden_403"), ApiErrorKind::Forbidden);
        assert_eq!(
            kind_of("throttled_429"),
            ApiErrorKind::Throttled { retry_after: None }
        );
        assert_eq!(kind_of("internal_500"), ApiErrorKind::Server);
        assert_eq!(kind_of("code_message_style"), ApiErrorKind::Server);
    }

    #[test]
    fn not_found_rule_is_exact() {
        // 404 with no body at all is "gone".
        assert_eq!(classify(404, b"", None, None).kind, ApiErrorKind::NotFound);
        // 404 + gateway code is a wrong route, never an image alert.
        assert_eq!(
            classify(404, br#"{"error_code":"APIG.0101"}"#, None, None).kind,
            ApiErrorKind::WrongEndpoint
        );
        // ModelArts.2786 is a wrong project, whatever the status.
        assert_eq!(
            classify(404, br#"{"error_code":"ModelArts.2786"}"#, None, None).kind,
            ApiErrorKind::WrongProject
        );
        // 400 with another code is not "gone".
        assert_eq!(
            classify(400, br#"{"error_code":"ModelArts.0001"}"#, None, None).kind,
            ApiErrorKind::Server
        );
    }

    #[test]
    fn keeps_code_message_and_request_id() {
        let (s, b) = fixture_case("code_message_style");
        let e = classify(s, &b, None, Some("hdr-id"));
        assert_eq!(e.error_code.as_deref(), Some("APIGW.0613"));
        assert_eq!(e.error_msg.as_deref(), Some("IAM unavailable"));
        assert_eq!(e.request_id.as_deref(), Some("hdr-id"));
        let (s, b) = fixture_case("wrong_route_404");
        let e = classify(s, &b, None, Some("hdr-id"));
        assert_eq!(
            e.request_id.as_deref(),
            Some("d58d1c5a0c3e4b4f9a3c2c4b7f3e9128")
        );
        assert!(e.to_string().contains("APIGW.0101"));
    }

    #[test]
    fn throttle_codes_and_retry_after() {
        let e = classify(
            403,
            br#"{"error_code":"ModelArts.2799"}"#,
            Some(Duration::from_secs(3)),
            None,
        );
        assert_eq!(
            e.kind,
            ApiErrorKind::Throttled {
                retry_after: Some(Duration::from_secs(3))
            }
        );
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(20));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(20))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn transient_split() {
        assert!(!ApiError::new(ApiErrorKind::NotFound).is_transient());
        assert!(!ApiError::new(ApiErrorKind::Unauthorized).is_transient());
        assert!(ApiError::new(ApiErrorKind::Server).is_transient());
        assert!(ApiError::new(ApiErrorKind::Decode).is_transient());
    }
}
