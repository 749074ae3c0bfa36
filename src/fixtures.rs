//! Roles and tokens a check creates for itself, with guaranteed cleanup.
//!
//! Every fixture's name starts with `conformance-<run id>-`, so `sweep` can find what a killed
//! run left behind, and nothing else is ever touched. Cleanup runs when the check ends, also
//! after a failure or a panic (the engine awaits the check's task, then cleans up).

use std::sync::Mutex;

use reqwest::Method;
use serde_json::{Value, json};

use crate::outcome::{Failure, Finding};
use crate::spec::SchemaId;
use crate::client::{
    Auth, Client, Collection, Exchange, IdForm, Request, ResourceId, UnsafeId, shown,
};

/// The prefix of every name a run gives its fixtures.
pub const NAME_PREFIX: &str = "conformance-";

/// The clause a broken resource shape in a create answer is a failure of: the only clause
/// about the shape of the resource (`data.id` a string, the documented attributes). Every
/// check that creates fixtures meets the shape; this one fails on it, the others carry on
/// with what they can safely use (and say so in a warning).
pub const SHAPE_CLAUSE: &str = "update.response.schema";

/// A role created by the run.
#[derive(Debug, Clone)]
pub struct RoleFx {
    /// Its id.
    pub id: ResourceId,
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
    pub id: ResourceId,
    /// Its name.
    pub name: String,
    /// Its secret (registered for redaction).
    pub secret: String,
    /// Its role.
    pub role_id: ResourceId,
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

/// One resource the check created and confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Created {
    collection: Collection,
    id: ResourceId,
}

/// What one check created, to remove when it ends.
#[derive(Debug)]
pub struct Fixtures {
    client: Client,
    prefix: String,
    /// The clause of the check these fixtures serve (`None` outside a check: `observe`).
    clause: Option<&'static str>,
    created: Mutex<Vec<Created>>,
    /// Creates sent but not confirmed (`(collection, name)`): if the check is stopped while
    /// one is in flight, or the answer could not be used, cleanup looks the name up.
    pending: Mutex<Vec<(Collection, String)>>,
    /// Broken shapes seen in create answers, as warnings for checks of other clauses.
    notes: Mutex<Vec<String>>,
    serial: std::sync::atomic::AtomicU32,
}

/// What a create answer's shape allows.
enum Shape {
    /// As documented.
    Conformant(ResourceId),
    /// Usable (an integer id, stringified; or a schema violation with a safe id), but broken.
    Broken(ResourceId, Failure),
    /// No id the suite can use: the fixture must be found by name to be cleaned up.
    Unusable(Failure),
}

