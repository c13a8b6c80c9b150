//! Authentication (PRODUCT 2.1): the AK/SK headers of one request, and the IAM password token
//! (fetch, cache, refresh ahead of expiry, one shared refresh). It sends nothing but the IAM
//! token request and never formats a secret into an error or a log.

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiErrorKind};
use super::http::{BaseUrl, Transport};
use super::ids::ProjectId;
use super::sign;
use crate::config::Secret;
use crate::config::settings::ProjectScope;

/// Refresh a token when less than this remains (tokens are valid 24 h).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(40 * 60);
/// A token fetched this recently is reused even inside the margin (unless it has expired), so a
/// short-lived token cannot turn every request into an IAM call.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// Whether a token must be fetched anew: expired, or inside [`REFRESH_MARGIN`] and not fetched
/// within [`MIN_REFRESH_INTERVAL`]. All three times are on the same (server-adjusted) clock.
pub fn needs_refresh(expires_at: SystemTime, fetched_at: SystemTime, now: SystemTime) -> bool {
    let Ok(left) = expires_at.duration_since(now) else {
        return true; // expired
    };
    if left.is_zero() {
        return true;
    }
    if left >= REFRESH_MARGIN {
        return false;
    }
    now.duration_since(fetched_at)
        .map_or(true, |age| age >= MIN_REFRESH_INTERVAL)
}

/// The headers of one AK/SK-signed request, `Authorization` included. `host` is the `Host`
/// value sent, `path` the unencoded full path, `query` the unencoded pairs.
#[allow(clippy::too_many_arguments)] // reason: mirrors the signed request's parts one to one
pub(crate) fn aksk_headers(
    access_key: &str,
    secret_key: &Secret,
    security_token: Option<&Secret>,
    project_id: &ProjectId,
    host: &str,
    path: &str,
    query: &[(String, String)],
    now: SystemTime,
) -> Vec<(String, String)> {
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Host".to_string(), host.to_string()),
        (sign::DATE_HEADER.to_string(), sign::sdk_date(now)),
        ("X-Project-Id".to_string(), project_id.as_str().to_string()),
    ];
    if let Some(t) = security_token {
        headers.push(("X-Security-Token".to_string(), t.expose().to_string()));
    }
    let req = sign::Request {
        method: "GET",
        host,
        path,
        query,
        headers: &headers,
        body: b"",
    };
    let signature = sign::sign(&req, access_key, secret_key.expose());
    headers.push(("Authorization".to_string(), signature.authorization));
    headers
}

/// A cached IAM token.
#[derive(Clone)]
pub(crate) struct Token {
    pub value: Secret,
    pub expires_at: SystemTime,
    pub fetched_at: SystemTime,
    pub project_id: ProjectId,
}

/// IAM password credentials plus the token cache. The tokio mutex is held across the IAM call,
/// so concurrent callers that find the token stale wait for one refresh and then re-check.
pub(crate) struct TokenSource {
    pub iam: BaseUrl,
    pub user: String,
    pub password: Secret,
    pub domain: String,
    pub scope: ProjectScope,
    cache: tokio::sync::Mutex<Option<Token>>,
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenInner,
}

#[derive(Deserialize)]
struct TokenInner {
    expires_at: String,
    project: Option<TokenProject>,
}

#[derive(Deserialize)]
struct TokenProject {
    id: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct IamErrorBody {
    error: Option<IamError>,
    error_code: Option<String>,
    error_msg: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct IamError {
    message: Option<String>,
    title: Option<String>,
}

impl TokenSource {
    pub fn new(
        iam: BaseUrl,
        user: String,
        password: Secret,
        domain: String,
        scope: ProjectScope,
    ) -> Self {
        Self {
            iam,
            user,
            password,
            domain,
            scope,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// A valid token. `rejected` is a token ModelArts just answered 401 to: if the cache still
    /// holds it, it is replaced; if another caller already replaced it, the new one is used.
    pub async fn get(
        &self,
        transport: &Transport,
        rejected: Option<&Secret>,
    ) -> Result<Token, ApiError> {
        let mut cache = self.cache.lock().await;
        let now = server_now(transport);
        if let Some(t) = cache.as_ref() {
            let was_rejected = rejected.is_some_and(|r| r == &t.value);
            if !was_rejected && !needs_refresh(t.expires_at, t.fetched_at, now) {
                return Ok(t.clone());
            }
        }
        let fresh = self.fetch(transport).await?;
        *cache = Some(fresh.clone());
        Ok(fresh)
    }

    /// The JSON body of the token request.
    fn request_body(&self) -> serde_json::Value {
        let project = match &self.scope {
            ProjectScope::Id(id) => json!({ "id": id.as_str() }),
            ProjectScope::Name(name) => json!({ "name": name }),
        };
        json!({
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": { "user": {
                        "name": self.user,
                        "password": self.password.expose(),
                        "domain": { "name": self.domain },
                    }},
                },
                "scope": { "project": project },
            }
        })
    }

