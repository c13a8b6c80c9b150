//! Logging set-up: tracing with logfmt or JSON lines on stderr (journald adds timestamps).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::LogFormat;

/// Installs the global subscriber. `level` is a level or a filter directive. Noisy
/// dependencies (the cron scheduler, hyper) are held at `warn` unless named explicitly.
pub fn init(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let mut directive = level.to_string();
    if !level.contains('=') {
        directive.push_str(",tokio_cron_scheduler=warn,hyper=warn,reqwest=warn,rustls=warn");
    }
    let filter = EnvFilter::try_new(&directive)
        .map_err(|e| anyhow::anyhow!("invalid --log.level {level:?}: {e}"))?;
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .try_init()?,
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()?,
    }
    Ok(())
}
