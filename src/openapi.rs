//! `token-conformance openapi`: an OpenAPI 3.1 document of the access-token endpoints,
//! generated from `specs/`, so that Schemathesis, Prism and other tools can use the same
//! contract as the suite.
//!
//! Each schema file of `specs/schemas/` becomes one entry of `components.schemas`, whole
//! (with its `$defs`); references between files are rewritten to point into
//! `components.schemas`. [`spec_ref`] undoes that rewriting, which is how the tests show that
//! the exported schemas are exactly those of `specs/`.

use serde_json::{Map, Value, json};

use crate::spec::{SchemaId, Spec};

/// The component name of a spec schema file: `schemas/update_request.schema.json` →
/// `update_request`.
pub fn component_name(file: &str) -> String {
    file.trim_start_matches("schemas/")
        .trim_end_matches(".schema.json")
        .to_owned()
}

/// A reference inside `file` rewritten to point into `components.schemas`.
fn component_ref(file: &str, reference: &str) -> String {
    let (target, pointer) = reference.split_once('#').unwrap_or((reference, ""));
    let target_file = if target.is_empty() {
        file.to_owned()
    } else {
        format!("schemas/{target}")
    };
    format!(
        "#/components/schemas/{}{pointer}",
        component_name(&target_file)
    )
}

/// The inverse of the rewriting: a `components.schemas` reference back to the spec's own
/// form, relative to `file`.
pub fn spec_ref(file: &str, reference: &str) -> String {
    let rest = reference.trim_start_matches("#/components/schemas/");
    let (name, pointer) = rest
        .split_once('/')
        .map_or((rest, String::new()), |(n, p)| (n, format!("/{p}")));
    if component_name(file) == name {
        format!("#{pointer}")
    } else {
        format!("{name}.schema.json#{pointer}")
    }
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
    json!({ "$ref": format!("#/components/schemas/{}{pointer}", component_name(file)) })
}

/// A request body: required (the endpoints refuse a request without one), JSON.
fn json_body(id: SchemaId) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema_ref(id) } } })
}

fn response(description: &str, id: SchemaId) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema_ref(id) } } })
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
        if let Value::Object(map) = &mut schema {
            map.remove("$schema");
            map.remove("$id");
        }
        schemas.insert(component_name(file), schema);
    }
    let id_param = json!({ "name": "access_token_id", "in": "path", "required": true, "schema": { "type": "string" } });
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
            "description": "The access-token endpoints of the DatoCMS Content Management API, generated from the specs/ of token-conformance. Errors share the api_error envelope."
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
        for (file, value) in spec
            .schemas()
            .files()
            .filter(|(f, _)| f.starts_with("schemas/"))
        {
            let exported = &doc["components"]["schemas"][component_name(file)];
            let mut back = map_refs(exported, &|r| spec_ref(file, r));
            let mut original = value.clone();
            if let (Value::Object(b), Value::Object(o)) = (&mut back, &mut original) {
                o.remove("$schema");
                o.remove("$id");
                assert_eq!(b, o, "{file}");
            } else {
                panic!("{file} is not an object");
            }
        }
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
