//! Observations: what the target answers where the documentation is silent (the status of
//! `NON_EDITABLE_ACCESS_TOKEN`, each kind of invalid body, an unknown id or role, a body id
//! that differs from the path, missing headers and credentials, a valid secret after a
//! lower-case scheme or among extra spaces, a successful update).
//!
//! Nothing here is asserted: each answer is normalised (ids, secrets, run-specific names
//! and error ids replaced, maps sorted) and kept as a regression snapshot, one folder per
//! target under `snapshots/`, so that any change of behaviour is a reviewable diff.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::{Auth, Collection, Exchange, Request, ResourceId, resource_path};
use crate::engine::Session;
use crate::fixtures::{Fixtures, Flags};
use crate::outcome::Finding;

/// One observation: a name (the snapshot's) and the normalised answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Snapshot name, e.g. `unknown_id`.
    pub name: String,
    /// `{"request": "...", "status": ..., "content_type": ..., "body": ...}`.
    pub value: Value,
}

/// The ids and names the normaliser replaces.
struct Known {
    replacements: Vec<(String, String)>,
}

impl Known {
    fn text(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (from, to) in &self.replacements {
            if !from.is_empty() {
                out = out.replace(from.as_str(), to);
            }
        }
        mask_fixture_names(&out)
    }
}

/// `conformance-<8 hex>-…` up to the next space or quote becomes `[fixture name]`.
fn mask_fixture_names(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(crate::fixtures::NAME_PREFIX) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if crate::engine::is_fixture_name(tail) {
            let end = tail.find(['"', ' ', '\'', ',', '}']).unwrap_or(tail.len());
            out.push_str("[fixture name]");
            rest = &tail[end..];
        } else {
            out.push_str(crate::fixtures::NAME_PREFIX);
            rest = &tail[crate::fixtures::NAME_PREFIX.len()..];
        }
    }
    out.push_str(rest);
    out
}

fn normalise(value: &Value, known: &Known) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let is_error = map.get("type").and_then(Value::as_str) == Some("api_error");
            let mut out = Map::new();
            for (k, v) in entries {
                let v = match (k.as_str(), v) {
                    ("id", Value::String(_)) if is_error => json!("[error id]"),
                    ("token", Value::String(_)) => json!("[secret]"),
                    _ => normalise(v, known),
                };
                out.insert(known.text(k), v);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| normalise(v, known)).collect()),
        Value::String(s) => Value::String(known.text(s)),
        other => other.clone(),
    }
}

