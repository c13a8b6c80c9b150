//! Validated identifiers that go into URLs (PRODUCT 2): parse, don't validate.

use std::fmt;

/// A ModelArts image id: `[A-Za-z0-9-]`, 1..=64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ImageId(String);

impl ImageId {
    /// # Errors
    /// Says what is wrong and what would be valid.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > 64 {
            return Err(format!(
                "image id must be 1 to 64 characters, got {}",
                raw.len()
            ));
        }
        if !raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!(
                "image id {raw:?} may contain only letters, digits and '-'"
            ));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A project id: hexadecimal, 1..=64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProjectId(String);

impl ProjectId {
    /// # Errors
    /// Says what is wrong and what would be valid.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > 64 || !raw.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "project id {raw:?} must be 1 to 64 hexadecimal characters (find it under My Credentials → Projects)"
            ));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A region name such as `eu-de` or `cn-north-4`: `[a-z0-9-]`, 1..=32 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region(String);

impl Region {
    /// # Errors
    /// Says what is wrong and what would be valid.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty()
            || raw.len() > 32
            || !raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(format!(
                "region {raw:?} may contain only lower-case letters, digits and '-' (e.g. \"eu-de\", \"cn-north-4\")"
            ));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids() {
        assert!(ImageId::parse("278e88d1-5b71-4766-8502-b3ba72e824d9").is_ok());
        assert!(ImageId::parse("").is_err());
        assert!(ImageId::parse("../etc").is_err());
        assert!(ImageId::parse("a b").is_err());
        assert!(ImageId::parse(&"a".repeat(65)).is_err());
        assert!(ImageId::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn project_ids_and_regions() {
        assert!(ProjectId::parse("0bf8e7b0c1a94b6a9d1c2f3e4a5b6c7d").is_ok());
        assert!(ProjectId::parse("xyz").is_err());
        assert!(Region::parse("eu-de").is_ok());
        assert!(Region::parse("EU-DE").is_err());
        assert!(Region::parse("eu/de").is_err());
    }
}
