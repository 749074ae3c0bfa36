//! What the suite sends and what it gets back: a [`Request`] to build, the [`SentRequest`] as
//! recorded (secrets replaced), and the [`Exchange`] of a request and its answer.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::{Action, Collection, ResourceId, Secrets, Target, resource_path};

/// Which API a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The Content Management API (`base_url`).
    Cma,
    /// The Content Delivery API (`cda_url`).
    Cda,
}

/// Who a request authenticates as.
#[derive(Clone)]
pub enum Auth {
    /// The user's management token.
    Management,
    /// A token the run created, or a factory token; `label` names it in transcripts.
    Token {
        /// The secret.
        secret: String,
        /// What transcripts show instead, e.g. `$FIXTURE_TOKEN_12`.
        label: String,
    },
    /// No `Authorization` header at all.
    None,
    /// This exact header value (a deliberately invalid credential).
    Raw(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Management => f.write_str("Management"),
            Auth::Token { label, .. } => write!(f, "Token({label})"),
            Auth::None => f.write_str("None"),
            Auth::Raw(_) => f.write_str("Raw([redacted])"),
        }
    }
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// Which API.
    pub api: Api,
    /// HTTP method.
    pub method: reqwest::Method,
    /// Path below the base URL, starting with `/`.
    pub path: String,
    /// Credentials.
    pub auth: Auth,
    /// JSON body, if any.
    pub body: Option<Value>,
    /// Header overrides: `(name, Some(value))` replaces, `(name, None)` removes.
    pub headers: Vec<(String, Option<String>)>,
    /// Sent once: a transient failure (a 5xx, a lost connection, a timeout) is returned as it
    /// is, not retried, and takes nothing from the run's retry budget (a 429 is still waited
    /// out). For calls whose loss costs nothing, such as one probe of many.
    pub once: bool,
}

impl Request {
    /// A CMA request as the management token, with no body.
    pub fn cma(method: reqwest::Method, path: impl Into<String>) -> Request {
        Request {
            api: Api::Cma,
            method,
            path: path.into(),
            auth: Auth::Management,
            body: None,
            headers: Vec::new(),
            once: false,
        }
    }

    /// A CMA request to one resource (`/<collection>/<id>[/<action>]`), as the management
    /// token: the only way the suite builds a path from an id.
    pub fn cma_resource(
        method: reqwest::Method,
        collection: Collection,
        id: &ResourceId,
        action: Option<Action>,
    ) -> Request {
        Request::cma(method, resource_path(collection, id, action))
    }

    /// A CDA GraphQL query.
    pub fn cda(query: &str, auth: Auth) -> Request {
        Request {
            api: Api::Cda,
            method: reqwest::Method::POST,
            path: "/".to_owned(),
            auth,
            body: Some(serde_json::json!({ "query": query })),
            headers: Vec::new(),
            once: false,
        }
    }

    /// The same request with a JSON body.
    pub fn json(mut self, body: Value) -> Request {
        self.body = Some(body);
        self
    }

    /// The same request, sent once ([`Request::once`]).
    pub fn sent_once(mut self) -> Request {
        self.once = true;
        self
    }

    /// The same request with other credentials.
    pub fn auth(mut self, auth: Auth) -> Request {
        self.auth = auth;
        self
    }

    /// The same request with a header set (or removed with `None`).
    pub fn header(mut self, name: &str, value: Option<&str>) -> Request {
        self.headers
            .push((name.to_owned(), value.map(str::to_owned)));
        self
    }
}

/// What was sent, with secrets replaced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SentRequest {
    /// Method.
    pub method: String,
    /// Full URL.
    pub url: String,
    /// Headers in the order sent, secrets replaced.
    pub headers: Vec<(String, String)>,
    /// Body text, if any: the JSON as sent (controls and bidi characters as `\uXXXX`), secrets
    /// replaced.
    pub body: Option<String>,
}

/// What was sent, redacted when first read (as a [`SentRequest`], through `Deref`): a
/// request whose answer passes is never redacted, since nothing shows it. Redaction uses
/// the secrets known when it is read, which include every one known when it was sent.
#[derive(Clone)]
pub struct Recorded {
    shown: OnceLock<SentRequest>,
    raw: Option<Arc<RawSent>>,
}

/// What a [`Recorded`] is redacted from: secrets in the clear, never shown as such.
pub(super) struct RawSent {
    pub(super) secrets: Secrets,
    pub(super) target: Arc<Target>,
    pub(super) api: Api,
    pub(super) method: reqwest::Method,
    pub(super) url: String,
    pub(super) auth: Auth,
    pub(super) overrides: Vec<(String, Option<String>)>,
    /// The body as sent (shared with the request on the wire, not copied).
    pub(super) body: Option<Bytes>,
}

impl Recorded {
    pub(super) fn lazy(raw: RawSent) -> Recorded {
        Recorded {
            shown: OnceLock::new(),
            raw: Some(Arc::new(raw)),
        }
    }
}

impl Recorded {
    /// The URL as sent, before redaction (for an error that is redacted where it is shown).
    pub(super) fn raw_url(&self) -> Option<&str> {
        self.raw.as_ref().map(|raw| raw.url.as_str())
    }
}

impl From<SentRequest> for Recorded {
    fn from(sent: SentRequest) -> Recorded {
        Recorded {
            shown: OnceLock::from(sent),
            raw: None,
        }
    }
}

