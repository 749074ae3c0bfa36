//! `sweep`: remove the fixtures a killed run left behind.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, Code};
use crate::console::{errln, outln};
use crate::plan::PlanError;

#[derive(Debug, Args)]
pub(crate) struct SweepArgs {
    /// CMA base URL of the target (the management token comes from CONFORMANCE_API_TOKEN).
    #[arg(long, env = "CONFORMANCE_BASE_URL", value_name = "URL")]
    base_url: Option<String>,
    /// Sent as X-Environment.
    #[arg(long, env = "CONFORMANCE_ENVIRONMENT", value_name = "NAME")]
    environment: Option<String>,
    /// Allow the public production host.
    #[arg(long)]
    allow_production: bool,
    /// Also trust the CA certificates in this PEM file.
    #[arg(long, env = "CONFORMANCE_CA_CERT", value_name = "PEM")]
    ca_cert: Option<PathBuf>,
}

pub(crate) async fn sweep(args: SweepArgs) -> Result<Code, CliError> {
    let base_url = args
        .base_url
        .filter(|u| !u.trim().is_empty())
        .ok_or(PlanError::NoBaseUrl)?;
    let remote = crate::plan::remote(
        base_url,
        None,
        args.environment,
        std::env::var("CONFORMANCE_API_TOKEN").ok(),
        args.ca_cert,
    )?;
    // The client first: it refuses a URL with credentials before the URL is shown anywhere.
    let client = remote.client()?;
    let base = &client.target().base_url;
    if crate::plan::is_production(base) && !args.allow_production {
        return Err(CliError::Usage(format!(
            "{base} is the production API; pass --allow-production to sweep it"
        )));
    }
    let report = crate::fixtures::sweep::sweep(&client).await?;
    for removed in &report.removed {
        outln!("removed {}", crate::output::terminal_line(removed));
    }
    for failed in &report.failed {
        errln!("could not remove {}", crate::output::terminal_line(failed));
    }
    outln!(
        "{} removed, {} could not be removed",
        report.removed.len(),
        report.failed.len()
    );
    Ok(if report.failed.is_empty() {
        Code::Passed
    } else {
        Code::Violated
    })
}
