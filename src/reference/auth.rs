//! The one place where the server decides who is calling and what they may do.
//!
//! A token's effective capabilities are the intersection of its role and its three surface
//! flags (documented): the flags decide whether it may call an API at all
//! ([`authenticate_cma`], [`authenticate_cda`]), the role decides which actions it may take
//! there ([`authorize`]) and whether it sees secrets ([`sees_secrets`]). Every function reads
//! the locked state as it is now; nothing is remembered between requests.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use super::errors::ApiError;
use super::resources::{LastAccess, Token};
use super::state::State;

/// The authenticated caller of a CMA request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The id of the calling token.
    pub(crate) token_id: String,
}

/// Everything a CMA request can do, one variant per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    ListTokens,
    ReadToken,
    CreateToken,
    UpdateToken,
    RotateToken,
    DeleteToken,
    ListRoles,
    ReadRole,
    CreateRole,
    UpdateRole,
    DeleteRole,
    ReadSite,
    ReadCurrentToken,
}

impl Action {
    /// The role permission the action needs; `None` means any CMA token may do it.
    pub(crate) fn required_permission(self) -> Option<&'static str> {
        match self {
            Action::CreateToken
            | Action::UpdateToken
            | Action::RotateToken
            | Action::DeleteToken => Some(MANAGE_ACCESS_TOKENS),
            Action::CreateRole | Action::UpdateRole | Action::DeleteRole => Some(MANAGE_USERS),
            Action::ListTokens
            | Action::ReadToken
            | Action::ListRoles
            | Action::ReadRole
            | Action::ReadSite
            | Action::ReadCurrentToken => None,
        }
    }
}

const MANAGE_ACCESS_TOKENS: &str = "can_manage_access_tokens";
const MANAGE_USERS: &str = "can_manage_users";

/// The CMA caller: no `Authorization` is `INVALID_SITE`; a malformed header, an unknown secret
/// or a token without `can_access_cma` is `INVALID_AUTHORIZATION_HEADER`. A token that gets
/// through has now been used on the CMA.
pub(crate) fn authenticate_cma(state: &mut State, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let secret = match bearer_secret(headers) {
        Credential::Missing => return Err(ApiError::invalid_site()),
        Credential::Malformed => return Err(malformed()),
        Credential::Secret(secret) => secret,
    };
    let token_id = match state.token_with_secret(secret) {
        None => return Err(unknown()),
        Some(token) if !token.can_access_cma => {
            return Err(ApiError::invalid_authorization_header(
                "this API token cannot access the Content Management API",
            ));
        }
        Some(token) => token.id.clone(),
    };
    if let Some(token) = state.token_mut(&token_id) {
        token.last_cma_access = LastAccess::Today;
    }
    Ok(Caller { token_id })
}

/// Whether the caller's role allows `action`; `INSUFFICIENT_PERMISSIONS` (401) if not.
pub(crate) fn authorize(state: &State, caller: &Caller, action: Action) -> Result<(), ApiError> {
    match action.required_permission() {
        None => Ok(()),
        Some(permission) if role_allows(state, &caller.token_id, permission) => Ok(()),
        Some(permission) => Err(ApiError::insufficient_permissions(permission)),
    }
}

/// Whether `token` attributes show secrets to this caller: only if its role may manage tokens.
pub(crate) fn sees_secrets(state: &State, caller: &Caller) -> bool {
    role_allows(state, &caller.token_id, MANAGE_ACCESS_TOKENS)
}

/// A CDA request: any token with `can_access_cda` or `can_access_cda_preview` reads published
/// content; drafts need `can_access_cda_preview`. The CDA ignores roles: it only reads. Every
/// refusal is `INVALID_AUTHORIZATION_HEADER` with a `details.message`.
pub(crate) fn authenticate_cda(
    state: &mut State,
    headers: &HeaderMap,
    include_drafts: bool,
) -> Result<(), ApiError> {
    let secret = match bearer_secret(headers) {
        Credential::Missing => {
            return Err(ApiError::invalid_authorization_header(
                "missing Authorization header",
            ));
        }
        Credential::Malformed => return Err(malformed()),
        Credential::Secret(secret) => secret,
    };
    let Some(token) = state.token_with_secret(secret) else {
        return Err(unknown());
    };
    let allowed = if include_drafts {
        token.can_access_cda_preview
    } else {
        token.can_access_cda || token.can_access_cda_preview
    };
    if !allowed {
        return Err(ApiError::invalid_authorization_header(if include_drafts {
            "this API token cannot access draft content (can_access_cda_preview is off)"
        } else {
            "this API token cannot access the Content Delivery API"
        }));
    }
    let id = token.id.clone();
    if let Some(token) = state.token_mut(&id) {
        token.last_cda_access = LastAccess::Today;
    }
    Ok(())
}

/// Whether the role of token `token_id` has `permission`. A token without a role, or whose
/// role is gone, has no permissions.
fn role_allows(state: &State, token_id: &str, permission: &str) -> bool {
    state
        .token(token_id)
        .and_then(|token: &Token| token.role.as_deref())
        .and_then(|role_id| state.role(role_id))
        .is_some_and(|role| role.allows(permission))
}

enum Credential<'h> {
    Missing,
    Malformed,
    Secret(&'h str),
}

/// `Authorization: Bearer <secret>`, exactly one header, scheme case-insensitive.
fn bearer_secret(headers: &HeaderMap) -> Credential<'_> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Credential::Missing,
        (Some(value), None) => value,
        (Some(_), Some(_)) => return Credential::Malformed,
    };
    let Ok(text) = value.to_str() else {
        return Credential::Malformed;
    };
    let mut parts = text.split_ascii_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(scheme), Some(secret), None) if scheme.eq_ignore_ascii_case("bearer") => {
            Credential::Secret(secret)
        }
        _ => Credential::Malformed,
    }
}

fn malformed() -> ApiError {
    ApiError::invalid_authorization_header("the Authorization header must be: Bearer <API token>")
}

fn unknown() -> ApiError {
    ApiError::invalid_authorization_header("unknown API token")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_authorization(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                AUTHORIZATION,
                HeaderValue::from_bytes(value).expect("header bytes"),
            );
        }
        headers
    }

    #[test]
    fn bearer_parsing() {
        assert!(matches!(
            bearer_secret(&with_authorization(&[])),
            Credential::Missing
        ));
        assert!(matches!(
            bearer_secret(&with_authorization(&[b"Bearer abc"])),
            Credential::Secret("abc")
        ));
        assert!(matches!(
            bearer_secret(&with_authorization(&[b"bearer   abc "])),
            Credential::Secret("abc")
        ));
        for bad in [
            &b"abc"[..],
            b"Basic abc",
            b"Bearer",
            b"Bearer a b",
            b"Bearer \xff",
        ] {
            assert!(matches!(
                bearer_secret(&with_authorization(&[bad])),
                Credential::Malformed
            ));
        }
        assert!(matches!(
            bearer_secret(&with_authorization(&[b"Bearer a", b"Bearer a"])),
            Credential::Malformed
        ));
    }

    #[test]
    fn token_writes_need_manage_access_tokens_and_role_writes_manage_users() {
        assert_eq!(
            Action::UpdateToken.required_permission(),
            Some("can_manage_access_tokens")
        );
        assert_eq!(
            Action::DeleteRole.required_permission(),
            Some("can_manage_users")
        );
        assert_eq!(Action::ReadSite.required_permission(), None);
    }
}
