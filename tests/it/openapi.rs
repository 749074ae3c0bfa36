//! The exported OpenAPI document is valid OpenAPI 3.1: it validates against the official
//! OpenAPI 3.1 JSON Schema (vendored in `tests/data/`, see its README), and each of its
//! component schemas is a valid JSON Schema 2020-12. That the component schemas are exactly
//! the files of `specs/` is unit-tested in `src/openapi.rs`.

use serde_json::{Value, json};
use token_conformance::openapi::document;
use token_conformance::spec::Spec;

const OAS_31_SCHEMA: &str = include_str!("../data/openapi-3.1-schema-2022-10-07.json");

fn oas_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(OAS_31_SCHEMA).unwrap();
    assert_eq!(
        schema["$id"], "https://spec.openapis.org/oas/3.1/schema/2022-10-07",
        "the vendored file is the OpenAPI 3.1 schema of 2022-10-07"
    );
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn the_document_is_valid_openapi_3_1() {
    let doc = document(Spec::embedded());
    assert_eq!(doc["openapi"], "3.1.0");
    let problems = errors(&oas_validator(), &doc);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A way to break a valid document.
type Breaking = fn(&mut Value);

#[test]
fn the_vendored_schema_refuses_broken_documents() {
    // Proof that the validator above has teeth.
    let validator = oas_validator();
    let good = document(Spec::embedded());
    let broken: [(&str, Breaking); 6] = [
        ("an OpenAPI 3.0 version", |d| d["openapi"] = json!("3.0.3")),
        ("no info", |d| {
            d.as_object_mut().unwrap().remove("info");
        }),
        ("a response without description", |d| {
            d["paths"]["/access_tokens/{access_token_id}"]["put"]["responses"]["200"]
                .as_object_mut()
                .unwrap()
                .remove("description");
        }),
        ("a path parameter that is not required", |d| {
            let params = d["paths"]["/access_tokens/{access_token_id}"]["put"]["parameters"]
                .as_array_mut()
                .unwrap();
            for p in params {
                if p["in"] == "path" {
                    p["required"] = json!(false);
                }
            }
        }),
        ("an unknown member of an operation", |d| {
            d["paths"]["/access_tokens"]["get"]["bogus"] = json!(1);
        }),
        ("a schema that is neither object nor boolean", |d| {
            d["components"]["schemas"]["error"] = json!(42);
        }),
    ];
    for (what, breaking) in broken {
        let mut doc = good.clone();
        breaking(&mut doc);
        assert!(!validator.is_valid(&doc), "{what} was accepted");
    }
}

#[test]
fn every_component_schema_is_valid_json_schema_2020_12() {
    let doc = document(Spec::embedded());
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert!(!schemas.is_empty());
    for (name, schema) in schemas {
        // The document's dialect is OpenAPI 3.1's default, a superset of 2020-12.
        let mut schema = schema.clone();
        schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        if let Err(err) = jsonschema::meta::validate(&schema) {
            panic!(
                "components.schemas.{name}: {err} at {}",
                err.instance_path()
            );
        }
    }
}

#[test]
fn every_operation_has_a_unique_id_and_request_bodies_are_required() {
    let doc = document(Spec::embedded());
    let mut ids = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            assert!(!ids.contains(&id), "{id} twice");
            ids.push(id);
            if let Some(body) = op.get("requestBody") {
                assert_eq!(body["required"], true, "{method} {path}");
            }
            // Every path template variable is declared as a path parameter.
            for var in path.split('/').filter_map(|s| s.strip_prefix('{')) {
                let var = var.trim_end_matches('}');
                assert!(
                    op["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["in"] == "path" && p["name"] == var),
                    "{method} {path}: {var}"
                );
            }
        }
    }
    assert!(ids.contains(&"updateAccessToken"));
}