    async fn fetch(&self, transport: &Transport) -> Result<Token, ApiError> {
        let url = self.iam.url("/v3/auth/tokens", &[]);
        let body = serde_json::to_vec(&self.request_body()).expect("JSON value serializes");
        let req = transport
            .client()
            .post(url)
            .header("Content-Type", "application/json;charset=utf8")
            .body(body)
            .build()
            .map_err(|_| {
                ApiError::new(ApiErrorKind::Connect).with_detail("cannot build the IAM request")
            })?;
        let answer = transport.send(req, "IAM").await?;
        if !(200..300).contains(&answer.status) {
            return Err(self.iam_error(answer.status, &answer.body, answer.header("X-Request-Id")));
        }
        let decode = |what: &str| {
            let mut e = ApiError::new(ApiErrorKind::Decode)
                .with_detail(format!("IAM token answer: {what}"));
            e.http_status = Some(answer.status);
            e
        };
        let value = answer
            .header("X-Subject-Token")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| decode("no X-Subject-Token header"))?;
        let parsed: TokenBody = serde_json::from_slice(&answer.body)
            .map_err(|e| decode(&format!("body is not a token: {e}")))?;
        let expires_at = time::OffsetDateTime::parse(
            &parsed.token.expires_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|_| decode("token.expires_at is not RFC 3339"))?;
        let project_id = parsed
            .token
            .project
            .ok_or_else(|| decode("the token has no project (is the scope a project?)"))
            .and_then(|p| {
                ProjectId::parse(&p.id).map_err(|_| decode("token.project.id is not a project id"))
            })?;
        Ok(Token {
            value: Secret::new(value),
            expires_at: expires_at.into(),
            fetched_at: server_now(transport),
            project_id,
        })
    }

    /// An IAM failure as an [`ApiError`]. IAM answers never mean "image gone": a 404 is a wrong
    /// IAM endpoint.
    fn iam_error(&self, status: u16, body: &[u8], request_id: Option<&str>) -> ApiError {
        let parsed: IamErrorBody = serde_json::from_slice(body).unwrap_or_default();
        let (title, message) = parsed
            .error
            .map(|e| (e.title, e.message))
            .unwrap_or_default();
        let kind = match status {
            400 | 401 => ApiErrorKind::Unauthorized,
            403 => ApiErrorKind::Forbidden,
            404 => ApiErrorKind::WrongEndpoint,
            429 => ApiErrorKind::Throttled { retry_after: None },
            408 | 504 => ApiErrorKind::Timeout,
            _ => ApiErrorKind::Server,
        };
        let mut e = ApiError::new(kind).with_detail(format!(
            "IAM token request for user {:?} in account {:?} failed{}",
            self.user,
            self.domain,
            if status == 404 {
                " (check `iam_endpoint`)"
            } else {
                ""
            }
        ));
        e.http_status = Some(status);
        e.error_code = parsed.error_code.or(title).map(|c| truncate(&c, 64));
        e.error_msg = parsed.error_msg.or(message).map(|m| truncate(&m, 300));
        e.request_id = request_id.map(|r| truncate(r, 128));
        e
    }
}

/// The local clock corrected by the measured skew (token expiry is server time).
fn server_now(transport: &Transport) -> SystemTime {
    let now = SystemTime::now();
    match transport.skew() {
        Some(s) if s >= 0.0 => now - Duration::from_secs_f64(s),
        Some(s) => now + Duration::from_secs_f64(-s),
        None => now,
    }
}

use crate::text::truncate;

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn refresh_decision_follows_the_40_minute_margin() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let fetched = t0;
        let expires = t0 + Duration::from_secs(24 * 3600);
        // Fresh 24 h token: keep.
        assert!(!needs_refresh(expires, fetched, t0 + MIN));
        // 40 min left: keep; a second less: refresh; 39 min left: refresh.
        assert!(!needs_refresh(expires, fetched, expires - 40 * MIN));
        let just_inside = expires - 40 * MIN + Duration::from_secs(1);
        assert!(needs_refresh(expires, fetched, just_inside));
        assert!(needs_refresh(expires, fetched, expires - 39 * MIN));
        // Expired: refresh, however recently it was fetched.
        assert!(needs_refresh(expires, expires, expires));
        assert!(needs_refresh(expires, expires, expires + MIN));
    }

    #[test]
    fn a_short_token_just_fetched_is_reused_for_a_minute() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let expires = t0 + 10 * MIN;
        assert!(!needs_refresh(expires, t0, t0 + Duration::from_secs(30)));
        assert!(needs_refresh(expires, t0, t0 + MIN));
    }

    #[test]
    fn token_request_body_has_scope_and_no_debug_leak() {
        let src = TokenSource::new(
            BaseUrl::parse("https://iam.example", "iam_endpoint").unwrap(),
            "alice".into(),
            Secret::new("pw-123"),
            "acme".into(),
            ProjectScope::Name("eu-de_proj".into()),
        );
        let b = src.request_body();
        assert_eq!(b["auth"]["identity"]["methods"][0], "password");
        assert_eq!(
            b["auth"]["identity"]["password"]["user"]["password"],
            "pw-123"
        );
        assert_eq!(
            b["auth"]["identity"]["password"]["user"]["domain"]["name"],
            "acme"
        );
        assert_eq!(b["auth"]["scope"]["project"]["name"], "eu-de_proj");
        let e = src.iam_error(
            401,
            br#"{"error":{"code":401,"message":"The username or password is wrong.","title":"Unauthorized"}}"#,
            Some("rid"),
        );
        assert_eq!(e.kind, ApiErrorKind::Unauthorized);
        assert_eq!(
            e.error_msg.as_deref(),
            Some("The username or password is wrong.")
        );
        assert!(!e.to_string().contains("pw-123"));
        assert_eq!(
            src.iam_error(404, b"", None).kind,
            ApiErrorKind::WrongEndpoint
        );
    }
}