impl Fixtures {
    /// Fixtures named `conformance-<run id>-<check serial>-...`.
    pub fn new(client: Client, run_id: &str, check_serial: usize) -> Fixtures {
        Fixtures {
            client,
            prefix: format!("{NAME_PREFIX}{run_id}-{check_serial}-"),
            clause: None,
            created: Mutex::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
            notes: Mutex::new(Vec::new()),
            serial: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// The same fixtures, serving a check of `clause` (a broken shape fails [`SHAPE_CLAUSE`]).
    pub fn for_clause(mut self, clause: &'static str) -> Fixtures {
        self.clause = Some(clause);
        self
    }

    /// A fresh name, unique in the run.
    pub fn name(&self, label: &str) -> String {
        let n = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}{n}-{label}", self.prefix)
    }

    /// Broken shapes seen since the last call, for the check's warnings.
    pub fn take_notes(&self) -> Vec<String> {
        self.notes
            .lock()
            .map(|mut notes| std::mem::take(&mut *notes))
            .unwrap_or_default()
    }

    fn remember(&self, collection: Collection, id: &ResourceId, name: &str) {
        if let Ok(mut list) = self.created.lock() {
            list.push(Created {
                collection,
                id: id.clone(),
            });
        }
        if let Ok(mut pending) = self.pending.lock() {
            pending.retain(|(c, n)| !(*c == collection && n == name));
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
        let (_, id) = self.create(Collection::Roles, body, &name).await?;
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
        let (ex, id) = self.create(Collection::AccessTokens, body, &name).await?;
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

    /// `POST` a fixture and take its id from the answer, validated.
    ///
    /// A create is not idempotent, so the client does not resend it after an ambiguous
    /// failure (a timeout, a dropped connection, a transient 5xx); the fixture may exist all
    /// the same. Its name is unique to the run, so look it up and adopt it: it is then
    /// cleaned up like any other, and never created twice.
    async fn create(
        &self,
        collection: Collection,
        body: Value,
        name: &str,
    ) -> Result<(Exchange, ResourceId), Finding> {
        if let Ok(mut pending) = self.pending.lock() {
            pending.push((collection, name.to_owned()));
        }
        let what = match collection {
            Collection::AccessTokens => "access token",
            Collection::Roles => "role",
        };
        let first = self
            .client
            .send(&Request::cma(Method::POST, collection.path()).json(body))
            .await;
        let ambiguous = match &first {
            Ok(ex) => ex.status >= 500,
            Err(_) => true,
        };
        let ex = if ambiguous {
            match self.find_by_name(collection, name).await {
                Ok(Some((_, resource, read))) => Exchange {
                    status: 201,
                    json: Some(json!({ "data": resource })),
                    ..read
                },
                _ => first?,
            }
        } else {
            first?
        };
        if !ex.is_success() {
            return Err(Finding::inconclusive(format!(
                "failed to create a fixture {what}: {}: {}",
                ex.summary(),
                truncate(&ex.body_text, 300)
            )));
        }
        let id = match created_shape(&ex, collection, what) {
            Shape::Conformant(id) => id,
            Shape::Broken(id, failure) => {
                let id = self.claim(collection, id, &ex, what)?;
                self.remember(collection, &id, name);
                self.broken(failure)?;
                return Ok((ex, id));
            }
            Shape::Unusable(failure) => {
                // The answer names nothing the suite may touch: find what was created by its
                // unique name, so that it is cleaned up all the same.
                if let Ok(Some((id, _, _))) = self.find_by_name(collection, name).await
                    && self.client.claim_fixture_id(collection, &id)
                {
                    self.remember(collection, &id, name);
                }
                let message = failure.message.clone();
                self.broken(failure)?;
                return Err(Finding::inconclusive(message));
            }
        };
        let id = self.claim(collection, id, &ex, what)?;
        self.remember(collection, &id, name);
        Ok((ex, id))
    }

    /// Take `id` for this fixture. Distinct resources have distinct ids: an id another live
    /// fixture of the run already holds means the target cannot tell them apart (a stateless
    /// mock gives every resource the same one), and no check that needs two fixtures can pass.
    /// The new fixture is then left to the cleanup by name.
    fn claim(
        &self,
        collection: Collection,
        id: ResourceId,
        ex: &Exchange,
        what: &str,
    ) -> Result<ResourceId, Finding> {
        if self.client.claim_fixture_id(collection, &id) {
            return Ok(id);
        }
        Err(Finding::fail(
            format!(
                "the target gave a new fixture {what} the id {}, which another {} the run created and has not deleted already has: distinct resources must have distinct ids, so the fixtures of this check cannot be told apart",
                shown(&id),
                collection.noun(),
            ),
            &[ex],
        ))
    }

    /// A broken shape in a create answer: a failure of [`SHAPE_CLAUSE`], a warning elsewhere.
    fn broken(&self, failure: Failure) -> Result<(), Finding> {
        if self.clause == Some(SHAPE_CLAUSE) {
            return Err(Finding::Fail(failure));
        }
        if let Ok(mut notes) = self.notes.lock() {
            let note = format!("{} (a failure of {SHAPE_CLAUSE})", failure.message);
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
        Ok(())
    }

    /// The one resource of `collection` named exactly `name`, with a safe id that is not the
    /// management token, and that reads back by that id with that name: `(id, resource as
    /// read back, the read)`. Anything else (no such name, several, an unsafe id, a listing
    /// entry that names another resource's id) is not touched.
    async fn find_by_name(
        &self,
        collection: Collection,
        name: &str,
    ) -> Result<Option<(ResourceId, Value, Exchange)>, String> {
        let client = self.client.uncapped();
        let list = client
            .send(&Request::cma(Method::GET, collection.path()))
            .await
            .map_err(|err| err.to_string())?;
        let matches: Vec<&Value> = list
            .data()
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter(|i| i.pointer("/attributes/name").and_then(Value::as_str) == Some(name))
                    .collect()
            })
            .unwrap_or_default();
        let resource = match matches.as_slice() {
            [] => return Ok(None),
            [one] => (*one).clone(),
            several => {
                return Err(format!(
                    "{} resources are named {}: none was touched",
                    several.len(),
                    shown(name)
                ));
            }
        };
        let id = ResourceId::of(&resource).map_err(|err| listed_unsafe(collection, &err))?;
        if collection == Collection::AccessTokens && client.management_id().as_ref() == Some(&id) {
            return Err(format!(
                "the target listed the management token under the fixture name {}: not touched",
                shown(name)
            ));
        }
        let read = client
            .send(&Request::cma_resource(Method::GET, collection, &id, None))
            .await
            .map_err(|err| err.to_string())?;
        let data = read.data().filter(|_| read.is_success()).cloned();
        let confirmed = data.as_ref().is_some_and(|d| {
            d.get("id").and_then(Value::as_str) == Some(&*id)
                && d.pointer("/attributes/name").and_then(Value::as_str) == Some(name)
        });
        match data {
            Some(resource) if confirmed => Ok(Some((id, resource, read))),
            _ => Err(format!(
                "the target lists it as {}, but that resource does not read back with this name: not touched",
                shown(&id)
            )),
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
            .partition(|c| c.collection == Collection::AccessTokens);
        let client = self.client.uncapped();
        let mut leftovers = Vec::new();
        for item in tokens.into_iter().chain(roles) {
            let req = Request::cma_resource(Method::DELETE, item.collection, &item.id, None);
            let path = req.path.clone();
            match client.send(&req).await {
                Ok(ex) if ex.is_success() || ex.status == 404 => {
                    if let Ok(mut list) = self.created.lock() {
                        list.retain(|c| *c != item);
                    }
                    client.release_fixture_id(item.collection, &item.id);
                }
                Ok(ex) => leftovers.push(format!("{path}: {}", ex.summary())),
                Err(err) => leftovers.push(format!("{path}: {err}")),
            }
        }
        leftovers.extend(self.clean_up_pending(&client).await);
        leftovers
    }

    /// Creates that were sent but never confirmed: find each by its exact, unique name (read
    /// back by id to see that it is that fixture), and only then delete it.
    async fn clean_up_pending(&self, client: &Client) -> Vec<String> {
        let pending: Vec<(Collection, String)> = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return Vec::new(),
        };
        let mut leftovers = Vec::new();
        for (collection, name) in pending {
            let what = format!("{} {}", collection.noun(), shown(&name));
            let id = match self.find_by_name(collection, &name).await {
                Ok(Some((id, _, _))) => id,
                Ok(None) => continue,
                Err(why) => {
                    leftovers.push(format!("{what} may exist: {why}"));
                    continue;
                }
            };
            // Never one another live fixture of the run holds (the target gave two one id).
            if !client.claim_fixture_id(collection, &id) {
                leftovers.push(format!(
                    "{what} may exist: the target lists it under the id {} of another fixture",
                    shown(&id)
                ));
                continue;
            }
            let req = Request::cma_resource(Method::DELETE, collection, &id, None);
            match client.send(&req).await {
                Ok(ex) if ex.is_success() || ex.status == 404 => {}
                Ok(ex) => leftovers.push(format!("{}: {}", req.path, ex.summary())),
                Err(err) => leftovers.push(format!("{}: {err}", req.path)),
            }
            client.release_fixture_id(collection, &id);
        }
        leftovers
    }
}

/// "the target listed a token whose id … is not a safe id".
pub fn listed_unsafe(collection: Collection, err: &UnsafeId) -> String {
    format!(
        "the target listed a {} whose id {} is not a safe id (1 to 64 letters, digits, - and _): no request is built from it",
        collection.noun(),
        err.shown
    )
}

/// What the create answer `ex` allows: its `data.id` validated, its shape checked against
/// the documented resource schema.
fn created_shape(ex: &Exchange, collection: Collection, what: &str) -> Shape {
    let Some(json) = ex.json.as_ref() else {
        return Shape::Unusable(Failure {
            message: format!(
                "creating a fixture {what} answered a body that is not JSON: {}",
                ex.summary()
            ),
            exchanges: vec![ex.clone()],
        });
    };
    let schema = match collection {
        Collection::AccessTokens => SchemaId::AccessToken,
        Collection::Roles => SchemaId::Role,
    };
    let violations = crate::spec::Spec::embedded()
        .schemas()
        .validate(schema, json)
        .err()
        .map(|v| {
            v.iter()
                .take(5)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        });
    let failure = |message: String| Failure {
        message,
        exchanges: vec![ex.clone()],
    };
    let id = json.pointer("/data/id").unwrap_or(&Value::Null);
    match ResourceId::from_json(id) {
        Ok((id, IdForm::String)) => match violations {
            None => Shape::Conformant(id),
            Some(list) => Shape::Broken(
                id,
                failure(format!(
                    "the create answer of a fixture {what} does not match the documented resource schema:\n  {list}"
                )),
            ),
        },
        Ok((id, IdForm::Integer)) => Shape::Broken(
            id.clone(),
            failure(format!(
                "the create answer of a fixture {what} carries data.id as the JSON number {id}, not a string as documented (the suite goes on with \"{id}\")"
            )),
        ),
        Err(err) => Shape::Unusable(failure(format!(
            "the create answer of a fixture {what} carries data.id {}, which is not a safe id (1 to 64 letters, digits, - and _): no request is built from it",
            err.shown
        ))),
    }
}

pub use crate::text::truncate;
