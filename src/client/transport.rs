//! One request on the wire: its URL and headers, the body read up to [`MAX_BODY_BYTES`], and
//! its record with secrets replaced when it is read (an `Authorization` value by position,
//! never by value).

use std::sync::atomic::Ordering;
use std::time::Instant;

use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::request::{RawBody, RawSent};
use super::{
    API_VERSION, Api, Auth, BodyText, Client, Exchange, MAX_BODY_BYTES, Recorded, Request,
    SentRequest, TransportError, safe_placeholder,
};

impl Client {
    pub(super) fn url_of(&self, req: &Request) -> Result<String, TransportError> {
        let base = match req.api {
            Api::Cma => self.target.base_url.as_str(),
            Api::Cda => self
                .target
                .cda_url
                .as_deref()
                .ok_or(TransportError::NoCdaUrl)?,
        };
        Ok(format!("{}{}", base.trim_end_matches('/'), req.path))
    }

    /// The headers `req` is sent with, straight into the map the wire takes: the documented
    /// ones as static values, the management token's from the value built once.
    fn header_map(&self, req: &Request) -> Result<HeaderMap, TransportError> {
        let build = |err: &dyn std::fmt::Display| TransportError::Build(err.to_string());
        let mut map = HeaderMap::with_capacity(6 + req.headers.len());
        map.append(ACCEPT, HeaderValue::from_static("application/json"));
        if req.api == Api::Cma {
            map.append(
                HeaderName::from_static("x-api-version"),
                HeaderValue::from_static(API_VERSION),
            );
            if let Some(env) = &self.target.environment {
                let value = HeaderValue::from_str(env).map_err(|e| build(&e))?;
                map.append(HeaderName::from_static("x-environment"), value);
            }
        }
        if req.body.is_some() {
            map.append(
                CONTENT_TYPE,
                HeaderValue::from_static(content_type(req.api)),
            );
        }
        let auth = match &req.auth {
            Auth::Management => Some(self.bearer.clone()),
            Auth::Token { secret, .. } => {
                Some(HeaderValue::from_str(&format!("Bearer {secret}")).map_err(|e| build(&e))?)
            }
            Auth::Raw(value) => Some(HeaderValue::from_str(value).map_err(|e| build(&e))?),
            Auth::None => None,
        };
        if let Some(mut value) = auth {
            value.set_sensitive(true);
            map.append(AUTHORIZATION, value);
        }
        for (name, value) in &req.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| build(&e))?;
            map.remove(&name);
            if let Some(value) = value {
                map.append(name, HeaderValue::from_str(value).map_err(|e| build(&e))?);
            }
        }
        Ok(map)
    }

    /// Send `req` once: no waiting on 429s, no retries.
    pub async fn send_once(&self, req: &Request) -> Result<Exchange, TransportError> {
        let (parsed, map, body) = self.prepare(req)?;
        let url = parsed.as_str().to_owned();
        self.check_write(req, &url)?;
        let mut builder = self.http.request(req.method.clone(), parsed).headers(map);
        if let Some(body) = &body {
            builder = builder.body(body.clone());
        }
        if let Some(reason) = self.refusal() {
            return Err(TransportError::Stopped(reason));
        }
        // Take a slot from the ledger (the clause's reservation, then the pool) under its
        // lock, so that concurrent checks cannot overshoot the cap; cleanup is never refused.
        match self
            .stats
            .ledger
            .take(self.account.as_deref(), !self.capped)
        {
            Err(cap) => return Err(TransportError::Budget(cap)),
            Ok(super::ledger::Slot::Overdraft) => {
                self.stats.past_cap.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.local.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let read = self.unless_stopped(read_answer(builder, &url)).await?;
        let elapsed = started.elapsed();
        let answer = match read {
            Ok(answer) => answer,
            Err(Unread::Transport(err)) => return Err(err),
            Err(Unread::Malformed { message, head }) => {
                // The evidence: the request, and the status and headers if the head parsed.
                let (status, headers) = head.unwrap_or_default();
                let body_text = BodyText::lazy(RawBody {
                    secrets: self.secrets.clone(),
                    bytes: Bytes::new(),
                    json: false,
                    cut_short: false,
                    containers: None,
                });
                let partial = Exchange {
                    request: self.recorded_lazily(req, url.clone(), body),
                    status,
                    headers,
                    body_text,
                    json: None,
                    elapsed,
                    attempts: 1,
                };
                return Err(TransportError::Malformed {
                    url,
                    message,
                    attempts: 1,
                    partial: Box::new(partial),
                });
            }
        };
        let (json, containers): (Option<Value>, Option<usize>) = if answer.cut_short {
            (None, None)
        } else {
            match super::json_within(&answer.body, super::MAX_JSON_CONTAINERS) {
                Ok(json) => (json, None),
                Err(count) => (None, Some(count)),
            }
        };
        if let Some(json) = &json {
            // Learned before anything is recorded, so this very answer is redacted too.
            let weak = self.secrets.learn_from(json);
            self.weak.fetch_add(weak as u64, Ordering::Relaxed);
        }
        let sent = self.recorded_lazily(req, url, body);
        if self.stats.record.load(Ordering::Relaxed)
            && let Ok(mut log) = self.stats.sent.lock()
        {
            log.push(SentRequest::clone(&sent));
        }
        // Redacted only if something shows it: a passing answer costs no redaction.
        let body_len = answer.body.len();
        let body_text = BodyText::lazy(RawBody {
            secrets: self.secrets.clone(),
            // Only the start of a body not parsed is shown: only that is kept, copied, so that
            // the evidence of many such answers holds kilobytes, not the bodies.
            bytes: match containers {
                Some(_) => {
                    Bytes::copy_from_slice(&answer.body[..answer.body.len().min(EVIDENCE_BYTES)])
                }
                None => answer.body,
            },
            json: json.is_some(),
            cut_short: answer.cut_short,
            containers: containers.map(|count| (count, body_len)),
        });
        let exchange = Exchange {
            request: sent,
            status: answer.status,
            headers: answer.headers,
            body_text,
            json,
            elapsed,
            attempts: 1,
        };
        if answer.cut_short {
            return Err(TransportError::TooLarge {
                url: exchange.request.raw_url().unwrap_or_default().to_owned(),
                cap: MAX_BODY_BYTES,
                partial: Box::new(exchange),
            });
        }
        Ok(exchange)
    }

    /// The URL, headers and body `req` is sent with, checked: nothing is sent that could not
    /// be recorded as it was sent.
    fn prepare(
        &self,
        req: &Request,
    ) -> Result<(reqwest::Url, HeaderMap, Option<Bytes>), TransportError> {
        let url = self.url_of(req)?;
        let parsed =
            reqwest::Url::parse(&url).map_err(|err| TransportError::Build(err.to_string()))?;
        let map = self.header_map(req)?;
        // Controls and bidi characters escaped: the same JSON, and what is recorded (and
        // replayed by the reproducer) is exactly what was sent.
        let body = req
            .body
            .as_ref()
            .map(|body| Bytes::from(crate::output::json_text(body)));
        Ok((parsed, map, body))
    }

    fn recorded_lazily(&self, req: &Request, url: String, body: Option<Bytes>) -> Recorded {
        Recorded::lazy(RawSent {
            secrets: self.secrets.clone(),
            target: Arc::clone(&self.target),
            api: req.api,
            method: req.method.clone(),
            url,
            auth: req.auth.clone(),
            overrides: req.headers.clone(),
            body,
        })
    }

    /// What `req` looks like once recorded, redacted, without sending it: what a failure
    /// report and its `curl` reproducer are built from.
    pub fn recorded(&self, req: &Request) -> Result<SentRequest, TransportError> {
        let (parsed, _, body) = self.prepare(req)?;
        let sent = self.recorded_lazily(req, parsed.as_str().to_owned(), body);
        Ok(SentRequest::clone(&sent))
    }
}

fn content_type(api: Api) -> &'static str {
    match api {
        Api::Cma => "application/vnd.api+json",
        Api::Cda => "application/json",
    }
}

