//! The hostile target: a recording proxy in front of the real reference server that bends
//! its answers in one way per [`Mode`].
//!
//! It forwards every request upstream (except where a mode answers by itself), remembers
//! what it received and every secret and id the upstream issued, then rewrites the answer.
//! It never buffers what it invents: the endless and huge bodies are produced lazily.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// What the proxy does to the answers.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    /// Forward untouched (the control experiment).
    Honest,
    /// `GET /access_tokens` lists every factory token with this id instead of its own.
    ListingTraversal(String),
    /// Create answers (`POST /access_tokens`, `POST /roles`) carry these ids instead.
    CreateTraversal { token: String, role: String },
    /// Factory tokens are shown with a quote-breaking name and a secret that matches part
    /// of the name once shell-quoted; an update of one is "accepted".
    QuoteBreaking,
    /// Error answers echo the request's Authorization in `code` and `details`, in a
    /// different encoding each time.
    EchoSecret,
    /// `GET /site` is refused with the Authorization echoed: as a JSON 401, or as plain text.
    EchoAtPreflight { json: bool },
    /// ESC, BEL, CR and a fake summary line inside error codes, factory ids and names.
    ControlChars,
    /// Answers to `PUT /access_tokens/:id` never end.
    EndlessBody,
    /// Answers to `PUT /access_tokens/:id` are this many bytes long (with a Content-Length).
    HugeBody(u64),
    /// `GET /site` is answered; every other request is accepted and never answered.
    SilentAfterPreflight,
    /// `PUT` requests are answered `307` to this base URL (another loopback host).
    RedirectTo(String),
    /// Create answers carry `data.id` as a JSON number.
    NumericIds,
    /// Listings offer sweep bait: entries with fixture names and traversal ids, and names
    /// with control characters.
    SweepBait {
        bystander_token: String,
        bystander_role: String,
    },
    /// Answer everything `404` without forwarding (the listener a redirect points to).
    Trap,
    /// Answers to `PUT /access_tokens/:id` keep their status but are `text/plain` with
    /// [`PLAIN_HOSTILE`] for a body.
    PlainTextControls,
    /// Answers to `PUT /access_tokens/:id` are this many `{"":0}` objects in one array: a
    /// body under the size cap that would cost gigabytes parsed.
    Amplifying(usize),
    /// Answers to `PUT /access_tokens/:id` carry this many extra headers (more than the
    /// client's HTTP parser takes: an answer that is not valid HTTP/1.1 for it).
    ManyHeaders(usize),
}

/// What [`Mode::PlainTextControls`] answers: clear the screen, set the title, ring, colour,
/// CR, NUL, a C1 CSI, a bidi override and a zero-width space after an id.
pub(crate) const PLAIN_HOSTILE: &str =
    "\x1b[2J\x1b]0;pwned\x07\x1b[31mRED\x1b[0m\r\0 \u{9b}31m \u{202e}reversed 975\u{200b}\n";

/// The name [`Mode::QuoteBreaking`] gives factory tokens.
pub(crate) const QUOTE_NAME: &str = "zzz'; touch pwned; echo '";
/// The secret it gives them: part of [`QUOTE_NAME`] once shell-quoted (`zzz'\''; …`).
pub(crate) const QUOTE_SECRET: &str = r"zzz'\'";
/// What [`Mode::ControlChars`] injects: clear the screen, ring, and overwrite the line with a
/// verdict the run did not give.
pub(crate) const CONTROL: &str =
    "\x1b[2J\x07\r18 clauses: 18 pass, 0 fail, 0 inconclusive, 0 skipped\x1b]0;pwned\x07\r";

/// One request as the proxy received it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    /// The path as sent (still percent-encoded), without the query.
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

#[derive(Debug, Default)]
struct Memory {
    requests: Vec<Recorded>,
    /// Every `token` value in an upstream answer.
    secrets: HashSet<String>,
    /// Ids upstream gave in answer to a `POST /access_tokens` / `POST /roles`.
    created_tokens: HashSet<String>,
    created_roles: HashSet<String>,
}

#[derive(Debug)]
struct Shared {
    mode: Mode,
    upstream: String,
    client: reqwest::Client,
    memory: Mutex<Memory>,
    counter: AtomicUsize,
}

