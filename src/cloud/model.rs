//! The ShowImage / ListImage answers, parsed tolerantly (PRODUCT 2): every field optional,
//! enums open, unknown fields ignored.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One image as ShowImage (or an entry of ListImage) describes it. `None` means "not told".
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Image {
    pub id: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub status_message: Option<String>,
    /// Size in KB as the API gives it; see [`Image::size_bytes`].
    pub size: Option<u64>,
    /// UTC milliseconds.
    pub create_at: Option<i64>,
    /// UTC milliseconds.
    pub update_at: Option<i64>,
    pub arch: Option<String>,
    pub description: Option<String>,
    pub dev_services: Option<Vec<String>>,
    pub namespace: Option<String>,
    pub origin: Option<String>,
    pub resource_categories: Option<Vec<String>>,
    pub service_type: Option<String>,
    pub swr_path: Option<String>,
    pub tag: Option<String>,
    #[serde(rename = "type")]
    pub image_type: Option<String>,
    pub visibility: Option<String>,
    pub workspace_id: Option<String>,
    pub flavor_type: Option<String>,
}

impl Image {
    /// Size in bytes (the API's KB × 1024).
    pub fn size_bytes(&self) -> Option<u64> {
        self.size.map(|kb| kb.saturating_mul(1024))
    }

    /// The parsed status, if the answer carried one.
    pub fn status(&self) -> Option<ImageStatus> {
        self.status.as_deref().map(ImageStatus::parse)
    }
}

/// ListImage answer.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ImageList {
    pub total: Option<u64>,
    pub current: Option<u64>,
    pub pages: Option<u64>,
    pub size: Option<u64>,
    pub data: Vec<Image>,
}

/// Image status, open: a value the docs do not list is kept as it came.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImageStatus {
    Init,
    Creating,
    CreateFailed,
    Error,
    Deleted,
    Active,
    /// A value the API documentation does not list, kept verbatim.
    Other(String),
}

impl ImageStatus {
    /// The documented values, in the order the metrics list them.
    pub const KNOWN: [ImageStatus; 6] = [
        ImageStatus::Init,
        ImageStatus::Creating,
        ImageStatus::CreateFailed,
        ImageStatus::Error,
        ImageStatus::Deleted,
        ImageStatus::Active,
    ];

    pub fn parse(raw: &str) -> Self {
        match raw {
            "INIT" => Self::Init,
            "CREATING" => Self::Creating,
            "CREATE_FAILED" => Self::CreateFailed,
            "ERROR" => Self::Error,
            "DELETED" => Self::Deleted,
            "ACTIVE" => Self::Active,
            other => Self::Other(other.to_string()),
        }
    }

    /// The API spelling (for `Other`, the value as it came).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Init => "INIT",
            Self::Creating => "CREATING",
            Self::CreateFailed => "CREATE_FAILED",
            Self::Error => "ERROR",
            Self::Deleted => "DELETED",
            Self::Active => "ACTIVE",
            Self::Other(s) => s,
        }
    }

    /// The bounded value used as the `status` metric label: `Other` becomes `UNKNOWN`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Init => "INIT",
            Self::Creating => "CREATING",
            Self::CreateFailed => "CREATE_FAILED",
            Self::Error => "ERROR",
            Self::Deleted => "DELETED",
            Self::Active => "ACTIVE",
            Self::Other(_) => "UNKNOWN",
        }
    }
}

impl fmt::Display for ImageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn seed_example_parses() {
        let img: Image = serde_json::from_str(&fixture("show_image_seed_example.json")).unwrap();
        assert_eq!(img.status(), Some(ImageStatus::Active));
        assert_eq!(img.arch.as_deref(), Some("x86_64"));
        assert_eq!(img.image_type.as_deref(), Some("BUILD_IN"));
        assert_eq!(img.size, None);
    }

    #[test]
    fn extra_fields_and_open_enums_parse() {
        let img: Image = serde_json::from_str(&fixture("show_image_extra_fields.json")).unwrap();
        assert_eq!(img.status(), Some(ImageStatus::CreateFailed));
        assert_eq!(img.visibility.as_deref(), Some("HIDDEN"));
        assert_eq!(img.size_bytes(), Some(10_485_760 * 1024));
        assert_eq!(img.flavor_type.as_deref(), Some("ASCEND_SNT9"));
    }

    #[test]
    fn nulls_are_not_told() {
        let img: Image = serde_json::from_str(&fixture("show_image_minimal.json")).unwrap();
        assert_eq!(img.name, None);
        assert_eq!(img.size, None);
        assert_eq!(img.status(), Some(ImageStatus::Creating));
    }

    #[test]
    fn unknown_status_is_kept_and_labelled_unknown() {
        let s = ImageStatus::parse("FROZEN");
        assert_eq!(s.as_str(), "FROZEN");
        assert_eq!(s.metric_label(), "UNKNOWN");
    }
}
