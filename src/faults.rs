//! The fault catalogue: realistic bugs the reference server can be switched into, each
//! declaring the clause(s) it breaks. They prove the suite's detection power: `mutants` runs
//! the suite against a server with each fault and expects the declared clause to fail.

use std::collections::BTreeSet;

macro_rules! faults {
    ($( $variant:ident = $name:literal, [$($clause:literal),+], $strict:literal, $doc:literal; )+) => {
        /// A switchable bug of the reference server.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Fault {
            $( #[doc = $doc] $variant, )+
        }

        impl Fault {
            /// Every fault, in catalogue order.
            pub const ALL: &'static [Fault] = &[$( Fault::$variant, )+];

            /// The name used on the command line (`serve --fault NAME`).
            pub fn name(self) -> &'static str {
                match self { $( Fault::$variant => $name, )+ }
            }

            /// The clauses this fault breaks.
            pub fn clauses(self) -> &'static [&'static str] {
                match self { $( Fault::$variant => &[$($clause),+], )+ }
            }

            /// Whether only `--profile strict` can see it (it breaks observed behaviour).
            pub fn strict_only(self) -> bool {
                match self { $( Fault::$variant => $strict, )+ }
            }

            /// What the bug is.
            pub fn description(self) -> &'static str {
                match self { $( Fault::$variant => $doc, )+ }
            }
        }
    };
}

