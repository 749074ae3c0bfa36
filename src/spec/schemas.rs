//! Compiling the JSON Schemas of `specs/schemas/` once, and validating against them.

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Registry, Resource, Validator};
use serde_json::{Value, json};

use super::SpecError;

/// The base URI of every schema's `$id`. The `.invalid` top-level domain never resolves,
/// which makes it certain that no schema reference is ever fetched over the network.
pub const SCHEMA_BASE: &str = "https://token-conformance.invalid/specs/";

/// The documents the suite and the reference server validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaId {
    /// `{"data": access_token}`: retrieve, create, update, rotate, delete.
    AccessToken,
    /// `{"data": [access_token]}`: list.
    AccessTokenList,
    /// The body of `PUT /access_tokens/{id}`.
    UpdateRequest,
    /// The body of `POST /access_tokens`.
    CreateRequest,
    /// The body of `POST /roles`.
    RoleCreateRequest,
    /// The body of `PUT /roles/{id}`.
    RoleUpdateRequest,
    /// `{"data": role}`.
    Role,
    /// `{"data": [role]}`.
    RoleList,
    /// The api_error envelope.
    Error,
    /// The suite's own `--json` report.
    Report,
    /// The clause catalog.
    Clauses,
}

impl SchemaId {
    /// Every schema, in a fixed order.
    pub const ALL: [SchemaId; 11] = [
        SchemaId::AccessToken,
        SchemaId::AccessTokenList,
        SchemaId::UpdateRequest,
        SchemaId::CreateRequest,
        SchemaId::RoleCreateRequest,
        SchemaId::RoleUpdateRequest,
        SchemaId::Role,
        SchemaId::RoleList,
        SchemaId::Error,
        SchemaId::Report,
        SchemaId::Clauses,
    ];

    /// The spec file and the JSON pointer inside it that this schema lives at.
    pub fn location(self) -> (&'static str, &'static str) {
        match self {
            SchemaId::AccessToken => ("schemas/access_token.schema.json", "/$defs/document"),
            SchemaId::AccessTokenList => {
                ("schemas/access_token.schema.json", "/$defs/list_document")
            }
            SchemaId::UpdateRequest => ("schemas/update_request.schema.json", ""),
            SchemaId::CreateRequest => ("schemas/create_request.schema.json", ""),
            SchemaId::RoleCreateRequest => ("schemas/role_request.schema.json", "/$defs/create"),
            SchemaId::RoleUpdateRequest => ("schemas/role_request.schema.json", "/$defs/update"),
            SchemaId::Role => ("schemas/role.schema.json", "/$defs/document"),
            SchemaId::RoleList => ("schemas/role.schema.json", "/$defs/list_document"),
            SchemaId::Error => ("schemas/error.schema.json", ""),
            SchemaId::Report => ("report.schema.json", ""),
            SchemaId::Clauses => ("clauses.schema.json", ""),
        }
    }

    fn index(self) -> usize {
        SchemaId::ALL.iter().position(|id| *id == self).unwrap_or(0)
    }
}

/// One reason an instance does not match a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into the instance, e.g. `/data/attributes/name`.
    pub instance_path: String,
    /// Where in the spec the failing keyword is, e.g.
    /// `schemas/update_request.schema.json#/properties/data/required`.
    pub schema_path: String,
    /// The schema keyword that failed (`required`, `type`, `additionalProperties`, …), as
    /// the validator classifies the error: what code decides from, never [`Violation::message`].
    pub keyword: String,
    /// For a `required` violation, the member that is missing.
    pub missing: Option<String>,
    /// What the validator said: for people, its wording may change with the validator.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.instance_path.is_empty() {
            "(root)"
        } else {
            &self.instance_path
        };
        write!(f, "{at}: {} (schema {})", self.message, self.schema_path)
    }
}

/// All schemas of the spec, compiled once.
pub struct Schemas {
    raw: Vec<(String, Value)>,
    validators: Vec<Validator>,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas")
            .field("files", &self.raw.len())
            .finish_non_exhaustive()
    }
}

