//! The server's in-memory state, shared by both listeners.
//!
//! One `Arc<App>` holds everything; the resources sit behind a single `std::sync::Mutex` that
//! handlers take after their last `.await` and hold until they have answered. So every
//! decision reads the state as it is at that moment: a permission change written by one
//! request holds for the very next one, under any concurrency. There is deliberately no cache,
//! except the buggy ones that faults switch on ([`FaultMemory`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::Rng;

use super::resources::{Role, RoleCatalog, Token};
use crate::faults::FaultSet;
use crate::spec::Spec;

/// What every handler gets.
#[derive(Debug)]
pub(crate) struct App {
    state: Mutex<State>,
    pub(crate) spec: &'static Spec,
    pub(crate) roles: RoleCatalog,
}

impl App {
    pub(crate) fn new(spec: &'static Spec, roles: RoleCatalog, state: State) -> App {
        App {
            state: Mutex::new(state),
            spec,
            roles,
        }
    }

    /// The state, locked. Never hold the guard across an `.await` (clippy's
    /// `await_holding_lock` is on for the crate). A panic while locked is a bug; the state it
    /// leaves is still consistent enough to keep serving, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Roles and tokens, in creation order (the order lists are returned in).
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) roles: Vec<Role>,
    pub(crate) tokens: Vec<Token>,
    next_role_id: u64,
    next_token_id: u64,
    /// The seeded Admin role and management token (see `seed`).
    pub(crate) admin_role_id: Option<String>,
    pub(crate) management_token_id: Option<String>,
    /// The bugs this server runs with; empty for the conformant server.
    pub(crate) faults: FaultSet,
    /// What those bugs remember between requests; never read when `faults` is empty.
    pub(crate) memory: FaultMemory,
    /// Every secret handed out, so that tests can search outputs for leaks.
    issued: Mutex<Vec<String>>,
}

/// How long the buggy caches (`cma-decision-cached`, `cda-decision-cached`, `*-grant-cached`,
/// `role-permissions-cached`) reuse what they computed.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(2);

/// How long the lagging read replica of `stale-read` shows a token as it was before a write.
pub(crate) const REPLICA_LAG: Duration = Duration::from_secs(1);

/// When, after a change of `can_access_cma`, the lagging node of `stale-decision-window`
/// serves the decision from before it: a refill that read the old row lands after the
/// invalidation, and lives until its own expiry.
pub(crate) const STALE_WINDOW: std::ops::Range<Duration> =
    Duration::from_millis(50)..Duration::from_millis(200);

/// How many nodes `stale-decision-window` round-robins over (one of them lags).
pub(crate) const NODES: u64 = 3;

/// The memory of the faults, keyed by token id. The conformant server leaves it empty.
#[derive(Debug, Default)]
pub(crate) struct FaultMemory {
    /// `cma-decision-cached`: the last `can_access_cma` decision per token, and when it was made.
    pub(crate) cma_decisions: HashMap<String, (Instant, bool)>,
    /// `cda-decision-cached`: the last published-content CDA decision per token.
    pub(crate) cda_decisions: HashMap<String, (Instant, bool)>,
    /// `role-permissions-cached`: the caller's role as loaded at authentication.
    pub(crate) role_permissions: HashMap<String, (Instant, Option<Role>)>,
    /// `stale-node`: authenticated requests so far (every third goes to the lagging node).
    pub(crate) authenticated_requests: u64,
    /// `stale-node`: each updated token as it was before its last update.
    pub(crate) before_last_update: HashMap<String, Token>,
    /// `stale-read`: each written token as it was before its last write, and when.
    pub(crate) before_last_write: HashMap<String, (Instant, Token)>,
    /// `stale-decision-window`: each token's last change of `can_access_cma`, and the value
    /// before it.
    pub(crate) cma_changes: HashMap<String, (Instant, bool)>,
    /// `stale-decision-window`: CMA authentications so far (the round-robin over nodes).
    pub(crate) cma_turns: u64,
    /// `old-secret-refused-after-update`: tokens whose secret no longer authenticates.
    pub(crate) broken_secrets: HashSet<String>,
    /// `deleted-token-still-authenticates`: deleted tokens, as the authentication cache keeps them.
    pub(crate) deleted_tokens: Vec<Token>,
    /// `deleted-token-updatable`: deleted tokens, kept as soft-deleted rows.
    pub(crate) soft_deleted: Vec<Token>,
    /// `rotated-secret-still-valid`: secrets rotated away, and the token each one still names.
    pub(crate) rotated_away: HashMap<String, String>,
    /// `role-change-half-applied`: the role each token's permission decisions still use.
    pub(crate) decision_roles: HashMap<String, Option<String>>,
    /// `preview-scope-stale`: the draft scope each token's denormalised column still holds,
    /// when it differs from a recompute (no entry: the live flag).
    pub(crate) draft_scopes: HashMap<String, bool>,
    /// `cma-regrant-ignored`: the tokens on the gateway's CMA deny list.
    pub(crate) cma_denied: HashSet<String>,
}

/// A remembered value still fresh at `now`.
pub(crate) fn fresh<T>(entry: Option<&(Instant, T)>, now: Instant, ttl: Duration) -> Option<&T> {
    entry
        .filter(|(at, _)| now.saturating_duration_since(*at) < ttl)
        .map(|(_, value)| value)
}

impl State {
    /// The first role id handed out.
    pub(crate) const FIRST_ROLE_ID: u64 = 1;
    /// The first token id handed out.
    pub(crate) const FIRST_TOKEN_ID: u64 = 100;

    pub(crate) fn empty() -> State {
        State {
            roles: Vec::new(),
            tokens: Vec::new(),
            next_role_id: State::FIRST_ROLE_ID,
            next_token_id: State::FIRST_TOKEN_ID,
            admin_role_id: None,
            management_token_id: None,
            faults: FaultSet::none(),
            memory: FaultMemory::default(),
            issued: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn next_role_id(&mut self) -> String {
        let id = self.next_role_id;
        self.next_role_id += 1;
        id.to_string()
    }

    pub(crate) fn next_token_id(&mut self) -> String {
        let id = self.next_token_id;
        self.next_token_id += 1;
        id.to_string()
    }

    /// A fresh secret that no token has.
    pub(crate) fn new_secret(&self) -> String {
        loop {
            let secret = random_secret();
            if self.tokens.iter().all(|t| t.secret != secret) {
                self.issued
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(secret.clone());
                return secret;
            }
        }
    }

    /// Every secret this state has handed out.
    pub(crate) fn issued_secrets(&self) -> Vec<String> {
        self.issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn token(&self, id: &str) -> Option<&Token> {
        self.tokens.iter().find(|t| t.id == id)
    }

    pub(crate) fn token_mut(&mut self, id: &str) -> Option<&mut Token> {
        self.tokens.iter_mut().find(|t| t.id == id)
    }

    pub(crate) fn role(&self, id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    pub(crate) fn role_mut(&mut self, id: &str) -> Option<&mut Role> {
        self.roles.iter_mut().find(|r| r.id == id)
    }
}

/// 30 random lowercase hex characters.
pub(crate) fn random_secret() -> String {
    let bytes: [u8; 15] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_30_lowercase_hex_chars() {
        let secret = random_secret();
        assert_eq!(secret.len(), 30);
        assert!(
            secret
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        assert_ne!(secret, random_secret());
    }

    #[test]
    fn ids_count_up_per_kind() {
        let mut state = State::empty();
        assert_eq!(state.next_role_id(), "1");
        assert_eq!(state.next_role_id(), "2");
        assert_eq!(state.next_token_id(), "100");
    }
}
