//! The integration tests, one binary (`cargo test --test it`): every area is a module, so the
//! dependency tree is linked once instead of once per file. `conformance.rs` stays its own
//! binary because it brings its own harness (libtest-mimic). Test names carry their module:
//! `cargo test --test it hostile::` runs one area.
#![allow(clippy::unwrap_used)]

mod common;

mod budget;
mod cli;
mod flaky;
mod hostile;
mod junit;
mod linearizability;
mod matrix;
mod model;
mod mutants;
mod openapi;
mod output_safety;
#[cfg(unix)]
mod progress;
mod readme;
mod redaction;
mod reference;
mod replay;
mod report_text;
mod reproducer_shell;
mod safety;
mod signals;
mod snapshots;
mod stateless;
mod tls;
mod two_runs;
mod untrusted_ids;