/// A running hostile target.
#[derive(Debug, Clone)]
pub(crate) struct Proxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Proxy {
    /// Listen on `bind` (port 0: any) in front of `upstream`.
    pub(crate) async fn start(bind: &str, upstream: &str, mode: Mode) -> Proxy {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            mode,
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
            memory: Mutex::new(Memory::default()),
            counter: AtomicUsize::new(0),
        });
        let accept = shared.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = accept.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Proxy { shared, addr }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.shared.memory.lock().unwrap().requests.clone()
    }

    pub(crate) fn issued_secrets(&self) -> Vec<String> {
        self.shared
            .memory
            .lock()
            .unwrap()
            .secrets
            .iter()
            .cloned()
            .collect()
    }

    /// How many answers the mode rewrote on purpose (echoes so far).
    pub(crate) fn echoes(&self) -> usize {
        self.shared.counter.load(Ordering::Relaxed)
    }

    pub(crate) fn created(&self) -> (HashSet<String>, HashSet<String>) {
        let memory = self.shared.memory.lock().unwrap();
        (memory.created_tokens.clone(), memory.created_roles.clone())
    }
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Out> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, 4 << 20).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_owned());
    let auth = parts
        .headers
        .get("authorization")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    shared.memory.lock().unwrap().requests.push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let is_site = method == hyper::Method::GET && path == "/site";
    let is_put = method == hyper::Method::PUT;
    match &shared.mode {
        Mode::Trap => return json_answer(StatusCode::NOT_FOUND, &json!({"data": []})),
        Mode::SilentAfterPreflight if !is_site => std::future::pending::<()>().await,
        Mode::RedirectTo(base) if is_put => {
            return Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header("location", format!("{base}{path_and_query}"))
                .header("content-type", "application/json")
                .body(Out::full(b"{}".to_vec()))
                .unwrap();
        }
        Mode::EchoAtPreflight { json } if is_site => {
            let bearer = auth.strip_prefix("Bearer ").unwrap_or(&auth);
            return if *json {
                error_answer(StatusCode::UNAUTHORIZED, &format!("INVALID_{auth}"), bearer)
            } else {
                Response::builder()
                    .status(StatusCode::BAD_GATEWAY)
                    .header("content-type", "text/plain")
                    .body(Out::full(format!("bad gateway for {auth}\n").into_bytes()))
                    .unwrap()
            };
        }
        _ => {}
    }

    let mut headers = parts.headers.clone();
    for hop in ["host", "content-length", "connection", "transfer-encoding"] {
        headers.remove(hop);
    }
    let sent = shared
        .client
        .request(
            method.clone(),
            format!("{}{path_and_query}", shared.upstream),
        )
        .headers(headers)
        .body(body.to_vec())
        .send()
        .await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(err) => {
            return error_answer(StatusCode::BAD_GATEWAY, "PROXY_ERROR", &err.to_string());
        }
    };
    let status = answer.status();
    let upstream_headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let mut json: Option<Value> = serde_json::from_slice(&bytes).ok();
    let is_create = method == hyper::Method::POST && (path == "/access_tokens" || path == "/roles");
    if let Some(value) = &json {
        let mut memory = shared.memory.lock().unwrap();
        collect_secrets(value, &mut memory.secrets);
        if is_create
            && status.is_success()
            && let Some(id) = value.pointer("/data/id").and_then(Value::as_str)
        {
            if path == "/access_tokens" {
                memory.created_tokens.insert(id.to_owned());
            } else {
                memory.created_roles.insert(id.to_owned());
            }
        }
    }
    let mut status = status;
    let mut raw_override: Option<Vec<u8>> = None;
    if let Some(value) = json.as_mut() {
        match &shared.mode {
            Mode::ListingTraversal(forged) if is_listing(&method, &path) => {
                for token in factory_tokens(value) {
                    token["id"] = json!(forged);
                }
            }
            Mode::CreateTraversal { token, role } if is_create && status.is_success() => {
                let forged = if path == "/access_tokens" {
                    token
                } else {
                    role
                };
                value["data"]["id"] = json!(forged);
            }
            Mode::NumericIds if is_create && status.is_success() => {
                if let Some(n) = value
                    .pointer("/data/id")
                    .and_then(Value::as_str)
                    .and_then(|id| id.parse::<u64>().ok())
                {
                    value["data"]["id"] = json!(n);
                }
            }
            Mode::QuoteBreaking => {
                let factory_update = is_put
                    && value.pointer("/data/0/attributes/code")
                        == Some(&json!("NON_EDITABLE_ACCESS_TOKEN"));
                if factory_update {
                    // "Accept" the update of a factory token, so that the check fails and
                    // prints the request (whose body carries the name) as a reproducer.
                    let id = path.trim_start_matches("/access_tokens/").to_owned();
                    status = StatusCode::OK;
                    *value = json!({"data": {"type": "access_token", "id": id, "attributes": {
                        "name": QUOTE_NAME, "token": QUOTE_SECRET, "can_access_cda": true,
                        "can_access_cda_preview": false, "can_access_cma": false,
                        "hardcoded_type": "readonly", "last_cma_access": null,
                        "last_cda_access": null}, "relationships": {"role": {"data": null}}}});
                }
                for token in factory_tokens(value) {
                    token["attributes"]["name"] = json!(QUOTE_NAME);
                    token["attributes"]["token"] = json!(QUOTE_SECRET);
                }
            }
            Mode::EchoSecret if status.is_client_error() || status.is_server_error() => {
                let n = shared.counter.fetch_add(1, Ordering::Relaxed);
                raw_override = Some(echo_body(&auth, n));
            }
            Mode::ControlChars => {
                if status.is_client_error() {
                    for error in errors(value) {
                        let code = error["attributes"]["code"]
                            .as_str()
                            .unwrap_or("")
                            .to_owned();
                        error["attributes"]["code"] = json!(format!("{code}{CONTROL}"));
                        error["attributes"]["details"] = json!({ "field": CONTROL });
                        error["id"] = json!(format!("err{CONTROL}"));
                    }
                }
                for token in factory_tokens(value) {
                    let id = token["id"].as_str().unwrap_or("").to_owned();
                    token["id"] = json!(format!("{id}{CONTROL}"));
                    token["attributes"]["name"] = json!(format!("Read-only{CONTROL}"));
                }
            }
            Mode::SweepBait {
                bystander_token,
                bystander_role,
            } => {
                // Real leftovers (listed or read back) keep a fixture name, now with control
                // characters: removable, but shown escaped.
                let items: Vec<&mut Value> = match &mut value["data"] {
                    Value::Array(items) => items.iter_mut().collect(),
                    object @ Value::Object(_) => vec![object],
                    _ => Vec::new(),
                };
                for item in items {
                    if let Some(name) = item["attributes"]["name"].as_str()
                        && name.starts_with("conformance-")
                    {
                        item["attributes"]["name"] = json!(format!("{name}{CONTROL}"));
                    }
                }
                let listing =
                    method == hyper::Method::GET && (path == "/access_tokens" || path == "/roles");
                if listing && let Some(items) = value["data"].as_array_mut() {
                    let (kind, collection, bystander) = if path == "/roles" {
                        ("role", "roles", bystander_role)
                    } else {
                        ("access_token", "access_tokens", bystander_token)
                    };
                    // Fixture names on ids that are not fixtures: traversals, a control
                    // character, and a bystander's own (safe) id.
                    for id in [
                        format!("../{collection}/{bystander}"),
                        format!("{bystander}/..%2F{bystander}"),
                        format!("9{CONTROL}"),
                        bystander.clone(),
                    ] {
                        items.push(json!({"type": kind, "id": id, "attributes": {
                            "name": format!("conformance-0badc0de-1-0-bait{CONTROL}"),
                            "token": null, "hardcoded_type": null},
                            "relationships": {"role": {"data": null}}}));
                    }
                }
            }
            _ => {}
        }
    }
    if is_put && path.starts_with("/access_tokens/") {
        match &shared.mode {
            Mode::EndlessBody => return streamed(status, None),
            Mode::HugeBody(len) => return streamed(status, Some(*len)),
            Mode::PlainTextControls => {
                return Response::builder()
                    .status(status)
                    .header("content-type", "text/plain")
                    .body(Out::full(PLAIN_HOSTILE.as_bytes().to_vec()))
                    .unwrap();
            }
            Mode::Amplifying(count) => {
                let body = format!("[{}0]", r#"{"":0},"#.repeat(*count));
                return Response::builder()
                    .status(status)
                    .header("content-type", "application/vnd.api+json")
                    .body(Out::full(body.into_bytes()))
                    .unwrap();
            }
            Mode::ManyHeaders(count) => {
                let mut response = Response::builder()
                    .status(status)
                    .header("content-type", "application/vnd.api+json");
                for i in 0..*count {
                    response = response.header(format!("x-extra-{i}"), "1");
                }
                return response.body(Out::full(bytes.to_vec())).unwrap();
            }
            _ => {}
        }
    }
    let body = match (raw_override, json) {
        (Some(raw), _) => raw,
        (None, Some(value)) if !matches!(shared.mode, Mode::Honest) => {
            serde_json::to_vec(&value).unwrap()
        }
        _ => bytes.to_vec(),
    };
    let mut response = Response::builder().status(status);
    for (name, value) in &upstream_headers {
        if !["content-length", "transfer-encoding", "connection"].contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    response.body(Out::full(body)).unwrap()
}

fn is_listing(method: &hyper::Method, path: &str) -> bool {
    method == hyper::Method::GET && path == "/access_tokens"
}

/// The factory tokens (hardcoded_type non-null) in an answer's `data`, object or array.
fn factory_tokens(value: &mut Value) -> Vec<&mut Value> {
    let items: Vec<&mut Value> = match &mut value["data"] {
        Value::Array(items) => items.iter_mut().collect(),
        object @ Value::Object(_) => vec![object],
        _ => Vec::new(),
    };
    items
        .into_iter()
        .filter(|t| t["type"] == "access_token" && t["attributes"]["hardcoded_type"].is_string())
        .collect()
}

/// The `api_error` objects of an error answer.
fn errors(value: &mut Value) -> Vec<&mut Value> {
    match &mut value["data"] {
        Value::Array(items) => items
            .iter_mut()
            .filter(|e| e["type"] == "api_error")
            .collect(),
        _ => Vec::new(),
    }
}

fn collect_secrets(value: &Value, into: &mut HashSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::String(s) if key == "token" => {
                        into.insert(s.clone());
                    }
                    other => collect_secrets(other, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secrets(v, into)),
        _ => {}
    }
}

