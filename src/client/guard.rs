//! The write guard: no write reaches the management token (its id learned at session
//! start) or leaves the base URL, and two live fixtures never hold the same id. The ids
//! themselves are checked in `ids.rs`.

use super::{Api, Client, Collection, Request, ResourceId, TransportError, ids, shown};

/// Shared by every clone of a client: the management token's id (learned at session start)
/// and the ids the run's fixtures hold now.
#[derive(Debug, Default)]
pub(super) struct Guard {
    management: std::sync::Mutex<Option<ResourceId>>,
    live: std::sync::Mutex<std::collections::BTreeSet<(Collection, ResourceId)>>,
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

    /// Ask `GET /users/me` which token the run authenticates as, and guard it. A target that
    /// does not say, or names an unsafe id, leaves only the base-URL check; nothing fails here.
    pub async fn learn_management_id(&self) {
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

    /// Claim `id` for a new fixture of the run; `false` when another live fixture holds it.
    pub fn claim_fixture_id(&self, collection: Collection, id: &ResourceId) -> bool {
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
        Ok(())
    }
}
