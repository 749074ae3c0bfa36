//! Secrets never leave the process: every recorded request, response, report and reproducer
//! goes through [`Secrets::redact`].

use std::sync::{Arc, RwLock};

use serde_json::Value;

/// Secrets shorter than this are not registered: replacing them would garble ordinary text.
const MIN_SECRET_LEN: usize = 6;

/// The secrets known to the run, each with the placeholder that replaces it.
#[derive(Clone, Default)]
pub struct Secrets {
    known: Arc<RwLock<Vec<(String, String)>>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.known.read().map(|k| k.len()).unwrap_or(0);
        write!(f, "Secrets({n} known)")
    }
}

impl Secrets {
    /// Replace `secret` by `placeholder` from now on (a better name replaces the generic
    /// `[secret]` of a secret first seen in a response).
    pub fn register(&self, secret: &str, placeholder: &str) {
        if secret.len() < MIN_SECRET_LEN {
            return;
        }
        self.register_always(secret, placeholder);
    }

    /// [`register`](Self::register) whatever the length: for the user's own token, which
    /// must never show even when it is short.
    pub fn register_always(&self, secret: &str, placeholder: &str) {
        if secret.is_empty() {
            return;
        }
        let Ok(mut known) = self.known.write() else {
            return;
        };
        if let Some(entry) = known.iter_mut().find(|(s, _)| s == secret) {
            if entry.1 == "[secret]" {
                entry.1 = placeholder.to_owned();
            }
            return;
        }
        known.push((secret.to_owned(), placeholder.to_owned()));
        // Longest first, so that a secret containing another is replaced whole.
        known.sort_by_key(|(secret, _)| std::cmp::Reverse(secret.len()));
    }

    /// Register every `token` attribute found in a response body.
    pub fn learn_from(&self, json: &Value) {
        match json {
            Value::Object(map) => {
                for (key, value) in map {
                    match value {
                        Value::String(s) if key == "token" => self.register(s, "[secret]"),
                        other => self.learn_from(other),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| self.learn_from(item)),
            _ => {}
        }
    }

    /// `text` with every known secret replaced by its placeholder.
    pub fn redact(&self, text: &str) -> String {
        let Ok(known) = self.known.read() else {
            return "[redaction unavailable]".to_owned();
        };
        let mut out = text.to_owned();
        for (secret, placeholder) in known.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), placeholder);
            }
        }
        out
    }

    /// A JSON value with every known secret replaced, in keys and strings.
    pub fn redact_json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.redact(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.redact_json(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.redact(k), self.redact_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_and_learned_secrets_are_replaced() {
        let secrets = Secrets::default();
        secrets.register("abcdef123456", "$CONFORMANCE_API_TOKEN");
        secrets
            .learn_from(&serde_json::json!({"data": [{"attributes": {"token": "zzzz9999yyyy"}}]}));
        let text = "Bearer abcdef123456 and zzzz9999yyyy";
        assert_eq!(
            secrets.redact(text),
            "Bearer $CONFORMANCE_API_TOKEN and [secret]"
        );
    }

    #[test]
    fn short_values_are_not_treated_as_secrets() {
        let secrets = Secrets::default();
        secrets.register("a", "[x]");
        assert_eq!(secrets.redact("a cat"), "a cat");
    }
}
