//! The checks: one small module per clause family. A check is a short async function that
//! reads like the sentence of the documentation it tests; [`all`] lists them with the clause
//! each one verifies (a [`ClauseId`], so a wrong id does not compile) and what they declare
//! (strict-only; a destructive clause), which [`CheckDef::skip_reason`] applies for the
//! engine. The context every check gets, [`Cx`], lives in `cx`.

mod auth;
mod cx;
mod effect;
mod hardcoded;
mod isolation;
mod protocol;
mod response;
mod role;
mod secret;
mod sequences;
pub mod staging;
mod validation;

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use crate::outcome::CheckResult;
use crate::spec::{ClauseId, Spec};

pub use cx::{Cx, live_properties};
pub use protocol::{RunShared, TOUR_CLAUSES};

/// Which promises are hard checks: observed behaviour (`Cx::observed`, strict-only checks)
/// fails a run only under `Strict`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Documented promises fail the run; observed behaviour is recorded as warnings.
    #[default]
    Documented,
    /// Observed behaviour is asserted too (status codes, charset, unknown members refused).
    Strict,
    /// As `documented`, with the generated cases and bursts sized for a shared staging:
    /// every clause still covered, in at most 400 requests by default (the staging budget;
    /// `--strict` with it keeps that budget and asserts observed behaviour too).
    Staging,
}

impl Profile {
    /// The profile as the `--profile` flag spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Documented => "documented",
            Profile::Strict => "strict",
            Profile::Staging => "staging",
        }
    }
}

/// How much of the target a run may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Generated cases per property.
    pub cases: u32,
    /// Longest generated sequence of updates (`update.role.preserved`).
    pub max_steps: usize,
    /// Calls made one after the other after a permission change (after the very next call).
    pub sequential_burst: usize,
    /// Calls made at once after that.
    pub concurrent_burst: usize,
    /// `update.effect.cma`: probes sent at once a tenth of a second after each change (the
    /// full budget's bursts cover that time instead).
    pub trailing_probes: usize,
    /// Revoke-then-grant rounds per permission.
    pub rounds: usize,
    /// `update.effect.*` histories: clients probing at once while the permissions change.
    pub history_clients: usize,
    /// `update.effect.*` histories: permission changes (each followed by a hold of probes).
    pub history_rounds: usize,
    /// `update.effect.*` histories: probes each client makes per change, at most, on a dense
    /// schedule (at most 8, the sparse pace, while a change is in flight or on a target whose
    /// rate limit would not last; fewer when `X-RateLimit-Remaining` runs low).
    pub history_probes: usize,
    /// `update.effect.*` histories: how long the clients keep probing after each change.
    pub history_hold: std::time::Duration,
    /// Whether `update.request.validation` sends every schema mutation once, besides the
    /// generated cases.
    pub every_mutation: bool,
    /// Whether `headers.rate_limit` may exhaust a small limit (with a fixture token of its
    /// own) to see a 429.
    pub exhaust_rate_limit: bool,
    /// Whether `update.auth` follows each forged bearer's update with a fresh read and a
    /// `GET /site` of its own, and records the forms RFC 7235 makes equivalent; otherwise one
    /// read after them all, and `GET /site` for the deleted and rotated-away secrets only.
    pub every_forged_probe: bool,
    /// How many shrinking steps a failing property may take: each is a case sent again, and
    /// under a request budget the checks that have not run yet need those requests more.
    pub shrink_iters: u32,
    /// Whether this is the staging budget (also under the strict profile): the sequence
    /// properties then run few, short sequences.
    pub staging: bool,
}

impl Budget {
    /// The full run: the embedded server, a vendor's own server.
    pub fn full(cases: u32) -> Budget {
        Budget {
            cases,
            max_steps: 6,
            sequential_burst: 4,
            concurrent_burst: 8,
            trailing_probes: 0,
            rounds: 2,
            history_clients: 3,
            history_rounds: 4,
            history_probes: 250,
            history_hold: std::time::Duration::from_millis(160),
            every_mutation: true,
            exhaust_rate_limit: true,
            every_forged_probe: true,
            shrink_iters: 128,
            staging: false,
        }
    }

