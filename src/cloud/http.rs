//! The HTTP transport shared by the ModelArts client and IAM: builds the reqwest client
//! (rustls + ring, system roots plus an optional CA file, no redirects, environment proxies),
//! sends one request with a body cap, measures clock skew and reports every request to the
//! observer. It knows nothing about ModelArts paths or authentication, and never puts a URL's
//! query, a header value or a body into an error.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use reqwest::header::HeaderMap;

use super::error::{ApiError, ApiErrorKind};

/// Default cap on an answer body.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// Upper bound on the connect timeout (the per-request timeout still applies when smaller).
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Installs the rustls ring crypto provider for the process; idempotent. Call before building
/// any reqwest client (reqwest is built with `rustls-no-provider`).
pub fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err only means another thread installed one first: fine either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Told about every HTTP request a client makes (ModelArts and IAM alike), for metrics.
pub trait RequestObserver: Send + Sync {
    /// One finished request: `code` is the HTTP status (`"200"`) or a bounded transport label
    /// (`"timeout"`, `"connect"`, `"too_large"`, `"body"`); `seconds` its duration.
    fn observe(&self, cloud: &str, code: &str, seconds: f64);
    /// A clock skew measurement from an answer's `Date` header: local minus server, seconds.
    fn clock_skew(&self, cloud: &str, seconds: f64);
}

/// A base URL, checked: https, or http on loopback only.
#[derive(Debug, Clone)]
pub(crate) struct BaseUrl {
    /// `https` or `http`.
    pub scheme: String,
    /// `host[:port]` as sent in `Host` (the port only when it is not the scheme's default).
    pub authority: String,
    /// Unencoded path prefix without a trailing `/` (usually empty).
    pub prefix: String,
}

impl BaseUrl {
    /// Parses and checks `raw`; `what` names the setting in errors (`endpoint`, `iam_endpoint`).
    pub fn parse(raw: &str, what: &str) -> anyhow::Result<Self> {
        let url =
            reqwest::Url::parse(raw).with_context(|| format!("{what} {raw:?} is not a URL"))?;
        let Some(host) = url.host_str().map(str::to_string) else {
            bail!("{what} {raw:?} has no host");
        };
        if !url.username().is_empty() || url.password().is_some() {
            bail!("{what} must not carry credentials in the URL");
        }
        if url.query().is_some() || url.fragment().is_some() {
            bail!("{what} {raw:?} must not have a query or fragment");
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => bail!(
                "{what} {raw:?} uses plain http: only https is allowed (http only on loopback, for the simulator and tests)"
            ),
            other => bail!("{what} {raw:?}: unsupported scheme {other:?}, use https"),
        }
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        let prefix = url.path().trim_end_matches('/').to_string();
        Ok(Self {
            scheme: url.scheme().to_string(),
            authority,
            prefix,
        })
    }