impl Schemas {
    pub(super) fn compile(files: &[(String, Value)]) -> Result<Schemas, SpecError> {
        let schema_files: Vec<&(String, Value)> = files
            .iter()
            .filter(|(name, _)| name.ends_with(".schema.json"))
            .collect();
        for (file, value) in &schema_files {
            if let Err(err) = jsonschema::meta::validate(value) {
                return Err(SpecError::Invalid {
                    file: file.clone(),
                    pointer: err.instance_path().to_string(),
                    message: err.to_string(),
                });
            }
            let expected_id = format!("{SCHEMA_BASE}{file}");
            if value.get("$id").and_then(Value::as_str) != Some(expected_id.as_str()) {
                return Err(SpecError::Invalid {
                    file: file.clone(),
                    pointer: "/$id".to_owned(),
                    message: format!("must be \"{expected_id}\""),
                });
            }
        }
        let mut builder = Registry::new();
        for (file, value) in &schema_files {
            builder = builder
                .add(
                    format!("{SCHEMA_BASE}{file}"),
                    Resource::from_contents(value.clone()),
                )
                .map_err(|err| SpecError::Invalid {
                    file: file.clone(),
                    pointer: "/$id".to_owned(),
                    message: err.to_string(),
                })?;
        }
        let registry = builder.prepare().map_err(|err| SpecError::Invalid {
            file: "schemas/".to_owned(),
            pointer: String::new(),
            message: format!("failed to resolve the schemas' references: {err}"),
        })?;
        let mut validators = Vec::with_capacity(SchemaId::ALL.len());
        for id in SchemaId::ALL {
            let (file, pointer) = id.location();
            let wrapper = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$ref": format!("{SCHEMA_BASE}{file}#{pointer}"),
            });
            let validator = jsonschema::options()
                .with_registry(&registry)
                .build(&wrapper)
                .map_err(|err| SpecError::Invalid {
                    file: file.to_owned(),
                    pointer: pointer.to_owned(),
                    message: format!("failed to compile: {err}"),
                })?;
            validators.push(validator);
        }
        Ok(Schemas {
            raw: files.to_vec(),
            validators,
        })
    }

    /// Check `instance` against the schema `id`; every violation, in the validator's order.
    pub fn validate(&self, id: SchemaId, instance: &Value) -> Result<(), Vec<Violation>> {
        let Some(validator) = self.validators.get(id.index()) else {
            return Ok(());
        };
        let violations: Vec<Violation> = validator
            .iter_errors(instance)
            .map(|err| Violation {
                instance_path: err.instance_path().to_string(),
                schema_path: err
                    .absolute_keyword_location()
                    .map(|uri| uri.as_str().trim_start_matches(SCHEMA_BASE).to_owned())
                    .unwrap_or_else(|| err.schema_path().to_string()),
                keyword: err.kind().keyword().to_owned(),
                missing: match err.kind() {
                    ValidationErrorKind::Required { property } => {
                        property.as_str().map(str::to_owned)
                    }
                    _ => None,
                },
                message: err.to_string(),
            })
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }

    /// The parsed contents of a spec file (path relative to `specs/`), if it exists.
    pub fn file(&self, name: &str) -> Option<&Value> {
        self.raw
            .iter()
            .find(|(file, _)| file == name)
            .map(|(_, value)| value)
    }

    /// The schema `id` itself, with its `$ref`s left as they are.
    pub fn raw(&self, id: SchemaId) -> Option<&Value> {
        let (file, pointer) = id.location();
        self.file(file)?.pointer(pointer)
    }

    /// Every schema file, by path relative to `specs/`.
    pub fn files(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.raw
            .iter()
            .filter(|(name, _)| name.ends_with(".schema.json"))
            .map(|(name, value)| (name.as_str(), value))
    }

    pub(super) fn role_permissions(&self) -> Result<Vec<String>, SpecError> {
        const FILE: &str = "schemas/role.schema.json";
        const POINTER: &str = "/$defs/permissions/const";
        let invalid = || SpecError::Invalid {
            file: FILE.to_owned(),
            pointer: POINTER.to_owned(),
            message: "must be an array of permission names".to_owned(),
        };
        let list = self
            .file(FILE)
            .and_then(|v| v.pointer(POINTER))
            .ok_or_else(invalid)?;
        let items = list.as_array().ok_or_else(invalid)?;
        items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;

    #[test]
    fn the_documented_example_body_is_a_valid_update() {
        let body = json!({"data": {"type": "access_token", "id": "312", "attributes": {
            "name": "Read-only API token", "can_access_cda": true,
            "can_access_cda_preview": true, "can_access_cma": true}}});
        assert_eq!(
            Spec::embedded()
                .schemas()
                .validate(SchemaId::UpdateRequest, &body),
            Ok(())
        );
    }

    #[test]
    fn violations_name_the_instance_path_and_schema_path() {
        let body = json!({"data": {"type": "user", "id": "312", "attributes": {
            "name": "x", "can_access_cda": true,
            "can_access_cda_preview": true, "can_access_cma": "yes"}}});
        let errs = Spec::embedded()
            .schemas()
            .validate(SchemaId::UpdateRequest, &body)
            .expect_err("invalid");
        let paths: Vec<&str> = errs.iter().map(|v| v.instance_path.as_str()).collect();
        assert!(paths.contains(&"/data/type"), "{errs:?}");
        assert!(
            paths.contains(&"/data/attributes/can_access_cma"),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|v| v.schema_path.contains("update_request.schema.json#")),
            "{errs:?}"
        );
    }

    #[test]
    fn role_reference_null_is_refused() {
        let body = json!({"data": {"type": "access_token", "id": "1", "attributes": {
            "name": "x", "can_access_cda": true, "can_access_cda_preview": true,
            "can_access_cma": true}, "relationships": {"role": {"data": null}}}});
        assert!(
            Spec::embedded()
                .schemas()
                .validate(SchemaId::UpdateRequest, &body)
                .is_err()
        );
    }
}
