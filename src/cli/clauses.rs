//! `clauses`: the catalog, each clause with its checks and the faults that prove them
//! (rendered by [`crate::coverage`], which `mutants` and the tests use too).

use super::Code;
use crate::console::{out, outln};

pub(crate) fn clauses(json: bool) -> Code {
    let coverage = crate::coverage::of_this_build();
    if json {
        outln!("{:#}", crate::coverage::to_json(&coverage));
    } else {
        out!("{}", crate::coverage::render_text(&coverage));
    }
    if coverage.is_complete() {
        Code::Passed
    } else {
        Code::Violated
    }
}
