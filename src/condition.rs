//! The alerting condition of an image: a small pure mapping used by `once`, the alert rules,
//! the metrics and the status page alike.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cloud::ImageStatus;

/// An alerting condition (PRODUCT 3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Condition {
    CreateFailed,
    Error,
    Deleted,
    NotFound,
    /// Per cloud, not per image: credentials rejected, wrong config, or stale.
    WatcherDegraded,
}

impl Condition {
    /// The image conditions, in the order metrics list them.
    pub const IMAGE: [Condition; 4] = [
        Condition::CreateFailed,
        Condition::Error,
        Condition::Deleted,
        Condition::NotFound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateFailed => "CREATE_FAILED",
            Self::Error => "ERROR",
            Self::Deleted => "DELETED",
            Self::NotFound => "NOT_FOUND",
            Self::WatcherDegraded => "WATCHER_DEGRADED",
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Condition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "CREATE_FAILED" => Ok(Self::CreateFailed),
            "ERROR" => Ok(Self::Error),
            "DELETED" => Ok(Self::Deleted),
            "NOT_FOUND" => Ok(Self::NotFound),
            "WATCHER_DEGRADED" => Ok(Self::WatcherDegraded),
            other => Err(format!(
                "unknown condition {other:?} (valid: CREATE_FAILED, ERROR, DELETED, NOT_FOUND)"
            )),
        }
    }
}

/// Which conditions alert, and after how many consecutive not-found answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionRules {
    pub enabled: Vec<Condition>,
    pub not_found_after: u32,
}

impl Default for ConditionRules {
    fn default() -> Self {
        Self {
            enabled: Condition::IMAGE.to_vec(),
            not_found_after: 1,
        }
    }
}

impl ConditionRules {
    /// The condition an image is in, given its last known status and how many consecutive
    /// polls answered not-found (0 when the last answer was a 200). `None`: not alerting.
    pub fn condition_of(
        &self,
        status: Option<&ImageStatus>,
        consecutive_not_found: u32,
    ) -> Option<Condition> {
        // Below `not_found_after`, a not-found answer is not yet believed: the image keeps the
        // condition of its last known status (else an ERROR image would falsely "resolve" on
        // its first 404 and fire again as NOT_FOUND a few polls later).
        let c = if consecutive_not_found >= self.not_found_after.max(1) {
            Condition::NotFound
        } else {
            match status? {
                ImageStatus::CreateFailed => Condition::CreateFailed,
                ImageStatus::Error => Condition::Error,
                ImageStatus::Deleted => Condition::Deleted,
                _ => return None,
            }
        };
        self.enabled.contains(&c).then_some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_conditions() {
        let r = ConditionRules::default();
        assert_eq!(r.condition_of(Some(&ImageStatus::Active), 0), None);
        assert_eq!(r.condition_of(Some(&ImageStatus::Creating), 0), None);
        assert_eq!(
            r.condition_of(Some(&ImageStatus::CreateFailed), 0),
            Some(Condition::CreateFailed)
        );
        assert_eq!(
            r.condition_of(Some(&ImageStatus::Error), 0),
            Some(Condition::Error)
        );
        assert_eq!(
            r.condition_of(Some(&ImageStatus::Deleted), 0),
            Some(Condition::Deleted)
        );
        assert_eq!(
            r.condition_of(Some(&ImageStatus::Other("X".into())), 0),
            None
        );
        assert_eq!(r.condition_of(None, 0), None);
        assert_eq!(
            r.condition_of(Some(&ImageStatus::Active), 1),
            Some(Condition::NotFound)
        );
    }

    #[test]
    fn not_found_after_and_disabled_conditions() {
        let r = ConditionRules {
            enabled: vec![Condition::NotFound],
            not_found_after: 3,
        };
        assert_eq!(r.condition_of(None, 2), None);
        assert_eq!(r.condition_of(None, 3), Some(Condition::NotFound));
        assert_eq!(r.condition_of(Some(&ImageStatus::Error), 0), None);
        let r = ConditionRules {
            not_found_after: 3,
            ..ConditionRules::default()
        };
        assert_eq!(
            r.condition_of(Some(&ImageStatus::Error), 2),
            Some(Condition::Error),
            "an unconfirmed 404 keeps the last known condition"
        );
        assert_eq!(r.condition_of(Some(&ImageStatus::Active), 2), None);
    }

    #[test]
    fn parse_round_trip() {
        for c in Condition::IMAGE {
            assert_eq!(c.as_str().parse::<Condition>().unwrap(), c);
        }
        assert!("BROKEN".parse::<Condition>().is_err());
    }
}
