//! `token-conformance openapi`: an OpenAPI 3.1 document of the endpoints the suite calls,
//! generated from `specs/`, so that Schemathesis, Prism and other tools can use the same
//! contract as the suite.
//!
//! Each schema file of `specs/schemas/` becomes one entry of `components.schemas` (without
//! its `$defs`), and each of its `$defs` an entry of its own, `FILE.DEF`: mock servers such as
//! Stoplight Prism do not follow references into a component's `$defs`. References are
//! rewritten to point at those entries; [`spec_ref`] undoes the rewriting and
//! [`spec_files`] re-nests the definitions, which is how the tests show that the exported
//! schemas are exactly those of `specs/`. `GET /site` and `GET /users/me`, which the suite
//! calls but `specs/` does not describe, get small schemas of their own ([`EXTRA_SCHEMAS`]).

use serde_json::{Map, Value, json};

use crate::spec::{SchemaId, Spec};

/// Components that are not files of `specs/`: the two endpoints every CMA token may call,
/// which the suite uses as probes, described only as far as the suite reads them.
pub const EXTRA_SCHEMAS: [&str; 2] = ["site", "current_user"];

/// The CMA endpoints the suite calls, as `METHOD PATH` (the exported document's paths).
/// The preflight names them when a target does not answer like the API.
pub const ENDPOINTS: [&str; 13] = [
    "GET /site",
    "GET /users/me",
    "GET /access_tokens",
    "POST /access_tokens",
    "GET /access_tokens/{access_token_id}",
    "PUT /access_tokens/{access_token_id}",
    "DELETE /access_tokens/{access_token_id}",
    "POST /access_tokens/{access_token_id}/regenerate_token",
    "GET /roles",
    "POST /roles",
    "GET /roles/{role_id}",
    "PUT /roles/{role_id}",
    "DELETE /roles/{role_id}",
];

/// The component name of a spec schema file: `schemas/update_request.schema.json` →
/// `update_request`.
pub fn component_name(file: &str) -> String {
    file.trim_start_matches("schemas/")
        .trim_end_matches(".schema.json")
        .to_owned()
}

/// The component of a definition of a file: `role` and `attributes` → `role.attributes`.
/// Spec file names have no dot, so the name cannot collide with a file's.
fn def_component(name: &str, def: &str) -> String {
    format!("{name}.{def}")
}

/// A reference inside `file` rewritten to point into `components.schemas`: `#/$defs/D/rest`
/// of file `F` becomes `#/components/schemas/F.D/rest`.
fn component_ref(file: &str, reference: &str) -> String {
    let (target, pointer) = reference.split_once('#').unwrap_or((reference, ""));
    let target_file = if target.is_empty() {
        file.to_owned()
    } else {
        format!("schemas/{target}")
    };
    let name = component_name(&target_file);
    match pointer.strip_prefix("/$defs/") {
        Some(rest) => {
            let (def, tail) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
            format!("#/components/schemas/{}{tail}", def_component(&name, def))
        }
        None => format!("#/components/schemas/{name}{pointer}"),
    }
}

/// The inverse of the rewriting: a `components.schemas` reference back to the spec's own
/// form, relative to `file`.
pub fn spec_ref(file: &str, reference: &str) -> String {
    let rest = reference.trim_start_matches("#/components/schemas/");
    let (component, tail) = rest
        .split_once('/')
        .map_or((rest, String::new()), |(n, p)| (n, format!("/{p}")));
    let (name, pointer) = match component.split_once('.') {
        Some((name, def)) => (name, format!("/$defs/{def}{tail}")),
        None => (component, tail),
    };
    if component_name(file) == name {
        format!("#{pointer}")
    } else {
        format!("{name}.schema.json#{pointer}")
    }
}

/// The spec's schema files back from an exported document's `components.schemas`: each
/// file's entry with its `FILE.DEF` entries nested again as `$defs`, references in the
/// spec's form. Components of [`EXTRA_SCHEMAS`] are left out.
pub fn spec_files(doc: &Value) -> Map<String, Value> {
    let mut files = Map::new();
    let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    else {
        return files;
    };
    for (component, schema) in schemas {
        if component.contains('.') || EXTRA_SCHEMAS.contains(&component.as_str()) {
            continue;
        }
        let file = format!("schemas/{component}.schema.json");
        let mut value = map_refs(schema, &|r| spec_ref(&file, r));
        let prefix = format!("{component}.");
        let defs: Map<String, Value> = schemas
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(&prefix)
                    .map(|def| (def.to_owned(), map_refs(v, &|r| spec_ref(&file, r))))
            })
            .collect();
        if let (Value::Object(map), false) = (&mut value, defs.is_empty()) {
            map.insert("$defs".to_owned(), Value::Object(defs));
        }
        files.insert(file, value);
    }
    files
}

