//! The staging plan against what a run sent: a clause over its planned share says so.

use crate::checks::staging::{STAGING_PLAN, strict_extra};

/// A warning on each clause of `clauses` that spent more than its planned share with `cases`
/// cases, resends after a 429 or a transient failure aside (the plan cannot foresee those): the
/// pool paid the difference, so the clauses after it had less, and the plan is short for
/// this target. It goes on the clause's last check. A failed clause is left alone.
pub(super) fn warn_over_share(
    clauses: &mut [crate::report::ClauseReport],
    cases: u32,
    strict: bool,
) {
    for clause in clauses {
        // A failing property shrinks, and each step is a case sent again: that is the
        // failure's cost, not the plan's shortfall.
        if clause.status == crate::outcome::Status::Fail {
            continue;
        }
        let Some(plan) = STAGING_PLAN.iter().find(|p| p.clause.id() == clause.id) else {
            continue;
        };
        let share = plan.requests(cases) + if strict { strict_extra(plan.clause) } else { 0 };
        let resends: u64 = clause.checks.iter().map(|c| c.resends).sum();
        let own = clause.requests.saturating_sub(resends);
        if own <= share {
            continue;
        }
        let Some(last) = clause.checks.last_mut() else {
            continue;
        };
        let resent = if resends == 0 {
            String::new()
        } else {
            format!(" and {resends} resent after a 429 or a transient failure")
        };
        last.warnings.push(format!(
            "this clause sent {own} requests{resent}: {} more than its planned share of {share} \
             (`run --profile staging --plan`). The pool paid the difference, so the clauses after \
             it had less; this target needs more requests than the plan foresees",
            own - share
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::checks::staging::STRICT_PLAN;
    use crate::spec::ClauseId;

    fn clause(id: ClauseId, requests: &[(u64, u64)]) -> crate::report::ClauseReport {
        let checks = requests
            .iter()
            .enumerate()
            .map(|(i, &(requests, resends))| crate::report::CheckReport {
                clause: id.id().to_owned(),
                name: format!("check_{i}"),
                status: crate::outcome::Status::Pass,
                message: String::new(),
                cases: 1,
                requests,
                resends,
                duration_ms: 1,
                warnings: Vec::new(),
                reproducer: None,
                expected: None,
                observed: None,
                exchanges: Vec::new(),
                replay_id: None,
                script: None,
            })
            .collect::<Vec<_>>();
        crate::report::ClauseReport {
            id: id.id().to_owned(),
            title: String::new(),
            status: crate::outcome::Status::Pass,
            evidence: crate::spec::Evidence::Documented,
            requests: checks.iter().map(|c| c.requests).sum(),
            checks,
        }
    }

    #[test]
    fn a_clause_over_its_share_is_warned_on_its_last_check_resends_aside() {
        let plan = STAGING_PLAN
            .iter()
            .find(|p| p.clause == ClauseId::UpdateApplies)
            .map(|p| p.requests(1))
            .unwrap_or_default();
        assert!(plan > 2);
        let mut clauses = vec![
            // Exactly its share: nothing to say.
            clause(ClauseId::UpdateApplies, &[(plan - 2, 0), (2, 0)]),
            // Over by three, none of them resends.
            clause(ClauseId::UpdateApplies, &[(1, 0), (plan + 2, 0)]),
            // Over only by its resends.
            clause(ClauseId::UpdateApplies, &[(plan + 4, 4)]),
            // Over, but failed: its shrinking paid for that.
            clause(ClauseId::UpdateApplies, &[(plan + 9, 0)]),
        ];
        clauses[3].status = crate::outcome::Status::Fail;
        warn_over_share(&mut clauses, 1, false);
        assert!(clauses[0].checks.iter().all(|c| c.warnings.is_empty()));
        assert!(clauses[1].checks[0].warnings.is_empty());
        assert_eq!(clauses[1].checks[1].warnings.len(), 1);
        let text = &clauses[1].checks[1].warnings[0];
        assert!(
            text.contains(&format!(
                "sent {} requests: 3 more than its planned share of {plan}",
                plan + 3
            )),
            "{text}"
        );
        assert!(clauses[2].checks[0].warnings.is_empty());
        assert!(clauses[3].checks[0].warnings.is_empty());
        // Under --strict the clause's strict-only checks have their share too.
        let extra = strict_extra(ClauseId::UpdateRequestValidation);
        assert!(extra > 0);
        let validation = STRICT_PLAN[0].clause;
        let share = STAGING_PLAN
            .iter()
            .find(|p| p.clause == validation)
            .map(|p| p.requests(1))
            .unwrap_or_default();
        let mut strict = vec![clause(validation, &[(share, 0), (extra, 0)])];
        warn_over_share(&mut strict, 1, true);
        assert!(strict[0].checks.iter().all(|c| c.warnings.is_empty()));
        warn_over_share(&mut strict, 1, false);
        assert_eq!(strict[0].checks[1].warnings.len(), 1);
    }
}
