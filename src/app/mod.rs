//! Wiring: the only module that knows every other one. Each subcommand starts here; `run`
//! builds the watcher, the HTTP server, the delivery worker and the signal handling, and
//! exits non-zero if a core task dies (never a half-alive daemon).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, OutputFormat};
use crate::config::settings::{Settings, Shard};
use crate::http::{HttpState, ReloadRequest};
use crate::metrics::Metrics;
use crate::sdnotify::{self, Heartbeat};
use crate::state::Store;
use crate::watch::Watcher;
use crate::watch::apply::unix_now;

pub mod delivery;
pub mod observers;
pub mod test_notify;

/// sysexits `EX_CONFIG`: bad configuration or unusable state file; systemd does not restart.
pub const EX_CONFIG: u8 = 78;

/// Entry point of the binary.
pub fn main(cli: Cli) -> ExitCode {
    crate::cloud::client::ensure_crypto_provider();
    if let Command::CheckConfig { syntax_only } = cli.command.as_ref().unwrap_or(&Command::Run) {
        let (code, text) = crate::config::check_config(&cli.config_file, *syntax_only);
        print!("{text}");
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    if let Err(e) = crate::logging::init(&cli.log_level, cli.log_format) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(dispatch(cli))
}

async fn dispatch(cli: Cli) -> ExitCode {
    let command = cli.command.unwrap_or(Command::Run);
    let result = match command {
        Command::Run => run(&cli.config_file, cli.shard).await,
        Command::Once { output } => once(&cli.config_file, output, cli.shard).await,
        Command::Simulate(args) => {
            let token = shutdown_on_signal();
            crate::sim::run(*args, token)
                .await
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Demo(args) => crate::demo::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::TestNotify { channel } => test_notify(&cli.config_file, channel.as_deref()).await,
        Command::CheckConfig { .. } => unreachable!("handled before the runtime starts"),
    };
    result.unwrap_or_else(|e| {
        tracing::error!("{e:#}");
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}

/// Loads and resolves the config; on failure prints every problem and returns `Err(78)`.
pub fn load_settings(path: &Path, shard: Option<Shard>) -> Result<Settings, ExitCode> {
    crate::config::load_settings(path)
        .map(|mut s| {
            s.shard = shard;
            s
        })
        .map_err(|msg| {
            eprintln!("{msg}");
            ExitCode::from(EX_CONFIG)
        })
}

async fn once(path: &Path, output: OutputFormat, shard: Option<Shard>) -> anyhow::Result<ExitCode> {
    let mut settings = match load_settings(path, shard) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    if let Some(sh) = shard {
        settings.images.retain(|i| sh.owns(i.id.as_str()));
    }
    let rows = crate::once::poll_all(&settings).await?;
    match output {
        OutputFormat::Table => print!("{}", crate::once::table(&rows)),
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
    }
    Ok(ExitCode::from(crate::once::exit_code(&rows)))
}

/// A token cancelled on SIGTERM or SIGINT.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wait_for_stop_signal().await;
        t.cancel();
    });
    token
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

/// The daemon.
async fn run(path: &Path, shard: Option<Shard>) -> anyhow::Result<ExitCode> {
    let settings = match load_settings(path, shard) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let shutdown = shutdown_on_signal();
    let daemon = match Daemon::start(path.to_path_buf(), settings, shutdown.clone()).await {
        Ok(d) => d,
        Err(StartError::Config(msg)) => {
            eprintln!("{msg}");
            tracing::error!("{msg}");
            return Ok(ExitCode::from(EX_CONFIG));
        }
        Err(StartError::Other(e)) => return Err(e),
    };
    daemon.wait().await
}

/// Why the daemon could not start.
pub enum StartError {
    /// Exit 78: configuration or state file unusable.
    Config(String),
    Other(anyhow::Error),
}

/// A running daemon (also used by the demo and the tests).
pub struct Daemon {
    pub watcher: Watcher,
    pub addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    tasks: tokio::task::JoinSet<(&'static str, anyhow::Result<()>)>,
}

impl Daemon {
    /// Opens the state, binds the listener, starts every task, sends `READY=1`.
    pub async fn start(
        config_path: std::path::PathBuf,
        settings: Settings,
        shutdown: CancellationToken,
    ) -> Result<Self, StartError> {
        // A bad certificate or key is a configuration error: refuse before READY=1 (exit 78).
        crate::http::serve::load_tls(&settings.web)
            .map_err(|e| StartError::Config(format!("{e:#}")))?;
        let store =
            Store::open(&settings.state_path).map_err(|e| StartError::Config(e.to_string()))?;
        let metrics = Metrics::new(env!("CARGO_PKG_VERSION"), env!("GIT_REVISION"));
        for ch in &settings.channels {
            metrics.register_channel(&ch.name);
        }
        metrics.config_reload(true, now_f64());
        let listen = settings.web.listen.clone();
        let enable_reload = settings.web.enable_reload;
        let watcher = Watcher::new(settings, store, metrics, unix_now())
            .map_err(|e| StartError::Config(format!("{e:#}")))?;
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen} ([web] listen)"))
            .map_err(StartError::Other)?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Other(e.into()))?;

        let ready = Arc::new(AtomicBool::new(false));
        let (reload_tx, reload_rx) = mpsc::channel::<ReloadRequest>(4);
        let http_state = HttpState {
            watcher: watcher.clone(),
            ready: ready.clone(),
            reload: enable_reload.then(|| reload_tx.clone()),
        };
        let mut tasks = tokio::task::JoinSet::new();
        let sd = shutdown.clone();
        let web = watcher.settings().web.clone();
        tasks.spawn(async move {
            let app = crate::http::router(http_state);
            let r = crate::http::serve::serve(listener, app, &web, sd).await;
            ("http", r)
        });
        let heartbeat = Heartbeat::default();
        let w = watcher.clone();
        let (sd, hb) = (shutdown.clone(), heartbeat.clone());
        tasks.spawn(async move { ("poll loop", w.run(sd, hb).await) });
        let w = watcher.clone();
        let sd = shutdown.clone();
        tasks.spawn(async move { ("reload", reload_loop(config_path, w, reload_rx, sd).await) });
        let (w, sd) = (watcher.clone(), shutdown.clone());
        tasks.spawn(async move { ("discovery", crate::watch::discovery::run(w, sd).await) });
        for (name, fut) in delivery::tasks(&watcher, shutdown.clone()) {
            tasks.spawn(async move { (name, fut.await) });
        }
        if let Some(iv) = sdnotify::watchdog_interval() {
            let (sd, hb) = (shutdown.clone(), heartbeat.clone());
            tasks.spawn(async move {
                sdnotify::watchdog_task(iv, hb, sd).await;
                ("watchdog", Ok(()))
            });
        }
        let st = shutdown.clone();
        let wst = watcher.clone();
        tasks.spawn(async move {
            let mut iv = tokio::time::interval(Duration::from_secs(10));
            loop {
                tokio::select! {
                    () = st.cancelled() => return ("status", Ok(())),
                    _ = iv.tick() => sdnotify::status(&status_line(&wst)),
                }
            }
        });
        ready.store(true, Ordering::Relaxed);
        sdnotify::ready(&status_line(&watcher));
        tracing::info!(%addr, images = watcher.watched_images().len(), "modelarts-image-exporter ready");
        Ok(Self {
            watcher,
            addr,
            shutdown,
            tasks,
        })
    }

    /// Waits until shutdown, or until a core task dies (then exits non-zero).
    pub async fn wait(mut self) -> anyhow::Result<ExitCode> {
        let mut code = ExitCode::SUCCESS;
        tokio::select! {
            () = self.shutdown.cancelled() => {}
            Some(res) = self.tasks.join_next() => {
                match res {
                    Ok((name, Ok(()))) if self.shutdown.is_cancelled() => tracing::debug!(task = name, "stopped"),
                    Ok((name, Ok(()))) => { tracing::error!(task = name, "core task ended unexpectedly"); code = ExitCode::FAILURE; }
                    Ok((name, Err(e))) => { tracing::error!(task = name, "core task failed: {e:#}"); code = ExitCode::FAILURE; }
                    Err(e) => { tracing::error!("core task panicked: {e}"); code = ExitCode::FAILURE; }
                }
                self.shutdown.cancel();
            }
        }
        sdnotify::stopping();
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(10), drain)
            .await
            .is_err()
        {
            tracing::warn!("tasks did not stop within 10 s; exiting anyway");
            self.tasks.abort_all();
        }
        tracing::info!("stopped");
        Ok(code)
    }

    /// Asks every task to stop.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

fn now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One line for systemd's `STATUS=`.
pub fn status_line(w: &Watcher) -> String {
    let snap = w.snapshot();
    let firing = w.alert_book().firing().len();
    let polled = snap
        .iter()
        .filter(|(_, s)| s.as_ref().is_some_and(|s| s.last_success.is_some()))
        .count();
    format!(
        "watching {} images ({polled} answered), {firing} alerts firing",
        snap.len()
    )
}

/// Reloads on SIGHUP or `POST /-/reload`; a bad config is rejected and the old one kept.
async fn reload_loop(
    path: std::path::PathBuf,
    watcher: Watcher,
    mut rx: mpsc::Receiver<ReloadRequest>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    // The HTTP side holds the sender only with `enable_reload`; without it SIGHUP is the way.
    let mut http_open = true;
    loop {
        let reply = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = hup.recv() => None,
            r = rx.recv(), if http_open => {
                if r.is_none() {
                    http_open = false;
                    continue;
                }
                r
            }
        };
        sdnotify::reloading();
        let shard = watcher.settings().shard;
        let outcome = match crate::config::load_settings(&path) {
            Ok(mut settings) => {
                settings.shard = shard;
                let old_web = &watcher.settings().web;
                if format!("{old_web:?}") != format!("{:?}", settings.web) {
                    tracing::warn!(
                        "[web] changed: listen address, TLS and users take effect at the next restart"
                    );
                }
                watcher.reload(settings).map_err(|e| format!("{e:#}"))
            }
            Err(msg) => Err(msg),
        };
        match &outcome {
            Ok(()) => {
                watcher.metrics().config_reload(true, now_f64());
                tracing::info!(path = %path.display(), "configuration reloaded");
            }
            Err(msg) => {
                watcher.metrics().config_reload(false, now_f64());
                tracing::error!(path = %path.display(), "reload rejected, keeping the old configuration: {msg}");
            }
        }
        sdnotify::reloaded(&status_line(&watcher));
        if let Some(tx) = reply {
            let _ = tx.send(outcome);
        }
    }
}

async fn test_notify(path: &Path, channel: Option<&str>) -> anyhow::Result<ExitCode> {
    let settings = match load_settings(path, None) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    test_notify::run(&settings, channel).await
}
