//! Roles and tokens a check creates for itself, with guaranteed cleanup.
//!
//! Every fixture's name starts with `conformance-<run id>-`, so `sweep` can find what a killed
//! run left behind, and nothing else is ever touched. Cleanup runs when the check ends, also
//! after a failure or a panic (the engine awaits the check's task, then cleans up).

use std::sync::Mutex;

use reqwest::Method;
use serde_json::{Value, json};

use crate::outcome::Finding;
use crate::target::{Auth, Client, Exchange, Request};

/// The prefix of every name a run gives its fixtures.
pub const NAME_PREFIX: &str = "conformance-";

/// A role created by the run.
#[derive(Debug, Clone)]
pub struct RoleFx {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its attributes as created.
    pub attributes: Value,
}

impl RoleFx {
    /// `{"type": "role", "id": ...}`.
    pub fn reference(&self) -> Value {
        json!({ "type": "role", "id": self.id })
    }
}

/// The three surface flags of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    /// `can_access_cda`.
    pub cda: bool,
    /// `can_access_cda_preview`.
    pub cda_preview: bool,
    /// `can_access_cma`.
    pub cma: bool,
}

impl Flags {
    /// All three on.
    pub const ALL: Flags = Flags {
        cda: true,
        cda_preview: true,
        cma: true,
    };
}

/// A token created by the run.
#[derive(Clone)]
pub struct TokenFx {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its secret (registered for redaction).
    pub secret: String,
    /// Its role.
    pub role_id: String,
    /// Its flags as created.
    pub flags: Flags,
}

impl std::fmt::Debug for TokenFx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFx")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

