//! The run: the suite against every target of a file, one after the other, into a
//! [`Matrix`] that the renderers in [`crate::report`] turn into text.

use std::sync::Arc;

use super::file::{MatrixFile, MatrixTarget, TargetKind};
use crate::checks::Profile;
use crate::engine::Session;
use crate::faults::FaultSet;
use crate::plan::{self, BudgetKind, Limits, Plan, Strictness};
use crate::reference::ServerConfig;
use crate::report::CheckReport;
use crate::report::matrix::{Matrix, TargetResult};

impl MatrixTarget {
    /// The profile this target runs under: its own, or `documented`.
    pub fn run_profile(&self) -> Profile {
        self.profile.unwrap_or_default()
    }

    fn plan(&self, seed: u64, cases: u32) -> Plan {
        let profile = self.run_profile();
        // As `run --profile staging` does: a request budget, and no more cases than fit it.
        let (strictness, budget, cases, max_requests) = match profile {
            Profile::Staging => (
                Strictness::Documented,
                BudgetKind::Staging,
                plan::staging_cases(plan::STAGING_DEFAULT_MAX_REQUESTS)
                    .map_or(cases, |fit| fit.min(cases)),
                Some(plan::STAGING_DEFAULT_MAX_REQUESTS),
            ),
            Profile::Strict => (Strictness::Strict, BudgetKind::Full, cases, None),
            Profile::Documented => (Strictness::Documented, BudgetKind::Full, cases, None),
        };
        let base = Plan {
            seed,
            cases,
            strictness,
            budget,
            limits: Limits {
                max_requests,
                ..Limits::default()
            },
            target_name: Some(self.name.clone()),
            ..Plan::default()
        };
        match &self.kind {
            TargetKind::Embedded { faults } => Plan {
                target: plan::TargetKind::Embedded(Box::new(ServerConfig {
                    // Off, except for the fault that is about the 429 itself.
                    rate_limit: faults
                        .iter()
                        .find_map(|f| crate::mutants::server_config(Some(*f)).rate_limit),
                    faults: FaultSet::of(faults.iter().copied()),
                    ..ServerConfig::default()
                })),
                ..base
            },
            TargetKind::Remote {
                base_url,
                cda_url,
                environment,
                secret,
                ..
            } => Plan {
                target: plan::TargetKind::Remote(plan::Remote {
                    base_url: base_url.clone(),
                    cda_url: cda_url.clone(),
                    environment: environment.clone(),
                    // A missing token variable is a "not tested" column before any plan runs.
                    secret: plan::Secret::new(
                        secret.as_ref().map(|s| s.0.clone()).unwrap_or_default(),
                    ),
                    ca_cert: None,
                }),
                ..base
            },
        }
    }
}

/// Run the suite against every target of `file`, one after the other.
pub async fn run_matrix(file: &MatrixFile, seed: u64, cases: u32) -> Matrix {
    run_matrix_with(file, seed, cases, |_, _, _, _| {}).await
}

/// [`run_matrix`], calling `progress(target, check, done, total)` after each check.
pub async fn run_matrix_with(
    file: &MatrixFile,
    seed: u64,
    cases: u32,
    progress: impl FnMut(&str, &CheckReport, usize, usize),
) -> Matrix {
    let (_keep, stop) = tokio::sync::watch::channel(Vec::new());
    run_matrix_until(file, seed, cases, stop, progress).await
}

/// [`run_matrix_with`], stopped from outside (a signal): `stop` holds the reasons given so
/// far. At the first, the target running is interrupted as `run` would be (its checks end
/// inconclusive and remove their fixtures) and the targets after it are not run; at the
/// second, that cleanup is cut short too. The table is still complete.
pub async fn run_matrix_until(
    file: &MatrixFile,
    seed: u64,
    cases: u32,
    stop: tokio::sync::watch::Receiver<Vec<String>>,
    progress: impl FnMut(&str, &CheckReport, usize, usize),
) -> Matrix {
    run_matrix_live(file, seed, cases, stop, |_, _| {}, progress).await
}

/// [`run_matrix_until`], also told when a target's checks start, with its session (whose
/// client's totals the live progress polls).
pub async fn run_matrix_live(
    file: &MatrixFile,
    seed: u64,
    cases: u32,
    mut stop: tokio::sync::watch::Receiver<Vec<String>>,
    mut starting: impl FnMut(&str, &Session),
    mut progress: impl FnMut(&str, &CheckReport, usize, usize),
) -> Matrix {
    let started = crate::report::matrix::utc_now();
    let mut targets = Vec::with_capacity(file.targets.len());
    for target in &file.targets {
        let plan = target.plan(seed, cases);
        let stopped = stop.borrow().first().cloned();
        let outcome = if let Some(reason) = target.not_tested() {
            Err(reason)
        } else if let Some(reason) = stopped {
            Err(crate::output::terminal(&format!("not run: {reason}")))
        } else {
            let opened = tokio::select! {
                opened = Session::open(&plan) => Some(opened),
                _ = stop.wait_for(|reasons| !reasons.is_empty()) => None,
            };
            match opened {
                None => Err(crate::output::terminal(&format!(
                    "not run: {}",
                    stop.borrow().first().cloned().unwrap_or_default()
                ))),
                // Redacted by the engine; made terminal-safe for the Markdown and the page.
                Some(Err(err)) => Err(crate::output::terminal(&err.to_string())),
                Some(Ok(session)) => {
                    let session = Arc::new(session);
                    let watcher = {
                        let (session, mut stop) = (Arc::clone(&session), stop.clone());
                        tokio::spawn(async move {
                            if let Ok(reasons) = stop.wait_for(|r| !r.is_empty()).await {
                                let first = reasons.first().cloned().unwrap_or_default();
                                drop(reasons);
                                session.interrupt(&first);
                            }
                            if let Ok(reasons) = stop.wait_for(|r| r.len() > 1).await {
                                let second = reasons.get(1).cloned().unwrap_or_default();
                                drop(reasons);
                                session.stop_now(&second);
                            }
                        })
                    };
                    starting(&target.name, &session);
                    let report = session
                        .run_all(|check, done, total| {
                            progress(&target.name, check, done, total);
                        })
                        .await;
                    watcher.abort();
                    let _ = watcher.await;
                    if let Ok(session) = Arc::try_unwrap(session) {
                        session.close().await;
                    }
                    Ok(report)
                }
            }
        };
        targets.push(TargetResult {
            name: target.name.clone(),
            description: target.description(),
            profile: target.run_profile(),
            embedded: matches!(target.kind, TargetKind::Embedded { .. }),
            outcome,
        });
    }
    Matrix {
        seed,
        cases,
        started,
        targets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Secret;

    #[test]
    fn a_secret_never_shows_in_debug() {
        let target = MatrixTarget {
            name: "staging".to_owned(),
            line: 1,
            kind: TargetKind::Remote {
                base_url: "https://staging.example".to_owned(),
                cda_url: None,
                environment: None,
                token_env: "STAGING_TOKEN".to_owned(),
                secret: Some(Secret("s3cr3t-value".to_owned())),
            },
            profile: None,
        };
        let debug = format!("{target:?}");
        assert!(!debug.contains("s3cr3t-value"), "{debug}");
        assert!(debug.contains("[secret]"));
        let plan::TargetKind::Remote(remote) = target.plan(1, 2).target else {
            panic!("not a remote plan");
        };
        assert_eq!(remote.secret.expose(), "s3cr3t-value");
    }
}
