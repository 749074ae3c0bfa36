//! The endpoint's specification: JSON Schemas and the clause catalog in `specs/`.
//!
//! Everything the suite asserts and everything the reference server enforces about request
//! and response shapes comes from these files, so there is one source of truth. The files are
//! compiled into the binary ([`Spec::embedded`]) so an installed tool works from any directory,
//! and validated before use: a malformed spec is an error naming the file and the JSON pointer.
//! `build.rs` reads `specs/clauses.json` too, to generate [`ClauseId`]; a unit test checks
//! that the generated type and the loaded catalog list the same clauses in the same order.

mod catalog;
mod clause_id;
mod schemas;

use std::sync::OnceLock;

pub use catalog::{Catalog, Clause, Evidence};
pub use clause_id::{ClauseId, UnknownClause};
pub use schemas::{SCHEMA_BASE, SchemaId, Schemas, Violation};

/// The files of `specs/`, by path relative to that folder, as compiled into the binary.
pub const EMBEDDED_FILES: &[(&str, &str)] = &[
    ("clauses.json", include_str!("../../specs/clauses.json")),
    (
        "clauses.schema.json",
        include_str!("../../specs/clauses.schema.json"),
    ),
    (
        "report.schema.json",
        include_str!("../../specs/report.schema.json"),
    ),
    (
        "schemas/access_token.schema.json",
        include_str!("../../specs/schemas/access_token.schema.json"),
    ),
    (
        "schemas/update_request.schema.json",
        include_str!("../../specs/schemas/update_request.schema.json"),
    ),
    (
        "schemas/create_request.schema.json",
        include_str!("../../specs/schemas/create_request.schema.json"),
    ),
    (
        "schemas/role.schema.json",
        include_str!("../../specs/schemas/role.schema.json"),
    ),
    (
        "schemas/role_request.schema.json",
        include_str!("../../specs/schemas/role_request.schema.json"),
    ),
    (
        "schemas/error.schema.json",
        include_str!("../../specs/schemas/error.schema.json"),
    ),
];

/// Why a spec could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A file is not JSON.
    #[error("spec file {file} is not valid JSON (line {line}, column {column}): {message}")]
    Parse {
        /// The file, relative to the spec folder.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A file is JSON but breaks the rules for its kind.
    #[error("spec file {file} is invalid at {pointer}: {message}")]
    Invalid {
        /// The file, relative to the spec folder.
        file: String,
        /// JSON pointer into the file (`""` is the whole document).
        pointer: String,
        /// What is wrong there.
        message: String,
    },
}

/// The loaded, validated and compiled specification.
#[derive(Debug)]
pub struct Spec {
    catalog: Catalog,
    schemas: Schemas,
    role_permissions: Vec<String>,
}

impl Spec {
    /// The specification compiled into this binary.
    ///
    /// # Panics
    /// If the embedded `specs/` are invalid: that is a bug of this build, caught by the
    /// crate's own tests, never a user error.
    pub fn embedded() -> &'static Spec {
        static SPEC: OnceLock<Spec> = OnceLock::new();
        SPEC.get_or_init(|| {
            let files = EMBEDDED_FILES
                .iter()
                .map(|(path, text)| ((*path).to_owned(), (*text).to_owned()))
                .collect();
            match Spec::from_files(files) {
                Ok(spec) => spec,
                Err(err) => panic!("the embedded specs/ are invalid (a build bug): {err}"),
            }
        })
    }

    fn from_files(files: Vec<(String, String)>) -> Result<Spec, SpecError> {
        let mut parsed = Vec::with_capacity(files.len());
        for (file, text) in files {
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|err| SpecError::Parse {
                    file: file.clone(),
                    line: err.line(),
                    column: err.column(),
                    message: err.to_string(),
                })?;
            parsed.push((file, value));
        }
        let schemas = Schemas::compile(&parsed)?;
        let catalog_value = file_value(&parsed, "clauses.json");
        let catalog = Catalog::from_value(catalog_value, &schemas)?;
        let role_permissions = schemas.role_permissions()?;
        Ok(Spec {
            catalog,
            schemas,
            role_permissions,
        })
    }

    /// The clause catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The compiled JSON Schemas.
    pub fn schemas(&self) -> &Schemas {
        &self.schemas
    }

    /// The boolean permissions of a role, from `role.schema.json`.
    pub fn role_permissions(&self) -> &[String] {
        &self.role_permissions
    }
}

/// The parsed contents of one spec file; every caller names a file of [`EMBEDDED_FILES`].
fn file_value<'a>(files: &'a [(String, serde_json::Value)], name: &str) -> &'a serde_json::Value {
    files
        .iter()
        .find(|(file, _)| file == name)
        .map(|(_, value)| value)
        .unwrap_or(&serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_spec_loads() {
        let spec = Spec::embedded();
        assert!(spec.catalog().clauses().len() >= 18);
        assert!(
            spec.role_permissions()
                .iter()
                .any(|p| p == "can_manage_access_tokens")
        );
    }

    #[test]
    fn a_malformed_catalog_names_the_file_and_pointer() {
        let mut files: Vec<(String, String)> = EMBEDDED_FILES
            .iter()
            .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
            .collect();
        for (path, text) in &mut files {
            if path == "clauses.json" {
                *text = text.replacen("\"documented\"", "\"maybe\"", 1);
            }
        }
        let err = Spec::from_files(files).expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains("clauses.json"), "{msg}");
        assert!(msg.contains("/clauses/0/evidence"), "{msg}");
    }

    #[test]
    fn a_broken_schema_names_the_file_and_pointer() {
        let mut files: Vec<(String, String)> = EMBEDDED_FILES
            .iter()
            .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
            .collect();
        for (path, text) in &mut files {
            if path == "schemas/update_request.schema.json" {
                *text = text.replacen("\"type\": \"object\"", "\"type\": \"objekt\"", 1);
            }
        }
        let err = Spec::from_files(files).expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains("update_request.schema.json"), "{msg}");
        assert!(msg.contains("/type"), "{msg}");
    }

    #[test]
    fn unparsable_json_names_line_and_column() {
        let mut files: Vec<(String, String)> = EMBEDDED_FILES
            .iter()
            .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
            .collect();
        files[0].1.push('}');
        let err = Spec::from_files(files).expect_err("must fail");
        assert!(matches!(err, SpecError::Parse { ref file, .. } if file == "clauses.json"));
    }
}