impl TokenFx {
    /// Credentials to call as this token.
    pub fn auth(&self) -> Auth {
        Auth::Token {
            secret: self.secret.clone(),
            label: format!("$FIXTURE_TOKEN_{}", self.id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Created {
    Role(String),
    Token(String),
}

/// What one check created, to remove when it ends.
#[derive(Debug)]
pub struct Fixtures {
    client: Client,
    prefix: String,
    created: Mutex<Vec<Created>>,
    /// Creates sent but not confirmed (`(collection path, name)`): if the check is stopped
    /// while one is in flight, cleanup looks the name up.
    pending: Mutex<Vec<(String, String)>>,
    serial: std::sync::atomic::AtomicU32,
}

impl Fixtures {
    /// Fixtures named `conformance-<run id>-<check serial>-...`.
    pub fn new(client: Client, run_id: &str, check_serial: usize) -> Fixtures {
        Fixtures {
            client,
            prefix: format!("{NAME_PREFIX}{run_id}-{check_serial}-"),
            created: Mutex::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
            serial: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// A fresh name, unique in the run.
    pub fn name(&self, label: &str) -> String {
        let n = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}{n}-{label}", self.prefix)
    }

    fn remember(&self, created: Created, name: &str) {
        if let Ok(mut list) = self.created.lock() {
            list.push(created);
        }
        if let Ok(mut pending) = self.pending.lock() {
            pending.retain(|(_, n)| n != name);
        }
    }

    /// Create a role with these permissions granted (every other one false).
    pub async fn role(&self, label: &str, grants: &[&str]) -> Result<RoleFx, Finding> {
        let name = self.name(label);
        let mut attributes = serde_json::Map::new();
        attributes.insert("name".to_owned(), json!(name));
        for permission in crate::spec::Spec::embedded().role_permissions() {
            attributes.insert(
                permission.clone(),
                json!(grants.contains(&permission.as_str())),
            );
        }
        let attributes = Value::Object(attributes);
        let body = json!({ "data": { "type": "role", "attributes": attributes } });
        let ex = self.create("/roles", body, &name).await?;
        let id = created_id(&ex, "role")?;
        self.remember(Created::Role(id.clone()), &name);
        Ok(RoleFx {
            id,
            name,
            attributes,
        })
    }

    /// Create a token with this role and these flags.
    pub async fn token(
        &self,
        label: &str,
        role: &RoleFx,
        flags: Flags,
    ) -> Result<TokenFx, Finding> {
        let name = self.name(label);
        let body = json!({ "data": {
            "type": "access_token",
            "attributes": {
                "name": name,
                "can_access_cda": flags.cda,
                "can_access_cda_preview": flags.cda_preview,
                "can_access_cma": flags.cma,
            },
            "relationships": { "role": { "data": role.reference() } },
        }});
        let ex = self.create("/access_tokens", body, &name).await?;
        let id = created_id(&ex, "access token")?;
        self.remember(Created::Token(id.clone()), &name);
        let secret = ex
            .json
            .as_ref()
            .and_then(|j| j.pointer("/data/attributes/token"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                Finding::inconclusive(format!(
                    "creating a fixture token returned no secret (is can_manage_access_tokens granted to the management token's role?): {}",
                    ex.summary()
                ))
            })?;
        self.client
            .secrets()
            .register(&secret, &format!("$FIXTURE_TOKEN_{id}"));
        Ok(TokenFx {
            id,
            name,
            secret,
            role_id: role.id.clone(),
            flags,
        })
    }

    /// `POST` a fixture. A create is not idempotent, so the client does not resend it after an
    /// ambiguous failure (a timeout, a dropped connection, a transient 5xx); the fixture may
    /// exist all the same. Its name is unique to the run, so look it up and adopt it: it is
    /// then cleaned up like any other, and never created twice.
    async fn create(&self, path: &str, body: Value, name: &str) -> Result<Exchange, Finding> {
        if let Ok(mut pending) = self.pending.lock() {
            pending.push((path.to_owned(), name.to_owned()));
        }
        let first = self
            .client
            .send(&Request::cma(Method::POST, path).json(body))
            .await;
        let ambiguous = match &first {
            Ok(ex) => ex.status >= 500,
            Err(_) => true,
        };
        if !ambiguous {
            return Ok(first?);
        }
        let list = self
            .client
            .uncapped()
            .send(&Request::cma(Method::GET, path))
            .await?;
        let found = list
            .data()
            .and_then(Value::as_array)
            .and_then(|items| {
                items.iter().find(|item| {
                    item.pointer("/attributes/name").and_then(Value::as_str) == Some(name)
                })
            })
            .cloned();
        match found {
            Some(resource) => Ok(Exchange {
                status: 201,
                json: Some(json!({ "data": resource })),
                ..list
            }),
            None => Ok(first?),
        }
    }

    /// Delete everything this check created: tokens first, then roles, newest first.
    /// Returns a description of each fixture that could not be removed.
    pub async fn cleanup(&self) -> Vec<String> {
        // Work on a copy and forget each fixture only once it is gone: if this cleanup is
        // stopped half-way (Ctrl-C), another one still knows what is left.
        let created: Vec<Created> = match self.created.lock() {
            Ok(list) => list.clone(),
            Err(_) => return vec!["the fixture list was poisoned by a panic".to_owned()],
        };
        let (tokens, roles): (Vec<_>, Vec<_>) = created
            .into_iter()
            .rev()
            .partition(|c| matches!(c, Created::Token(_)));
        let client = self.client.uncapped();
        let mut leftovers = Vec::new();
        for item in tokens.into_iter().chain(roles) {
            let path = match &item {
                Created::Token(id) => format!("/access_tokens/{id}"),
                Created::Role(id) => format!("/roles/{id}"),
            };
            match client
                .send(&Request::cma(Method::DELETE, path.clone()))
                .await
            {
                Ok(ex) if ex.is_success() || ex.status == 404 => {
                    if let Ok(mut list) = self.created.lock() {
                        list.retain(|c| *c != item);
                    }
                }
                Ok(ex) => leftovers.push(format!("{path}: {}", ex.summary())),
                Err(err) => leftovers.push(format!("{path}: {err}")),
            }
        }
        leftovers.extend(self.clean_up_pending(&client).await);
        leftovers
    }

    /// Creates that were sent but never confirmed: find them by their unique name.
    async fn clean_up_pending(&self, client: &Client) -> Vec<String> {
        let pending: Vec<(String, String)> = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return Vec::new(),
        };
        let mut leftovers = Vec::new();
        for (path, name) in pending {
            let Ok(list) = client.send(&Request::cma(Method::GET, path.clone())).await else {
                leftovers.push(format!("{path}: a fixture named {name:?} may exist"));
                continue;
            };
            let ids: Vec<String> = list
                .data()
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter(|i| {
                            i.pointer("/attributes/name").and_then(Value::as_str)
                                == Some(name.as_str())
                        })
                        .filter_map(|i| i.get("id").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            for id in ids {
                let target = format!("{path}/{id}");
                match client
                    .send(&Request::cma(Method::DELETE, target.clone()))
                    .await
                {
                    Ok(ex) if ex.is_success() || ex.status == 404 => {}
                    Ok(ex) => leftovers.push(format!("{target}: {}", ex.summary())),
                    Err(err) => leftovers.push(format!("{target}: {err}")),
                }
            }
        }
        leftovers
    }
}

fn created_id(ex: &Exchange, what: &str) -> Result<String, Finding> {
    if !ex.is_success() {
        return Err(Finding::inconclusive(format!(
            "failed to create a fixture {what}: {}: {}",
            ex.summary(),
            truncate(&ex.body_text, 300)
        )));
    }
    ex.json
        .as_ref()
        .and_then(|j| j.pointer("/data/id"))
        .and_then(Value::as_str)
        // Ids end up in paths, reports and shell reproducers: accept only plain ones.
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .ok_or_else(|| {
            Finding::inconclusive(format!(
                "creating a fixture {what} returned no usable data.id (letters, digits, - and _)"
            ))
        })
}

/// At most `max` characters of `text`, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max).collect();
        out.push('…');
        out
    }
}
