//! Secrets never leave the process: every recorded request, response, report and reproducer
//! goes through [`Secrets`].
//!
//! Two rules, because a target chooses the secrets it issues:
//! - **By position**, for every secret: the value of a `token` attribute and of an
//!   `authorization` member in JSON, and `Bearer <known secret>` / `Basic <credentials>` in
//!   text, are replaced wherever they stand, whatever their length.
//! - **By substring**, only for secrets long and varied enough to be told apart from ordinary
//!   text ([`is_strong`]) and for the user's own token: every occurrence in any encoding a
//!   server can echo (raw; JSON `\uXXXX` and short escapes, nested or mixed; percent-encoded;
//!   base64 of `user:secret`, `secret:` or the secret alone, standard or URL-safe). A weak
//!   secret such as `"string"` is never replaced inside ids, codes or quoted documentation;
//!   the client reports it as a finding instead.
//!
//! Placeholders are `$CONFORMANCE_API_TOKEN`, `$FIXTURE_TOKEN_<id>`, `[secret]` (a secret seen
//! in an answer) and `[credentials]` (Basic credentials); they hold no quote, backslash or
//! control character.

use std::sync::{Arc, RwLock};

use serde_json::Value;

/// A secret with fewer characters than this is weak: it could be ordinary text.
pub const STRONG_MIN_LEN: usize = 16;
/// A secret with fewer distinct characters than this is weak (`aaaa…`, `abababab…`).
pub const STRONG_MIN_DISTINCT: usize = 8;

/// Whether `secret` is long and varied enough to be replaced wherever it occurs as a
/// substring without garbling ordinary text.
pub fn is_strong(secret: &str) -> bool {
    let mut distinct: Vec<char> = secret.chars().collect();
    let len = distinct.len();
    distinct.sort_unstable();
    distinct.dedup();
    len >= STRONG_MIN_LEN && distinct.len() >= STRONG_MIN_DISTINCT
}

#[derive(Debug, Clone)]
struct Known {
    secret: String,
    placeholder: String,
    /// Replaced as a substring (strong, or the user's own token).
    substring: bool,
    /// The parts of its base64 forms that do not depend on what stands next to it.
    base64: Vec<String>,
    /// Only seen in an answer (not the run's own): counts against [`MAX_LEARNED`].
    learned: bool,
}

/// How many secrets seen only in answers are remembered. Every redaction walks the known
/// secrets, so a hostile listing of 100k tokens must not make each one walk 100k; past the
/// bound a `token` attribute is still replaced by position, and the run's own secrets are
/// always registered.
pub(crate) const MAX_LEARNED: usize = 256;

/// The longest secret learned from an answer (a real token is 30 to 60 characters).
pub(crate) const MAX_LEARNED_LEN: usize = 512;

/// The secrets known to the run, each with the placeholder that replaces it.
#[derive(Clone, Default)]
pub struct Secrets {
    known: Arc<RwLock<Vec<Known>>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.known.read().map(|k| k.len()).unwrap_or(0);
        write!(f, "Secrets({n} known)")
    }
}

