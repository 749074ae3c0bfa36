//! `serve`: the embedded reference server, until Ctrl-C.

use std::path::PathBuf;

use clap::Args;

use super::output::write_file;
use super::{CliError, Code};
use crate::console::{errln, outln};
use crate::faults::{Fault, FaultSet};
use crate::reference::{RateLimit, ReferenceServer, ServerConfig};

/// What `serve --help` says after the flags.
pub(crate) const AFTER_HELP: &str = "\
The management token: the value of CONFORMANCE_API_TOKEN when it is set (so that a run can
use the same variable), otherwise a generated one, printed at start. --addr and --cda-addr
with port 0 pick free ports; the CMA and CDA URLs are printed either way.";

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address of the CMA listener (port 0 picks a free port; the URLs are printed).
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: std::net::SocketAddr,
    /// Address of the CDA (GraphQL) listener (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:3001")]
    cda_addr: std::net::SocketAddr,
    /// Per-token rate limit, `REQUESTS/WINDOW` (e.g. `60/3s`, `100/500ms`) or `off`.
    #[arg(long, default_value = "60/3s", value_parser = parse_rate_limit)]
    rate_limit: RateLimitArg,
    /// Also seed the legacy "Full-access API token" (hardcoded_type "admin").
    #[arg(long)]
    legacy_factory_tokens: bool,
    /// Switch a fault on (repeatable; `token-conformance mutants --list` lists them).
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<Fault>,
    /// Simulate network trouble: this fraction of requests (0.0-1.0) gets a transient 503 or a
    /// dropped connection, and every request up to 20 ms of latency.
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction)]
    flaky: Option<f64>,
    /// Serve over TLS with a generated CA and certificate; the CA is written to this PEM file
    /// (pass it to `run --ca-cert`).
    #[arg(long, value_name = "PEM")]
    tls_ca_out: Option<PathBuf>,
    /// How long a client may take to send a request (`500ms`, `10s`, `1m`): its head (request
    /// line and headers) must be complete this long after the connection opened, or after the
    /// first byte of a request on a kept-alive connection; its body this long after the head.
    /// Otherwise the connection is closed without an answer.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_timeout)]
    header_timeout: std::time::Duration,
    /// How long a kept-alive connection may wait for its next request before it is closed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    idle_timeout: std::time::Duration,
    /// Most connections open at once, per listener (CMA and CDA each). At the limit a new
    /// connection is let in by closing the open connection that has been idle or sending its
    /// request head the longest; a connection with a request in progress is never closed, and
    /// when every open connection has one, the new connection is closed at once.
    #[arg(long, value_name = "N", default_value = "256", value_parser = parse_max_connections)]
    max_connections: usize,
}

fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    crate::reference::parse_duration(text)
        .map_err(|err| format!("invalid duration {text:?}: {err}; expected e.g. 500ms, 10s or 1m"))
}

fn parse_max_connections(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{text:?} is not a whole number of at least 1")),
    }
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{text:?} is not a fraction between 0 and 1")),
    }
}

#[derive(Debug, Clone)]
struct RateLimitArg(Option<RateLimit>);

fn parse_rate_limit(text: &str) -> Result<RateLimitArg, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(RateLimitArg(None));
    }
    text.parse::<RateLimit>()
        .map(|r| RateLimitArg(Some(r)))
        .map_err(|e| e.to_string())
}

pub(crate) async fn serve(args: ServeArgs) -> Result<Code, CliError> {
    let from_env = std::env::var("CONFORMANCE_API_TOKEN")
        .ok()
        .filter(|s| !s.is_empty());
    let config = ServerConfig {
        cma_addr: args.addr,
        cda_addr: args.cda_addr,
        rate_limit: args.rate_limit.0,
        legacy_factory_tokens: args.legacy_factory_tokens,
        admin_secret: from_env,
        faults: FaultSet::of(args.faults.iter().copied()),
        flaky: args.flaky,
        tls: args.tls_ca_out.is_some(),
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: args.max_connections,
    };
    let server = ReferenceServer::start(config)
        .await
        .map_err(|err| CliError::Usage(err.to_string()))?;
    if let (Some(path), Some(pem)) = (&args.tls_ca_out, server.tls_ca_pem()) {
        write_file("the CA certificate to ", path, pem)?;
        outln!(
            "TLS: the CA certificate is in {} (run --ca-cert {})",
            path.display(),
            path.display()
        );
    }
    outln!("CMA: {}", server.cma_url());
    outln!("CDA: {}", server.cda_url());
    outln!(
        "connections: at most {} per listener; a request within {:?}, idle up to {:?}",
        args.max_connections,
        args.header_timeout,
        args.idle_timeout
    );
    if server.admin_secret_was_generated() {
        outln!(
            "management token (generated; set CONFORMANCE_API_TOKEN to choose one): {}",
            server.admin_secret()
        );
    } else {
        outln!("management token: the value of CONFORMANCE_API_TOKEN");
    }
    for fault in &args.faults {
        outln!("fault on: {fault} ({})", fault.description());
    }
    outln!("Ctrl-C stops the server.");
    if let Err(err) = tokio::signal::ctrl_c().await {
        errln!("error: failed to wait for Ctrl-C: {err}");
    }
    server.shutdown().await;
    Ok(Code::Passed)
}
