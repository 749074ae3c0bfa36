//! The clause catalog: one clause per promise of the documentation page.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{SchemaId, Schemas, SpecError};

/// How strongly a promise is known: a label of the clause, shown in every report. It decides
/// nothing at run time. What fails a run is decided per assertion (a check asserts a documented
/// promise with `Cx::ensure` and observed behaviour with `Cx::observed`, a warning unless
/// `--profile strict`) and per check (a check that only observed behaviour can show is declared
/// strict-only in the check table, and the engine skips it under other profiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    /// Stated by the documentation.
    Documented,
    /// Seen in real responses or clients (the clause may still hold a documented part).
    Observed,
    /// Our best guess.
    Inferred,
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Evidence::Documented => "documented",
            Evidence::Observed => "observed",
            Evidence::Inferred => "inferred",
        })
    }
}

/// One promise of the documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clause {
    /// Stable id, e.g. `update.role.preserved`.
    pub id: String,
    /// A short title.
    pub title: String,
    /// The sentence of the documentation it comes from.
    pub quote: String,
    /// How strongly it is known.
    pub evidence: Evidence,
    /// Whether verifying it rotates or deletes something the run did not create.
    #[serde(default)]
    pub destructive: bool,
    /// The names of the checks that verify it.
    pub checks: Vec<String>,
}

/// The whole catalog, in the file's order.
#[derive(Debug, Clone)]
pub struct Catalog {
    source: String,
    clauses: Vec<Clause>,
}

#[derive(Deserialize)]
struct CatalogFile {
    source: String,
    clauses: Vec<Clause>,
}

impl Catalog {
    pub(super) fn from_value(value: &Value, schemas: &Schemas) -> Result<Catalog, SpecError> {
        const FILE: &str = "clauses.json";
        if let Err(violations) = schemas.validate(SchemaId::Clauses, value) {
            let first = &violations[0];
            return Err(SpecError::Invalid {
                file: FILE.to_owned(),
                pointer: first.instance_path.clone(),
                message: first.message.clone(),
            });
        }
        let file: CatalogFile =
            serde_json::from_value(value.clone()).map_err(|err| SpecError::Invalid {
                file: FILE.to_owned(),
                pointer: String::new(),
                message: err.to_string(),
            })?;
        for (i, clause) in file.clauses.iter().enumerate() {
            if let Some(j) = file.clauses[..i].iter().position(|c| c.id == clause.id) {
                return Err(SpecError::Invalid {
                    file: FILE.to_owned(),
                    pointer: format!("/clauses/{i}/id"),
                    message: format!(
                        "duplicate clause id {:?} (first at /clauses/{j})",
                        clause.id
                    ),
                });
            }
        }
        Ok(Catalog {
            source: file.source,
            clauses: file.clauses,
        })
    }

    /// Where the clauses come from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every clause, in catalog order.
    pub fn clauses(&self) -> &[Clause] {
        &self.clauses
    }

    /// The clause with this id (a [`ClauseId`](super::ClauseId) or its string).
    pub fn clause(&self, id: impl AsRef<str>) -> Option<&Clause> {
        let id = id.as_ref();
        self.clauses.iter().find(|c| c.id == id)
    }
}
