//! The state store's error type: every variant names the database file and, where the user can
//! do something, says what. It must not hold secrets (the store never sees any).

use rusqlite::ErrorCode;

/// Recovery hint for a database that cannot be used as it is.
fn way_out(path: &str) -> String {
    format!(
        "Stop the service, move the file and its WAL aside \
         (mv {path} {path}.corrupt; mv {path}-wal {path}.corrupt-wal; rm -f {path}-shm) \
         and start again: image state starts fresh; notifications not yet delivered are lost"
    )
}

/// A failure of the durable state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file is not a SQLite database, or fails its integrity check.
    #[error(
        "state database {path} is not a valid SQLite database ({detail}). {}",
        way_out(path)
    )]
    Corrupt { path: String, detail: String },
    /// The file (or its directory) cannot be opened, e.g. permissions or a missing directory.
    #[error(
        "cannot open state database {path}: {source}. Check that the directory exists and \
         that the service user may read and write it and its -wal/-shm files"
    )]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer version whose schema this one does not know.
    #[error(
        "state database {path} has schema version {found}, newer than this version \
         understands ({supported}). Run the newer version again, or {}",
        lowercase_first(&way_out(path))
    )]
    TooNew {
        path: String,
        found: u32,
        supported: u32,
    },
    /// A stored JSON value does not decode (written by something else, or damaged).
    #[error(
        "state database {path}: stored {what} does not decode ({source}). {}",
        way_out(path)
    )]
    Decode {
        path: String,
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// Any other SQLite failure (disk full, I/O error, a constraint a caller broke, ...).
    #[error("state database {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
}

impl StoreError {
    /// Maps a SQLite error met while using `path`, recognising corruption.
    pub(crate) fn from_sqlite(path: &str, source: rusqlite::Error) -> Self {
        match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Self::Corrupt {
                path: path.to_string(),
                detail: source.to_string(),
            },
            Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => {
                Self::Open {
                    path: path.to_string(),
                    source,
                }
            }
            _ => Self::Sqlite {
                path: path.to_string(),
                source,
            },
        }
    }

    /// True when the file itself is unusable (the caller should stop, not retry).
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Self::Corrupt { .. } | Self::Decode { .. })
    }
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}
