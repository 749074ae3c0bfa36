//! The embedded reference server: an in-memory emulator of the DatoCMS access-token API.
//!
//! The suite's default target, so that it runs on a fresh machine with no credentials and no
//! network; the behaviour vendors compare themselves against; the host of the faults that prove
//! the checks can fail; and a local stand-in the official DatoCMS clients can be pointed at.
//!
//! It serves two listeners over one shared state:
//! - the **CMA**: `/access_tokens` (list, create, retrieve, update, rotate, delete), `/roles`
//!   (CRUD), `GET /site` and `GET /users/me`;
//! - the **CDA**: `POST /`, a GraphQL endpoint that answers `{ _site { locales } }`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), token_conformance::reference::ServerError> {
//! use token_conformance::reference::{ReferenceServer, ServerConfig};
//!
//! let server = ReferenceServer::start(ServerConfig::default()).await?;
//! println!("CMA at {}, CDA at {}", server.cma_url(), server.cda_url());
//! // Authenticate with `Authorization: Bearer {server.admin_secret()}`.
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Where things live, so that a change has one place to go:
//! - `errors`: every error code ([`ErrorCode`]), its status, and the envelope;
//! - `auth`: every decision on who may do what;
//! - `tokens`, `roles`, `cma`, `cda`: one handler per endpoint;
//! - `http`: header and body checks; `ratelimit`: the limit; `seed`: the initial state;
//! - `conn`: the accept loop and the bounds on connections (header and idle timeouts, the cap);
//! - `violations`: which schema violations a fault lets through, by keyword and path;
//! - `names`: what the name faults do to a name on input.
//!
//! Faults ([`crate::faults`], [`ServerConfig::faults`]) are switched on per server. Each one is
//! a branch where that bug would really live (the permission cache in `auth`, the role and
//! secret bugs in `tokens::update`, the envelope in `errors`, the headers in `http::edge` and
//! `ratelimit`), marked with a `// Fault <name>:` comment, so `grep "Fault <name>"` finds it;
//! what the faults remember between requests is `state::FaultMemory`. With no fault on, none of
//! those branches is taken and nothing is remembered.

mod auth;
mod cda;
mod cma;
mod config;
mod conn;
mod errors;
mod http;
mod names;
mod ratelimit;
mod resources;
mod roles;
mod seed;
mod server;
mod state;
mod tls;
mod tokens;
mod violations;

pub use config::{
    DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DurationError,
    RateLimit, RateLimitParseError, ServerConfig, parse_duration,
};
pub use errors::{DOC_URL_BASE, ErrorCode, MAX_ECHO_CHARS, error_id};
pub use http::{JSON_CONTENT_TYPE, MAX_BODY_BYTES};
pub use seed::{
    ADMIN_ROLE_NAME, FULL_ACCESS_TOKEN_NAME, MANAGEMENT_TOKEN_NAME, READ_ONLY_ROLE_NAME,
    READ_ONLY_TOKEN_NAME,
};
pub use server::{ReferenceServer, ServerError, routers};