/// A placeholder with only harmless characters (`$`, `[`, `]`, letters, digits, `_ -.:`),
/// whatever a target put in the id it is made of.
pub fn safe_placeholder(placeholder: &str) -> String {
    placeholder
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "$[]_-.: ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Secrets {
    /// Replace `secret` by `placeholder` from now on (a better name replaces the generic
    /// `[secret]` of a secret first seen in a response). A weak secret is replaced only by
    /// position. Returns true when `secret` is new and weak.
    pub fn register(&self, secret: &str, placeholder: &str) -> bool {
        self.add(secret, placeholder, false, false)
    }

    /// [`register`](Self::register), replaced as a substring whatever its strength: for the
    /// user's own token, which must never show even when it is short.
    pub fn register_always(&self, secret: &str, placeholder: &str) {
        self.add(secret, placeholder, true, false);
    }

    fn add(&self, secret: &str, placeholder: &str, always: bool, learned: bool) -> bool {
        if secret.is_empty() || learned && secret.len() > MAX_LEARNED_LEN {
            return false;
        }
        let placeholder = safe_placeholder(placeholder);
        let Ok(mut known) = self.known.write() else {
            return false;
        };
        if let Some(entry) = known.iter_mut().find(|k| k.secret == secret) {
            if entry.placeholder == "[secret]" {
                entry.placeholder = placeholder;
            }
            if always && !entry.substring {
                entry.substring = true;
                entry.base64 = base64_cores(secret);
            }
            entry.learned &= learned;
            return false;
        }
        if learned && known.iter().filter(|k| k.learned).count() >= MAX_LEARNED {
            return false;
        }
        let substring = always || is_strong(secret);
        known.push(Known {
            secret: secret.to_owned(),
            placeholder,
            substring,
            base64: if substring {
                base64_cores(secret)
            } else {
                Vec::new()
            },
            learned,
        });
        // Longest first, so that a secret containing another is replaced whole.
        known.sort_by_key(|k| std::cmp::Reverse(k.secret.len()));
        !substring
    }

    /// Register every `token` attribute found in a response body. Returns how many of them
    /// were new and weak (a finding: a real API issues long random secrets).
    pub fn learn_from(&self, json: &Value) -> usize {
        match json {
            Value::Object(map) => map
                .iter()
                .map(|(key, value)| match value {
                    Value::String(s) if key == "token" => {
                        usize::from(self.add(s, "[secret]", false, true))
                    }
                    other => self.learn_from(other),
                })
                .sum(),
            Value::Array(items) => items.iter().map(|item| self.learn_from(item)).sum(),
            _ => 0,
        }
    }

    fn placeholder_of(&self, secret: &str) -> Option<String> {
        let known = self.known.read().ok()?;
        known
            .iter()
            .find(|k| k.secret == secret)
            .map(|k| k.placeholder.clone())
    }

    /// `text` with every secret replaced: strong ones in every encoding, every one after
    /// `Bearer `, and Basic credentials whatever they hold.
    pub fn redact(&self, text: &str) -> String {
        let Ok(known) = self.known.read() else {
            return "[redaction unavailable]".to_owned();
        };
        let mut out = replace_encoded(text, &known);
        for k in known.iter().filter(|k| k.substring) {
            for core in &k.base64 {
                if out.contains(core.as_str()) {
                    out = out.replace(core.as_str(), &k.placeholder);
                }
            }
        }
        for k in known.iter().filter(|k| !k.substring) {
            out = replace_after_bearer(&out, &k.secret, &k.placeholder);
        }
        replace_basic(&out)
    }

    /// A JSON value with every secret replaced: `token` and `authorization` members by
    /// position, and [`redact`](Self::redact) on every key and string.
    pub fn redact_json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.redact(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.redact_json(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if k == "token" {
                            self.token_value(v)
                        } else if k.eq_ignore_ascii_case("authorization") {
                            self.authorization_value(v)
                        } else {
                            self.redact_json(v)
                        };
                        (self.redact(k), v)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn token_value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) if !s.is_empty() => Value::String(
                self.placeholder_of(s)
                    .unwrap_or_else(|| "[secret]".to_owned()),
            ),
            Value::Number(_) => Value::String("[secret]".to_owned()),
            other => self.redact_json(other),
        }
    }

    fn authorization_value(&self, value: &Value) -> Value {
        let Value::String(s) = value else {
            return self.redact_json(value);
        };
        let (scheme, credential) = s.split_once(' ').unwrap_or(("", s.as_str()));
        let placeholder = self
            .placeholder_of(credential.trim())
            .unwrap_or_else(|| "[credentials]".to_owned());
        Value::String(if scheme.is_empty() {
            placeholder
        } else {
            format!("{scheme} {placeholder}")
        })
    }
}

impl Secrets {
    /// A recorded body with every secret replaced: a JSON body member by member (so escapes
    /// cannot hide a secret), written back terminal-safe; any other text as text.
    pub fn redact_body(&self, body: &str) -> String {
        match serde_json::from_str::<Value>(body) {
            Ok(json) => crate::output::json_text(&self.redact_json(&json)),
            Err(_) => self.redact(body),
        }
    }

