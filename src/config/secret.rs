//! Secrets: a value that never prints, and the three ways to give one (inline, `${ENV}`, file).

use std::fmt;
use std::path::Path;

/// A secret value. `Debug` prints `Secret(***)`; there is no `Display`. Call [`Secret::expose`]
/// at the one place the value is used (signing, an HTTP header, SMTP auth).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself. Never log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Expands `${NAME}` references from the environment. Only used on secret fields and URLs.
///
/// # Errors
/// Names the variable that is unset (never the value).
pub fn expand_env(raw: &str) -> Result<String, String> {
    expand_env_with(raw, |name| std::env::var(name).ok())
}

/// [`expand_env`] with an injectable lookup, for tests.
pub fn expand_env_with(
    raw: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("unterminated `${` (write `${NAME}`)".to_string());
        };
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`${{{name}}}` is not a valid environment variable name"
            ));
        }
        match lookup(name) {
            Some(v) => out.push_str(&v),
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Reads a secret file (systemd `LoadCredential=` style); one trailing newline is trimmed.
///
/// # Errors
/// Names the file and the OS error.
pub fn read_secret_file(path: &Path) -> Result<String, String> {
    let raw = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
    let trimmed = raw
        .strip_suffix("\r\n")
        .or_else(|| raw.strip_suffix('\n'))
        .unwrap_or(&raw);
    if trimmed.is_empty() {
        return Err(format!("secret file {} is empty", path.display()));
    }
    Ok(trimmed.to_string())
}

/// Resolves one secret given inline (maybe with `${ENV}`) or as a file. Giving both is an
/// error; giving neither returns `Ok(None)`.
///
/// # Errors
/// A message without the secret's value.
pub fn resolve(inline: Option<&str>, file: Option<&Path>) -> Result<Option<Secret>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err("give the secret inline or as a file, not both".to_string()),
        (Some(raw), None) => expand_env(raw).map(|v| Some(Secret(v))),
        (None, Some(path)) => read_secret_file(path).map(|v| Some(Secret(v))),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert!(!format!("{:?}", Some(s)).contains("hunter2"));
    }

    #[test]
    fn env_expansion() {
        let look = |n: &str| (n == "SK").then(|| "abc".to_string());
        assert_eq!(expand_env_with("x${SK}y", look).unwrap(), "xabcy");
        assert!(
            expand_env_with("${NOPE}", look)
                .unwrap_err()
                .contains("NOPE")
        );
        assert!(expand_env_with("${SK", look).is_err());
        assert_eq!(expand_env_with("plain", look).unwrap(), "plain");
    }

    #[test]
    fn file_trims_one_newline_and_both_forms_is_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sk");
        std::fs::write(&p, "s3cret\n").unwrap();
        assert_eq!(resolve(None, Some(&p)).unwrap().unwrap().expose(), "s3cret");
        let err = resolve(Some("x"), Some(&p)).unwrap_err();
        assert!(!err.contains("s3cret"));
        assert!(resolve(None, Some(&dir.path().join("missing"))).is_err());
    }
}