    /// A shared staging: every clause covered with few requests.
    pub fn staging(cases: u32) -> Budget {
        Budget {
            cases,
            max_steps: 3,
            // The covering pair (the same probe right before and right after each change) is
            // the script's point; bursts are what the concurrent history does better.
            sequential_burst: 0,
            concurrent_burst: 0,
            trailing_probes: 3,
            rounds: 1,
            history_clients: 2,
            history_rounds: 2,
            history_probes: 2,
            history_hold: std::time::Duration::from_millis(120),
            every_mutation: false,
            exhaust_rate_limit: false,
            every_forged_probe: false,
            shrink_iters: 4,
            staging: true,
        }
    }
}

/// Settings shared by every check of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The run's seed: the same seed sends the same requests.
    pub seed: u64,
    /// Cases, bursts and sequence lengths.
    pub budget: Budget,
    /// Which promises are hard checks.
    pub profile: Profile,
    /// Whether destructive clauses may run on this target.
    pub destructive: bool,
    /// Unique per run; part of every fixture name.
    pub run_id: String,
    /// What a failure's text needs to say how to replay it.
    pub replay: ReplayHint,
}

/// How a failure can be replayed after the run: by its id from the JSON report, when one is
/// written, or else by a `replay` command line with the target's options spelled out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayHint {
    /// The `--json` report the run writes.
    pub report: Option<std::path::PathBuf>,
    /// A remote target's CMA URL (`None`: the embedded server).
    pub base_url: Option<String>,
    /// Its CDA URL.
    pub cda_url: Option<String>,
    /// Its environment.
    pub environment: Option<String>,
}

/// A boxed check future.
pub type CheckFuture = Pin<Box<dyn Future<Output = CheckResult> + Send>>;

/// One check: the clause it verifies and the function that verifies it.
#[derive(Clone, Copy)]
pub struct CheckDef {
    /// The clause it verifies.
    pub clause: ClauseId,
    /// The check's name, as listed under the clause.
    pub name: &'static str,
    /// Runs only under `--profile strict`.
    pub strict_only: bool,
    /// The check.
    pub run: fn(Cx) -> CheckFuture,
}

impl Debug for CheckDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}::{}", self.clause, self.name)
    }
}

impl CheckDef {
    /// `<clause id>::<check>`, the trial name.
    pub fn full_name(&self) -> String {
        format!("{}::{}", self.clause, self.name)
    }

    /// Why this check does not run under `settings`, from what it and its clause declare: a
    /// strict-only check outside `--profile strict`, a check of a destructive clause where
    /// destructive clauses are not allowed. The engine asks this before it runs any check, so
    /// no check repeats these rules itself.
    pub fn skip_reason(&self, settings: &Settings) -> Option<String> {
        if self.strict_only && settings.profile != Profile::Strict {
            return Some("observed behaviour: runs under --profile strict".to_owned());
        }
        let destructive = Spec::embedded()
            .catalog()
            .clause(self.clause)
            .is_some_and(|c| c.destructive);
        if destructive && !settings.destructive {
            return Some(
                "destructive: runs on the embedded server the suite starts itself, elsewhere only with --destructive"
                    .to_owned(),
            );
        }
        None
    }
}

macro_rules! check {
    ($clause:ident, $module:ident :: $name:ident) => {
        check!($clause, $module::$name, false)
    };
    ($clause:ident, $module:ident :: $name:ident, strict) => {
        check!($clause, $module::$name, true)
    };
    ($clause:ident, $module:ident :: $name:ident, $strict:expr) => {
        CheckDef {
            clause: ClauseId::$clause,
            name: stringify!($name),
            strict_only: $strict,
            run: |cx| Box::pin($module::$name(cx)),
        }
    };
}

