//! The compatibility matrix as plain data: one column per target, one cell per clause. The
//! run in [`crate::matrix`] fills it; [`super::matrix_md`] and [`super::matrix_html`] render it.

use crate::checks::Profile;
use crate::outcome::Status;
use crate::report::{ClauseReport, RunReport};
use crate::spec::{Clause, Spec};

/// One target's column: its report, or why it could not be tested at all.
#[derive(Debug, Clone)]
pub struct TargetResult {
    /// Its name.
    pub name: String,
    /// What it is (see [`crate::matrix::MatrixTarget::description`]).
    pub description: String,
    /// The profile it ran under.
    pub profile: Profile,
    /// An embedded reference server: its URLs hold a port that changes every run, which the
    /// renderers do not show.
    pub embedded: bool,
    /// The run, or why the target could not be tested at all (no check ran: its column is
    /// one "not tested" state with this reason; it counts as inconclusive).
    pub outcome: Result<RunReport, String>,
}

/// The suite's results against every target of a file.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// Seed of every run.
    pub seed: u64,
    /// Generated cases per property.
    pub cases: u32,
    /// When the run started, UTC, as `2026-12-02 00:49 UTC`.
    pub started: String,
    /// One per target, in the file's order.
    pub targets: Vec<TargetResult>,
}

/// One cell: a clause on a target.
#[derive(Debug, Clone, Copy)]
pub struct Cell<'a> {
    /// Its status; `None` when the run selected no check of the clause.
    pub status: Option<Status>,
    /// The clause's report, when the target ran.
    pub clause: Option<&'a ClauseReport>,
    /// Why the target could not be tested at all.
    pub error: Option<&'a str>,
}

impl TargetResult {
    /// The cell of `clause` in this column.
    pub fn cell(&self, clause: &str) -> Cell<'_> {
        match &self.outcome {
            Ok(report) => {
                let found = report.clauses.iter().find(|c| c.id == clause);
                Cell {
                    status: found.map(|c| c.status),
                    clause: found,
                    error: None,
                }
            }
            Err(reason) => Cell {
                status: Some(Status::Inconclusive),
                clause: None,
                error: Some(reason),
            },
        }
    }

    /// Clause counts (pass, fail, inconclusive, skipped) over `clauses`.
    fn counts(&self, clauses: &[Clause]) -> [(Status, usize); 4] {
        let mut counts = [
            (Status::Pass, 0),
            (Status::Fail, 0),
            (Status::Inconclusive, 0),
            (Status::Skipped, 0),
        ];
        for clause in clauses {
            if let Some(status) = self.cell(&clause.id).status {
                for (s, n) in &mut counts {
                    if *s == status {
                        *n += 1;
                    }
                }
            }
        }
        counts
    }

    /// Its profile as the flag spells it: `documented`, `strict`, `staging`.
    pub fn profile_name(&self) -> &'static str {
        match self.profile {
            Profile::Documented => "documented",
            Profile::Strict => "strict",
            Profile::Staging => "staging",
        }
    }

    /// Its profile, and its cases when they differ from the matrix's (a staging target runs
    /// no more than fit its request budget): `staging · 2 cases`.
    pub(crate) fn profile_cell(&self, matrix_cases: u32) -> String {
        match &self.outcome {
            Ok(report) if report.cases != matrix_cases => {
                format!("{} · {} cases", self.profile_name(), report.cases)
            }
            _ => self.profile_name().to_owned(),
        }
    }

    /// Whether the target could not be tested at all.
    pub fn not_tested(&self) -> Option<&str> {
        self.outcome.as_ref().err().map(String::as_str)
    }

    /// `text` without the embedded server's throw-away port: `127.0.0.1:41234` becomes
    /// `127.0.0.1:PORT`, so that a published table does not show an address that no longer
    /// answers, and two runs read alike.
    pub fn scrub(&self, text: &str) -> String {
        let Ok(report) = &self.outcome else {
            return text.to_owned();
        };
        if !self.embedded {
            return text.to_owned();
        }
        let mut out = text.to_owned();
        for url in std::iter::once(&report.base_url).chain(report.cda_url.as_ref()) {
            if let Ok(url) = reqwest::Url::parse(url)
                && let (Some(host), Some(port)) = (url.host_str(), url.port())
            {
                out = out.replace(&format!("{host}:{port}"), &format!("{host}:PORT"));
            }
        }
        out
    }

    pub(crate) fn summary(&self, clauses: &[Clause]) -> String {
        if self.not_tested().is_some() {
            return "not tested".to_owned();
        }
        let parts: Vec<String> = self
            .counts(clauses)
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        if parts.is_empty() {
            "—".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

impl Matrix {
    /// The worst cell of the whole matrix.
    pub fn overall(&self) -> Status {
        let clauses = Spec::embedded().catalog().clauses();
        Status::combine(
            self.targets
                .iter()
                .flat_map(|t| clauses.iter().filter_map(|c| t.cell(&c.id).status)),
        )
    }
}

/// The current time, UTC, to the minute: `2026-12-02 00:49 UTC`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc_minute(secs)
}

/// `secs` after the Unix epoch as `YYYY-MM-DD HH:MM UTC` (the proleptic Gregorian calendar).
pub fn utc_minute(secs: u64) -> String {
    let days = secs / 86_400;
    let (hour, minute) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Howard Hinnant's days-to-civil, for days after 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::utc_minute;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_minute(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_minute(1_798_759_799), "2026-12-31 23:29 UTC");
        assert_eq!(utc_minute(4_107_542_400), "2100-03-01 00:00 UTC");
    }
}
