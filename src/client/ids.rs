//! Ids that came from the target, made safe to put in a request.
//!
//! A target decides what ids its listings and create answers carry, and a privileged run
//! builds write paths from them: an id like `../access_tokens/12` would aim the suite's
//! writes at a resource of the target's choosing (the user's own management token, say).
//! So an id is only ever used as a [`ResourceId`], which can only be built by validating it
//! against a small alphabet, and a path to a resource is only ever built by
//! [`resource_path`], from a [`Collection`] and a [`ResourceId`]: one id, one path segment.

use serde_json::Value;

/// The longest id accepted (DatoCMS ids are short numeric strings).
pub const MAX_ID_LEN: usize = 64;

/// An id that is safe as one path segment, in reports and in shell reproducers:
/// 1 to [`MAX_ID_LEN`] of `A-Z a-z 0-9 - _`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ResourceId(String);

// As the plain string, so that messages read `"12"` whether they hold an id or its text.
impl std::fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

/// Why a value offered as an id cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{shown} is not a safe id (1 to {MAX_ID_LEN} letters, digits, - and _)")]
pub struct UnsafeId {
    /// The value, escaped and cut short, fit for a terminal.
    pub shown: String,
}

/// How an id was offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdForm {
    /// A JSON string, as documented.
    String,
    /// A non-negative JSON integer (not the documented shape, but unambiguous): stringified.
    Integer,
}

impl ResourceId {
    /// Validate `text` as an id.
    pub fn parse(text: &str) -> Result<ResourceId, UnsafeId> {
        let safe = !text.is_empty()
            && text.len() <= MAX_ID_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if safe {
            Ok(ResourceId(text.to_owned()))
        } else {
            Err(UnsafeId { shown: shown(text) })
        }
    }

    /// Validate a JSON `id`: a safe string, or a non-negative integer (stringified; the
    /// caller decides what the wrong shape means). Anything else is unsafe.
    pub fn from_json(value: &Value) -> Result<(ResourceId, IdForm), UnsafeId> {
        match value {
            Value::String(text) => ResourceId::parse(text).map(|id| (id, IdForm::String)),
            Value::Number(n) if n.as_u64().is_some() => {
                ResourceId::parse(&n.to_string()).map(|id| (id, IdForm::Integer))
            }
            other => Err(UnsafeId {
                shown: shown(&other.to_string()),
            }),
        }
    }

    /// The `id` member of a resource object, if it is a safe *string* (the documented shape).
    pub fn of(resource: &Value) -> Result<ResourceId, UnsafeId> {
        match resource.get("id") {
            Some(Value::String(text)) => ResourceId::parse(text),
            Some(other) => Err(UnsafeId {
                shown: shown(&other.to_string()),
            }),
            None => Err(UnsafeId {
                shown: "(no id)".to_owned(),
            }),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for ResourceId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for ResourceId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ResourceId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<ResourceId> for &str {
    fn eq(&self, other: &ResourceId) -> bool {
        *self == other.0
    }
}

impl PartialEq<String> for ResourceId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl From<ResourceId> for String {
    fn from(id: ResourceId) -> String {
        id.0
    }
}

impl From<&ResourceId> for Value {
    fn from(id: &ResourceId) -> Value {
        Value::String(id.0.clone())
    }
}

impl From<ResourceId> for Value {
    fn from(id: ResourceId) -> Value {
        Value::String(id.0)
    }
}

/// A collection of the CMA that the suite addresses resources of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collection {
    /// `/access_tokens`.
    AccessTokens,
    /// `/roles`.
    Roles,
}

impl Collection {
    /// The collection's path, e.g. `/access_tokens`.
    pub fn path(self) -> &'static str {
        match self {
            Collection::AccessTokens => "/access_tokens",
            Collection::Roles => "/roles",
        }
    }

    /// `token` or `role`, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Collection::AccessTokens => "token",
            Collection::Roles => "role",
        }
    }
}

/// What may follow a resource's id in a path: fixed words of the suite, never target data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `/regenerate_token` (rotate a token's secret).
    RegenerateToken,
}

impl Action {
    fn segment(self) -> &'static str {
        match self {
            Action::RegenerateToken => "regenerate_token",
        }
    }
}

/// `/<collection>/<id>[/<action>]`. The id is one segment by construction.
pub fn resource_path(collection: Collection, id: &ResourceId, action: Option<Action>) -> String {
    match action {
        Some(action) => format!("{}/{id}/{}", collection.path(), action.segment()),
        None => format!("{}/{id}", collection.path()),
    }
}