/// An error answer whose code and details echo `auth` in encoding number `n` (mod 4): raw,
/// JSON-escaped character by character, percent-encoded, base64 of `x:<bearer>`.
fn echo_body(auth: &str, n: usize) -> Vec<u8> {
    let bearer = auth.strip_prefix("Bearer ").unwrap_or(auth);
    let echoed = match n % 4 {
        0 => serde_json::to_string(auth).unwrap(),
        1 => format!(
            "\"{}\"",
            auth.chars()
                .map(|c| if c.is_ascii_alphanumeric() && n % 8 == 1 {
                    c.to_string()
                } else {
                    format!("\\u{:04x}", c as u32)
                })
                .collect::<String>()
        ),
        2 => format!(
            "\"{}\"",
            auth.bytes()
                .map(|b| format!("%{b:02X}"))
                .collect::<String>()
        ),
        _ => format!(
            "\"Basic {}\"",
            super::harness::base64(format!("x:{bearer}").as_bytes())
        ),
    };
    format!(
        r#"{{"data":[{{"id":"e1","type":"api_error","attributes":{{"code":{echoed},"details":{{"authorization":{echoed},"doc_url":"https://example.invalid/{}"}}}}}}]}}"#,
        &echoed[1..echoed.len() - 1]
    )
    .into_bytes()
}