    /// `request` with every secret the run knows now replaced (one learned after it was
    /// recorded, too).
    pub fn redact_request(&self, request: &super::SentRequest) -> super::SentRequest {
        super::SentRequest {
            method: self.redact(&request.method),
            url: self.redact(&request.url),
            headers: request
                .headers
                .iter()
                .map(|(n, v)| (self.redact(n), self.redact(v)))
                .collect(),
            body: request.body.as_deref().map(|b| self.redact_body(b)),
        }
    }

    /// `ex` with its request and body text redacted again (see
    /// [`redact_request`](Self::redact_request)); its parsed JSON is left for the checks.
    pub fn redact_exchange(&self, ex: &super::Exchange) -> super::Exchange {
        super::Exchange {
            request: self.redact_request(&ex.request).into(),
            headers: ex
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), self.redact(v)))
                .collect(),
            body_text: self.redact_body(&ex.body_text).into(),
            ..ex.clone()
        }
    }
}

/// Replace every substring-redacted secret in `text`: first raw, then in the text with its
/// escapes decoded (JSON `\uXXXX` and short escapes behind any number of backslashes,
/// percent-encoding, `+` for a space), so that a secret written in any mix of them is found
/// and the whole stretch that encodes it is replaced.
fn replace_encoded(text: &str, known: &[Known]) -> String {
    let mut out = text.to_owned();
    for k in known.iter().filter(|k| k.substring) {
        if out.contains(k.secret.as_str()) {
            out = out.replace(k.secret.as_str(), &k.placeholder);
        }
    }
    if !out.contains(['\\', '%', '+']) {
        return out;
    }
    let (decoded, spans) = decode(out.as_bytes());
    let mut ranges: Vec<(usize, usize, &str)> = Vec::new();
    for k in known.iter().filter(|k| k.substring) {
        for at in find_all(&decoded, k.secret.as_bytes()) {
            let (start, end) = (spans[at].0, spans[at + k.secret.len() - 1].1);
            // Longest secrets come first: a stretch already taken stays with it.
            if ranges.iter().all(|&(s, e, _)| end <= s || start >= e) {
                ranges.push((start, end, &k.placeholder));
            }
        }
    }
    if ranges.is_empty() {
        return out;
    }
    ranges.sort_unstable_by_key(|&(s, _, _)| s);
    let mut result = String::with_capacity(out.len());
    let mut last = 0;
    for (start, end, placeholder) in ranges {
        // Spans start and end on character boundaries (an escape is ASCII, a raw character
        // is copied whole), so these slices cannot split one.
        result.push_str(out.get(last..start).unwrap_or_default());
        result.push_str(placeholder);
        last = end;
    }
    result.push_str(out.get(last..).unwrap_or_default());
    result
}

/// Start of every non-overlapping occurrence of `needle` in `hay`.
fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut found = Vec::new();
    let Some(&first) = needle.first() else {
        return found;
    };
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)
        {
            None => break,
            Some(p) => {
                let at = i + p;
                if hay[at..].starts_with(needle) {
                    found.push(at);
                    i = at + needle.len();
                } else {
                    i = at + 1;
                }
            }
        }
    }
    found
}

/// `t` with its escapes decoded, and for each decoded byte the stretch of `t` it came from.
fn decode(t: &[u8]) -> (Vec<u8>, Vec<(usize, usize)>) {
    let mut out = Vec::with_capacity(t.len());
    let mut spans = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        let (bytes, end) = decode_at(t, i).unwrap_or_else(|| (vec![t[i]], i + 1));
        for b in bytes {
            out.push(b);
            spans.push((i, end));
        }
        i = end;
    }
    (out, spans)
}

fn hex(t: &[u8], at: usize, digits: usize) -> Option<u32> {
    let part = std::str::from_utf8(t.get(at..at + digits)?).ok()?;
    u32::from_str_radix(part, 16).ok()
}

