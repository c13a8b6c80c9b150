//! The ModelArts API client (PRODUCT 2): ShowImage and ListImage over AK/SK or an IAM token,
//! with errors classified for the poller and clock skew named on every 401. It makes no
//! decision about images (no state, no retries beyond the one token refresh on a 401).

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use super::auth::{TokenSource, aksk_headers};
use super::error::{ApiError, ApiErrorKind, classify, parse_retry_after};
use super::http::{Answer, BaseUrl, Transport};
pub use super::http::{RequestObserver, ensure_crypto_provider};
use super::ids::{ImageId, ProjectId};
use super::model::{Image, ImageList};
use crate::config::Secret;
use crate::config::settings::{CloudSettings, Credentials};

/// The largest page ListImage accepts.
pub const MAX_PAGE_SIZE: u32 = 200;
/// A bound on pages, against an API that never says "done".
const MAX_PAGES: u32 = 10_000;
/// Skew beyond this is named as a likely cause of a 401.
const SKEW_WORTH_NAMING_SECS: f64 = 60.0;

/// ListImage filters (PRODUCT 2). `image_type` `DEDICATED` lists the user's own images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFilter {
    pub image_type: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub workspace_id: Option<String>,
    /// Images per page, 1..=200 (clamped).
    pub page_size: u32,
}

impl Default for ListFilter {
    fn default() -> Self {
        Self {
            image_type: None,
            namespace: None,
            name: None,
            workspace_id: None,
            page_size: MAX_PAGE_SIZE,
        }
    }
}

enum Auth {
    AkSk {
        access_key: String,
        secret_key: Secret,
        security_token: Option<Secret>,
    },
    Token(Box<TokenSource>),
}

struct Inner {
    endpoint: BaseUrl,
    /// Configured project; with password auth and `None`, the token's project is used.
    project_id: Option<ProjectId>,
    auth: Auth,
    transport: Transport,
}

/// A client for one cloud (account/project/region). Cheap to clone: everything is shared,
/// including the IAM token cache and the clock skew measurement.
#[derive(Clone)]
pub struct ModelArtsClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for ModelArtsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.inner.auth {
            Auth::AkSk { .. } => "aksk",
            Auth::Token(_) => "password",
        };
        f.debug_struct("ModelArtsClient")
            .field("name", &self.inner.transport.cloud)
            .field("endpoint", &self.inner.endpoint.authority)
            .field("project_id", &self.inner.project_id)
            .field("auth", &auth)
            .finish_non_exhaustive()
    }
}

