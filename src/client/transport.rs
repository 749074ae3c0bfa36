//! One request on the wire: its URL and headers, the body read up to [`MAX_BODY_BYTES`], and
//! its record with secrets replaced (an `Authorization` value by position, never by value).

use std::sync::atomic::Ordering;
use std::time::Instant;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::{
    API_VERSION, Api, Auth, Client, Exchange, MAX_BODY_BYTES, Request, SentRequest, TransportError,
    safe_placeholder,
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

    /// The headers every request carries, before overrides.
    pub(super) fn default_headers(&self, req: &Request) -> Vec<(String, String)> {
        let mut headers = vec![("Accept".to_owned(), "application/json".to_owned())];
        if req.api == Api::Cma {
            headers.push(("X-Api-Version".to_owned(), API_VERSION.to_owned()));
            if let Some(env) = &self.target.environment {
                headers.push(("X-Environment".to_owned(), env.clone()));
            }
        }
        if req.body.is_some() {
            let ct = if req.api == Api::Cma {
                "application/vnd.api+json"
            } else {
                "application/json"
            };
            headers.push(("Content-Type".to_owned(), ct.to_owned()));
        }
        match &req.auth {
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
        for (name, value) in &req.headers {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            if let Some(value) = value {
                headers.push((name.clone(), value.clone()));
            }
        }
        headers
    }

    /// Send `req` once: no waiting on 429s, no retries.
    pub async fn send_once(&self, req: &Request) -> Result<Exchange, TransportError> {
        let (parsed, headers, map, body_text) = self.prepare(req)?;
        let url = parsed.as_str().to_owned();
        let mut builder = self.http.request(req.method.clone(), parsed).headers(map);
        self.check_write(req, &url)?;
        if let Some(text) = &body_text {
            builder = builder.body(text.clone());
        }
        if let Some(reason) = self.refusal() {
            return Err(TransportError::Stopped(reason));
        }
        let cap = self.stats.cap.load(Ordering::Relaxed);
        // Take a slot atomically, so that concurrent checks cannot overshoot the cap.
        let took = self
            .stats
            .requests
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |sent| {
                (!self.capped || cap == 0 || sent < cap).then_some(sent + 1)
            });
        if took.is_err() {
            return Err(TransportError::Budget(cap));
        }
        self.local.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let answer = self.unless_stopped(read_answer(builder, &url)).await??;
        let elapsed = started.elapsed();
        let json: Option<Value> = if answer.cut_short {
            None
        } else {
            serde_json::from_slice(&answer.body).ok()
        };
        if let Some(json) = &json {
            // Learned before anything is recorded, so this very answer is redacted too.
            let weak = self.secrets.learn_from(json);
            self.weak.fetch_add(weak as u64, Ordering::Relaxed);
        }
        let sent = self.record(req, &url, &headers, req.body.as_ref());
        if self.stats.record.load(Ordering::Relaxed)
            && let Ok(mut log) = self.stats.sent.lock()
        {
            log.push(sent.clone());
        }
        let body_text = match &json {
            // Member by member, so that no escape hides a secret; written back terminal-safe.
            Some(json) => crate::output::json_text(&self.secrets.redact_json(json)),
            None => {
                let shown = if answer.cut_short {
                    &answer.body[..answer.body.len().min(EVIDENCE_BYTES)]
                } else {
                    &answer.body[..]
                };
                self.secrets.redact(&String::from_utf8_lossy(shown))
            }
        };
        let exchange = Exchange {
            request: sent,
            status: answer.status,
            headers: answer.headers,
            body_text,
            json,
            elapsed,
        };
        if answer.cut_short {
            return Err(TransportError::TooLarge {
                url,
                cap: MAX_BODY_BYTES,
                partial: Box::new(exchange),
            });
        }
        Ok(exchange)
    }

    /// The URL, headers and body text `req` is sent with, checked: nothing is sent that
    /// could not be recorded as it was sent.
    #[allow(clippy::type_complexity)]
    pub(super) fn prepare(
        &self,
        req: &Request,
    ) -> Result<
        (
            reqwest::Url,
            Vec<(String, String)>,
            HeaderMap,
            Option<String>,
        ),
        TransportError,
    > {
        let url = self.url_of(req)?;
        let parsed =
            reqwest::Url::parse(&url).map_err(|err| TransportError::Build(err.to_string()))?;
        let headers = self.default_headers(req);
        let mut map = HeaderMap::new();
        for (name, value) in &headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|err| TransportError::Build(err.to_string()))?;
            let value = HeaderValue::from_str(value)
                .map_err(|err| TransportError::Build(err.to_string()))?;
            map.append(name, value);
        }
        // Controls and bidi characters escaped: the same JSON, and what is recorded (and
        // replayed by the reproducer) is exactly what was sent.
        let body_text = req.body.as_ref().map(crate::output::json_text);
        Ok((parsed, headers, map, body_text))
    }

    /// What `req` looks like once recorded, redacted, without sending it: what a failure
    /// report and its `curl` reproducer are built from.
    pub fn recorded(&self, req: &Request) -> Result<SentRequest, TransportError> {
        let (parsed, headers, _, _) = self.prepare(req)?;
        Ok(self.record(req, parsed.as_str(), &headers, req.body.as_ref()))
    }

    pub(super) fn record(
        &self,
        req: &Request,
        url: &str,
        headers: &[(String, String)],
        body: Option<&Value>,
    ) -> SentRequest {
        SentRequest {
            method: req.method.to_string(),
            url: self.secrets.redact(url),
            headers: headers
                .iter()
                .map(|(n, v)| (n.clone(), self.redact_header(n, v, &req.auth)))
                .collect(),
            body: body.map(|b| crate::output::json_text(&self.secrets.redact_json(b))),
        }
    }

    /// An `Authorization` value by position: the credential's name, never its value.
    pub(super) fn redact_header(&self, name: &str, value: &str, auth: &Auth) -> String {
        if !name.eq_ignore_ascii_case("authorization") {
            return self.secrets.redact(value);
        }
        match auth {
            Auth::Management => "Bearer $CONFORMANCE_API_TOKEN".to_owned(),
            Auth::Token { label, .. } => format!("Bearer {}", safe_placeholder(label)),
            // A deliberately invalid credential of the suite's own: shown, so that a failure
            // says what was sent.
            Auth::Raw(_) | Auth::None => self.secrets.redact(value),
        }
    }
}

/// How much of a body cut short at [`MAX_BODY_BYTES`] is kept as evidence.
pub(super) const EVIDENCE_BYTES: usize = 2048;

/// An answer as read off the wire.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The body was longer than [`MAX_BODY_BYTES`]; `body` holds what was read.
    cut_short: bool,
}

/// Send and read the answer, at most [`MAX_BODY_BYTES`] of its body: chunk by chunk, so that
/// an endless body is stopped at the cap instead of being gathered first.
async fn read_answer(
    builder: reqwest::RequestBuilder,
    url: &str,
) -> Result<Answer, TransportError> {
    let mut response = builder.send().await.map_err(|err| classify(url, &err))?;
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
        body: Vec::new(),
        cut_short: false,
    };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY_BYTES as u64)
    {
        answer.cut_short = true;
        return Ok(answer);
    }
    while let Some(chunk) = response.chunk().await.map_err(|err| classify(url, &err))? {
        let room = MAX_BODY_BYTES - answer.body.len();
        if chunk.len() > room {
            answer.body.extend_from_slice(&chunk[..room]);
            answer.cut_short = true;
            return Ok(answer);
        }
        answer.body.extend_from_slice(&chunk);
    }
    Ok(answer)
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