/// A `\uXXXX` escape behind one or more backslashes: its code unit and where it ends.
fn unicode_escape(t: &[u8], i: usize) -> Option<(u32, usize)> {
    let run = t.get(i..)?.iter().take_while(|&&b| b == b'\\').count();
    let j = i + run;
    (run > 0 && t.get(j) == Some(&b'u')).then_some(())?;
    Some((hex(t, j + 1, 4)?, j + 5))
}

fn decode_at(t: &[u8], i: usize) -> Option<(Vec<u8>, usize)> {
    match t[i] {
        b'%' => Some((vec![u8::try_from(hex(t, i + 1, 2)?).ok()?], i + 3)),
        b'+' => Some((vec![b' '], i + 1)),
        b'\\' => {
            if let Some((unit, end)) = unicode_escape(t, i) {
                let (c, end) = if (0xD800..0xDC00).contains(&unit) {
                    let (low, end) = unicode_escape(t, end)?;
                    let c = 0x10000 + ((unit - 0xD800) << 10) + low.checked_sub(0xDC00)?;
                    (char::from_u32(c)?, end)
                } else {
                    (char::from_u32(unit)?, end)
                };
                return Some((c.to_string().into_bytes(), end));
            }
            let run = t[i..].iter().take_while(|&&b| b == b'\\').count();
            let short = match t.get(i + run) {
                Some(b'"') => Some(b'"'),
                Some(b'/') => Some(b'/'),
                Some(b'n') => Some(b'\n'),
                Some(b'r') => Some(b'\r'),
                Some(b't') => Some(b'\t'),
                Some(b'b') => Some(0x08),
                Some(b'f') => Some(0x0c),
                _ => None,
            };
            match short {
                Some(b) => Some((vec![b], i + run + 1)),
                // An escaped backslash, at any depth, stands for one.
                None if run >= 2 => Some((vec![b'\\'], i + run)),
                None => None,
            }
        }
        _ => None,
    }
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (k, b)| n | u32::from(*b) << (16 - 8 * k));
        for k in 0..=chunk.len() {
            out.push(char::from(alphabet[(n >> (18 - 6 * k) & 63) as usize]));
        }
    }
    out
}

/// The base64 characters that encode only `secret`'s own bits, at each of the three byte
/// offsets it can stand at (after `user:`, say), in both alphabets.
fn base64_cores(secret: &str) -> Vec<String> {
    let mut cores = Vec::new();
    for offset in 0..3usize {
        let mut bytes = vec![0u8; offset];
        bytes.extend_from_slice(secret.as_bytes());
        let start = (8 * offset).div_ceil(6);
        let end = 8 * bytes.len() / 6;
        for alphabet in [STANDARD, URL_SAFE] {
            let encoded = base64(&bytes, alphabet);
            if let Some(core) = encoded.get(start..end.min(encoded.len()))
                && core.len() >= 12
                && !cores.iter().any(|c| c == core)
            {
                cores.push(core.to_owned());
            }
        }
    }
    cores
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/=".contains(c)
}

/// `Bearer <secret>` (any case of `Bearer`) wherever it stands, the secret a whole word.
fn replace_after_bearer(text: &str, secret: &str, placeholder: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(secret) {
        let before = &rest[..at];
        let after = &rest[at + secret.len()..];
        let bearer = before.len() >= 7
            && before.is_char_boundary(before.len() - 7)
            && before[before.len() - 7..].eq_ignore_ascii_case("bearer ");
        let whole = after.chars().next().is_none_or(|c| !is_token_char(c));
        out.push_str(before);
        out.push_str(if bearer && whole { placeholder } else { secret });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `Basic <base64>` (any case of `Basic`): the credentials become `[credentials]`.
fn replace_basic(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("basic ") {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in lower.match_indices("basic ") {
        if at < last {
            continue;
        }
        let start = at + "basic ".len();
        let len = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "+/=-_".contains(c)))
            .unwrap_or(text.len() - start);
        if len >= 4 {
            out.push_str(&text[last..start]);
            out.push_str("[credentials]");
            last = start + len;
        }
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests;
