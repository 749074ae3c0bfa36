//! Probes: calls made with a token's own secret whose only question is "granted or not".

use super::{Role, Surfaces};

/// A call that tells whether a token is allowed something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    /// A CMA read any CMA token may make (`GET /site`).
    CmaRead,
    /// A CMA write the role gates by `permission`, with values that change nothing.
    GatedWrite {
        /// The role permission that guards it.
        permission: &'static str,
    },
    /// A CDA query for published content.
    Cda,
    /// A CDA query with `X-Include-Drafts: true`.
    CdaDrafts,
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::CmaRead => f.write_str("a CMA read"),
            Probe::GatedWrite { permission } => write!(f, "a CMA write gated by {permission}"),
            Probe::Cda => f.write_str("a CDA query"),
            Probe::CdaDrafts => f.write_str("a CDA query with X-Include-Drafts: true"),
        }
    }
}

/// What the model says a probe gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prediction {
    /// A 2xx with data.
    Granted,
    /// A refusal.
    Refused,
    /// The documentation does not say; the answer is recorded, not asserted.
    Unknown(&'static str),
}

impl std::fmt::Display for Prediction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Prediction::Granted => f.write_str("granted"),
            Prediction::Refused => f.write_str("refused"),
            Prediction::Unknown(why) => write!(f, "unknown ({why})"),
        }
    }
}

fn granted(yes: bool) -> Prediction {
    if yes {
        Prediction::Granted
    } else {
        Prediction::Refused
    }
}

impl Probe {
    /// The decision for a token with these flags and this role (`None`: no role, or one the
    /// run does not know, which grants nothing the model can vouch for).
    pub(super) fn decide(&self, surfaces: Surfaces, role: Option<&Role>) -> Prediction {
        match self {
            // "can_access_cma: Whether this API token can access the Content Management API".
            Probe::CmaRead => granted(surfaces.cma),
            // The intersection of the role and the flags (documented). Which permission guards
            // which action is inferred, not documented; the model follows the suite's reading in
            // update.effect.role, and a permission the run never set is unknown.
            Probe::GatedWrite { permission } => {
                if !surfaces.cma {
                    return Prediction::Refused;
                }
                match role.and_then(|r| r.permissions.get(*permission)) {
                    Some(yes) => granted(*yes),
                    None => Prediction::Unknown("a permission the run never set"),
                }
            }
            // "can_access_cda: Whether this API token can call the Content Delivery API … to
            // fetch published content." Silent on the preview flag alone.
            Probe::Cda => match (surfaces.cda, surfaces.cda_preview) {
                (true, _) => Prediction::Granted,
                (false, false) => Prediction::Refused,
                (false, true) => Prediction::Unknown(
                    "the docs do not say whether can_access_cda_preview alone reads published content",
                ),
            },
            // "can_access_cda_preview … governs whether requesting drafts is allowed."
            Probe::CdaDrafts => match (surfaces.cda_preview, surfaces.cda) {
                (false, _) => Prediction::Refused,
                (true, true) => Prediction::Granted,
                (true, false) => Prediction::Unknown(
                    "the docs do not say whether drafts need can_access_cda as well",
                ),
            },
        }
    }
}