/// Rewrite every `$ref` in `value` with `f`.
pub fn map_refs(value: &Value, f: &dyn Fn(&str) -> String) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => (k.clone(), Value::String(f(r))),
                    _ => (k.clone(), map_refs(v, f)),
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| map_refs(v, f)).collect()),
        other => other.clone(),
    }
}

fn schema_ref(id: SchemaId) -> Value {
    let (file, pointer) = id.location();
    json!({ "$ref": component_ref(file, &format!("#{pointer}")) })
}

fn extra_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `{"data": {"type": TYPE, "id": "…", …}}`, as far as the suite reads it.
fn resource_document(types: &[&str], description: &str) -> Value {
    json!({
        "description": description,
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "object",
                "required": ["type", "id"],
                "properties": {
                    "type": { "type": "string", "enum": types },
                    "id": { "type": "string", "minLength": 1 },
                    "attributes": { "type": "object" }
                }
            }
        }
    })
}

/// A request body: required (the endpoints refuse a request without one), JSON.
fn json_body(id: SchemaId) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema_ref(id) } } })
}

fn response(description: &str, id: SchemaId) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema_ref(id) } } })
}

fn extra_response(description: &str, name: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": extra_ref(name) } } })
}

fn errors() -> Value {
    json!({ "description": "An error: the documented api_error envelope", "content": { "application/json": { "schema": schema_ref(SchemaId::Error) } } })
}

