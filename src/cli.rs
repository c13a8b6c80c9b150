//! Command-line flags and subcommands (PRODUCT 3.7). Parsing only: `app` does the work.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Default config path (the systemd unit's `ConfigurationDirectory`).
pub const DEFAULT_CONFIG: &str = "/etc/modelarts-image-exporter/config.toml";

/// Watches ModelArts images, exports their state to Prometheus and pages on-call.
#[derive(Debug, Parser)]
#[command(name = "modelarts-image-exporter", version, about)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(long = "config.file", value_name = "PATH", default_value = DEFAULT_CONFIG, global = true)]
    pub config_file: PathBuf,

    /// Log level (error, warn, info, debug, trace) or a tracing filter directive.
    #[arg(
        long = "log.level",
        value_name = "LEVEL",
        default_value = "info",
        global = true
    )]
    pub log_level: String,

    /// Log line format.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt, global = true)]
    pub log_format: LogFormat,

    /// Watch only this instance's share of the fleet: `I/N` (0-based), by a stable hash of the
    /// image id. Run N instances with 0/N … N-1/N.
    #[arg(long, value_name = "I/N", global = true)]
    pub shard: Option<crate::config::settings::Shard>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// What to do (default: `run`).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (the default).
    Run,
    /// Validate the configuration; print every problem; exit 78 if any.
    CheckConfig {
        /// Parse and check without resolving secrets (for shipped examples).
        #[arg(long)]
        syntax_only: bool,
    },
    /// Poll every image once and print the result; exit 1 if any image is alerting,
    /// else 2 if any could not be polled, else 0.
    Once {
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
    /// Send a test notification through every channel (or the one named).
    TestNotify {
        /// Channel name; default: all channels.
        channel: Option<String>,
    },
    /// Run the built-in ModelArts API simulator on loopback.
    Simulate(Box<crate::sim::SimulateArgs>),
    /// Simulator + daemon + a scripted story, all on loopback: see the tool work in a minute.
    Demo(crate::demo::DemoArgs),
}

/// `once` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}
