//! What `fci gc` keeps: fci.yaml's `gc:` section, overridden by the flags, with a documented
//! default when neither says anything (docs/gc.md).

use serde::Deserialize;
use std::time::Duration;

/// Runs kept without any policy given.
pub const DEFAULT_KEEP_RUNS: usize = 50;
/// Age past which a run goes without any policy given.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(14 * 86400);
/// How long after its last record a run is always kept: its next stage may be about to start
/// on the manifest it holds (the scheduler's queue, a worker busy elsewhere).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);
/// How much of a known-good ref's history (its parent chain) `ostree prune --depth` keeps: a
/// run queued on an older known-good still composes on it.
pub const DEFAULT_OSTREE_DEPTH: u32 = 10;

/// fci.yaml's `gc:` as written.
#[derive(Deserialize, Debug, Default, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    pub keep_runs: Option<usize>,
    pub max_age: Option<String>,
    pub max_size: Option<String>,
    pub grace: Option<String>,
    pub ostree_depth: Option<u32>,
}

/// A policy, each limit present only when given (by fci.yaml or a flag).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Policy {
    /// At most this many runs (the newest) besides those always kept.
    pub keep_runs: Option<usize>,
    /// Runs whose last record is older go.
    pub max_age: Option<Duration>,
    /// The workspace and state together shrink to this, dropping the oldest runs first.
    pub max_size: Option<u64>,
    pub grace: Option<Duration>,
    pub ostree_depth: Option<u32>,
}

impl Raw {
    /// The policy fci.yaml states; the error names the key (the caller names the file).
    pub fn parse(&self) -> Result<Policy, String> {
        let dur = |k: &str, v: &Option<String>| {
            v.as_deref()
                .map(|s| crate::duration::parse(s).map_err(|e| format!("gc: {k}: `{s}`: {e}")))
                .transpose()
        };
        Ok(Policy {
            keep_runs: self.keep_runs,
            max_age: dur("max_age", &self.max_age)?,
            max_size: self
                .max_size
                .as_deref()
                .map(|s| crate::limits::parse_size(s).map_err(|e| format!("gc: max_size: {e}")))
                .transpose()?,
            grace: dur("grace", &self.grace)?,
            ostree_depth: self.ostree_depth,
        })
    }
}

impl Policy {
    /// `over`'s limits where it has them, this one's elsewhere.
    pub fn overridden_by(self, over: Policy) -> Policy {
        Policy {
            keep_runs: over.keep_runs.or(self.keep_runs),
            max_age: over.max_age.or(self.max_age),
            max_size: over.max_size.or(self.max_size),
            grace: over.grace.or(self.grace),
            ostree_depth: over.ostree_depth.or(self.ostree_depth),
        }
    }

    /// The default's run limits when no run limit at all was given (a size alone is a policy).
    pub fn with_defaults(mut self) -> Policy {
        if self.keep_runs.is_none() && self.max_age.is_none() && self.max_size.is_none() {
            self.keep_runs = Some(DEFAULT_KEEP_RUNS);
            self.max_age = Some(DEFAULT_MAX_AGE);
        }
        self.grace.get_or_insert(DEFAULT_GRACE);
        self.ostree_depth.get_or_insert(DEFAULT_OSTREE_DEPTH);
        self
    }

    pub fn grace(&self) -> Duration {
        self.grace.unwrap_or(DEFAULT_GRACE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let file = Raw {
            keep_runs: Some(5),
            max_age: Some("2d".into()),
            ..Default::default()
        }
        .parse()
        .unwrap();
        let flags = Policy {
            keep_runs: Some(1),
            ..Default::default()
        };
        let p = file.overridden_by(flags).with_defaults();
        assert_eq!(p.keep_runs, Some(1));
        assert_eq!(p.max_age, Some(Duration::from_secs(2 * 86400)));
        assert_eq!(p.grace, Some(DEFAULT_GRACE));
        let none = Policy::default().with_defaults();
        assert_eq!(none.keep_runs, Some(DEFAULT_KEEP_RUNS));
        let bad = Raw {
            max_size: Some("lots".into()),
            ..Default::default()
        };
        assert!(bad.parse().unwrap_err().starts_with("gc: max_size:"));
    }
}
