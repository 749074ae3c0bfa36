//! The `--json` document: the run, its clauses and checks, and every finding as structured
//! data (the redacted exchanges with their bodies as JSON).

use serde_json::{Value, json};

use super::{CheckReport, MAX_REASON_CHARS, RunReport};
use crate::client::Exchange;
use crate::outcome::Status;

/// `time` as RFC 3339 in UTC, to the second (`2026-12-02T01:37:53Z`).
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The path (and query) of a URL: what a report shows of a request, the host being the
/// target's.
pub(super) fn url_path(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    after_scheme.find('/').map_or("/", |i| &after_scheme[i..])
}

/// The longest body a finding's exchange holds as JSON; a longer one (a target can answer
/// megabytes) is kept as its first [`MAX_REASON_CHARS`] characters.
pub(super) const MAX_BODY_BYTES: usize = 64 << 10;

/// A body as JSON when it is JSON (and not huge), else as a string cut short; `null` for none.
pub(super) fn body_json(text: Option<&str>) -> Value {
    match text {
        None => Value::Null,
        Some(text) => (text.len() <= MAX_BODY_BYTES)
            .then(|| {
                crate::client::json_within(text.as_bytes(), crate::client::MAX_JSON_CONTAINERS)
                    .ok()
                    .flatten()
            })
            .flatten()
            .unwrap_or_else(|| Value::String(crate::text::truncate(text, MAX_REASON_CHARS))),
    }
}

fn headers_json(headers: &[(String, String)]) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|(name, value)| json!({ "name": name, "value": value }))
            .collect(),
    )
}

/// One exchange of a finding's evidence (already redacted) as structured data.
fn exchange_json(ex: &Exchange) -> Value {
    json!({
        "request": {
            "method": ex.request.method,
            "url": ex.request.url,
            "path": url_path(&ex.request.url),
            "headers": headers_json(&ex.request.headers),
            "body": body_json(ex.request.body.as_deref()),
        },
        "response": {
            "status": ex.status,
            "headers": headers_json(&ex.headers),
            "body": body_json((!ex.body_text.is_empty()).then_some(&*ex.body_text)),
        },
        "elapsed_ms": ex.elapsed.as_millis() as u64,
    })
}

impl RunReport {
    /// Counts of clause statuses: (pass, fail, inconclusive, skipped).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let count = |s: Status| self.clauses.iter().filter(|c| c.status == s).count();
        (
            count(Status::Pass),
            count(Status::Fail),
            count(Status::Inconclusive),
            count(Status::Skipped),
        )
    }

    /// The failed and inconclusive checks, in catalog order.
    pub fn findings(&self) -> impl Iterator<Item = &CheckReport> {
        self.clauses
            .iter()
            .flat_map(|c| &c.checks)
            .filter(|k| matches!(k.status, Status::Fail | Status::Inconclusive))
    }

    /// The `--json` document.
    pub fn to_json(&self) -> Value {
        let (pass, fail, inconclusive, skipped) = self.counts();
        let findings: Vec<Value> = self
            .findings()
            .map(|k| {
                json!({
                    "clause": k.clause, "check": k.name, "full_name": k.full_name(),
                    "status": k.status, "expected": k.expected, "observed": k.observed,
                    "exchanges": k.exchanges.iter().map(exchange_json).collect::<Vec<_>>(),
                    "reproducer": k.reproducer, "replay_id": k.replay_id,
                    "duration_ms": k.duration_ms,
                })
            })
            .collect();
        json!({
            "tool": { "name": "token-conformance", "version": env!("CARGO_PKG_VERSION") },
            "target": { "name": self.target_name, "base_url": self.base_url, "cda_url": self.cda_url,
                        "environment": self.environment, "embedded": self.embedded },
            "seed": self.seed,
            "cases": self.cases,
            "profile": self.profile,
            "clauses": self.clauses.iter().map(|c| json!({
                "id": c.id, "title": c.title, "status": c.status, "evidence": c.evidence, "requests": c.requests,
                "checks": c.checks.iter().map(|k| json!({
                    "name": k.name, "status": k.status, "message": k.message, "cases": k.cases,
                    "requests": k.requests, "duration_ms": k.duration_ms, "warnings": k.warnings,
                    "reproducer": k.reproducer, "script": k.script, "replay_id": k.replay_id })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "requests": self.requests,
            "requests_past_cap": self.requests_past_cap,
            "duration_ms": self.duration_ms,
            "started_at": self.started_at,
            "findings": findings,
            "summary": { "pass": pass, "fail": fail, "inconclusive": inconclusive, "skipped": skipped },
        })
    }
}
