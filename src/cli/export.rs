//! `openapi`: the OpenAPI document generated from specs/.

use super::{CliError, Code};
use crate::console::outln;
use crate::spec::Spec;

pub(crate) fn openapi() -> Result<Code, CliError> {
    let doc = crate::openapi::document(Spec::embedded());
    let text =
        serde_json::to_string_pretty(&doc).map_err(|err| CliError::Usage(err.to_string()))?;
    outln!("{text}");
    Ok(Code::Passed)
}
