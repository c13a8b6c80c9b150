//! What a simulator starts with: credentials, project, clocks and images. Plain data and
//! builders; no server, no I/O except reading an images file on request.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use crate::cloud::model::Image;

/// Access key the simulator accepts by default (a demo value, not a secret).
pub const DEMO_AK: &str = "SIMDEMOACCESSKEY0000";
/// Secret key matching [`DEMO_AK`] (a demo value, not a secret).
pub const DEMO_SK: &str = "simdemosecretkey0000000000000000000000000";
/// Project id of the simulated project.
pub const DEMO_PROJECT_ID: &str = "0bf8e7b0c1a94b6a9d1c2f3e4a5b6c7d";
/// Project name (IAM scope by name), shaped like a region.
pub const DEMO_PROJECT_NAME: &str = "sim-region-1";
/// IAM user name accepted by `POST /v3/auth/tokens`.
pub const DEMO_USER: &str = "sim-user";
/// IAM password of [`DEMO_USER`] (a demo value, not a secret).
pub const DEMO_PASSWORD: &str = "sim-password";
/// IAM domain (account) name.
pub const DEMO_DOMAIN: &str = "sim-domain";

/// `create_at` of generated image 0: 2026-01-01T00:00:00Z in ms.
const GENERATED_EPOCH_MS: i64 = 1_767_225_600_000;

/// Simulator settings. Start from `SimConfig::default()` and chain the builder methods.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub access_key: String,
    pub secret_key: String,
    /// Hex project id the ModelArts routes answer for.
    pub project_id: String,
    pub project_name: String,
    pub user: String,
    pub password: String,
    pub domain: String,
    /// Lifetime of issued IAM tokens (real IAM: 24 h).
    pub token_ttl: Duration,
    /// How far `X-Sdk-Date` may be from the server clock (real gateway: 15 min).
    pub max_skew: Duration,
    /// Server clock = local clock + this many ms (negative: behind). Drives `Date`, the skew
    /// check and token expiry.
    pub clock_offset_ms: i64,
    /// Images present at start.
    pub images: Vec<Image>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            access_key: DEMO_AK.to_string(),
            secret_key: DEMO_SK.to_string(),
            project_id: DEMO_PROJECT_ID.to_string(),
            project_name: DEMO_PROJECT_NAME.to_string(),
            user: DEMO_USER.to_string(),
            password: DEMO_PASSWORD.to_string(),
            domain: DEMO_DOMAIN.to_string(),
            token_ttl: Duration::from_secs(24 * 3600),
            max_skew: Duration::from_secs(15 * 60),
            clock_offset_ms: 0,
            images: Vec::new(),
        }
    }
}

impl SimConfig {
    /// Sets the accepted AK/SK pair.
    #[must_use]
    pub fn aksk(mut self, access_key: &str, secret_key: &str) -> Self {
        self.access_key = access_key.to_string();
        self.secret_key = secret_key.to_string();
        self
    }

    /// Sets the project id (hex) and name.
    #[must_use]
    pub fn project(mut self, id: &str, name: &str) -> Self {
        self.project_id = id.to_string();
        self.project_name = name.to_string();
        self
    }

    /// Sets the IAM user, password and domain (account) name.
    #[must_use]
    pub fn iam_user(mut self, user: &str, password: &str, domain: &str) -> Self {
        self.user = user.to_string();
        self.password = password.to_string();
        self.domain = domain.to_string();
        self
    }

    /// Sets the lifetime of issued tokens.
    #[must_use]
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// Sets the accepted clock skew of signed requests.
    #[must_use]
    pub fn max_skew(mut self, skew: Duration) -> Self {
        self.max_skew = skew;
        self
    }

    /// Puts the server clock `secs` seconds ahead of (negative: behind) the local clock.
    #[must_use]
    pub fn clock_offset_secs(mut self, secs: i64) -> Self {
        self.clock_offset_ms = secs.saturating_mul(1000);
        self
    }

    /// Adds `n` deterministic images (see [`generate_images`]).
    #[must_use]
    pub fn with_generated(mut self, n: usize) -> Self {
        self.images.extend(generate_images(n));
        self
    }

    /// Adds the given images.
    #[must_use]
    pub fn with_images(mut self, images: impl IntoIterator<Item = Image>) -> Self {
        self.images.extend(images);
        self
    }
}

/// The id of generated image `i`: UUID-shaped, stable across runs and versions.
pub fn generated_id(i: usize) -> String {
    format!("{i:08x}-0000-4000-8000-{i:012x}")
}

/// `n` deterministic images: ids from [`generated_id`], names `image-00042`, all `ACTIVE`,
/// `DEDICATED` (so ListImage shows them only with `type=DEDICATED`), namespace `sim`.
pub fn generate_images(n: usize) -> Vec<Image> {
    (0..n)
        .map(|i| {
            let name = format!("image-{i:05}");
            let step = i64::try_from(i).unwrap_or(i64::MAX);
            let created = GENERATED_EPOCH_MS.saturating_add(step.saturating_mul(60_000));
            Image {
                id: Some(generated_id(i)),
                swr_path: Some(format!("swr.sim.example/sim/{name}:v1")),
                name: Some(name),
                status: Some("ACTIVE".to_string()),
                status_message: Some("image saved".to_string()),
                size: Some(2_097_152 + (i as u64 % 1000) * 1024),
                create_at: Some(created),
                update_at: Some(created),
                arch: Some("x86_64".to_string()),
                description: Some("generated by the ModelArts simulator".to_string()),
                dev_services: Some(vec!["NOTEBOOK".to_string(), "SSH".to_string()]),
                namespace: Some("sim".to_string()),
                origin: Some("CUSTOMIZE".to_string()),
                resource_categories: Some(vec!["CPU".to_string(), "GPU".to_string()]),
                service_type: Some("COMMON".to_string()),
                tag: Some("v1".to_string()),
                image_type: Some("DEDICATED".to_string()),
                visibility: Some("PRIVATE".to_string()),
                workspace_id: Some("0".to_string()),
                flavor_type: None,
            }
        })
        .collect()
}

/// Reads a JSON array of images (the ShowImage shape); every image needs an `id`.
pub fn load_images(path: &Path) -> anyhow::Result<Vec<Image>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read images file {}", path.display()))?;
    let images: Vec<Image> = serde_json::from_str(&text).with_context(|| {
        format!(
            "images file {} must hold a JSON array of ShowImage objects",
            path.display()
        )
    })?;
    if let Some(pos) = images.iter().position(|i| i.id.is_none()) {
        anyhow::bail!(
            "images file {}: entry {pos} has no \"id\"; every image needs one",
            path.display()
        );
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_images_are_distinct_valid_and_stable() {
        let imgs = generate_images(3);
        assert_eq!(
            imgs[2].id.as_deref(),
            Some("00000002-0000-4000-8000-000000000002")
        );
        assert_eq!(imgs[2].name.as_deref(), Some("image-00002"));
        for img in &imgs {
            crate::cloud::ids::ImageId::parse(img.id.as_deref().unwrap()).unwrap();
        }
        assert_eq!(generate_images(3), imgs);
    }

    #[test]
    fn images_file_needs_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.json");
        std::fs::write(&path, r#"[{"id":"a-1","status":"ACTIVE"},{"name":"x"}]"#).unwrap();
        let err = load_images(&path).unwrap_err().to_string();
        assert!(err.contains("entry 1"), "{err}");
        std::fs::write(&path, r#"[{"id":"a-1","status":"ACTIVE","extra":1}]"#).unwrap();
        assert_eq!(load_images(&path).unwrap().len(), 1);
    }
}
