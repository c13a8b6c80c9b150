//! The `simulate` subcommand: flags, start-up banner, run until cancelled. Holds no
//! simulator logic of its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::config::{self, SimConfig};

/// Flags of `simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:9918")]
    pub listen: SocketAddr,
    /// Number of generated images (ids 00000000-0000-4000-8000-000000000000, ...).
    #[arg(long, default_value_t = 5)]
    pub images: usize,
    /// Load images from a JSON array of ShowImage objects (added to the generated ones).
    #[arg(long, value_name = "PATH")]
    pub images_file: Option<PathBuf>,
    /// Accepted access key.
    #[arg(long, default_value = config::DEMO_AK)]
    pub access_key: String,
    /// Accepted secret key (a demo value by default).
    #[arg(long, default_value = config::DEMO_SK)]
    pub secret_key: String,
    /// Project id (hex).
    #[arg(long, default_value = config::DEMO_PROJECT_ID)]
    pub project_id: String,
    /// Project name (IAM scope by name).
    #[arg(long, default_value = config::DEMO_PROJECT_NAME)]
    pub project_name: String,
    /// IAM user name.
    #[arg(long, default_value = config::DEMO_USER)]
    pub user: String,
    /// IAM password (a demo value by default).
    #[arg(long, default_value = config::DEMO_PASSWORD)]
    pub password: String,
    /// IAM domain (account) name.
    #[arg(long, default_value = config::DEMO_DOMAIN)]
    pub domain: String,
    /// Lifetime of issued tokens.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub token_ttl: Duration,
    /// Server clock offset in seconds (negative: behind), to simulate clock skew.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub clock_offset: i64,
}

impl SimulateArgs {
    /// The simulator configuration these flags describe.
    pub fn to_config(&self) -> anyhow::Result<SimConfig> {
        crate::cloud::ids::ProjectId::parse(&self.project_id).map_err(anyhow::Error::msg)?;
        let mut cfg = SimConfig::default()
            .aksk(&self.access_key, &self.secret_key)
            .project(&self.project_id, &self.project_name)
            .iam_user(&self.user, &self.password, &self.domain)
            .token_ttl(self.token_ttl)
            .clock_offset_secs(self.clock_offset)
            .with_generated(self.images);
        if let Some(path) = &self.images_file {
            cfg = cfg.with_images(config::load_images(path)?);
        }
        Ok(cfg)
    }
}

/// Runs the simulator until `shutdown` is cancelled, after printing where it listens and
/// what to put into a config.
pub async fn run(args: SimulateArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let cfg = args.to_config()?;
    let handle = super::spawn(cfg, args.listen).await?;
    let url = handle.url();
    println!(
        "ModelArts simulator on {url} ({} images, project {})\n\
         \n\
         [[clouds]]\n\
         provider = \"otc\"\n\
         region = \"{}\"\n\
         endpoint = \"{url}\"\n\
         iam_endpoint = \"{url}\"\n\
         project_id = \"{}\"\n\
         [clouds.auth]\n\
         type = \"aksk\"\n\
         access_key = \"{}\"\n\
         secret_key = \"{}\"   # simulator value, not a real secret\n\
         # or: type = \"password\", user = \"{}\", password = \"{}\", domain = \"{}\"\n\
         \n\
         control API: {url}/_sim/images, {url}/_sim/faults, {url}/_sim/stats",
        handle.image_count(),
        args.project_id,
        args.project_name,
        args.project_id,
        args.access_key,
        args.secret_key,
        args.user,
        args.password,
        args.domain,
    );
    shutdown.cancelled().await;
    handle.shutdown().await;
    Ok(())
}