impl RawSent {
    /// The headers as recorded, in the order sent, before redaction: the names as the
    /// documentation writes them.
    fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![("Accept".to_owned(), "application/json".to_owned())];
        if self.api == Api::Cma {
            headers.push(("X-Api-Version".to_owned(), API_VERSION.to_owned()));
            if let Some(env) = &self.target.environment {
                headers.push(("X-Environment".to_owned(), env.clone()));
            }
        }
        if self.body.is_some() {
            headers.push(("Content-Type".to_owned(), content_type(self.api).to_owned()));
        }
        match &self.auth {
            Auth::Management => {
                headers.push((
                    "Authorization".to_owned(),
                    format!("Bearer {}", self.target.secret),
                ));
            }
            Auth::Token { secret, .. } => {
                headers.push(("Authorization".to_owned(), format!("Bearer {secret}")));
            }
            Auth::Raw(value) => headers.push(("Authorization".to_owned(), value.clone())),
            Auth::None => {}
        }
        for (name, value) in &self.overrides {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            if let Some(value) = value {
                headers.push((name.clone(), value.clone()));
            }
        }
        headers
    }

    /// The request as recorded, secrets replaced with what the run knows now.
    pub(super) fn redacted(&self) -> SentRequest {
        let body = self.body.as_ref().map(|bytes| {
            // The text sent is the JSON of the request's body: redacted member by member.
            match serde_json::from_slice::<Value>(bytes) {
                Ok(value) => crate::output::json_text(&self.secrets.redact_json(&value)),
                Err(_) => self.secrets.redact(&String::from_utf8_lossy(bytes)),
            }
        });
        SentRequest {
            method: self.method.to_string(),
            url: self.secrets.redact(&self.url),
            headers: self
                .headers()
                .iter()
                .map(|(n, v)| (n.clone(), self.redact_header(n, v)))
                .collect(),
            body,
        }
    }

    /// An `Authorization` value by position: the credential's name, never its value.
    fn redact_header(&self, name: &str, value: &str) -> String {
        if !name.eq_ignore_ascii_case("authorization") {
            return self.secrets.redact(value);
        }
        match &self.auth {
            Auth::Management => "Bearer $CONFORMANCE_API_TOKEN".to_owned(),
            Auth::Token { label, .. } => format!("Bearer {}", safe_placeholder(label)),
            // A deliberately invalid credential of the suite's own: shown, so that a failure
            // says what was sent.
            Auth::Raw(_) | Auth::None => self.secrets.redact(value),
        }
    }
}