/// The OpenAPI 3.1 document.
pub fn document(spec: &Spec) -> Value {
    let mut schemas = Map::new();
    for (file, value) in spec.schemas().files() {
        if !file.starts_with("schemas/") {
            continue;
        }
        let mut schema = map_refs(value, &|r| component_ref(file, r));
        let name = component_name(file);
        if let Value::Object(map) = &mut schema {
            map.remove("$schema");
            map.remove("$id");
            if let Some(Value::Object(defs)) = map.remove("$defs") {
                for (def, value) in defs {
                    schemas.insert(def_component(&name, &def), value);
                }
            }
        }
        schemas.insert(name, schema);
    }
    schemas.insert(
        "site".to_owned(),
        resource_document(
            &["site"],
            "The project's site (`GET /site`), which every CMA token may read",
        ),
    );
    schemas.insert(
        "current_user".to_owned(),
        resource_document(
            &["access_token", "user", "account", "sso_user", "organization"],
            "Who the request authenticates as (`GET /users/me`); for an API token, the token itself",
        ),
    );
    let id_param = json!({ "name": "access_token_id", "in": "path", "required": true, "schema": { "type": "string" } });
    let role_param = json!({ "name": "role_id", "in": "path", "required": true, "schema": { "type": "string" } });
    let headers = json!([
        { "name": "X-Api-Version", "in": "header", "required": false, "schema": { "type": "string", "enum": ["3"] } },
        { "name": "X-Environment", "in": "header", "required": false, "schema": { "type": "string" } },
    ]);
    let with = |extra: &[Value]| -> Value {
        let mut all: Vec<Value> = headers.as_array().cloned().unwrap_or_default();
        all.extend(extra.iter().cloned());
        Value::Array(all)
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "DatoCMS CMA: API tokens (as checked by token-conformance)",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The endpoints of the DatoCMS Content Management API that token-conformance calls: the access tokens, the roles its fixtures use, and GET /site and GET /users/me, its permission probes. Generated from the specs/ of token-conformance. Errors share the api_error envelope. (The suite also sends GraphQL queries to the Content Delivery API, which this document does not describe.)"
        },
        "servers": [{ "url": "http://127.0.0.1:3000", "description": "token-conformance serve" }],
        "security": [{ "bearer": [] }],
        "paths": {
            "/access_tokens": {
                "get": { "operationId": "listAccessTokens", "summary": "List all API tokens", "parameters": with(&[]),
                         "responses": { "200": response("The tokens", SchemaId::AccessTokenList), "default": errors() } },
                "post": { "operationId": "createAccessToken", "summary": "Create an API token", "parameters": with(&[]),
                          "requestBody": json_body(SchemaId::CreateRequest),
                          "responses": { "201": response("The new token", SchemaId::AccessToken), "default": errors() } }
            },
            "/access_tokens/{access_token_id}": {
                "get": { "operationId": "retrieveAccessToken", "summary": "Retrieve an API token", "parameters": with(std::slice::from_ref(&id_param)),
                         "responses": { "200": response("The token", SchemaId::AccessToken), "default": errors() } },
                "put": { "operationId": "updateAccessToken", "summary": "Update an API token", "parameters": with(std::slice::from_ref(&id_param)),
                         "description": "If relationships is omitted, the token's role is preserved. Changes take effect immediately. Factory tokens (hardcoded_type non-null) answer NON_EDITABLE_ACCESS_TOKEN.",
                         "requestBody": json_body(SchemaId::UpdateRequest),
                         "responses": { "200": response("The updated token", SchemaId::AccessToken), "default": errors() } },
                "delete": { "operationId": "deleteAccessToken", "summary": "Delete an API token", "parameters": with(std::slice::from_ref(&id_param)),
                            "responses": { "200": response("The deleted token", SchemaId::AccessToken), "default": errors() } }
            },
            "/access_tokens/{access_token_id}/regenerate_token": {
                "post": { "operationId": "rotateAccessToken", "summary": "Rotate API token", "parameters": with(&[id_param]),
                          "responses": { "200": response("The token with a new secret", SchemaId::AccessToken), "default": errors() } }
            },
            "/roles": {
                "get": { "operationId": "listRoles", "summary": "List all roles", "parameters": with(&[]),
                         "responses": { "200": response("The roles", SchemaId::RoleList), "default": errors() } },
                "post": { "operationId": "createRole", "summary": "Create a role", "parameters": with(&[]),
                          "requestBody": json_body(SchemaId::RoleCreateRequest),
                          "responses": { "201": response("The new role", SchemaId::Role), "default": errors() } }
            },
            "/roles/{role_id}": {
                "get": { "operationId": "retrieveRole", "summary": "Retrieve a role", "parameters": with(std::slice::from_ref(&role_param)),
                         "responses": { "200": response("The role", SchemaId::Role), "default": errors() } },
                "put": { "operationId": "updateRole", "summary": "Update a role", "parameters": with(std::slice::from_ref(&role_param)),
                         "description": "Changes to a role's permissions take effect at once for every token that has it.",
                         "requestBody": json_body(SchemaId::RoleUpdateRequest),
                         "responses": { "200": response("The updated role", SchemaId::Role), "default": errors() } },
                "delete": { "operationId": "deleteRole", "summary": "Delete a role", "parameters": with(&[role_param]),
                            "description": "Refused while a token still has the role.",
                            "responses": { "200": response("The deleted role", SchemaId::Role), "default": errors() } }
            },
            "/site": {
                "get": { "operationId": "retrieveSite", "summary": "Retrieve the site", "parameters": with(&[]),
                         "responses": { "200": extra_response("The site", "site"), "default": errors() } }
            },
            "/users/me": {
                "get": { "operationId": "retrieveCurrentUser", "summary": "Who the request authenticates as", "parameters": with(&[]),
                         "responses": { "200": extra_response("The caller", "current_user"), "default": errors() } }
            }
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exported_schema_is_the_spec_file_with_references_rewritten() {
        let spec = Spec::embedded();
        let doc = document(spec);
        let back = spec_files(&doc);
        let mut files = 0;
        for (file, value) in spec
            .schemas()
            .files()
            .filter(|(f, _)| f.starts_with("schemas/"))
        {
            files += 1;
            let mut original = value.clone();
            if let Value::Object(o) = &mut original {
                o.remove("$schema");
                o.remove("$id");
            } else {
                panic!("{file} is not an object");
            }
            assert_eq!(back.get(file), Some(&original), "{file}");
        }
        // Nothing exported that is not a spec file, one of its definitions, or an extra.
        assert_eq!(back.len(), files);
        let components = doc["components"]["schemas"].as_object().map_or(0, Map::len);
        let defs: usize = back
            .values()
            .map(|v| {
                v.get("$defs")
                    .and_then(Value::as_object)
                    .map_or(0, Map::len)
            })
            .sum();
        assert_eq!(components, files + defs + EXTRA_SCHEMAS.len());
    }

    #[test]
    fn no_reference_points_into_a_component() {
        // What Prism cannot follow: `#/components/schemas/NAME/...`.
        let text = document(Spec::embedded()).to_string();
        for (i, _) in text.match_indices("\"#/components/schemas/") {
            let rest = &text[i + 22..];
            let end = rest.find('"').unwrap_or(rest.len());
            assert!(!rest[..end].contains('/'), "{}", &rest[..end]);
        }
        assert!(!text.contains("$defs"), "a nested definition is left");
    }

    #[test]
    fn every_endpoint_the_suite_calls_is_in_the_document() {
        let doc = document(Spec::embedded());
        for endpoint in ENDPOINTS {
            let (method, path) = endpoint.split_once(' ').unwrap_or_default();
            assert!(
                doc["paths"][path][method.to_lowercase()].is_object(),
                "{endpoint}"
            );
        }
        // And the list the preflight prints is the document's, whole.
        let operations: usize = doc["paths"].as_object().map_or(0, |paths| {
            paths
                .values()
                .filter_map(Value::as_object)
                .map(Map::len)
                .sum()
        });
        assert_eq!(operations, ENDPOINTS.len());
    }

    #[test]
    fn every_reference_resolves_inside_the_document() {
        let doc = document(Spec::embedded());
        fn walk(doc: &Value, value: &Value) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        let pointer = r.trim_start_matches('#');
                        assert!(doc.pointer(pointer).is_some(), "unresolved {r}");
                    }
                    map.values().for_each(|v| walk(doc, v));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(doc, v)),
                _ => {}
            }
        }
        walk(&doc, &doc);
    }
}
