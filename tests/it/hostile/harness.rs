//! What every hostile test shares: the upstream reference server and its state, the CLI run
//! as a black box with a hard time limit, the outputs it left, the searches for secrets (in
//! every encoding) and control characters, the audit of the requests, and the shell replay
//! of reproducers.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use token_conformance::reference::{ReferenceServer, ServerConfig};

use super::proxy::{Proxy, Recorded};

/// The hard limit on one CLI run; the run is killed and the test fails past it.
pub(crate) const WALL_LIMIT: Duration = Duration::from_secs(60);
/// Past this resident size the CLI is killed (and the test fails): the machine is shared.
const RSS_LIMIT_KB: u64 = 1024 * 1024;

/// The real reference server behind the proxy, with a management secret that has a `-`
/// (so that `\u002d` escapes matter) and no rate limit.
pub(crate) struct Upstream {
    pub(crate) server: ReferenceServer,
    pub(crate) client: reqwest::Client,
    pub(crate) management_id: String,
}

impl Upstream {
    pub(crate) async fn start() -> Upstream {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let secret = format!(
            "hostile-{:016x}-{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let server = ReferenceServer::start(ServerConfig {
            rate_limit: None,
            admin_secret: Some(secret),
            ..ServerConfig::default()
        })
        .await
        .unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut upstream = Upstream {
            server,
            client,
            management_id: String::new(),
        };
        let me = upstream.call("GET", "/users/me", None).await;
        upstream.management_id = me["data"]["id"].as_str().unwrap().to_owned();
        upstream
    }

    pub(crate) fn secret(&self) -> &str {
        self.server.admin_secret()
    }

    pub(crate) fn url(&self) -> String {
        self.server.cma_url()
    }

    pub(crate) fn cda(&self) -> String {
        self.server.cda_url()
    }

    /// A call straight to the reference server, as the management token.
    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|problem| panic!("{problem}"))
    }

    async fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self
            .client
            .request(
                method.parse().unwrap(),
                format!("{}{path}", self.server.cma_url()),
            )
            .header("authorization", format!("Bearer {}", self.secret()))
            .header("accept", "application/json")
            .header("x-api-version", "3");
        if let Some(body) = body {
            req = req
                .header("content-type", "application/vnd.api+json")
                .body(body.to_string());
        }
        let answer = req.send().await.unwrap();
        let status = answer.status();
        let text = answer.text().await.unwrap();
        if !status.is_success() {
            return Err(format!("{method} {path}: {status} {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Create a role and a token with it, straight on the server: (token id, role id).
    pub(crate) async fn create_pair(&self, token_name: &str, role_name: &str) -> (String, String) {
        let role = self
            .call(
                "POST",
                "/roles",
                Some(json!({"data": {"type": "role", "attributes": {"name": role_name}}})),
            )
            .await;
        let role_id = role["data"]["id"].as_str().unwrap().to_owned();
        let token = self
            .call(
                "POST",
                "/access_tokens",
                Some(json!({"data": {"type": "access_token", "attributes": {
                    "name": token_name, "can_access_cda": true, "can_access_cda_preview": false,
                    "can_access_cma": true},
                    "relationships": {"role": {"data": {"type": "role", "id": role_id}}}}})),
            )
            .await;
        (token["data"]["id"].as_str().unwrap().to_owned(), role_id)
    }

    /// Every token and role, by kind and id, without the access times (which using a token
    /// changes).
    pub(crate) async fn state(&self) -> State {
        self.try_state()
            .await
            .unwrap_or_else(|problem| panic!("{problem}"))
    }

    /// [`Upstream::state`], or why the management token can no longer read it (a run that
    /// rotated or deleted it locked the user out).
    pub(crate) async fn try_state(&self) -> Result<State, String> {
        let mut state = State::default();
        for (kind, path) in [("token", "/access_tokens"), ("role", "/roles")] {
            let list = self.try_call("GET", path, None).await.map_err(|problem| {
                format!("the management token no longer works after the run: {problem}")
            })?;
            for item in list["data"].as_array().unwrap() {
                let mut item = item.clone();
                if let Some(attributes) = item["attributes"].as_object_mut() {
                    attributes.remove("last_cma_access");
                    attributes.remove("last_cda_access");
                }
                let id = item["id"].as_str().unwrap().to_owned();
                state.items.insert((kind.to_owned(), id), item);
            }
        }
        Ok(state)
    }
}

/// The server's tokens and roles at one moment.
#[derive(Debug, Default, Clone)]
pub(crate) struct State {
    pub(crate) items: BTreeMap<(String, String), Value>,
}

impl State {
    fn token(&self, id: &str) -> Option<&Value> {
        self.items.get(&("token".to_owned(), id.to_owned()))
    }

    /// Every token and role of `before` is unchanged (except the `removed` ones, which are
    /// gone), and nothing else exists: what the run created it removed.
    pub(crate) fn untouched(&self, after: &State, removed: &[(&str, &str)]) -> Vec<String> {
        let mut problems = Vec::new();
        for ((kind, id), item) in &self.items {
            let gone = removed.iter().any(|(k, i)| k == kind && i == id);
            match (after.items.get(&(kind.clone(), id.clone())), gone) {
                (Some(_), true) => problems.push(format!("{kind} {id} was not removed")),
                (None, true) => {}
                (None, false) => problems.push(format!("{kind} {id} disappeared: {item}")),
                (Some(now), false) if now != item => {
                    problems.push(format!("{kind} {id} changed: {item} -> {now}"));
                }
                _ => {}
            }
        }
        let mut left = Vec::new();
        for ((kind, id), item) in &after.items {
            let name = item["attributes"]["name"].as_str().unwrap_or("");
            if !self.items.contains_key(&(kind.clone(), id.clone())) {
                left.push(format!("{kind} {id} {name:?}"));
            } else if name.contains("conformance-") {
                problems.push(format!("{kind} {id} is now named {name:?}"));
            }
        }
        if !left.is_empty() {
            problems.push(format!(
                "{} token(s)/role(s) left behind (no cleanup): {}",
                left.len(),
                cut(&left.join(", "), 600)
            ));
        }
        problems
    }
}

/// Check the proxy's record: every write (PUT, PATCH, DELETE, POST …/regenerate_token)
/// targets a resource upstream created for this run (`created`: tokens, roles), except an
/// update of a factory token that sends exactly its current name (or the name the target
/// showed, `shown_names`), flags and role; nothing writes to the management token.
pub(crate) fn audit(
    requests: &[Recorded],
    created: &(HashSet<String>, HashSet<String>),
    before: &State,
    management_id: &str,
    shown_names: &[&str],
) -> Vec<String> {
    let mut violations = Vec::new();
    for r in requests {
        let rotate = r.method == "POST" && r.path.ends_with("/regenerate_token");
        if !(rotate || ["PUT", "PATCH", "DELETE"].contains(&r.method.as_str())) {
            continue;
        }
        let what = format!("{} {} {}", r.method, r.path, cut(&r.body, 300));
        let (kind, rest) = if let Some(rest) = r.path.strip_prefix("/access_tokens/") {
            ("token", rest)
        } else if let Some(rest) = r.path.strip_prefix("/roles/") {
            ("role", rest)
        } else {
            violations.push(format!("a write outside the resources: {what}"));
            continue;
        };
        let id = if kind == "token" {
            rest.strip_suffix("/regenerate_token").unwrap_or(rest)
        } else {
            rest
        };
        if kind == "token" && id == management_id {
            violations.push(format!("a write to the management token: {what}"));
            continue;
        }
        let mine = if kind == "token" {
            created.0.contains(id)
        } else {
            created.1.contains(id)
        };
        if mine && !id.contains('/') {
            continue;
        }
        let harmless_factory_update = kind == "token"
            && r.method == "PUT"
            && before
                .token(id)
                .is_some_and(|t| is_unchanged_update(t, &r.body, shown_names));
        // An id nobody has, of a safe alphabet: a not-found probe, which changes nothing.
        let unknown = kind == "token"
            && !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            && before.token(id).is_none()
            && !created.0.contains(id);
        if !harmless_factory_update && !unknown {
            violations.push(format!(
                "a write to a resource the run did not create: {what}"
            ));
        }
    }
    violations
}

/// `body` updates factory token `token` to exactly what it is (the role included).
fn is_unchanged_update(token: &Value, body: &str, shown_names: &[&str]) -> bool {
    let Ok(body) = serde_json::from_str::<Value>(body) else {
        return false;
    };
    let now = &token["attributes"];
    let sent = &body["data"]["attributes"];
    let name_ok = sent["name"] == now["name"]
        || sent["name"]
            .as_str()
            .is_some_and(|n| shown_names.contains(&n));
    now["hardcoded_type"].is_string()
        && name_ok
        && ["can_access_cda", "can_access_cda_preview", "can_access_cma"]
            .iter()
            .all(|k| sent[k] == now[k])
        && body["data"]["relationships"]["role"]["data"]["id"]
            == token["relationships"]["role"]["data"]["id"]
}

/// What one CLI run left: exit code, streams, report files, time, peak memory.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) label: String,
    pub(crate) code: Option<i32>,
    pub(crate) elapsed: Duration,
    pub(crate) killed: Option<String>,
    pub(crate) peak_rss_kb: u64,
    /// (name, bytes): `stdout`, `stderr`, then each report file that exists.
    pub(crate) outputs: Vec<(String, Vec<u8>)>,
    pub(crate) dir: PathBuf,
    problems: RefCell<Vec<String>>,
}

/// Report files a run may write, relative to its directory.
pub(crate) const FILES: [&str; 5] = ["r.json", "r.xml", "r.md", "m.md", "m.html"];

pub(crate) fn scratch(label: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // Labels name forged ids (`../access_tokens/101`): keep them one plain path segment.
    let label: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let dir = std::env::temp_dir().join(format!("hostile-{label}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `token-conformance run` against `target`, with the reports in the run's directory.
pub(crate) async fn run_suite(label: &str, target: &str, up: &Upstream, extra: &[&str]) -> Run {
    let dir = scratch(label);
    let json = dir.join("r.json").display().to_string();
    let junit = dir.join("r.xml").display().to_string();
    let summary = dir.join("r.md").display().to_string();
    let mut args = vec![
        "run",
        "--base-url",
        target,
        "--json",
        &json,
        "--junit",
        &junit,
        "--summary",
        &summary,
        "--seed",
        "1",
        "--cases",
        "4",
    ];
    let cda = up.cda();
    args.extend(["--cda-url", cda.as_str()]);
    args.extend(extra);
    cli(label, dir, &args, &[("CONFORMANCE_API_TOKEN", up.secret())]).await
}

/// `token-conformance matrix` with one remote target, `target`.
pub(crate) async fn run_matrix(label: &str, target: &str, up: &Upstream) -> Run {
    let dir = scratch(label);
    let file = dir.join("targets.toml");
    std::fs::write(
        &file,
        format!(
            "[[target]]\nname = \"hostile\"\nbase_url = \"{target}\"\ncda_url = \"{}\"\ntoken_env = \"HOSTILE_TOKEN\"\n",
            up.cda()
        ),
    )
    .unwrap();
    let (file, md, html) = (
        file.display().to_string(),
        dir.join("m.md").display().to_string(),
        dir.join("m.html").display().to_string(),
    );
    let args = [
        "matrix",
        &file,
        "--markdown",
        &md,
        "--html",
        &html,
        "--seed",
        "1",
        "--cases",
        "4",
    ];
    cli(label, dir, &args, &[("HOSTILE_TOKEN", up.secret())]).await
}

/// `token-conformance sweep` against `target`.
pub(crate) async fn run_sweep(label: &str, target: &str, up: &Upstream) -> Run {
    let dir = scratch(label);
    let args = ["sweep", "--base-url", target];
    cli(label, dir, &args, &[("CONFORMANCE_API_TOKEN", up.secret())]).await
}

/// Run the binary in `dir` with a clean environment (no inherited `CONFORMANCE_*`), stdin
/// closed, streams to files; killed past [`WALL_LIMIT`] or [`RSS_LIMIT_KB`].
async fn cli(label: &str, dir: PathBuf, args: &[&str], env: &[(&str, &str)]) -> Run {
    let stdout = std::fs::File::create(dir.join("stdout")).unwrap();
    let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_token-conformance"));
    command
        .args(args)
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    for (k, v) in env {
        command.env(k, v);
    }
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let pid = child.id();
    let mut peak = 0;
    let mut killed = None;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        peak = peak.max(rss_kb(pid));
        let reason = if started.elapsed() > WALL_LIMIT {
            Some(format!("still running after {WALL_LIMIT:?}"))
        } else if peak > RSS_LIMIT_KB {
            Some(format!("resident size {peak} kB"))
        } else {
            None
        };
        if let Some(reason) = reason {
            let _ = child.kill();
            let _ = child.wait();
            killed = Some(reason);
            break None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let elapsed = started.elapsed();
    let mut outputs = Vec::new();
    for name in ["stdout", "stderr"].iter().chain(FILES.iter()) {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            outputs.push(((*name).to_owned(), bytes));
        }
    }
    Run {
        label: label.to_owned(),
        code: status.and_then(|s| s.code()),
        elapsed,
        killed,
        peak_rss_kb: peak,
        outputs,
        dir,
        problems: RefCell::new(Vec::new()),
    }
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

impl Run {
    pub(crate) fn output(&self, name: &str) -> Option<String> {
        self.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
    }

    /// What went wrong, for assertion messages: exit, time, and the ends of the streams.
    pub(crate) fn describe(&self) -> String {
        let tail = |name: &str| {
            let text = self.output(name).unwrap_or_default();
            let start = text.len().saturating_sub(2500);
            let start = (start..text.len())
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            format!("{:?}", &text[start..])
        };
        format!(
            "[{}] exit {:?}, killed {:?}, {:.1} s, peak {} kB\nstdout …{}\nstderr …{}",
            self.label,
            self.code,
            self.killed,
            self.elapsed.as_secs_f64(),
            self.peak_rss_kb,
            tail("stdout"),
            tail("stderr")
        )
    }

    /// Note a problem; [`Run::verdict`] reports them all at once.
    pub(crate) fn problem(&self, text: String) {
        self.problems.borrow_mut().push(text);
    }

    pub(crate) fn expect_exit(&self, expected: &[i32]) -> &Run {
        if !(self.killed.is_none() && self.code.is_some_and(|c| expected.contains(&c))) {
            self.problem(format!(
                "exit {:?} (killed: {:?}), expected {expected:?}",
                self.code, self.killed
            ));
        }
        self
    }

    pub(crate) fn expect_within(&self, bound: Duration) -> &Run {
        if self.elapsed >= bound {
            self.problem(format!("took {:?}, bound {bound:?}", self.elapsed));
        }
        self
    }

    /// Every problem noted, with the run's description; `None` if there is none.
    pub(crate) fn verdict(&self) -> Option<String> {
        let problems = self.problems.borrow();
        (!problems.is_empty()).then(|| {
            format!(
                "{} problem(s):\n- {}\n{}",
                problems.len(),
                problems.join("\n- "),
                self.describe()
            )
        })
    }

    /// No secret in any output, in any encoding a server can echo it in.
    pub(crate) fn expect_no_secret(&self, secrets: &[String]) -> &Run {
        let mut found = Vec::new();
        for (name, bytes) in &self.outputs {
            let text = String::from_utf8_lossy(bytes);
            for secret in secrets {
                if let Some(form) = leaked(&text, secret) {
                    found.push(format!("{name}: a secret ({form})"));
                }
            }
        }
        found.sort();
        found.dedup();
        found.into_iter().for_each(|f| self.problem(f));
        self
    }

    /// No raw control character (C0 but `\n` and `\t`, DEL, C1), bidi override or invisible
    /// character in any output.
    pub(crate) fn expect_no_control(&self) -> &Run {
        let mut found = Vec::new();
        for (name, bytes) in &self.outputs {
            let text = String::from_utf8_lossy(bytes);
            if let Some((at, c)) = text.char_indices().find(|(_, c)| is_control(*c)) {
                let start = (at.saturating_sub(60)..at)
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(at);
                found.push(format!(
                    "{name}: {c:?} at byte {at}, after {:?}",
                    &text[start..at]
                ));
            }
        }
        found.into_iter().for_each(|f| self.problem(f));
        self
    }

    /// The JSON report, if one was written and parses (else a problem is noted).
    pub(crate) fn json_report(&self) -> Option<Value> {
        let report = self
            .output("r.json")
            .and_then(|text| serde_json::from_str(&text).ok());
        if report.is_none() {
            self.problem("no readable JSON report".to_owned());
        }
        report
    }

    /// Every `curl` reproducer the run printed or wrote (stdout, JSON, JUnit).
    pub(crate) fn reproducers(&self) -> Vec<String> {
        let mut found = BTreeSet::new();
        let mut take = |text: &str| {
            for line in text.lines() {
                if let Some(at) = line.find("curl -g") {
                    found.insert(line[at..].to_owned());
                }
            }
        };
        take(&self.output("stdout").unwrap_or_default());
        if let Some(text) = self.output("r.json") {
            let mut strings = Vec::new();
            strings_of(
                &serde_json::from_str(&text).unwrap_or(Value::Null),
                &mut strings,
            );
            strings.iter().for_each(|s| take(s));
        }
        if let Some(text) = self.output("r.xml") {
            let doc = roxmltree::Document::parse(&text).unwrap();
            for node in doc.descendants().filter(roxmltree::Node::is_text) {
                take(node.text().unwrap_or_default());
            }
        }
        found.into_iter().collect()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn strings_of(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::String(s) => into.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings_of(v, into)),
        Value::Object(map) => map.values().for_each(|v| strings_of(v, into)),
        _ => {}
    }
}

/// A control character, or any other the output layer must not let through raw (bidi
/// overrides, zero-width and other invisible characters).
fn is_control(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || ('\u{80}'..='\u{9f}').contains(&c)
        || token_conformance::output::is_unsafe(c) && c != '\n' && c != '\t'
}

/// In which form, if any, `secret` shows in `text`: raw, or once `\uXXXX`, `%XX` or XML
/// character references are decoded, or base64-encoded (alone or as `x:secret`).
pub(crate) fn leaked(text: &str, secret: &str) -> Option<&'static str> {
    if text.contains(secret) {
        return Some("raw");
    }
    if json_unescape(text).contains(secret) {
        return Some("JSON-escaped");
    }
    if percent_decode(text).contains(secret) {
        return Some("percent-encoded");
    }
    if entity_decode(text).contains(secret) {
        return Some("XML character references");
    }
    for plain in [secret.to_owned(), format!("x:{secret}")] {
        let encoded = base64(plain.as_bytes());
        // The last characters depend on what follows; the rest does not.
        let stem = &encoded[..encoded.trim_end_matches('=').len().saturating_sub(2)];
        if text.contains(stem) {
            return Some("base64");
        }
    }
    None
}

fn json_unescape(text: &str) -> String {
    decode(text, |rest| {
        let hex = rest
            .strip_prefix("\\u")
            .or_else(|| rest.strip_prefix("\\U"))?;
        let code = u32::from_str_radix(hex.get(..4)?, 16).ok()?;
        Some((char::from_u32(code)?, 6))
    })
}

fn percent_decode(text: &str) -> String {
    decode(text, |rest| {
        let hex = rest.strip_prefix('%')?;
        let byte = u8::from_str_radix(hex.get(..2)?, 16).ok()?;
        byte.is_ascii().then_some((byte as char, 3))
    })
}

fn entity_decode(text: &str) -> String {
    decode(text, |rest| {
        let body = rest.strip_prefix("&#")?;
        let end = body.find(';')?;
        let code = match body[..end].strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => body[..end].parse().ok()?,
        };
        Some((char::from_u32(code)?, end + 3))
    })
}

/// `text` with every sequence `step` recognises (at a char boundary) replaced by its char.
fn decode(text: &str, step: impl Fn(&str) -> Option<(char, usize)>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if let Some((c, len)) = step(&text[i..]) {
            out.push(c);
            i += len;
        } else {
            let c = text[i..].chars().next().unwrap_or('\0');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Replay `line` with `sh` in an empty directory where `curl` is a function that records its
/// arguments: `Err` says what else happened (a file appeared, something printed, curl was
/// not called exactly once).
pub(crate) fn replay_in_shell(line: &str) -> Result<(), String> {
    let dir = scratch("replay");
    let script = format!(
        "curl() {{ printf 'call\\n' >> calls; for a in \"$@\"; do printf '%s\\n--\\n' \"$a\" >> args; done; }}\n{line}\n"
    );
    std::fs::write(dir.join("replay.sh"), script).unwrap();
    let output = Command::new("sh")
        .arg("replay.sh")
        .current_dir(&dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let calls = std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let expected: BTreeSet<String> = ["replay.sh", "calls", "args"].map(str::to_owned).into();
    let mut problems = Vec::new();
    if files != expected {
        problems.push(format!("files after the replay: {files:?}"));
    }
    if calls.lines().count() != 1 {
        problems.push(format!("curl called {} times", calls.lines().count()));
    }
    if !output.stdout.is_empty() || !output.stderr.is_empty() {
        problems.push(format!(
            "the shell printed {:?} / {:?}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\nline: {line}", problems.join("; ")))
    }
}

/// The secrets a run must never show: the management secret and every token upstream
/// issued (as the proxy saw them), minus `invented` ones the proxy made up itself.
pub(crate) fn secrets_of(up: &Upstream, proxy: &Proxy, invented: &[&str]) -> Vec<String> {
    let mut secrets = proxy.issued_secrets();
    secrets.push(up.secret().to_owned());
    secrets.retain(|s| !invented.contains(&s.as_str()));
    secrets.sort();
    secrets.dedup();
    secrets
}

/// Fail with the verdicts of every run that had a problem.
pub(crate) fn conclude(verdicts: impl IntoIterator<Item = Option<String>>) {
    let failed: Vec<String> = verdicts.into_iter().flatten().collect();
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