/// `text` escaped (quotes, control characters, non-ASCII as `\u{..}`) and cut to 80
/// characters, so that a hostile id can be named in a message without reaching a terminal raw.
pub fn shown(text: &str) -> String {
    let cut: String = text.chars().take(80).collect();
    let mut out = String::with_capacity(cut.len() + 2);
    out.push('"');
    for c in cut.chars() {
        if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out.push('"');
    if text.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// The path segments `url` resolves to below `base`, as a server that decodes and normalises
/// liberally would see them: dot segments removed (also percent-encoded ones), percent-decoding
/// repeated until nothing changes, `\` taken as `/`, empty segments dropped, lower-cased.
/// `Err` when `url` is not on the base URL's origin or not under its path.
pub(super) fn segments_below(base: &str, url: &str) -> Result<Vec<String>, String> {
    let parse = |text: &str| reqwest::Url::parse(text).map_err(|err| format!("{err}"));
    let (base, url) = (parse(base)?, parse(url)?);
    let origin = |u: &reqwest::Url| {
        (
            u.scheme().to_owned(),
            u.host_str().map(str::to_ascii_lowercase),
            u.port_or_known_default(),
        )
    };
    if origin(&base) != origin(&url) {
        return Err("it is not on the base URL's host".to_owned());
    }
    let base_segments = normalised_segments(base.path());
    let segments = normalised_segments(url.path());
    if !segments.starts_with(&base_segments) {
        return Err("it is not under the base URL".to_owned());
    }
    Ok(segments[base_segments.len()..].to_vec())
}

fn normalised_segments(path: &str) -> Vec<String> {
    let mut text = path.to_owned();
    // Bounded: each round only shortens the text, and three rounds cover any double encoding
    // a server stack is known to apply.
    for _ in 0..3 {
        let decoded = percent_decode(&text);
        if decoded == text {
            break;
        }
        text = decoded;
    }
    let mut out: Vec<String> = Vec::new();
    for segment in text.split(['/', '\\']) {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other.to_lowercase()),
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_plain_ids_are_accepted() {
        for good in ["1", "12345", "a-B_9", &"7".repeat(MAX_ID_LEN)] {
            assert!(ResourceId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "..",
            "../access_tokens/1",
            "1/regenerate_token",
            "%2e%2e",
            "1?x=1",
            "1#f",
            "a b",
            "1\n",
            "é",
            &"7".repeat(MAX_ID_LEN + 1),
        ] {
            assert!(ResourceId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_ids_are_strings_or_non_negative_integers() {
        assert_eq!(
            ResourceId::from_json(&json!("12")),
            Ok((ResourceId("12".to_owned()), IdForm::String))
        );
        assert_eq!(
            ResourceId::from_json(&json!(12)),
            Ok((ResourceId("12".to_owned()), IdForm::Integer))
        );
        for bad in [json!(-1), json!(1.5), json!(null), json!({}), json!(["1"])] {
            assert!(ResourceId::from_json(&bad).is_err(), "{bad}");
        }
        assert!(ResourceId::of(&json!({ "id": 12 })).is_err());
        assert!(ResourceId::of(&json!({})).is_err());
    }

    #[test]
    fn an_unsafe_id_is_named_escaped() {
        let err = ResourceId::parse("\u{1b}[2J../x\u{7}").unwrap_err();
        assert_eq!(err.shown, "\"\\u{1b}[2J../x\\u{7}\"");
        assert!(!err.to_string().contains('\u{1b}'));
    }

    #[test]
    fn paths_have_the_id_as_one_segment() {
        let id = ResourceId::parse("42").unwrap();
        assert_eq!(
            resource_path(Collection::AccessTokens, &id, None),
            "/access_tokens/42"
        );
        assert_eq!(
            resource_path(Collection::AccessTokens, &id, Some(Action::RegenerateToken)),
            "/access_tokens/42/regenerate_token"
        );
        assert_eq!(resource_path(Collection::Roles, &id, None), "/roles/42");
    }

    #[test]
    fn writes_resolve_as_a_liberal_server_would_see_them() {
        let base = "http://127.0.0.1:3000/cma";
        let below = |url: &str| segments_below(base, url);
        assert_eq!(
            below("http://127.0.0.1:3000/cma/access_tokens/7").unwrap(),
            ["access_tokens", "7"]
        );
        for traversal in [
            "http://127.0.0.1:3000/cma/access_tokens/9/../7",
            "http://127.0.0.1:3000/cma/roles/%2e%2e/access_tokens/7",
            "http://127.0.0.1:3000/cma/roles/%252e%252e%252faccess_tokens%252f7",
            "http://127.0.0.1:3000/cma//ACCESS_TOKENS/./7",
            "http://127.0.0.1:3000/cma/roles/..%5caccess_tokens%5c7",
        ] {
            assert_eq!(
                below(traversal).unwrap(),
                ["access_tokens", "7"],
                "{traversal}"
            );
        }
        assert!(below("http://127.0.0.1:3000/cma/../access_tokens/7").is_err());
        assert!(below("http://127.0.0.1:3001/cma/access_tokens/7").is_err());
        assert!(below("https://127.0.0.1:3000/cma/access_tokens/7").is_err());
        assert!(below("http://localhost:3000/cma/access_tokens/7").is_err());
    }
}
