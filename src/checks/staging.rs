//! The staging request plan: how many requests each clause gets under `--profile staging`,
//! and why. Each check spends its requests on a covering set first (fixtures, one invalid
//! body per documented constraint of the request schema, one probe pair right before and
//! right after each direction of each flag and of the role, one tour of the error paths)
//! and only then on generated cases; the plan is the covering part, which every budget pays,
//! plus what one generated case costs. The figures are the most a run against the reference
//! server at the documented rate limit sent over several seeds, the 429s it met included
//! (`tests/it/budget.rs` holds runs to them). Under a request cap each clause that runs
//! reserves its figure up front (see `client::Ledger`), so that what it gets does not depend
//! on when it is scheduled.

use crate::spec::ClauseId;

/// What one clause gets under `--profile staging`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClausePlan {
    /// The clause.
    pub clause: ClauseId,
    /// Requests of its covering set, paid whatever the number of cases.
    pub covering: u64,
    /// Requests of one generated case of its properties.
    pub per_case: u64,
    /// What the covering requests are.
    pub why: &'static str,
}

impl ClausePlan {
    /// Requests the clause gets with `cases` generated cases per property.
    pub const fn requests(&self, cases: u32) -> u64 {
        self.covering + self.per_case * cases as u64
    }
}

const fn plan(clause: ClauseId, covering: u64, per_case: u64, why: &'static str) -> ClausePlan {
    ClausePlan {
        clause,
        covering,
        per_case,
        why,
    }
}

/// The plan, in catalog order.
pub const STAGING_PLAN: &[ClausePlan] = &[
    plan(
        ClauseId::UpdateResponseSchema,
        6,
        1,
        "fixtures (role, token), an update that changes nothing and one to a name of digits, \
         each answer read against the schema; one generated update",
    ),
    plan(
        ClauseId::UpdateRequestValidation,
        43,
        2,
        "fixtures (2 roles, token), a valid update and its read, the covering set (32 invalid \
         bodies: each required member removed, each member one wrong JSON type, a number for \
         a free string, each const a near miss such as \"access_tokens\", a blank name, an \
         empty id, a role reference naming no role), one read after them",
    ),
    plan(
        ClauseId::UpdateApplies,
        25,
        2,
        "fixtures and the check's fixed updates (a long name with a combining mark and &<>\"', \
         each combination of the flags), each read back; each generated update sent and \
         read back",
    ),
    plan(
        ClauseId::UpdateIsolation,
        41,
        0,
        "fixtures (a target and bystanders), an update and the bystanders read, an update whose \
         body's data.id names a bystander and the bystanders read, the roles read after; generated sequences of at most 3 steps checked against the model",
    ),
    plan(
        ClauseId::UpdateSecretUnchanged,
        13,
        4,
        "fixtures, an update carrying a token attribute and a read, an update (can_access_cma \
         off), the token read back and its old secret used",
    ),
    plan(
        ClauseId::UpdateRolePreserved,
        14,
        6,
        "fixtures; the covering case (moved off the creation role, an update without \
         relationships, a read); each generated sequence of updates without relationships, each read",
    ),
    plan(
        ClauseId::UpdateRoleReassigned,
        12,
        0,
        "fixtures (roles, a token), each role sent and read back",
    ),
    plan(
        ClauseId::UpdateEffectCma,
        34,
        0,
        "fixtures (a token manager of its own makes the changes); per direction (revoke, grant) GET /site and GET /users/me right before the \
         change, the change, the same probes right after, 3 GET /site at once 90 ms later; a \
         history of 2 \
         clients × 2 changes",
    ),
    plan(
        ClauseId::UpdateEffectCda,
        25,
        0,
        "fixtures (a token manager of its own makes the changes); per direction a CDA query \
         right before, the change, right after; a history of 2 clients × 2 changes",
    ),
    plan(
        ClauseId::UpdateEffectCdaPreview,
        29,
        0,
        "fixtures; per direction a drafts and a published query right before, the change, \
         right after; a history of 2 clients × 2 changes; can_access_cda off with \
         can_access_cda_preview on, and a drafts query",
    ),
    plan(
        ClauseId::UpdateEffectRole,
        30,
        0,
        "fixtures (2 roles, 2 tokens); per direction both gated writes right before, the role \
         change, right after; a history of 2 clients × 2 changes",
    ),
    plan(
        ClauseId::UpdateHardcodedRejected,
        9,
        0,
        "the factory tokens listed, an unchanged update of one and the same values in an \
         invalid body, and reads",
    ),
    plan(
        ClauseId::UpdateHardcodedStillDeletable,
        6,
        0,
        "a factory token rotated and deleted (destructive targets only)",
    ),
    plan(
        ClauseId::UpdateTokenVisibility,
        17,
        0,
        "fixtures (a token manager and a token that is not), each reading and updating; the \
         manager moving itself to the plain role",
    ),
    plan(
        ClauseId::UpdateAuth,
        49,
        0,
        "each missing, malformed and forged credential once, a token whose role may not manage \
         tokens updating another and itself, with the reads that show nothing changed",
    ),
    plan(
        ClauseId::UpdateNotFound,
        6,
        0,
        "fixtures (role, token), the token deleted, an update of its id",
    ),
    plan(
        ClauseId::ErrorsEnvelope,
        17,
        0,
        "fixtures (role, token) and the tour: one request per documented error path (a blank \
         name's 422 and a 403 among them), sent once per run and read by headers.content_type and headers.rate_limit too",
    ),
    plan(
        ClauseId::HeadersContentType,
        0,
        0,
        "none of its own: it reads the tour errors.envelope sends",
    ),
    plan(
        ClauseId::HeadersRateLimit,
        0,
        0,
        "none of its own: it reads the tour errors.envelope sends (a 429 is not forced: the \
         first one the run met is checked)",
    ),
];

