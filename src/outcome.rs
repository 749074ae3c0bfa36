//! Outcomes of checks and clauses: pass, fail, inconclusive, skipped.

use serde::Serialize;

use crate::client::{Exchange, TransportError};

/// The result of one check, or of a clause (the worst of its checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every assertion held.
    Pass,
    /// Not run here (a strict-only check, a destructive clause on a shared target).
    Skipped,
    /// The target could not be tested (unreachable, 5xx after retries, rate-limited past budget).
    Inconclusive,
    /// A violation, with evidence.
    Fail,
}

impl Status {
    /// The lower-case word used in every report.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Inconclusive => "inconclusive",
            Status::Skipped => "skipped",
        }
    }

    /// A clause's status from its checks' statuses: any fail fails; then any inconclusive;
    /// all skipped is skipped; otherwise pass.
    pub fn combine(statuses: impl IntoIterator<Item = Status>) -> Status {
        let mut all_skipped = true;
        let mut worst = Status::Pass;
        for status in statuses {
            if status != Status::Skipped {
                all_skipped = false;
            }
            if status == Status::Fail || (status == Status::Inconclusive && worst != Status::Fail) {
                worst = status;
            }
        }
        if all_skipped { Status::Skipped } else { worst }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A violation: what was expected, and the exchanges that show it (the last one is the
/// smallest request that fails, after shrinking).
#[derive(Debug, Clone)]
pub struct Failure {
    /// What was expected and what happened instead.
    pub message: String,
    /// The evidence, oldest first.
    pub exchanges: Vec<Exchange>,
}

/// Why a check did not pass.
#[derive(Debug, Clone)]
pub enum Finding {
    /// A violation of the clause.
    Fail(Failure),
    /// The target could not be tested.
    Inconclusive(String),
    /// The check does not run here.
    Skipped(String),
}

impl Finding {
    /// A violation shown by these exchanges.
    pub fn fail(message: impl Into<String>, exchanges: &[&Exchange]) -> Finding {
        Finding::Fail(Failure {
            message: message.into(),
            exchanges: exchanges.iter().map(|e| (*e).clone()).collect(),
        })
    }

    /// The target could not be tested.
    pub fn inconclusive(reason: impl Into<String>) -> Finding {
        Finding::Inconclusive(reason.into())
    }
}

impl From<TransportError> for Finding {
    /// No usable answer leaves the check inconclusive, but for an answer past the body cap
    /// and an answer that is not valid HTTP/1.1 on every attempt (at least two): every documented answer
    /// is a small JSON document in a valid HTTP response, so a huge or endless body, or an
    /// answer the target started to send and got wrong each time, is the target breaking
    /// the contract, not a network accident. A refused connection or a timeout stays
    /// inconclusive.
    fn from(err: TransportError) -> Finding {
        match err {
            TransportError::TooLarge { ref partial, .. } => {
                Finding::fail(err.to_string(), &[partial])
            }
            // Once is an accident as likely as a broken target (a reset mid-answer; a POST is
            // sent only once): inconclusive. Every time it was asked for, the target's doing.
            TransportError::Malformed {
                ref partial,
                attempts,
                ..
            } if attempts >= crate::client::MALFORMED_ATTEMPTS => {
                Finding::fail(err.to_string(), &[partial])
            }
            err => Finding::Inconclusive(err.to_string()),
        }
    }
}

/// What a check returns.
pub type CheckResult = Result<(), Finding>;

#[cfg(test)]
mod tests {
    use super::*;

    // Here rather than in the client's tests, so that the client does not import the outcome
    // model (the client's test proves a body over the cap is a `TooLarge`).
    #[test]
    fn a_body_over_the_cap_is_a_failure_with_its_partial_answer() {
        let partial = Exchange {
            request: crate::client::SentRequest {
                method: "GET".to_owned(),
                url: "http://127.0.0.1:1/x".to_owned(),
                headers: Vec::new(),
                body: None,
            }
            .into(),
            status: 200,
            headers: Vec::new(),
            body_text: "[[[".to_owned().into(),
            json: None,
            elapsed: std::time::Duration::ZERO,
            attempts: 1,
        };
        let err = TransportError::TooLarge {
            url: "http://127.0.0.1:1/x".to_owned(),
            cap: 8,
            partial: Box::new(partial),
        };
        let Finding::Fail(failure) = Finding::from(err) else {
            panic!("not a failure");
        };
        assert_eq!(failure.exchanges.len(), 1);
        assert_eq!(failure.exchanges[0].status, 200);
    }

    #[test]
    fn a_malformed_answer_is_a_failure_and_no_answer_is_inconclusive() {
        let url = "http://127.0.0.1:1/x".to_owned();
        let partial = Exchange {
            request: crate::client::SentRequest {
                method: "PUT".to_owned(),
                url: url.clone(),
                headers: Vec::new(),
                body: None,
            }
            .into(),
            status: 0,
            headers: Vec::new(),
            body_text: String::new().into(),
            json: None,
            elapsed: std::time::Duration::ZERO,
            attempts: 1,
        };
        let err = TransportError::Malformed {
            url: url.clone(),
            message: "invalid HTTP header parsed".to_owned(),
            attempts: 2,
            partial: Box::new(partial),
        };
        let Finding::Fail(failure) = Finding::from(err) else {
            panic!("not a failure");
        };
        assert_eq!(
            failure.message,
            "the answer of http://127.0.0.1:1/x is not valid HTTP/1.1: invalid HTTP header parsed (on all 2 attempts)"
        );
        assert_eq!(failure.exchanges[0].request.method, "PUT");
        for err in [
            TransportError::Timeout { url: url.clone() },
            TransportError::Unreachable {
                url: url.clone(),
                message: "connection refused".to_owned(),
            },
            TransportError::GaveUp {
                url,
                attempts: 5,
                last: "503".to_owned(),
            },
        ] {
            assert!(matches!(Finding::from(err), Finding::Inconclusive(_)));
        }
    }
}
