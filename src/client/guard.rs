//! The write guard: no write reaches the management token (its id learned at session
//! start), a token or role that existed before the run (listed at session start; the
//! factory tokens excepted, which `update.hardcoded.*` must address), or leaves the base URL,
//! and two live fixtures never hold the same id, nor an id that existed before the run (a
//! create answer naming another resource must not make the suite write to it or delete it).
//! The ids themselves are checked in `ids.rs`.

use super::{Api, Client, Collection, Request, ResourceId, TransportError, ids, shown};

/// Shared by every clone of a client: the management token's id (learned at session start)
/// and the ids the run's fixtures hold now.
#[derive(Debug, Default)]
pub(super) struct Guard {
    management: std::sync::Mutex<Option<ResourceId>>,
    live: std::sync::Mutex<std::collections::BTreeSet<(Collection, ResourceId)>>,
    /// What the target listed at session start, lower-cased (the guard compares paths that
    /// way), with whether it is a factory token (`hardcoded_type` a non-empty string).
    existing: std::sync::Mutex<std::collections::BTreeMap<(Collection, String), bool>>,
}
impl Client {
    /// The management token's id: no write will be sent to it from now on.
    pub fn set_management_id(&self, id: ResourceId) {
        if let Ok(mut slot) = self.guard.management.lock() {
            *slot = Some(id);
        }
    }

    /// The management token's id, if known.
    pub fn management_id(&self) -> Option<ResourceId> {
        self.guard.management.lock().ok().and_then(|m| m.clone())
    }

    /// Ask `GET /users/me` which token the run authenticates as, and guard it, then list what
    /// exists before the run ([`Client::learn_existing`]). A target that does not say, or
    /// names an unsafe id, leaves only the other checks; nothing fails here.
    pub async fn learn_management_id(&self) {
        self.learn_management_id_only().await;
        self.learn_existing().await;
    }

    async fn learn_management_id_only(&self) {
        // Through the checks' handle, not `uncapped()`: a deadline or a signal ends it, so a
        // target gone silent cannot hold the run here.
        let Ok(me) = self
            .send(&Request::cma(reqwest::Method::GET, "/users/me"))
            .await
        else {
            return;
        };
        if let Some(Ok(id)) = me
            .is_success()
            .then(|| me.data().map(ResourceId::of))
            .flatten()
        {
            self.set_management_id(id);
        }
    }

    /// List the tokens and roles that exist before the run creates anything (one request
    /// each, counted): none of them is a fixture, and none but the factory tokens is ever
    /// written to. A listing that fails or names nothing usable leaves the other guards.
    pub async fn learn_existing(&self) {
        for collection in [Collection::AccessTokens, Collection::Roles] {
            let Ok(list) = self
                .send(&Request::cma(reqwest::Method::GET, collection.path()))
                .await
            else {
                continue;
            };
            let Some(items) = list
                .data()
                .filter(|_| list.is_success())
                .and_then(serde_json::Value::as_array)
            else {
                continue;
            };
            let found: Vec<((Collection, String), bool)> = items
                .iter()
                .filter_map(|item| {
                    let id = ResourceId::of(item).ok()?;
                    let factory = collection == Collection::AccessTokens
                        && item
                            .pointer("/attributes/hardcoded_type")
                            .and_then(serde_json::Value::as_str)
                            .is_some_and(|t| !t.is_empty());
                    Some(((collection, id.to_lowercase()), factory))
                })
                .collect();
            if let Ok(mut existing) = self.guard.existing.lock() {
                existing.extend(found);
            }
        }
    }

    /// Whether the target listed `id` before the run created anything.
    pub fn existed_before(&self, collection: Collection, id: &ResourceId) -> bool {
        self.guard
            .existing
            .lock()
            .is_ok_and(|e| e.contains_key(&(collection, id.to_lowercase())))
    }

    /// Claim `id` for a new fixture of the run; `false` when another live fixture holds it,
    /// or when it existed before the run.
    pub fn claim_fixture_id(&self, collection: Collection, id: &ResourceId) -> bool {
        if self.existed_before(collection, id) {
            return false;
        }
        self.guard
            .live
            .lock()
            .map(|mut live| live.insert((collection, id.clone())))
            .unwrap_or(false)
    }

    /// The fixture holding `id` is gone.
    pub fn release_fixture_id(&self, collection: Collection, id: &ResourceId) {
        if let Ok(mut live) = self.guard.live.lock() {
            live.remove(&(collection, id.clone()));
        }
    }

    /// Refuse a write whose resolved URL leaves the base URL or reaches the management
    /// token (however the path spells it: dot segments, percent-encoding, case).
    pub(super) fn check_write(&self, req: &Request, url: &str) -> Result<(), TransportError> {
        use reqwest::Method;
        if req.api != Api::Cma || matches!(req.method, Method::GET | Method::HEAD | Method::OPTIONS)
        {
            return Ok(());
        }
        let refuse = |why: String| TransportError::Refused {
            method: req.method.to_string(),
            url: shown(url),
            why,
        };
        let below = ids::segments_below(&self.target.base_url, url).map_err(refuse)?;
        if let Some(id) = self.management_id()
            && below.len() >= 2
            && below[0] == "access_tokens"
            && below[1] == id.to_lowercase()
        {
            return Err(refuse(
                "it would reach the management token the run authenticates with".to_owned(),
            ));
        }
        let collection = match below.first().map(String::as_str) {
            Some("access_tokens") => Some(Collection::AccessTokens),
            Some("roles") => Some(Collection::Roles),
            _ => None,
        };
        if let (Some(collection), Some(id)) = (collection, below.get(1)) {
            let factory = self
                .guard
                .existing
                .lock()
                .ok()
                .and_then(|e| e.get(&(collection, id.clone())).copied());
            if factory == Some(false) {
                return Err(refuse(format!(
                    "it would reach a {} that existed before the run: the run writes only to \
                     what it created (and to factory tokens)",
                    collection.noun()
                )));
            }
        }
        Ok(())
    }
}
