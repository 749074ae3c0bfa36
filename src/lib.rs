//! token-conformance: a conformance suite for the DatoCMS Content Management API endpoint
//! "Update an API token" (`PUT /access_tokens/:id`), with an embedded reference server.
//!
//! The top-level modules import each other without a cycle, the HTTP client (`client`) is
//! built on nothing of the suite, and the reference server (`reference`) only on `spec` and
//! `faults`: a test in `architecture.rs` reads the `crate::` paths of `src/` and fails otherwise.

#[cfg(test)]
mod architecture;
pub mod checks;
pub mod cli;
pub mod client;
pub mod console;
pub mod coverage;
pub mod engine;
pub mod faults;
pub mod fixtures;
pub mod generate;
pub mod matrix;
pub mod model;
pub mod mutants;
pub mod observe;
pub mod openapi;
pub mod outcome;
pub mod output;
pub mod plan;
pub mod reference;
pub mod replay;
pub mod report;
pub mod spec;
pub mod text;