impl ModelArtsClient {
    /// Builds the client: checks the endpoints (https, or http on loopback), reads `ca_file`,
    /// sets up TLS. `observer` is told about every request.
    pub fn new(
        settings: &CloudSettings,
        observer: Option<Arc<dyn RequestObserver>>,
    ) -> anyhow::Result<Self> {
        let endpoint = BaseUrl::parse(&settings.endpoint, "endpoint")?;
        let auth = match &settings.credentials {
            Credentials::AkSk {
                access_key,
                secret_key,
                security_token,
            } => {
                if settings.project_id.is_none() {
                    anyhow::bail!(
                        "cloud {:?}: AK/SK authentication needs `project_id`",
                        settings.name
                    );
                }
                Auth::AkSk {
                    access_key: access_key.clone(),
                    secret_key: secret_key.clone(),
                    security_token: security_token.clone(),
                }
            }
            Credentials::Password {
                user,
                password,
                domain,
                scope,
            } => Auth::Token(Box::new(TokenSource::new(
                BaseUrl::parse(&settings.iam_endpoint, "iam_endpoint")?,
                user.clone(),
                password.clone(),
                domain.clone(),
                scope.clone(),
            ))),
        };
        let transport = Transport::new(
            &settings.name,
            settings.timeout,
            settings.ca_file.as_deref(),
            observer,
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint,
                project_id: settings.project_id.clone(),
                auth,
                transport,
            }),
        })
    }

    /// The cloud's name (from the config).
    pub fn name(&self) -> &str {
        &self.inner.transport.cloud
    }

    /// Local minus server time in seconds, from the last answer's `Date` header.
    pub fn clock_skew_seconds(&self) -> Option<f64> {
        self.inner.transport.skew()
    }

    /// The project whose images are read: the configured one, or (password auth without
    /// `project_id`) the token's, which may fetch a token.
    pub async fn project_id(&self) -> Result<ProjectId, ApiError> {
        if let Some(p) = &self.inner.project_id {
            return Ok(p.clone());
        }
        match &self.inner.auth {
            Auth::Token(src) => Ok(src.get(&self.inner.transport, None).await?.project_id),
            Auth::AkSk { .. } => unreachable!("new() requires project_id with AK/SK"),
        }
    }

    /// ShowImage. A 200 without `status`, or with another image's `id`, is a `Decode` error.
    pub async fn show_image(&self, id: &ImageId) -> Result<Image, ApiError> {
        let answer = self.get(&["images", id.as_str()], &[]).await?;
        let image: Image = serde_json::from_slice(&answer.body)
            .map_err(|e| decode(format!("ShowImage answer is not an image: {e}")))?;
        if image.status.is_none() {
            return Err(decode("ShowImage answer has no `status`"));
        }
        if let Some(got) = &image.id
            && got != id.as_str()
        {
            return Err(decode(format!(
                "ShowImage for {id} answered with image {:?}",
                truncate_id(got)
            )));
        }
        Ok(image)
    }

    /// ListImage, every page: pages until `data` is empty or `offset + len(data) >= total`.
    pub async fn list_images(&self, filter: &ListFilter) -> Result<Vec<Image>, ApiError> {
        let limit = filter.page_size.clamp(1, MAX_PAGE_SIZE);
        let mut out = Vec::new();
        let mut offset: u64 = 0;
        for _ in 0..MAX_PAGES {
            let query = list_query(filter, limit, offset);
            let answer = self.get(&["images"], &query).await?;
            let page: ImageList = serde_json::from_slice(&answer.body)
                .map_err(|e| decode(format!("ListImage answer is not an image list: {e}")))?;
            let n = page.data.len() as u64;
            out.extend(page.data);
            if n == 0 || page.total.is_some_and(|total| offset + n >= total) {
                return Ok(out);
            }
            offset += n;
        }
        Err(decode(format!(
            "ListImage did not end after {MAX_PAGES} pages"
        )))
    }

    /// One GET of `/v1/{project}/{segments...}`; any non-2xx becomes an [`ApiError`]. With
    /// a token, a 401 refreshes the token once and retries once.
    async fn get(&self, segments: &[&str], query: &[(String, String)]) -> Result<Answer, ApiError> {
        let transport = &self.inner.transport;
        match &self.inner.auth {
            Auth::AkSk {
                access_key,
                secret_key,
                security_token,
            } => {
                let project = self.project_id().await?;
                let path = self.path(&project, segments);
                let headers = aksk_headers(
                    access_key,
                    secret_key,
                    security_token.as_ref(),
                    &project,
                    &self.inner.endpoint.authority,
                    &path,
                    query,
                    SystemTime::now(),
                );
                self.checked(self.send(&path, query, headers).await?)
            }
            Auth::Token(src) => {
                let token = src.get(transport, None).await?;
                let answer = self.send_with_token(&token, segments, query).await?;
                if answer.status != 401 {
                    return self.checked(answer);
                }
                let fresh = src.get(transport, Some(&token.value)).await?;
                self.checked(self.send_with_token(&fresh, segments, query).await?)
            }
        }
    }

    async fn send_with_token(
        &self,
        token: &super::auth::Token,
        segments: &[&str],
        query: &[(String, String)],
    ) -> Result<Answer, ApiError> {
        let project = self
            .inner
            .project_id
            .clone()
            .unwrap_or_else(|| token.project_id.clone());
        let path = self.path(&project, segments);
        let headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("X-Auth-Token".to_string(), token.value.expose().to_string()),
        ];
        self.send(&path, query, headers).await
    }

    /// The unencoded full path (endpoint prefix included), as signed.
    fn path(&self, project: &ProjectId, segments: &[&str]) -> String {
        format!(
            "{}/v1/{}/{}",
            self.inner.endpoint.prefix,
            project.as_str(),
            segments.join("/")
        )
    }

    async fn send(
        &self,
        path: &str,
        query: &[(String, String)],
        headers: Vec<(String, String)>,
    ) -> Result<Answer, ApiError> {
        let e = &self.inner.endpoint;
        // `path` already carries the prefix; build the URL from scheme and authority only.
        let url = format!(
            "{}://{}{}",
            e.scheme,
            e.authority,
            super::sign::request_uri(path, query)
        );
        let mut rb = self.inner.transport.client().get(url);
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        let req = rb.build().map_err(|_| {
            ApiError::new(ApiErrorKind::Connect).with_detail(
                "cannot build the ModelArts request (invalid header value in the credentials?)",
            )
        })?;
        self.inner.transport.send(req, "ModelArts").await
    }

    /// 2xx passes; anything else is classified, and a 401 explained.
    fn checked(&self, answer: Answer) -> Result<Answer, ApiError> {
        if (200..300).contains(&answer.status) {
            return Ok(answer);
        }
        let retry_after = answer
            .header("Retry-After")
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let err = classify(
            answer.status,
            &answer.body,
            retry_after,
            answer.header("X-Request-Id"),
        );
        Err(self.explain_unauthorized(err))
    }

    fn explain_unauthorized(&self, mut err: ApiError) -> ApiError {
        if err.kind != ApiErrorKind::Unauthorized {
            return err;
        }
        let mut notes: Vec<String> = err.detail.take().into_iter().collect();
        let aksk = matches!(self.inner.auth, Auth::AkSk { .. });
        if aksk && err.error_code.as_deref() == Some("APIGW.0301") {
            notes.push("signature rejected: check access_key/secret_key".to_string());
        }
        if let Some(skew) = self.clock_skew_seconds() {
            notes.push(skew_note(skew));
        }
        if !notes.is_empty() {
            err.detail = Some(notes.join("; "));
        }
        err
    }
}

