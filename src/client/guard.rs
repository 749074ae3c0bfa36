//! The write guard: no write reaches the management token (its id learned at session
//! start), a token or role that existed before the run (listed at session start; the
//! factory tokens excepted, which `update.hardcoded.*` must address), or leaves the base URL,
//! and two live fixtures never hold the same id, nor an id that existed before the run (a
//! create answer naming another resource must not make the suite write to it or delete it).
//! The ids themselves are checked in `ids.rs`.

use super::{Api, Client, Collection, Request, ResourceId, TransportError, ids, shown};

/// The key an id is compared by: lower-cased, and for an id that starts with a digit its
/// leading digits without leading zeros, which is what a server that parses ids as integers
/// (Rails' `find("012")`, `find("12-x")`) takes them for. Two spellings of one resource
/// cannot slip past the guard as two ids; two distinct resources are never the same key
/// unless the target itself would take them for one.
pub(crate) fn id_key(id: &str) -> String {
    let digits: &str = &id[..id.bytes().take_while(u8::is_ascii_digit).count()];
    if digits.is_empty() {
        return id.to_lowercase();
    }
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() { "0" } else { trimmed }.to_owned()
}

/// Shared by every clone of a client: the management token's id (learned at session start)
/// and the ids the run's fixtures hold now.
#[derive(Debug, Default)]
pub(super) struct Guard {
    management: std::sync::Mutex<Option<ResourceId>>,
    live: std::sync::Mutex<std::collections::BTreeSet<(Collection, ResourceId)>>,
    /// What the target listed at session start, lower-cased (the guard compares paths that
    /// way), with whether it is a factory token (`hardcoded_type` a non-empty string).
    existing: std::sync::Mutex<std::collections::BTreeMap<(Collection, String), bool>>,
    /// The collections whose listing at session start failed: for them a create answer
    /// naming an existing resource cannot be caught (every fixture check says so).
    unlisted: std::sync::Mutex<Vec<Collection>>,
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
            let unlisted = || {
                if let Ok(mut unlisted) = self.guard.unlisted.lock() {
                    unlisted.push(collection);
                }
            };
            let Ok(list) = self
                .send(&Request::cma(reqwest::Method::GET, collection.path()))
                .await
            else {
                unlisted();
                continue;
            };
            let Some(items) = list
                .data()
                .filter(|_| list.is_success())
                .and_then(serde_json::Value::as_array)
            else {
                unlisted();
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
                    Some(((collection, id_key(&id)), factory))
                })
                .collect();
            if let Ok(mut existing) = self.guard.existing.lock() {
                // An id listed twice is a factory token only if every entry says so.
                for (key, factory) in found {
                    existing
                        .entry(key)
                        .and_modify(|f| *f &= factory)
                        .or_insert(factory);
                }
            }
        }
    }

    /// Whether listing `collection` failed at session start (see [`Client::learn_existing`]).
    pub fn unlisted(&self, collection: Collection) -> bool {
        self.guard
            .unlisted
            .lock()
            .is_ok_and(|u| u.contains(&collection))
    }

    /// Whether the target listed `id` as a factory token before the run created anything:
    /// `None` when the tokens could not be listed then (nothing known).
    pub fn factory_at_start(&self, id: &ResourceId) -> Option<bool> {
        if self.unlisted(Collection::AccessTokens) {
            return None;
        }
        let existing = self.guard.existing.lock().ok()?;
        Some(existing.get(&(Collection::AccessTokens, id_key(id))) == Some(&true))
    }

    /// Whether the target listed `id` before the run created anything.
    pub fn existed_before(&self, collection: Collection, id: &ResourceId) -> bool {
        self.guard
            .existing
            .lock()
            .is_ok_and(|e| e.contains_key(&(collection, id_key(id))))
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
            && id_key(&below[1]) == id_key(&id)
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
                .and_then(|e| e.get(&(collection, id_key(id))).copied());
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

#[cfg(test)]
mod tests {
    use super::id_key;

    #[test]
    fn spellings_a_server_takes_for_one_id_have_one_key() {
        for (a, b) in [
            ("12", "012"),
            ("12", "12-x"),
            ("12", "12_a"),
            ("0", "000"),
            ("Ab", "aB"),
        ] {
            assert_eq!(id_key(a), id_key(b), "{a} {b}");
        }
        for (a, b) in [("12", "120"), ("12", "1"), ("a12", "12"), ("x-1", "x-2")] {
            assert_ne!(id_key(a), id_key(b), "{a} {b}");
        }
    }
}
