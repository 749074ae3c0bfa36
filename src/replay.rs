//! `token-conformance replay`: one failure run again after the run that found it. A failure
//! is named by its replay id ([`crate::report::replay_id`]) in a `--json` report, which holds
//! the seed, cases, profile and target it ran with; the engine is deterministic per seed and
//! check, so running that one check again with them sends the same generated cases and
//! shrinks to the same sequence. The check creates its fixtures again and removes them when
//! it ends, as in every run.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::checks::Profile;
use crate::plan::{BudgetKind, Strictness};
use crate::report::replay_id::replay_id;

/// Why a failure cannot be found in a report.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The report cannot be read.
    #[error("failed to read the report {}: {source}", path.display())]
    Read {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The report is not a `--json` report.
    #[error("{} is not a token-conformance --json report: {why}", path.display())]
    NotAReport {
        /// Where.
        path: PathBuf,
        /// What is missing.
        why: String,
    },
    /// No failure of the report has this id.
    #[error("no failure in {} has the replay id {id:?}{}", path.display(), known_ids(.known))]
    NotFound {
        /// Where.
        path: PathBuf,
        /// The id asked for.
        id: String,
        /// The ids of the report's failures.
        known: Vec<String>,
    },
}

fn known_ids(known: &[String]) -> String {
    if known.is_empty() {
        "; it records no failure".to_owned()
    } else {
        format!("; its failures: {}", known.join(", "))
    }
}

/// The target a report names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTarget {
    /// CMA URL (the embedded server's was throw-away).
    pub base_url: String,
    /// CDA URL.
    pub cda_url: Option<String>,
    /// Environment.
    pub environment: Option<String>,
    /// Whether the run started its own embedded server.
    pub embedded: bool,
}

/// What is needed to run a failing check again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// `<clause id>::<check>`.
    pub check: String,
    /// Seed.
    pub seed: u64,
    /// Cases per property.
    pub cases: u32,
    /// Profile.
    pub profile: Profile,
    /// The failure's message in the report (empty when not from a report).
    pub reported: String,
    /// The target it failed on (`None` when not from a report).
    pub target: Option<ReportTarget>,
}

impl Case {
    /// The replay id of this case.
    pub fn id(&self) -> String {
        replay_id(self.seed, self.cases, self.profile.as_str(), &self.check)
    }

    /// The strictness and budget its profile means.
    pub fn strictness_and_budget(&self) -> (Strictness, BudgetKind) {
        match self.profile {
            Profile::Documented => (Strictness::Documented, BudgetKind::Full),
            Profile::Strict => (Strictness::Strict, BudgetKind::Full),
            Profile::Staging => (Strictness::Documented, BudgetKind::Staging),
        }
    }
}

/// The profile as a report spells it.
pub fn parse_profile(text: &str) -> Option<Profile> {
    match text {
        "documented" => Some(Profile::Documented),
        "strict" => Some(Profile::Strict),
        "staging" => Some(Profile::Staging),
        _ => None,
    }
}

/// Read the report at `path` and find the failure with replay id `id`.
pub fn from_report(path: &Path, id: &str) -> Result<Case, ReplayError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Read {
        path: path.to_owned(),
        source,
    })?;
    let json: Value = serde_json::from_str(&text).map_err(|err| ReplayError::NotAReport {
        path: path.to_owned(),
        why: format!("not JSON ({err})"),
    })?;
    find(&json, id).map_err(|err| match err {
        Found::Missing(why) => ReplayError::NotAReport {
            path: path.to_owned(),
            why,
        },
        Found::NotFound(known) => ReplayError::NotFound {
            path: path.to_owned(),
            id: id.to_owned(),
            known,
        },
    })
}

/// Why [`find`] found nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The document lacks what a report has.
    Missing(String),
    /// No failure has the id; these are the ids of its failures.
    NotFound(Vec<String>),
}

