//! Reads and parses the config file into the raw schema (strict: unknown keys are errors).
//! It must not judge values; that is `validate`'s job.

use std::fmt;
use std::path::{Path, PathBuf};

use super::Config;
use super::locate::{Locator, column_of, line_of};

/// A parsed config file together with its text (for line numbers) and path (for messages).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub source: String,
    pub path: PathBuf,
}

/// The file could not be read or is not valid TOML for our schema.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// TOML syntax error, unknown key, wrong type, unknown enum value.
    Parse {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        /// The key path the error is about, when it can be found (`clouds[0].auth.foo`).
        key: Option<String>,
        /// serde/toml's message: for an unknown key it lists the valid keys. It never quotes
        /// the source line (which could hold an inline secret).
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, error } => {
                write!(f, "{}: cannot read config file: {error}", path.display())
            }
            Self::Parse {
                path,
                line,
                column,
                key,
                message,
            } => {
                write!(f, "{}", path.display())?;
                if let Some(l) = line {
                    write!(f, ":{l}")?;
                    if let Some(c) = column {
                        write!(f, ":{c}")?;
                    }
                }
                write!(f, ": error: ")?;
                if let Some(k) = key {
                    write!(f, "{k}: ")?;
                }
                f.write_str(message.trim_end())
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { error, .. } => Some(error),
            Self::Parse { .. } => None,
        }
    }
}

/// Reads and parses `path`.
///
/// # Errors
/// [`ConfigError::Read`] when the file cannot be read, [`ConfigError::Parse`] (with line and
/// column) when it is not valid for the schema.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse(path, source)
}

/// Parses `source` as if read from `path` (for tests and reloads from memory).
///
/// # Errors
/// [`ConfigError::Parse`] with line and column.
pub fn parse(path: &Path, source: String) -> Result<Loaded, ConfigError> {
    match toml::from_str::<Config>(&source) {
        Ok(config) => Ok(Loaded {
            config,
            source,
            path: path.to_path_buf(),
        }),
        Err(e) => {
            let span = e.span();
            let key = span
                .as_ref()
                .and_then(|s| Locator::new(&source).path_at(s.start));
            Err(ConfigError::Parse {
                path: path.to_path_buf(),
                line: span.as_ref().map(|s| line_of(&source, s.start)),
                column: span.as_ref().map(|s| column_of(&source, s.start)),
                key,
                message: e.message().to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_line_and_valid_keys() {
        let src = "[[clouds]]\nprovider = \"otc\"\nregion = \"eu-de\"\nregoin = \"x\"\n[clouds.auth]\ntype = \"aksk\"\n";
        let err = parse(Path::new("c.toml"), src.to_string()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("c.toml:4:1: error: clouds[0].regoin: "),
            "{text}"
        );
        assert!(text.contains("regoin"), "{text}");
        assert!(text.contains("region"), "lists valid keys: {text}");
    }

    #[test]
    fn syntax_error_has_line_and_does_not_quote_source() {
        let src = "[web]\nlisten = \"0.0.0.0:1\"\n[[channels]]\npassword = \"hunter2\" x\n";
        let text = parse(Path::new("c.toml"), src.to_string())
            .unwrap_err()
            .to_string();
        assert!(text.starts_with("c.toml:4:"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let err = load(Path::new("/nonexistent/config.toml")).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(err.to_string().contains("/nonexistent/config.toml"));
    }
}
