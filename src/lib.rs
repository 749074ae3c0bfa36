//! token-conformance: a conformance suite for the DatoCMS Content Management API endpoint
//! "Update an API token" (`PUT /access_tokens/:id`), with an embedded reference server.

pub mod checks;
pub mod cli;
pub mod client;
pub mod console;
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
pub mod reference;
pub mod report;
pub mod spec;
