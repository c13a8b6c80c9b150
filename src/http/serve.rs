//! Runs the HTTP listener: plain HTTP, or HTTPS (rustls with ring, TLS 1.2 and 1.3) when
//! `[web] tls_cert_file`/`tls_key_file` are set, always behind the basic-auth layer of
//! [`crate::http::auth::protect`]. It serves the router it is given; it must not add routes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::WebConfig;

/// After shutdown is asked for, in-flight requests get this long to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// A client must finish the TLS handshake within this time.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// ...and send a request's headers within this time (slowloris guard).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` (wrapped in basic auth when users are configured) on `listener` until
/// `shutdown` is cancelled; then stops accepting and gives in-flight requests
/// [`SHUTDOWN_GRACE`]. TLS files are read here, first: an unreadable or mismatched
/// certificate/key is an error naming the file.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    web: &WebConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let tls = load_tls(web)?;
    let app = crate::http::auth::protect(app, &web.basic_auth_users);
    match tls {
        Some(cfg) => serve_tls(listener, app, cfg, shutdown).await,
        None => serve_plain(listener, app, shutdown).await,
    }
}

/// The TLS server config from `[web]`, or `None` when TLS is off.
pub fn load_tls(web: &WebConfig) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    match (&web.tls_cert_file, &web.tls_key_file) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => tls_config(cert, key).map(|c| Some(Arc::new(c))),
        _ => bail!("[web] tls_cert_file and tls_key_file must be set together"),
    }
}

/// Reads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| {
            format!(
                "cannot read TLS certificate {} ([web] tls_cert_file)",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        bail!(
            "{} holds no PEM certificate ([web] tls_cert_file)",
            cert.display()
        );
    }
    // The error from the PEM reader names no key material, only what went wrong.
    let key_der = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "cannot read TLS private key {} ([web] tls_key_file)",
            key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS 1.2/1.3 with the ring provider")?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .with_context(|| {
            format!(
                "TLS key {} does not fit certificate {} ([web] tls_key_file / tls_cert_file)",
                key.display(),
                cert.display()
            )
        })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

async fn serve_plain(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let sd = shutdown.clone();
    let server = std::future::IntoFuture::into_future(
        axum::serve(listener, app).with_graceful_shutdown(async move { sd.cancelled().await }),
    );
    tokio::select! {
        r = server => r.context("HTTP server failed"),
        () = grace_expired(&shutdown) => {
            tracing::warn!("HTTP requests still running {SHUTDOWN_GRACE:?} after shutdown; dropping them");
            Ok(())
        }
    }
}

async fn grace_expired(shutdown: &CancellationToken) {
    shutdown.cancelled().await;
    tokio::time::sleep(SHUTDOWN_GRACE).await;
}

/// Accept loop: each connection (handshake included) runs in its own task, so a slow or
/// broken client only ever affects itself.
async fn serve_tls(
    listener: TcpListener,
    app: Router,
    cfg: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(cfg);
    let tracker = TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting an HTTPS connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (acceptor, app, sd) = (acceptor.clone(), app.clone(), shutdown.clone());
        tracker.spawn(async move { tls_connection(acceptor, tcp, peer, app, sd).await });
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "HTTPS requests still running {SHUTDOWN_GRACE:?} after shutdown; dropping them"
        );
    }
    Ok(())
}

async fn tls_connection(
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    app: Router,
    shutdown: CancellationToken,
) {
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
    let tls = tokio::select! {
        () = shutdown.cancelled() => return,
        r = handshake => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app));
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = shutdown.cancelled() => {
            // Finish the request in flight (bounded by the caller), close when idle.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "HTTPS connection ended with an error");
    }
}

#[cfg(test)]
#[path = "serve_tests.rs"]
mod tests;