/// The failure with replay id `id` in the report `json`: a failed check whose id (recorded
/// in its `replay_id`, or computed from the report's seed, cases and profile) is `id`.
pub fn find(json: &Value, id: &str) -> Result<Case, Found> {
    let missing = |what: &str| Found::Missing(format!("it has no {what}"));
    let seed = json
        .get("seed")
        .and_then(Value::as_u64)
        .ok_or_else(|| missing("seed"))?;
    let cases = json
        .get("cases")
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok())
        .ok_or_else(|| missing("cases"))?;
    let profile = json
        .get("profile")
        .and_then(Value::as_str)
        .and_then(parse_profile)
        .ok_or_else(|| missing("profile"))?;
    let target = json.get("target").ok_or_else(|| missing("target"))?;
    let text = |key: &str| target.get(key).and_then(Value::as_str).map(str::to_owned);
    let target = ReportTarget {
        base_url: text("base_url").ok_or_else(|| missing("target.base_url"))?,
        cda_url: text("cda_url"),
        environment: text("environment"),
        embedded: target
            .get("embedded")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    let clauses = json
        .get("clauses")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("clauses"))?;
    let mut known = Vec::new();
    for clause in clauses {
        let Some(clause_id) = clause.get("id").and_then(Value::as_str) else {
            continue;
        };
        for check in clause
            .get("checks")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
        {
            if check.get("status").and_then(Value::as_str) != Some("fail") {
                continue;
            }
            let Some(name) = check.get("name").and_then(Value::as_str) else {
                continue;
            };
            let full = format!("{clause_id}::{name}");
            let computed = replay_id(seed, cases, profile.as_str(), &full);
            let recorded = check.get("replay_id").and_then(Value::as_str);
            if computed == id || recorded == Some(id) {
                return Ok(Case {
                    check: full,
                    seed,
                    cases,
                    profile,
                    reported: check
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    target: Some(target),
                });
            }
            known.push(format!("{} ({full})", recorded.unwrap_or(&computed)));
        }
    }
    Err(Found::NotFound(known))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn report() -> Value {
        json!({
            "seed": 7, "cases": 4, "profile": "documented",
            "target": { "name": "x", "base_url": "http://127.0.0.1:9", "cda_url": null, "embedded": false },
            "clauses": [
                { "id": "update.role.preserved", "checks": [
                    { "name": "role_is_preserved_when_relationships_are_omitted", "status": "fail", "message": "m" },
                    { "name": "other", "status": "pass", "message": "" } ] } ]
        })
    }

    #[test]
    fn a_failure_is_found_by_its_id_and_only_a_failure() {
        let full = "update.role.preserved::role_is_preserved_when_relationships_are_omitted";
        let id = replay_id(7, 4, "documented", full);
        let case = find(&report(), &id).unwrap();
        assert_eq!(case.check, full);
        assert_eq!((case.seed, case.cases), (7, 4));
        assert_eq!(case.id(), id);
        assert_eq!(
            case.target.unwrap().base_url,
            "http://127.0.0.1:9".to_owned()
        );
        let passing = replay_id(7, 4, "documented", "update.role.preserved::other");
        match find(&report(), &passing) {
            Err(Found::NotFound(known)) => {
                assert_eq!(known, vec![format!("{id} ({full})")]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(find(&json!({}), &id), Err(Found::Missing(_))));
    }

    #[test]
    fn the_id_is_stable_and_depends_on_every_part() {
        let id = replay_id(1, 2, "strict", "a::b");
        assert_eq!(id.len(), 10);
        assert_eq!(id, replay_id(1, 2, "strict", "a::b"));
        for other in [
            replay_id(2, 2, "strict", "a::b"),
            replay_id(1, 3, "strict", "a::b"),
            replay_id(1, 2, "documented", "a::b"),
            replay_id(1, 2, "strict", "a::c"),
        ] {
            assert_ne!(id, other);
        }
    }
}
