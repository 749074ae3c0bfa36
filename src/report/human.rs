//! The human report: a table per clause, the failures in full, a summary line; coloured
//! only for a terminal without `NO_COLOR`, after every text has been made terminal-safe.

use std::fmt::Write as _;

use super::RunReport;
use crate::outcome::Status;

impl RunReport {
    /// The human report: a table per clause, the failures in full, a summary line.
    pub fn render(&self, verbose: bool) -> String {
        self.render_styled(verbose, false)
    }

    /// [`render`](Self::render), with the results coloured when `color` (a terminal without
    /// `NO_COLOR`).
    pub fn render_styled(&self, verbose: bool, color: bool) -> String {
        let paint = |status: Status, text: String| -> String {
            if !color {
                return text;
            }
            let code = match status {
                Status::Pass => "32",
                Status::Fail => "1;31",
                Status::Inconclusive => "33",
                Status::Skipped => "2",
            };
            format!("\x1b[{code}m{text}\x1b[0m")
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "target {} ({}{}) · profile {} · seed {} · {} cases per property\n",
            crate::output::terminal_line(&self.target_name),
            crate::output::terminal_line(&self.base_url),
            if self.embedded {
                ", embedded reference server"
            } else {
                ""
            },
            self.profile.as_str(),
            self.seed,
            self.cases
        );
        let _ = writeln!(
            out,
            "{:<13} {:<11} {:>6} {:>8}  clause",
            "result", "evidence", "cases", "requests"
        );
        for clause in &self.clauses {
            let cases: u64 = clause.checks.iter().map(|c| c.cases).sum();
            let _ = writeln!(
                out,
                "{} {:<11} {:>6} {:>8}  {} — {}",
                paint(
                    clause.status,
                    format!("{:<13}", clause.status.as_str().to_uppercase())
                ),
                clause.evidence.to_string(),
                super::cases_column(cases),
                clause.requests,
                crate::output::terminal_line(&clause.id),
                crate::output::terminal_line(&clause.title)
            );
            for check in &clause.checks {
                if check.status != Status::Pass || verbose {
                    let reason =
                        crate::output::terminal_line(check.message.lines().next().unwrap_or(""));
                    let _ = writeln!(
                        out,
                        "{:<13} {} {:>6} {:>8}    {} {}",
                        "",
                        paint(check.status, format!("{:<11}", check.status.as_str())),
                        super::cases_column(check.cases),
                        check.requests,
                        crate::output::terminal_line(&check.name),
                        if check.status == Status::Fail || reason.is_empty() {
                            String::new()
                        } else {
                            format!("({reason})")
                        }
                    );
                }
                for warning in &check.warnings {
                    let warning = crate::output::terminal_line(warning);
                    let _ = writeln!(out, "{:<41}    warning: {warning}", "");
                }
            }
        }
        for clause in &self.clauses {
            for check in clause.checks.iter().filter(|c| c.status == Status::Fail) {
                let _ = writeln!(
                    out,
                    "\n{}\n{}",
                    paint(
                        Status::Fail,
                        format!(
                            "──── FAIL {} ────",
                            crate::output::terminal_line(&check.full_name())
                        )
                    ),
                    crate::output::terminal(&check.message)
                );
            }
        }
        let (pass, fail, inconclusive, skipped) = self.counts();
        let _ = writeln!(
            out,
            "\n{} clauses: {pass} pass, {fail} fail, {inconclusive} inconclusive, {skipped} skipped · {} requests{} in {:.1} s{}",
            self.clauses.len(),
            self.requests,
            if self.requests_past_cap > 0 {
                format!(
                    " ({} of them cleanup past the request cap)",
                    self.requests_past_cap
                )
            } else {
                String::new()
            },
            self.duration_ms as f64 / 1000.0,
            if self.rate_limit_wait_ms > 0 {
                format!(
                    " (waits on rate limits: {:.1} s, summed over concurrent requests)",
                    self.rate_limit_wait_ms as f64 / 1000.0
                )
            } else {
                String::new()
            }
        );
        out
    }
}