/// What the strict-only checks cost, per clause: they run only under `--strict`, which adds
/// this to the clause's share. Not reserved (the shares above already fill the default
/// budget): the pool pays for it. Under the staging budget the engine runs the strict-only
/// checks after the others, once those have given back what they did not spend, so that a
/// strict-only check never takes the slots another check of its clause still needs (run
/// among them, it once left `invalid_bodies_are_refused_and_change_nothing` out of budget).
/// A strict staging run measured 391 to 395 requests of 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrictPlan {
    /// The clause.
    pub clause: ClauseId,
    /// Requests of its strict-only checks.
    pub requests: u64,
    /// What they are.
    pub why: &'static str,
}

/// The strict-only checks' requests (the most a run sent over several seeds).
pub const STRICT_PLAN: &[StrictPlan] = &[StrictPlan {
    clause: ClauseId::UpdateRequestValidation,
    requests: 18,
    why: "unknown_members_are_refused: its own fixtures (2 roles, a token), a valid update \
          and its read, one body with an unknown member at each level, a read after them, \
          one generated case",
}];

/// What `clause`'s strict-only checks add to its share under `--strict`.
pub fn strict_extra(clause: ClauseId) -> u64 {
    STRICT_PLAN
        .iter()
        .filter(|p| p.clause == clause)
        .map(|p| p.requests)
        .sum()
}

/// The covering requests of every clause together.
pub const fn covering_total() -> u64 {
    let mut total = 0;
    let mut i = 0;
    while i < STAGING_PLAN.len() {
        total += STAGING_PLAN[i].covering;
        i += 1;
    }
    total
}

/// The requests of one generated case of every property together.
pub const fn per_case_total() -> u64 {
    let mut total = 0;
    let mut i = 0;
    while i < STAGING_PLAN.len() {
        total += STAGING_PLAN[i].per_case;
        i += 1;
    }
    total
}

/// The plan as a table (`run --profile staging --plan`); with `strict`, the strict-only
/// checks' requests too.
pub fn render(cases: u32, max_requests: u64, strict: bool) -> String {
    let mut out = format!(
        "{:<34} {:>8} {:>9} {:>8}  why\n",
        "clause", "covering", "per case", "planned"
    );
    for p in STAGING_PLAN {
        out.push_str(&format!(
            "{:<34} {:>8} {:>9} {:>8}  {}\n",
            p.clause.id(),
            p.covering,
            p.per_case,
            p.requests(cases),
            p.why
        ));
    }
    let planned: u64 = STAGING_PLAN.iter().map(|p| p.requests(cases)).sum();
    out.push_str(&format!(
        "{} covering + {} per case × {cases} {} = {planned} requests planned, of a budget of \
         {max_requests}\n",
        covering_total(),
        per_case_total(),
        if cases == 1 { "case" } else { "cases" }
    ));
    if strict {
        for p in STRICT_PLAN {
            out.push_str(&format!(
                "--strict: {} more for {} ({}), from the pool: the strict-only checks run after the \
                 others, on what they did not spend\n",
                p.requests,
                p.clause.id(),
                p.why
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_names_every_clause_once_in_catalog_order() {
        let checked: Vec<ClauseId> = {
            let mut ids: Vec<ClauseId> = super::super::all().iter().map(|d| d.clause).collect();
            ids.dedup();
            ids
        };
        let planned: Vec<ClauseId> = STAGING_PLAN.iter().map(|p| p.clause).collect();
        assert_eq!(planned, checked);
        assert!(covering_total() + per_case_total() <= 400);
    }
}