impl std::ops::Deref for Recorded {
    type Target = SentRequest;
    fn deref(&self) -> &SentRequest {
        self.shown.get_or_init(|| match &self.raw {
            Some(raw) => raw.redacted(),
            None => SentRequest {
                method: String::new(),
                url: String::new(),
                headers: Vec::new(),
                body: None,
            },
        })
    }
}

impl std::fmt::Debug for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        SentRequest::fmt(self, f)
    }
}

/// An answer's body as text, redacted when first read (through `Deref` to `str`); see
/// [`Recorded`].
#[derive(Clone)]
pub struct BodyText {
    shown: OnceLock<String>,
    raw: Option<Arc<RawBody>>,
}

/// What a [`BodyText`] is redacted from.
pub(super) struct RawBody {
    pub(super) secrets: Secrets,
    pub(super) bytes: Bytes,
    /// The body parsed as JSON (and was not cut short).
    pub(super) json: bool,
    /// The body was cut short at the cap: only its start is shown.
    pub(super) cut_short: bool,
    /// The body held this many objects and arrays (and this many bytes), more than
    /// [`MAX_JSON_CONTAINERS`](super::MAX_JSON_CONTAINERS): not parsed; `bytes` is its start,
    /// shown with a note.
    pub(super) containers: Option<(usize, usize)>,
}

impl BodyText {
    pub(super) fn lazy(raw: RawBody) -> BodyText {
        BodyText {
            shown: OnceLock::new(),
            raw: Some(Arc::new(raw)),
        }
    }
}

impl From<String> for BodyText {
    fn from(text: String) -> BodyText {
        BodyText {
            shown: OnceLock::from(text),
            raw: None,
        }
    }
}

impl std::ops::Deref for BodyText {
    type Target = str;
    fn deref(&self) -> &str {
        self.shown.get_or_init(|| match &self.raw {
            Some(raw) => raw.redacted(),
            None => String::new(),
        })
    }
}

impl std::fmt::Debug for BodyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        str::fmt(self, f)
    }
}

impl std::fmt::Display for BodyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        str::fmt(self, f)
    }
}

impl PartialEq<str> for BodyText {
    fn eq(&self, other: &str) -> bool {
        **self == *other
    }
}

impl PartialEq<&str> for BodyText {
    fn eq(&self, other: &&str) -> bool {
        **self == **other
    }
}

impl PartialEq<String> for BodyText {
    fn eq(&self, other: &String) -> bool {
        **self == **other
    }
}

/// A request and the response it got.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// What was sent (redacted when read).
    pub request: Recorded,
    /// Status code.
    pub status: u16,
    /// Response headers (names lower-case).
    pub headers: Vec<(String, String)>,
    /// The body as text, secrets replaced (when read): a JSON body written back compact from
    /// its redacted value (controls and bidi characters as `\uXXXX`), any other as lossy UTF-8.
    pub body_text: BodyText,
    /// The body parsed as JSON, if it is JSON. Not redacted: checks need real values.
    pub json: Option<Value>,
    /// How long the final attempt took.
    pub elapsed: Duration,
    /// How many times the request was sent: more than one after a retry (an earlier attempt
    /// that got no answer may still have been applied).
    pub attempts: u32,
}

impl Exchange {
    /// The size of the body as it came (bytes read, before redaction).
    pub fn body_len(&self) -> usize {
        match &self.body_text.raw {
            Some(raw) => raw.bytes.len(),
            None => self.body_text.len(),
        }
    }

    /// The same exchange without its body (nor the body's JSON): a note that says so stands
    /// in for it. For exchanges kept by the thousand, whose bodies a target could make large.
    pub fn without_body(mut self, why: &str) -> Exchange {
        let note = format!("(a body of {} bytes, not kept: {why})", self.body_len());
        self.body_text = BodyText::from(note);
        self.json = None;
        self
    }

    /// The first value of a response header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether the status is 4xx.
    pub fn is_client_error(&self) -> bool {
        (400..500).contains(&self.status)
    }

    /// The `code` of the first api_error, if the body is an error envelope.
    pub fn error_code(&self) -> Option<&str> {
        self.json
            .as_ref()?
            .pointer("/data/0/attributes/code")?
            .as_str()
    }

    /// `data` of the body, if any.
    pub fn data(&self) -> Option<&Value> {
        self.json.as_ref()?.get("data")
    }

    /// A short description: `PUT /access_tokens/12 → 422 INVALID_FORMAT`.
    pub fn summary(&self) -> String {
        let path = self
            .request
            .url
            .split_once("://")
            .map_or(self.request.url.as_str(), |(_, rest)| {
                rest.find('/').map_or("/", |i| &rest[i..])
            });
        let mut line = match self.error_code() {
            // Not cut: a cut secret would no longer be recognised by redaction. Documented
            // codes are short UPPER_SNAKE words.
            Some(code) if code.len() > MAX_SHOWN_CODE => format!(
                "{} {} → {} (a {}-byte error code, not shown)",
                self.request.method,
                path,
                self.status,
                code.len()
            ),
            Some(code) => format!("{} {} → {} {code}", self.request.method, path, self.status),
            None => format!("{} {} → {}", self.request.method, path, self.status),
        };
        if (300..400).contains(&self.status) {
            let to = self.header("location").map_or_else(
                || "no Location".to_owned(),
                |l| crate::text::truncate(l, 200),
            );
            line.push_str(&format!(" (redirect to {to}, redirects are not followed)"));
        }
        line
    }
}

/// The longest error code a summary quotes whole (documented codes are short words; a code
/// echoing a request may be a few hundred bytes).
const MAX_SHOWN_CODE: usize = 512;