    /// The full URL for an unencoded `path` (after the prefix) and query pairs; path segments
    /// are percent-encoded and the query is exactly [`super::sign::canonical_query`].
    pub fn url(&self, path: &str, query: &[(String, String)]) -> String {
        let full = format!("{}{path}", self.prefix);
        format!(
            "{}://{}{}",
            self.scheme,
            self.authority,
            super::sign::request_uri(&full, query)
        )
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A non-redirect answer, body read (capped).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The reqwest client plus what every request needs: cloud name, observer, skew cell, cap.
pub(crate) struct Transport {
    pub cloud: String,
    client: reqwest::Client,
    observer: Option<Arc<dyn RequestObserver>>,
    /// Local minus server, seconds, from the last `Date` header.
    skew: Mutex<Option<f64>>,
    pub max_body: usize,
}

impl Transport {
    pub fn new(
        cloud: &str,
        timeout: Duration,
        ca_file: Option<&Path>,
        observer: Option<Arc<dyn RequestObserver>>,
    ) -> anyhow::Result<Self> {
        ensure_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!(
                "modelarts-image-exporter/",
                env!("CARGO_PKG_VERSION")
            ))
            .timeout(timeout)
            .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
            // A redirect would carry X-Auth-Token / X-Security-Token to another host.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(false);
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read ca_file {}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("ca_file {} is not a PEM bundle", path.display()))?;
            if certs.is_empty() {
                bail!("ca_file {} holds no certificate", path.display());
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .context("cannot build the HTTP client (TLS set-up)")?;
        Ok(Self {
            cloud: cloud.to_string(),
            client,
            observer,
            skew: Mutex::new(None),
            max_body: DEFAULT_MAX_BODY,
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Local minus server time, from the last `Date` header seen.
    pub fn skew(&self) -> Option<f64> {
        *self.skew.lock().expect("skew lock")
    }

    fn observe(&self, code: &str, started: Instant) {
        if let Some(o) = &self.observer {
            o.observe(&self.cloud, code, started.elapsed().as_secs_f64());
        }
    }

    fn record_date(&self, headers: &HeaderMap, local: SystemTime) {
        let Some(server) = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
        else {
            return;
        };
        let skew = skew_seconds(local, server);
        *self.skew.lock().expect("skew lock") = Some(skew);
        if let Some(o) = &self.observer {
            o.clock_skew(&self.cloud, skew);
        }
    }

    /// Sends `req`; `service` (`ModelArts`, `IAM`) names the far side in errors. Any status but
    /// a redirect comes back as an [`Answer`]; transport failures, redirects and oversized
    /// bodies come back as errors.
    pub async fn send(&self, req: reqwest::Request, service: &str) -> Result<Answer, ApiError> {
        let host = match (req.url().host_str(), req.url().port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => "?".to_string(),
        };
        let started = Instant::now();
        let mut resp = match self.client.execute(req).await {
            Ok(r) => r,
            Err(e) => {
                let err = transport_error(&e, service, &host);
                self.observe(err.kind.reason(), started);
                return Err(err);
            }
        };
        self.record_date(resp.headers(), SystemTime::now());
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            self.observe(resp.status().as_str(), started);
            let to = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| resp.url().join(l).ok())
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| "an unknown place".to_string());
            let mut err = ApiError::new(ApiErrorKind::WrongEndpoint).with_detail(format!(
                "{service} at {host} answered with a redirect to {to}; redirects are not followed (they would carry credentials): check the endpoint URL"
            ));
            err.http_status = Some(status);
            return Err(err);
        }
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            self.observe("too_large", started);
            return Err(self.too_large(service, &host));
        }
        let mut body = BytesMut::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.max_body {
                        self.observe("too_large", started);
                        return Err(self.too_large(service, &host));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    let err = transport_error(&e, service, &host);
                    self.observe(if e.is_timeout() { "timeout" } else { "body" }, started);
                    return Err(err);
                }
            }
        }
        self.observe(resp.status().as_str(), started);
        Ok(Answer {
            status,
            headers: resp.headers().clone(),
            body: body.freeze(),
        })
    }

    fn too_large(&self, service: &str, host: &str) -> ApiError {
        ApiError::new(ApiErrorKind::TooLarge).with_detail(format!(
            "{service} at {host} sent more than {} bytes",
            self.max_body
        ))
    }
}

/// Local minus server, in seconds (positive: the local clock is ahead).
pub fn skew_seconds(local: SystemTime, server: SystemTime) -> f64 {
    match local.duration_since(server) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Maps a reqwest failure to `Timeout`/`Connect` with a detail naming the host and the root
/// cause, never the URL (its query could carry something sensitive).
fn transport_error(e: &reqwest::Error, service: &str, host: &str) -> ApiError {
    let kind = if e.is_timeout() {
        ApiErrorKind::Timeout
    } else {
        ApiErrorKind::Connect
    };
    let mut causes = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    let cause = causes.last().cloned().unwrap_or_else(|| {
        e.to_string()
            .replace(e.url().map_or("", |u| u.as_str()), "…")
    });
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    ApiError::new(kind).with_detail(format!("{service} at {host}: {what}: {cause}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(BaseUrl::parse("http://example.com", "endpoint").is_err());
        assert!(BaseUrl::parse("ftp://example.com", "endpoint").is_err());
        assert!(BaseUrl::parse("http://user:pw@127.0.0.1", "endpoint").is_err());
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.3.4.5",
            "http://[::1]:9",
            "http://localhost:1",
            "https://modelarts.eu-de.otc.t-systems.com",
        ] {
            assert!(BaseUrl::parse(ok, "endpoint").is_ok(), "{ok}");
        }
        let err = BaseUrl::parse("http://10.0.0.1", "endpoint").unwrap_err();
        assert!(err.to_string().contains("plain http"));
    }

    #[test]
    fn url_keeps_port_prefix_and_encodes() {
        let b = BaseUrl::parse("https://h.example:8443/proxy/", "endpoint").unwrap();
        assert_eq!(b.authority, "h.example:8443");
        let q = vec![("name".to_string(), "a b".to_string())];
        assert_eq!(
            b.url("/v1/p/images/x y", &q),
            "https://h.example:8443/proxy/v1/p/images/x%20y?name=a%20b"
        );
        let d = BaseUrl::parse("https://h.example:443", "endpoint").unwrap();
        assert_eq!(d.authority, "h.example");
    }

    #[test]
    fn skew_sign() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert!((skew_seconds(t + Duration::from_secs(5), t) - 5.0).abs() < 1e-9);
        assert!((skew_seconds(t, t + Duration::from_secs(5)) + 5.0).abs() < 1e-9);
    }
}