/// Names the measured clock skew for a 401's detail.
pub fn skew_note(skew: f64) -> String {
    #[allow(clippy::cast_possible_truncation)] // reason: rounded seconds, far inside i64
    let secs = skew.abs().round() as i64;
    if skew.abs() > SKEW_WORTH_NAMING_SECS {
        let dir = if skew > 0.0 { "ahead of" } else { "behind" };
        format!(
            "local clock is {secs} s {dir} the server; the gateway rejects signatures more than 15 min off"
        )
    } else {
        format!("local clock is within {secs} s of the server's, so clock skew is not the cause")
    }
}

fn list_query(filter: &ListFilter, limit: u32, offset: u64) -> Vec<(String, String)> {
    let mut q = vec![
        ("limit".to_string(), limit.to_string()),
        ("offset".to_string(), offset.to_string()),
    ];
    let optional = [
        ("type", &filter.image_type),
        ("namespace", &filter.namespace),
        ("name", &filter.name),
        ("workspace_id", &filter.workspace_id),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            q.push((k.to_string(), v.clone()));
        }
    }
    q
}

fn decode(detail: impl Into<String>) -> ApiError {
    let mut e = ApiError::new(ApiErrorKind::Decode).with_detail(detail);
    e.http_status = Some(200);
    e
}

fn truncate_id(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_note_names_direction_and_size() {
        let n = skew_note(1250.4);
        assert!(n.contains("1250 s ahead of the server"), "{n}");
        assert!(n.contains("15 min"));
        assert!(skew_note(-900.0).contains("900 s behind"));
        assert!(skew_note(2.0).contains("not the cause"));
    }

    #[test]
    fn list_query_has_filters_and_paging() {
        let f = ListFilter {
            image_type: Some("DEDICATED".into()),
            name: Some("a b".into()),
            ..ListFilter::default()
        };
        let q = super::super::sign::canonical_query(&list_query(&f, 200, 400));
        assert_eq!(q, "limit=200&name=a%20b&offset=400&type=DEDICATED");
    }
}