faults! {
    RoleDroppedWhenOmitted = "role-dropped-when-omitted", ["update.role.preserved"], false,
        "The role is set to null when an update omits relationships.";
    RoleResetWhenOmitted = "role-reset-when-omitted", ["update.role.preserved"], false,
        "The role is reset to the default (Admin) role when an update omits relationships.";
    RoleIgnoredWhenSent = "role-ignored-when-sent", ["update.role.reassigned"], false,
        "relationships.role is validated but never stored.";
    RoleReassignedWrong = "role-reassigned-wrong", ["update.role.reassigned"], false,
        "A sent role is stored as another role (the one created before it).";
    SecretRotatedByUpdate = "secret-rotated-by-update", ["update.secret.unchanged"], false,
        "An update generates a new secret.";
    OldSecretRefusedAfterUpdate = "old-secret-refused-after-update", ["update.secret.unchanged"], false,
        "The token attribute is kept, but the secret stops authenticating after an update.";
    CmaDecisionCached = "cma-decision-cached", ["update.effect.cma"], false,
        "can_access_cma decisions are cached for 2 s per token.";
    CdaDecisionCached = "cda-decision-cached", ["update.effect.cda"], false,
        "can_access_cda decisions are cached for 2 s per token.";
    CmaGrantCached = "cma-grant-cached", ["update.effect.cma"], false,
        "A granted can_access_cma decision is cached for 2 s per token, a refusal is not: the cache is warm only after a granted call.";
    CdaGrantCached = "cda-grant-cached", ["update.effect.cda"], false,
        "A granted published-content CDA decision is cached for 2 s per token, a refusal is not: the cache is warm only after a granted call.";
    PreviewFlagIgnored = "preview-flag-ignored", ["update.effect.cda_preview"], false,
        "X-Include-Drafts: true is allowed to any token that can read published content.";
    RolePermissionsCached = "role-permissions-cached", ["update.effect.role"], false,
        "A token's role permissions are cached for 2 s.";
    StaleNode = "stale-node", ["update.effect.cma"], false,
        "One request in three is served by a node that still sees the token's previous flags.";
    HardcodedAcceptsUpdates = "hardcoded-accepts-updates", ["update.hardcoded.rejected"], false,
        "Factory tokens accept updates like any other token.";
    HardcodedWrongCode = "hardcoded-wrong-code", ["update.hardcoded.rejected"], false,
        "Factory tokens reject updates with INSUFFICIENT_PERMISSIONS instead of NON_EDITABLE_ACCESS_TOKEN.";
    HardcodedAppliesName = "hardcoded-applies-name", ["update.hardcoded.rejected"], false,
        "Factory tokens reject updates, but the new name is applied anyway.";
    HardcodedCannotRotate = "hardcoded-cannot-rotate", ["update.hardcoded.still_deletable"], false,
        "Rotating a factory token is refused with NON_EDITABLE_ACCESS_TOKEN.";
    HardcodedCannotDelete = "hardcoded-cannot-delete", ["update.hardcoded.still_deletable"], false,
        "Deleting a factory token is refused with NON_EDITABLE_ACCESS_TOKEN.";
    MissingFlagDefaultsFalse = "missing-flag-defaults-false", ["update.request.validation"], false,
        "A missing surface flag is taken as false instead of refusing the body.";
    AnyTypeAccepted = "any-type-accepted", ["update.request.validation"], false,
        "The body's data.type is not checked.";
    TypeLooselyMatched = "type-loosely-matched", ["update.request.validation"], false,
        "data.type is matched loosely: the plural \"access_tokens\" and any letter case pass for \"access_token\".";
    StringTrueCoerced = "string-true-coerced", ["update.request.validation"], false,
        "The strings \"true\" and \"false\" are coerced to booleans.";
    InvalidPartlyApplied = "invalid-partly-applied", ["update.request.validation"], false,
        "An invalid body is refused, but its name (when it is a string) is applied first.";
    InvalidBody5xx = "invalid-body-5xx", ["update.request.validation"], false,
        "Some invalid bodies (a required member missing) crash the handler: 500.";
    UnknownMembersAccepted = "unknown-members-accepted", ["update.request.validation"], true,
        "Unknown members are ignored instead of refused (observed: the 2022 schema refuses them).";
    NameTruncated64 = "name-truncated-64", ["update.applies"], false,
        "Names are cut to 64 characters.";
    NonAsciiName500 = "non-ascii-name-500", ["update.applies"], false,
        "A name with a non-ASCII character answers 500.";
    NameTrimmed = "name-trimmed", ["update.applies"], false,
        "Leading and trailing whitespace is trimmed from names.";
    FlagsSwapped = "flags-swapped", ["update.applies"], false,
        "can_access_cda and can_access_cda_preview are stored swapped.";
    CmaFlagIgnored = "cma-flag-ignored", ["update.effect.cma"], false,
        "can_access_cma is stored, but never enforced.";
    StaleRead = "stale-read", ["update.applies"], false,
        "Reads show a token as it was before its last write, for 1 s after the write.";
    AttributeMissing = "attribute-missing", ["update.response.schema"], false,
        "Update responses lack last_cda_access.";
    BooleanAsString = "boolean-as-string", ["update.response.schema"], false,
        "Update responses carry can_access_cma as a string.";
    DifferentId = "different-id", ["update.response.schema"], false,
        "Update responses carry another data.id than the path's.";
    WrongResourceType = "wrong-resource-type", ["update.response.schema"], false,
        "Update responses carry data.type \"api_token\".";
    HtmlContentType = "html-content-type", ["headers.content_type"], false,
        "Error responses are sent as text/html.";
    NoCharset = "no-charset", ["headers.content_type"], true,
        "Responses say application/json without charset=utf-8 (observed).";
    ErrorsUnderErrors = "errors-under-errors", ["errors.envelope"], false,
        "Error bodies put the api_error objects under errors instead of data.";
    NoRateLimitHeaders = "no-rate-limit-headers", ["headers.rate_limit"], false,
        "Successful responses lack the X-RateLimit-* headers.";
    RateLimitWithoutReset = "rate-limit-without-reset", ["headers.rate_limit"], false,
        "A 429 comes without X-RateLimit-Reset (the server runs with a 100/1s limit).";
    TokenShownToEveryone = "token-shown-to-everyone", ["update.token.visibility"], false,
        "The secret is shown to every caller.";
    NoCredentialsAccepted = "no-credentials-accepted", ["update.auth"], false,
        "A request without an Authorization header acts as the management token.";
    AuthWrongStatus = "auth-wrong-status", ["update.auth"], true,
        "Missing credentials get 403 instead of 401 (observed).";
    UnknownId500 = "unknown-id-500", ["update.not_found"], false,
        "An update of an unknown id answers 500.";
    UnknownIdWrongCode = "unknown-id-wrong-code", ["update.not_found"], true,
        "An unknown id answers 400 INVALID_FIELD instead of 404 NOT_FOUND (observed).";
    ForgedBearerPrefix = "forged-bearer-prefix", ["update.auth"], false,
        "A bearer is matched on its first 8 characters only (a lookup prefix taken for the whole secret).";
    ForgedBearerCase = "forged-bearer-case", ["update.auth"], false,
        "Secrets are compared without regard to letter case.";
    ForgedBearerExtended = "forged-bearer-extended", ["update.auth"], false,
        "A bearer that begins with a real secret is accepted (the comparison stops at the stored secret's length).";
    ForgedBearerPercentDecoded = "forged-bearer-percent-decoded", ["update.auth"], false,
        "The bearer is percent-decoded before it is looked up.";
    ForgedBearerSchemeStripped = "forged-bearer-scheme-stripped", ["update.auth"], false,
        "The secret is what is left of the Authorization header once every Bearer word is dropped and the rest joined (a doubled scheme, a secret split by a space pass).";
    DeletedTokenStillAuthenticates = "deleted-token-still-authenticates", ["update.auth"], false,
        "A deleted token's secret keeps authenticating as that token (an authentication cache nobody invalidates).";
    RotatedSecretStillValid = "rotated-secret-still-valid", ["update.auth"], false,
        "After a rotation the previous secret keeps authenticating as the token (it is never revoked).";
    WriteSpillsToRoleSiblings = "write-spills-to-role-siblings", ["update.isolation"], false,
        "An update also writes its surface flags to every other token that had the same role (a write keyed by role, not by id).";
    RoleChangeHalfApplied = "role-change-half-applied", ["update.effect.role", "update.isolation"], false,
        "A role sent in an update is stored and shown, but permission decisions keep the role the token had before.";
    StaleDecisionWindow = "stale-decision-window", ["update.effect.cma"], false,
        "One node in three decides can_access_cma as before a change from 50 ms to 200 ms after it (a cache refill that raced the invalidation).";
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown fault name.
#[derive(Debug, thiserror::Error)]
#[error("unknown fault {0:?} (see `token-conformance mutants --list`)")]
pub struct UnknownFault(pub String);

impl std::str::FromStr for Fault {
    type Err = UnknownFault;
    fn from_str(text: &str) -> Result<Fault, UnknownFault> {
        Fault::ALL
            .iter()
            .copied()
            .find(|f| f.name() == text)
            .ok_or_else(|| UnknownFault(text.to_owned()))
    }
}

/// The faults a server runs with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultSet(BTreeSet<Fault>);

impl FaultSet {
    /// No fault: the conformant server.
    pub fn none() -> FaultSet {
        FaultSet::default()
    }

    /// Exactly these faults.
    pub fn of(faults: impl IntoIterator<Item = Fault>) -> FaultSet {
        FaultSet(faults.into_iter().collect())
    }

    /// Whether `fault` is on.
    pub fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    /// Whether no fault is on.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The faults that are on.
    pub fn iter(&self) -> impl Iterator<Item = Fault> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;

    #[test]
    fn every_fault_names_clauses_of_the_catalog_and_parses_back() {
        for fault in Fault::ALL {
            for clause in fault.clauses() {
                assert!(
                    Spec::embedded().catalog().clause(clause).is_some(),
                    "{fault}: {clause}"
                );
            }
            assert_eq!(fault.name().parse::<Fault>().ok(), Some(*fault));
        }
    }
}