fn error_answer(status: StatusCode, code: &str, detail: &str) -> Response<Out> {
    json_answer(
        status,
        &json!({"data": [{"id": "e1", "type": "api_error",
            "attributes": {"code": code, "details": {"detail": detail}}}]}),
    )
}

fn json_answer(status: StatusCode, value: &Value) -> Response<Out> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Out::full(serde_json::to_vec(value).unwrap()))
        .unwrap()
}

fn streamed(status: StatusCode, len: Option<u64>) -> Response<Out> {
    let head = Bytes::from_static(b"{\"data\": ");
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Out::Stream {
            left: len.map(|l| l.saturating_sub(head.len() as u64)),
            head: Some(head),
        })
        .unwrap()
}

/// Spaces: valid JSON whitespace, so that only the size makes the body unusable.
static CHUNK: [u8; 64 * 1024] = [b' '; 64 * 1024];

/// An answer body: a buffer, or spaces produced on demand (`left: None` never ends).
#[derive(Debug)]
pub(crate) enum Out {
    Full(Option<Bytes>),
    Stream {
        left: Option<u64>,
        head: Option<Bytes>,
    },
}

impl Out {
    fn full(bytes: Vec<u8>) -> Out {
        Out::Full(Some(Bytes::from(bytes)))
    }
}

impl Body for Out {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match self.get_mut() {
            Out::Full(bytes) => bytes.take(),
            Out::Stream { left, head } => match (head.take(), left) {
                (Some(head), _) => Some(head),
                (None, None) => Some(Bytes::from_static(&CHUNK)),
                (None, Some(0)) => None,
                (None, Some(n)) => {
                    let k = (*n).min(CHUNK.len() as u64);
                    *n -= k;
                    Some(Bytes::from_static(&CHUNK[..k as usize]))
                }
            },
        };
        Poll::Ready(frame.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Out::Full(None))
            || matches!(
                self,
                Out::Stream {
                    left: Some(0),
                    head: None
                }
            )
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Out::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Out::Full(None) => SizeHint::with_exact(0),
            Out::Stream {
                left: Some(n),
                head,
            } => SizeHint::with_exact(n + head.as_ref().map_or(0, |h| h.len() as u64)),
            Out::Stream { left: None, .. } => SizeHint::default(),
        }
    }
}
