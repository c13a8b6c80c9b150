//! The HTTP side (axum): `/metrics`, `/healthz`, `/readyz`, `/api/v1/images`,
//! `/api/v1/events`, `POST /-/reload` (only when enabled) and the status page at `/`.
//! Read-only views of the watcher; the only write is asking the app to reload.

pub mod auth;
pub mod page;
pub mod serve;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::watch::Watcher;

/// A reload request: the app answers on the oneshot with the outcome.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// Shared by every handler.
#[derive(Clone)]
pub struct HttpState {
    pub watcher: Watcher,
    /// Set once config and state are loaded, the listener is bound and the poll loop runs.
    pub ready: Arc<AtomicBool>,
    /// `None` unless `[web] enable_reload = true`.
    pub reload: Option<mpsc::Sender<ReloadRequest>>,
}

/// The router with every endpoint.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/", get(page::status_page))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/images", get(images))
        .route("/api/v1/events", get(events))
        .route("/-/reload", post(reload))
        .with_state(state)
}

async fn metrics(State(st): State<HttpState>, headers: HeaderMap) -> Response {
    let m = st.watcher.metrics().clone();
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    // Rendering 100k series takes a few ms of CPU: keep it off the async workers.
    let body = tokio::task::spawn_blocking(move || {
        if gzip {
            m.render_gzip()
        } else {
            m.render().into_bytes()
        }
    })
    .await
    .unwrap_or_default();
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    resp
}

/// Whether an `Accept-Encoding` value accepts gzip (and does not refuse it with `q=0`).
pub fn accepts_gzip(v: &str) -> bool {
    v.split(',').any(|part| {
        let mut it = part.trim().split(';');
        let coding = it.next().unwrap_or("").trim();
        let q0 = it.any(|p| {
            let p = p.trim();
            p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q0
    })
}

async fn readyz(State(st): State<HttpState>) -> Response {
    if st.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

/// One image in `/api/v1/images`.
#[derive(Debug, Serialize)]
pub struct ImageView {
    pub id: String,
    pub cloud: String,
    pub name: Option<String>,
    /// API status, `NOT_FOUND`, or `None` before the first valid answer.
    pub status: Option<String>,
    pub status_message: Option<String>,
    pub condition: Option<String>,
    pub firing_since: Option<i64>,
    pub size_bytes: Option<u64>,
    pub create_at: Option<i64>,
    pub update_at: Option<i64>,
    pub swr_path: Option<String>,
    pub first_seen: Option<i64>,
    pub last_change: Option<i64>,
    pub last_success: Option<i64>,
    pub consecutive_failures: u32,
    pub consecutive_not_found: u32,
    pub last_error: Option<String>,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Every configured image with its state and alert.
pub fn image_views(w: &Watcher) -> Vec<ImageView> {
    let firing: std::collections::HashMap<String, crate::alert::rules::AlertState> =
        w.alert_book().firing().into_iter().collect();
    w.snapshot()
        .into_iter()
        .map(|(img, s)| {
            let alert = firing.get(img.id.as_str());
            let s = s.unwrap_or_default();
            ImageView {
                id: img.id.to_string(),
                cloud: img.cloud.clone(),
                name: s.name.clone(),
                status: s.effective_status().map(str::to_string),
                status_message: s.status_message.clone(),
                condition: alert.and_then(|a| a.condition).map(|c| c.to_string()),
                firing_since: alert.and_then(|a| a.firing_since),
                size_bytes: s.size_bytes,
                create_at: s.create_at,
                update_at: s.update_at,
                swr_path: s.swr_path.clone(),
                first_seen: s.first_seen,
                last_change: s.last_change,
                last_success: s.last_success,
                consecutive_failures: s.consecutive_failures,
                consecutive_not_found: s.consecutive_not_found,
                last_error: s.last_error.clone(),
                labels: img.labels.clone(),
            }
        })
        .collect()
}

async fn images(State(st): State<HttpState>) -> Response {
    axum::Json(image_views(&st.watcher)).into_response()
}

/// `?limit=` (default 100, at most 1000) and `?image=`.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    pub limit: Option<usize>,
    pub image: Option<String>,
}

async fn events(State(st): State<HttpState>, Query(q): Query<EventsQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    match st
        .watcher
        .with_store(|s| s.recent_events(limit, q.image.as_deref()))
    {
        Ok(ev) => axum::Json(ev).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading events failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "could not read events\n").into_response()
        }
    }
}

async fn reload(State(st): State<HttpState>) -> Response {
    let Some(tx) = st.reload else {
        return (
            StatusCode::FORBIDDEN,
            "reload over HTTP is disabled; set [web] enable_reload = true or send SIGHUP\n",
        )
            .into_response();
    };
    let (otx, orx) = oneshot::channel();
    if tx.send(otx).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match orx.await {
        Ok(Ok(())) => (StatusCode::OK, "reloaded\n").into_response(),
        Ok(Err(msg)) => (
            StatusCode::BAD_REQUEST,
            format!("reload rejected, old config kept:\n{msg}\n"),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

pub use crate::text::html_escape as escape;

/// HTML helper for handlers returning pages.
pub fn html(body: String) -> Html<String> {
    Html(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>alert('x')&\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&amp;&quot;&lt;/script&gt;"
        );
    }
}