impl RawBody {
    /// The body as text, secrets replaced with what the run knows now.
    pub(super) fn redacted(&self) -> String {
        if self.json
            && let Ok(json) = serde_json::from_slice::<Value>(&self.bytes)
        {
            // Member by member, so that no escape hides a secret; written back terminal-safe.
            return crate::output::json_text(&self.secrets.redact_json(&json));
        }
        let shown = if self.cut_short || self.containers.is_some() {
            &self.bytes[..self.bytes.len().min(EVIDENCE_BYTES)]
        } else {
            &self.bytes[..]
        };
        let text = self.secrets.redact(&String::from_utf8_lossy(shown));
        match self.containers {
            // The note first: whatever cuts the text short keeps it.
            Some((count, len)) => format!(
                "[{len} bytes, {count} objects and arrays: over the {} the suite parses as JSON, so not parsed; its start:] {text}…",
                super::MAX_JSON_CONTAINERS
            ),
            None => text,
        }
    }
}

/// How much of a body cut short at [`MAX_BODY_BYTES`] is kept as evidence.
pub(super) const EVIDENCE_BYTES: usize = 2048;

/// An answer as read off the wire.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
    /// The body was longer than [`MAX_BODY_BYTES`]; `body` holds what was read.
    cut_short: bool,
}

