//! `token-conformance matrix targets.toml`: the suite against several targets, and the result
//! as a table, clauses × targets, in Markdown and as one self-contained HTML page.
//!
//! Three rooms: `file` is the targets file's format, `run` runs the suite against each
//! target, and the renderers live with the other reports ([`crate::report::matrix_md`],
//! [`crate::report::matrix_html`]), over the plain data of [`crate::report::matrix`].
//!
//! The targets file:
//!
//! ```toml
//! [[target]]
//! name = "staging"
//! base_url = "https://staging.example/cma"
//! cda_url = "https://staging.example/cda"    # optional
//! environment = "main"                        # optional: X-Environment
//! token_env = "STAGING_TOKEN"                 # the environment variable holding its secret
//! profile = "staging"                         # optional: overrides `matrix --profile`
//!
//! [[target]]
//! name = "reference"
//! embedded = true                             # the embedded reference server
//! faults = ["role-dropped-when-omitted"]      # optional: its faults
//! ```
//!
//! A target that cannot be run (its token variable is unset, nothing answers, or not the API)
//! is a column that says "not tested" and why; the other targets still run.
//!
//! Secrets are never in the file, only the name of the variable that holds one, and never in
//! the output: the engine redacts every message, and this module shows no secret anywhere (the
//! [`Debug`] of a loaded file prints `[secret]`).

mod file;
mod run;

pub use crate::report::matrix::{Cell, Matrix, TargetResult};
pub use crate::report::matrix_html::html;
pub use crate::report::matrix_md::markdown;
pub use file::{MatrixError, MatrixFile, MatrixTarget, Secret, TargetKind};
pub use run::{run_matrix, run_matrix_live, run_matrix_until, run_matrix_with};
