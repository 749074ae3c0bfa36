//! token-conformance: a conformance suite for the DatoCMS Content Management API endpoint
//! "Update an API token" (`PUT /access_tokens/:id`), with an embedded reference server.

pub mod spec;
