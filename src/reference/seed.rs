//! What a fresh project contains when the server starts.
//!
//! Two roles (`Admin` with every permission, `Read-only` with none), the factory
//! "Read-only API token" every DatoCMS project has, the management token the suite
//! authenticates with (a normal, non-hardcoded token with the Admin role, so that it behaves
//! like a token a user created), and optionally the "Full-access API token" of older projects.
//! Ids are deterministic: roles from 1, tokens from 100, in the order below.

use serde_json::{Map, Value};

use super::resources::{LastAccess, RoleCatalog, Token};
use super::state::State;

/// The role with every permission.
pub const ADMIN_ROLE_NAME: &str = "Admin";
/// The role with no permission.
pub const READ_ONLY_ROLE_NAME: &str = "Read-only";
/// The factory token every project has (`hardcoded_type: "readonly"`).
pub const READ_ONLY_TOKEN_NAME: &str = "Read-only API token";
/// The token the suite authenticates with; its secret is the server's admin secret.
pub const MANAGEMENT_TOKEN_NAME: &str = "Conformance management token";
/// The factory token of older projects (`hardcoded_type: "admin"`), seeded on request.
pub const FULL_ACCESS_TOKEN_NAME: &str = "Full-access API token";

/// Fill an empty state.
pub(crate) fn seed(
    state: &mut State,
    catalog: &RoleCatalog,
    admin_secret: &str,
    legacy_factory_tokens: bool,
) {
    let mut admin = Map::new();
    admin.insert("name".to_owned(), Value::from(ADMIN_ROLE_NAME));
    for permission in catalog.permissions() {
        admin.insert(permission.clone(), Value::Bool(true));
    }
    admin.insert("environments_access".to_owned(), Value::from("all"));
    let admin_id = state.next_role_id();
    state.roles.push(catalog.new_role(admin_id.clone(), &admin));
    state.admin_role_id = Some(admin_id.clone());

    let mut read_only = Map::new();
    read_only.insert("name".to_owned(), Value::from(READ_ONLY_ROLE_NAME));
    let read_only_id = state.next_role_id();
    state
        .roles
        .push(catalog.new_role(read_only_id.clone(), &read_only));

    let factory = Token {
        id: state.next_token_id(),
        name: READ_ONLY_TOKEN_NAME.to_owned(),
        secret: state.new_secret(),
        can_access_cda: true,
        can_access_cda_preview: false,
        can_access_cma: false,
        hardcoded_type: Some("readonly"),
        role: Some(read_only_id),
        last_cma_access: LastAccess::Never,
        last_cda_access: LastAccess::Never,
    };
    state.tokens.push(factory);

    let management = Token {
        id: state.next_token_id(),
        name: MANAGEMENT_TOKEN_NAME.to_owned(),
        secret: admin_secret.to_owned(),
        can_access_cda: true,
        can_access_cda_preview: true,
        can_access_cma: true,
        hardcoded_type: None,
        role: Some(admin_id.clone()),
        last_cma_access: LastAccess::Never,
        last_cda_access: LastAccess::Never,
    };
    state.management_token_id = Some(management.id.clone());
    state.tokens.push(management);

    if legacy_factory_tokens {
        let full_access = Token {
            id: state.next_token_id(),
            name: FULL_ACCESS_TOKEN_NAME.to_owned(),
            secret: state.new_secret(),
            can_access_cda: true,
            can_access_cda_preview: true,
            can_access_cma: true,
            hardcoded_type: Some("admin"),
            role: Some(admin_id),
            last_cma_access: LastAccess::Never,
            last_cda_access: LastAccess::Never,
        };
        state.tokens.push(full_access);
    }
}