fn record(
    name: &str,
    ex: &Exchange,
    known: &Known,
    secrets: &crate::client::Secrets,
) -> Observation {
    let path = ex
        .request
        .url
        .split_once("://")
        .map_or("", |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    let body = match &ex.json {
        // Known secrets first, wherever they stand (an error echoing a header, say).
        Some(json) => normalise(&secrets.redact_json(json), known),
        None => json!(known.text(&crate::fixtures::truncate(&ex.body_text, 500))),
    };
    Observation {
        name: name.to_owned(),
        value: json!({
            "request": known.text(&format!("{} {}", ex.request.method, path)),
            "status": ex.status,
            "content_type": ex.header("content-type"),
            "body": body,
        }),
    }
}

/// Make every observation against the session's target, with fixtures of its own (removed
/// at the end, whatever happens).
pub async fn observe(session: &Session) -> Result<Vec<Observation>, Finding> {
    let client = session.client().scoped();
    let fixtures = Fixtures::new(client.clone(), &session.settings().run_id, 9999);
    let result = observe_with(&client, &fixtures).await;
    fixtures.cleanup().await;
    result
}

async fn observe_with(
    client: &crate::client::Client,
    fixtures: &Fixtures,
) -> Result<Vec<Observation>, Finding> {
    let role = fixtures.role("observe", &[]).await?;
    let other_role = fixtures.role("observe-other", &[]).await?;
    let token = fixtures.token("observe", &role, Flags::ALL).await?;
    let known = Known {
        replacements: vec![
            (
                resource_path(Collection::AccessTokens, &token.id, None),
                "/access_tokens/[token id]".to_owned(),
            ),
            (
                resource_path(Collection::Roles, &role.id, None),
                "/roles/[role id]".to_owned(),
            ),
        ],
    };
    let id = token.id.clone();
    let management = client.target().secret.clone();
    let valid = |name: &str| {
        json!({ "data": { "type": "access_token", "id": id, "attributes": {
            "name": name, "can_access_cda": true, "can_access_cda_preview": false, "can_access_cma": true } } })
    };
    let put = |body: Value| {
        Request::cma_resource(Method::PUT, Collection::AccessTokens, &id, None).json(body)
    };
    let with = |pointer: &str, value: Value| {
        let mut body = valid(&token.name);
        body["data"]["relationships"] = json!({ "role": { "data": role.reference() } });
        if let Some(slot) = body.pointer_mut(pointer) {
            *slot = value;
        }
        body
    };
    let without = |pointer: &str| {
        let mut body = valid(&token.name);
        if let Some((parent, key)) = pointer.rsplit_once('/')
            && let Some(Value::Object(map)) = body.pointer_mut(parent)
        {
            map.remove(key);
        }
        body
    };
    let mut wrong_type = valid(&token.name);
    wrong_type["data"]["type"] = json!("api_token");
    let mut unknown_member = valid(&token.name);
    unknown_member["data"]["attributes"]["x_unknown"] = json!(true);
    let mut moved_role = valid(&token.name);
    moved_role["data"]["relationships"] = json!({ "role": { "data": other_role.reference() } });
    let mut unknown_role = valid(&token.name);
    unknown_role["data"]["relationships"] =
        json!({ "role": { "data": { "type": "role", "id": "98000000002" } } });
    let mut other_id = valid(&token.name);
    other_id["data"]["id"] = json!("98000000003");
    let unknown = Request::cma(Method::PUT, "/access_tokens/98000000001").json({
        let mut b = valid(&token.name);
        b["data"]["id"] = json!("98000000001");
        b
    });

    let mut cases: Vec<(&str, Request)> = vec![
        ("successful_update", put(valid(&token.name))),
        ("successful_role_change", put(moved_role)),
        (
            "invalid_missing_name",
            put(without("/data/attributes/name")),
        ),
        (
            "invalid_missing_flag",
            put(without("/data/attributes/can_access_cma")),
        ),
        (
            "invalid_flag_as_string",
            put(with("/data/attributes/can_access_cma", json!("true"))),
        ),
        ("invalid_type", put(wrong_type)),
        ("invalid_data_not_object", put(json!({ "data": [] }))),
        (
            "invalid_role_data_null",
            put(with("/data/relationships/role/data", Value::Null)),
        ),
        (
            "invalid_role_reference",
            put(with("/data/relationships/role/data/type", json!("user"))),
        ),
        ("invalid_blank_name", put(valid("   "))),
        ("invalid_empty_id", put(with("/data/id", json!("")))),
        ("invalid_unknown_member", put(unknown_member)),
        ("unknown_id", unknown),
        ("unknown_role", put(unknown_role)),
        ("body_id_differs_from_path", put(other_id)),
        (
            "missing_api_version",
            put(valid(&token.name)).header("X-Api-Version", None),
        ),
        (
            "wrong_accept",
            put(valid(&token.name)).header("Accept", Some("text/html")),
        ),
        (
            "wrong_content_type",
            put(valid(&token.name)).header("Content-Type", Some("text/plain")),
        ),
        (
            "missing_credentials",
            put(valid(&token.name)).auth(Auth::None),
        ),
        (
            "bad_credentials",
            put(valid(&token.name))
                .auth(Auth::Raw("Bearer conformance-not-a-token-0000".to_owned())),
        ),
        // The same credential by RFC 7235 (the scheme is case-insensitive) and RFC 6750
        // (`Bearer 1*SP token`); the documentation shows only `Bearer <token>`.
        (
            "lowercase_scheme",
            put(valid(&token.name)).auth(Auth::Raw(format!("bearer {management}"))),
        ),
        (
            "spaces_around_secret",
            put(valid(&token.name)).auth(Auth::Raw(format!("Bearer   {management}  "))),
        ),
    ];
    // The factory token answer, with its own current values (its role too) sent back
    // unchanged. Never the token the run authenticates with, even when it is a factory token,
    // and never one listed with an unsafe id.
    let me = client.send(&Request::cma(Method::GET, "/users/me")).await?;
    let my_id = me
        .data()
        .and_then(|d| d.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let list = client
        .send(&Request::cma(Method::GET, "/access_tokens"))
        .await?;
    let factory = list
        .data()
        .and_then(Value::as_array)
        .and_then(|items| {
            items.iter().find(|t| {
                t.get("id").and_then(Value::as_str) != my_id.as_deref()
                    && t.pointer("/attributes/hardcoded_type")
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty())
            })
        })
        .and_then(|t| ResourceId::of(t).ok().map(|id| (id, t.clone())));
    if let Some((fid, factory)) = &factory {
        let attr = |k: &str| {
            factory
                .pointer(&format!("/attributes/{k}"))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let mut body = json!({ "data": { "type": "access_token", "id": fid, "attributes": {
            "name": attr("name"), "can_access_cda": attr("can_access_cda"),
            "can_access_cda_preview": attr("can_access_cda_preview"), "can_access_cma": attr("can_access_cma") } } });
        if let Some(role) = factory
            .pointer("/relationships/role/data")
            .filter(|r| !r.is_null())
        {
            body["data"]["relationships"] = json!({ "role": { "data": role } });
        }
        cases.push((
            "hardcoded_rejection",
            Request::cma_resource(Method::PUT, Collection::AccessTokens, fid, None).json(body),
        ));
    }
    let mut known = known;
    if let Some((fid, _)) = &factory {
        known.replacements.push((
            resource_path(Collection::AccessTokens, fid, None),
            "/access_tokens/[factory token id]".to_owned(),
        ));
    }
    let mut out = Vec::with_capacity(cases.len());
    for (name, req) in cases {
        let ex = client.send(&req).await?;
        let mut observation = record(name, &ex, &known, client.secrets());
        // The fixtures' ids wherever they stand as values.
        observation.value = replace_exact(
            &observation.value,
            &[
                (token.id.as_str(), "[token id]"),
                (role.id.as_str(), "[role id]"),
                (other_role.id.as_str(), "[other role id]"),
            ],
        );
        out.push(observation);
    }
    Ok(out)
}

/// Replace string values equal to one of `pairs`' left sides.
fn replace_exact(value: &Value, pairs: &[(&str, &str)]) -> Value {
    match value {
        Value::String(s) => match pairs.iter().find(|(from, _)| *from == s.as_str()) {
            Some((_, to)) => json!(to),
            None => value.clone(),
        },
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| replace_exact(v, pairs)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), replace_exact(v, pairs)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The folder of a target's snapshots: `<root>/<target name>`, the name made path-safe.
pub fn snapshot_dir(root: &Path, target_name: &str) -> PathBuf {
    let safe: String = target_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    root.join(if safe.is_empty() || safe.starts_with('.') {
        format!("_{safe}")
    } else {
        safe
    })
}

/// The text of a snapshot file, as insta writes it (so `cargo test` and `cargo insta review`
/// read what the CLI records).
pub fn snapshot_file_text(observation: &Observation) -> String {
    // Controls and bidi characters a target sent become `\uXXXX`: the same JSON, readable.
    let body = crate::output::json_safe(
        &serde_json::to_string_pretty(&sorted(&observation.value)).unwrap_or_default(),
    );
    format!("---\nsource: tests/snapshots.rs\nexpression: observation\n---\n{body}\n")
}

/// `value` with every object's keys in order, as insta's `sort_maps` writes them.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The stored snapshot's value, if the file exists and parses.
pub fn read_snapshot(dir: &Path, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.snap"))).ok()?;
    let body = text.splitn(3, "---\n").nth(2)?;
    serde_json::from_str(body).ok()
}

/// Write every observation as `<dir>/<name>.snap`.
pub fn write_snapshots(dir: &Path, observations: &[Observation]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for observation in observations {
        std::fs::write(
            dir.join(format!("{}.snap", observation.name)),
            snapshot_file_text(observation),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_names_are_masked() {
        assert_eq!(
            mask_fixture_names("x conformance-0a1b2c3d-9999-0-observe y"),
            "x [fixture name] y"
        );
        assert_eq!(mask_fixture_names("conformance-zz"), "conformance-zz");
    }
}