/// Why an answer could not be read.
enum Unread {
    /// No answer: refused, timed out, broken before anything parsed.
    Transport(TransportError),
    /// Bytes of an answer arrived but are not valid HTTP/1.1 (see
    /// [`TransportError::Malformed`]); the status and headers if the head parsed.
    Malformed {
        message: String,
        head: Option<(u16, Vec<(String, String)>)>,
    },
}

/// Send and read the answer, at most [`MAX_BODY_BYTES`] of its body: chunk by chunk, so that
/// an endless body is stopped at the cap instead of being gathered first. A body that comes
/// in one chunk (every small answer) is kept as it came, not copied.
async fn read_answer(builder: reqwest::RequestBuilder, url: &str) -> Result<Answer, Unread> {
    let mut response = match builder.send().await {
        Ok(response) => response,
        Err(err) if head_malformed(&err) => {
            return Err(Unread::Malformed {
                message: error_chain(&err),
                head: None,
            });
        }
        Err(err) => return Err(Unread::Transport(classify(url, &err))),
    };
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut answer = Answer {
        status,
        headers,
        body: Bytes::new(),
        cut_short: false,
    };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY_BYTES as u64)
    {
        answer.cut_short = true;
        return Ok(answer);
    }
    let mut joined: Option<Vec<u8>> = None;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            // The head arrived: a body that then breaks its framing (shorter than its
            // Content-Length, a bad chunk, the connection reset) is a malformed answer. A
            // body that stops coming is a timeout, as before any byte.
            Err(err) if !err.is_timeout() => {
                return Err(Unread::Malformed {
                    message: error_chain(&err),
                    head: Some((answer.status, answer.headers)),
                });
            }
            Err(err) => return Err(Unread::Transport(classify(url, &err))),
        };
        let read = joined.as_ref().map_or(answer.body.len(), Vec::len);
        let room = MAX_BODY_BYTES - read;
        let (chunk, cut) = if chunk.len() > room {
            (chunk.slice(..room), true)
        } else {
            (chunk, false)
        };
        match &mut joined {
            Some(all) => all.extend_from_slice(&chunk),
            None if answer.body.is_empty() => answer.body = chunk,
            None => {
                let mut all = Vec::with_capacity(answer.body.len() + chunk.len());
                all.extend_from_slice(&answer.body);
                all.extend_from_slice(&chunk);
                joined = Some(all);
            }
        }
        if cut {
            answer.cut_short = true;
            break;
        }
    }
    if let Some(all) = joined {
        answer.body = Bytes::from(all);
    }
    Ok(answer)
}

/// Whether sending failed because the response head that arrived does not parse as HTTP/1.1
/// (hyper's parse errors: too many headers, a header too large, a byte no header may hold,
/// a bad status line or version). A connection refused, closed before any answer, or timed
/// out is not that.
fn head_malformed(err: &reqwest::Error) -> bool {
    if err.is_timeout() || err.is_connect() {
        return false;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(inner) = source {
        if let Some(hyper) = inner.downcast_ref::<hyper::Error>() {
            return hyper.is_parse() || hyper.is_parse_status() || hyper.is_parse_too_large();
        }
        source = inner.source();
    }
    false
}

fn classify(url: &str, err: &reqwest::Error) -> TransportError {
    let message = error_chain(err);
    if err.is_timeout() {
        TransportError::Timeout {
            url: url.to_owned(),
        }
    } else if err.is_connect() {
        TransportError::Unreachable {
            url: url.to_owned(),
            message,
        }
    } else {
        TransportError::Broken {
            url: url.to_owned(),
            message,
        }
    }
}

pub(super) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
