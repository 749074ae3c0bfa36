//! The `token-conformance` command. Everything it does lives in the library; this is glue.

use std::process::ExitCode;

fn main() -> ExitCode {
    token_conformance::cli::main()
}