/// Every check, in catalog order.
pub fn all() -> Vec<CheckDef> {
    vec![
        check!(
            UpdateResponseSchema,
            response::success_matches_the_resource_schema
        ),
        check!(
            UpdateRequestValidation,
            validation::invalid_bodies_are_refused_and_change_nothing
        ),
        check!(
            UpdateRequestValidation,
            validation::unknown_members_are_refused,
            strict
        ),
        check!(UpdateApplies, response::attributes_are_stored_as_sent),
        check!(
            UpdateIsolation,
            isolation::an_update_changes_only_the_addressed_token
        ),
        check!(
            UpdateIsolation,
            sequences::generated_sequences_agree_with_the_model
        ),
        check!(
            UpdateSecretUnchanged,
            secret::token_value_is_unchanged_by_an_update
        ),
        check!(
            UpdateSecretUnchanged,
            secret::old_secret_still_authenticates_after_an_update
        ),
        check!(
            UpdateRolePreserved,
            role::role_is_preserved_when_relationships_are_omitted
        ),
        check!(UpdateRoleReassigned, role::role_is_reassigned_when_sent),
        check!(
            UpdateEffectCma,
            effect::cma_flag_change_holds_on_the_next_call
        ),
        check!(
            UpdateEffectCda,
            effect::cda_flag_change_holds_on_the_next_call
        ),
        check!(
            UpdateEffectCdaPreview,
            effect::cda_preview_flag_change_holds_on_the_next_call
        ),
        check!(UpdateEffectRole, effect::role_change_holds_on_the_next_call),
        check!(
            UpdateHardcodedRejected,
            hardcoded::factory_tokens_reject_an_unchanged_update
        ),
        check!(
            UpdateHardcodedStillDeletable,
            hardcoded::factory_token_can_be_rotated_and_deleted
        ),
        check!(
            UpdateTokenVisibility,
            secret::token_is_shown_only_to_token_managers
        ),
        check!(
            UpdateAuth,
            auth::requests_without_valid_credentials_are_refused
        ),
        check!(
            UpdateAuth,
            auth::bearers_derived_from_real_secrets_are_refused_and_change_nothing
        ),
        check!(UpdateNotFound, auth::unknown_id_is_not_found),
        check!(
            ErrorsEnvelope,
            protocol::every_error_uses_the_api_error_envelope
        ),
        check!(HeadersContentType, protocol::every_response_is_json),
        check!(
            HeadersRateLimit,
            protocol::every_response_carries_rate_limit_headers
        ),
    ]
}

pub use crate::text::fnv1a;

/// `attributes` and the role id of a token resource, for before/after comparisons.
pub fn token_state(data: &Value) -> Value {
    serde_json::json!({
        "name": data.pointer("/attributes/name"),
        "can_access_cda": data.pointer("/attributes/can_access_cda"),
        "can_access_cda_preview": data.pointer("/attributes/can_access_cda_preview"),
        "can_access_cma": data.pointer("/attributes/can_access_cma"),
        "hardcoded_type": data.pointer("/attributes/hardcoded_type"),
        "token": data.pointer("/attributes/token"),
        "role": data.pointer("/relationships/role/data/id"),
    })
}

/// The role id of a token resource, if any.
pub fn role_id(data: &Value) -> Option<&str> {
    data.pointer("/relationships/role/data/id")
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(profile: Profile, destructive: bool) -> Settings {
        Settings {
            seed: 1,
            budget: Budget::full(1),
            profile,
            destructive,
            run_id: "t".to_owned(),
            replay: ReplayHint::default(),
        }
    }

    fn def(name: &str) -> CheckDef {
        all()
            .into_iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("no check {name}"))
    }

    #[test]
    fn declared_attributes_decide_what_is_skipped() {
        let strict = def("unknown_members_are_refused");
        let destructive = def("factory_token_can_be_rotated_and_deleted");
        let plain = def("role_is_preserved_when_relationships_are_omitted");
        for profile in [Profile::Documented, Profile::Staging] {
            let reason = strict.skip_reason(&settings(profile, true));
            assert!(reason.is_some_and(|r| r.contains("--profile strict")));
        }
        assert_eq!(strict.skip_reason(&settings(Profile::Strict, false)), None);
        let reason = destructive.skip_reason(&settings(Profile::Strict, false));
        assert!(reason.is_some_and(|r| r.starts_with("destructive:")));
        assert_eq!(
            destructive.skip_reason(&settings(Profile::Documented, true)),
            None
        );
        assert_eq!(
            plain.skip_reason(&settings(Profile::Documented, false)),
            None
        );
    }
}
