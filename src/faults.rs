//! The fault catalogue: realistic bugs the reference server can be switched into, each
//! declaring the clause(s) it breaks. They prove the suite's detection power: `mutants` runs
//! the suite against a server with each fault and expects the declared clause to fail. A row
//! declares all a fault needs: the clauses it breaks (as [`ClauseId`], so a wrong id does not
//! compile), whether only `--profile strict` can see it, and any server setting its proof
//! needs ([`ServerSetting`]).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::spec::ClauseId;

/// A setting of the reference server that a fault needs besides the fault itself, so that
/// `mutants` (and `matrix`) start the server the way the fault's proof requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerSetting {
    /// The rate limit on (it is off for fault runs, so that a run takes a second): `requests`
    /// per `window`.
    RateLimit {
        /// Requests allowed in one window.
        requests: u32,
        /// Length of the window.
        window: Duration,
    },
}

/// Each row: `Variant = "cli-name", [ClauseIds it breaks], strict_only, [needs: ServerSetting,]
/// "what the bug is";`.
macro_rules! faults {
    (@setting) => { None };
    (@setting $setting:expr) => { Some($setting) };
    ($( $variant:ident = $name:literal, [$($clause:ident),+], $strict:literal, $(needs: $setting:expr,)? $doc:literal; )+) => {
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
            pub fn clauses(self) -> &'static [ClauseId] {
                match self { $( Fault::$variant => &[$(ClauseId::$clause),+], )+ }
            }

            /// Whether only `--profile strict` can see it (it breaks observed behaviour).
            pub fn strict_only(self) -> bool {
                match self { $( Fault::$variant => $strict, )+ }
            }

            /// The server setting its proof needs, if any (see [`ServerSetting`]).
            pub fn server_setting(self) -> Option<ServerSetting> {
                match self { $( Fault::$variant => faults!(@setting $($setting)?), )+ }
            }

            /// What the bug is.
            pub fn description(self) -> &'static str {
                match self { $( Fault::$variant => $doc, )+ }
            }
        }
    };
}

faults! {
    RoleDroppedWhenOmitted = "role-dropped-when-omitted", [UpdateRolePreserved], false,
        "The role is set to null when an update omits relationships.";
    RoleResetWhenOmitted = "role-reset-when-omitted", [UpdateRolePreserved], false,
        "The role is reset to the default (Admin) role when an update omits relationships.";
    RoleIgnoredWhenSent = "role-ignored-when-sent", [UpdateRoleReassigned], false,
        "relationships.role is validated but never stored.";
    RoleReassignedWrong = "role-reassigned-wrong", [UpdateRoleReassigned], false,
        "A sent role is stored as another role (the one created before it).";
    SecretRotatedByUpdate = "secret-rotated-by-update", [UpdateSecretUnchanged], false,
        "An update generates a new secret.";
    OldSecretRefusedAfterUpdate = "old-secret-refused-after-update", [UpdateSecretUnchanged], false,
        "The token attribute is kept, but the secret stops authenticating after an update.";
    CmaDecisionCached = "cma-decision-cached", [UpdateEffectCma], false,
        "can_access_cma decisions are cached for 2 s per token.";
    CdaDecisionCached = "cda-decision-cached", [UpdateEffectCda], false,
        "can_access_cda decisions are cached for 2 s per token.";
    CmaGrantCached = "cma-grant-cached", [UpdateEffectCma], false,
        "A granted can_access_cma decision is cached for 2 s per token, a refusal is not: the cache is warm only after a granted call.";
    CdaGrantCached = "cda-grant-cached", [UpdateEffectCda], false,
        "A granted published-content CDA decision is cached for 2 s per token, a refusal is not: the cache is warm only after a granted call.";
    PreviewFlagIgnored = "preview-flag-ignored", [UpdateEffectCdaPreview], false,
        "X-Include-Drafts: true is allowed to any token that can read published content.";
    RolePermissionsCached = "role-permissions-cached", [UpdateEffectRole], false,
        "A token's role permissions are cached for 2 s.";
    StaleNode = "stale-node", [UpdateEffectCma], false,
        "One request in three is served by a node that still sees the token's previous flags.";
    HardcodedAcceptsUpdates = "hardcoded-accepts-updates", [UpdateHardcodedRejected], false,
        "Factory tokens accept updates like any other token.";
    HardcodedWrongCode = "hardcoded-wrong-code", [UpdateHardcodedRejected], false,
        "Factory tokens reject updates with INSUFFICIENT_PERMISSIONS instead of NON_EDITABLE_ACCESS_TOKEN.";
    HardcodedAppliesName = "hardcoded-applies-name", [UpdateHardcodedRejected], false,
        "Factory tokens reject updates, but the new name is applied anyway.";
    HardcodedCannotRotate = "hardcoded-cannot-rotate", [UpdateHardcodedStillDeletable], false,
        "Rotating a factory token is refused with NON_EDITABLE_ACCESS_TOKEN.";
    HardcodedCannotDelete = "hardcoded-cannot-delete", [UpdateHardcodedStillDeletable], false,
        "Deleting a factory token is refused with NON_EDITABLE_ACCESS_TOKEN.";
    MissingFlagDefaultsFalse = "missing-flag-defaults-false", [UpdateRequestValidation], false,
        "A missing surface flag is taken as false instead of refusing the body.";
    AnyTypeAccepted = "any-type-accepted", [UpdateRequestValidation], false,
        "The body's data.type is not checked.";
    TypeLooselyMatched = "type-loosely-matched", [UpdateRequestValidation], false,
        "data.type is matched loosely: the plural \"access_tokens\" and any letter case pass for \"access_token\".";
    StringTrueCoerced = "string-true-coerced", [UpdateRequestValidation], false,
        "The strings \"true\" and \"false\" are coerced to booleans.";
    InvalidPartlyApplied = "invalid-partly-applied", [UpdateRequestValidation], false,
        "An invalid body is refused, but its name (when it is a string) is applied first.";
    InvalidBody5xx = "invalid-body-5xx", [UpdateRequestValidation], false,
        "Some invalid bodies (a required member missing) crash the handler: 500.";
    UnknownMembersAccepted = "unknown-members-accepted", [UpdateRequestValidation], true,
        "Unknown members are ignored instead of refused (observed: the 2022 schema refuses them).";
    NameTruncated64 = "name-truncated-64", [UpdateApplies], false,
        "Names are cut to 64 characters.";
    NonAsciiName500 = "non-ascii-name-500", [UpdateApplies], false,
        "A name with a non-ASCII character answers 500.";
    NameTrimmed = "name-trimmed", [UpdateApplies], false,
        "Leading and trailing whitespace is trimmed from names.";
    FlagsSwapped = "flags-swapped", [UpdateApplies], false,
        "can_access_cda and can_access_cda_preview are stored swapped.";
    CmaFlagIgnored = "cma-flag-ignored", [UpdateEffectCma], false,
        "can_access_cma is stored, but never enforced.";
    StaleRead = "stale-read", [UpdateApplies], false,
        "Reads show a token as it was before its last write, for 1 s after the write.";
    AttributeMissing = "attribute-missing", [UpdateResponseSchema], false,
        "Update responses lack last_cda_access.";
    BooleanAsString = "boolean-as-string", [UpdateResponseSchema], false,
        "Update responses carry can_access_cma as a string.";
    DifferentId = "different-id", [UpdateResponseSchema], false,
        "Update responses carry another data.id than the path's.";
    WrongResourceType = "wrong-resource-type", [UpdateResponseSchema], false,
        "Update responses carry data.type \"api_token\".";
    HtmlContentType = "html-content-type", [HeadersContentType], false,
        "Error responses are sent as text/html.";
    NoCharset = "no-charset", [HeadersContentType], true,
        "Responses say application/json without charset=utf-8 (observed).";
    ErrorsUnderErrors = "errors-under-errors", [ErrorsEnvelope], false,
        "Error bodies put the api_error objects under errors instead of data.";
    FieldErrorsUnderErrors = "field-errors-under-errors", [ErrorsEnvelope], false,
        "Validation (422 INVALID_FIELD) and permission (403) errors put the api_error objects under errors; the other error paths are right.";
    NoRateLimitHeaders = "no-rate-limit-headers", [HeadersRateLimit], false,
        "Successful responses lack the X-RateLimit-* headers.";
    RateLimitWithoutReset = "rate-limit-without-reset", [HeadersRateLimit], false,
        needs: ServerSetting::RateLimit { requests: 100, window: Duration::from_millis(400) },
        "A 429 comes without X-RateLimit-Reset (the server runs with a 100 per 400 ms limit: a short window, since a 429 without Reset waits at least a second).";
    TokenShownToEveryone = "token-shown-to-everyone", [UpdateTokenVisibility], false,
        "The secret is shown to every caller.";
    NoCredentialsAccepted = "no-credentials-accepted", [UpdateAuth], false,
        "A request without an Authorization header acts as the management token.";
    AuthWrongStatus = "auth-wrong-status", [UpdateAuth], true,
        "Missing credentials get 403 instead of 401 (observed).";
    UnknownId500 = "unknown-id-500", [UpdateNotFound], false,
        "An update of an unknown id answers 500.";
    UnknownIdWrongCode = "unknown-id-wrong-code", [UpdateNotFound], true,
        "An unknown id answers 400 INVALID_FIELD instead of 404 NOT_FOUND (observed).";
    ForgedBearerPrefix = "forged-bearer-prefix", [UpdateAuth], false,
        "A bearer is matched on its first 8 characters only (a lookup prefix taken for the whole secret).";
    ForgedBearerCase = "forged-bearer-case", [UpdateAuth], false,
        "Secrets are compared without regard to letter case.";
    ForgedBearerExtended = "forged-bearer-extended", [UpdateAuth], false,
        "A bearer that begins with a real secret is accepted (the comparison stops at the stored secret's length).";
    ForgedBearerPercentDecoded = "forged-bearer-percent-decoded", [UpdateAuth], false,
        "The bearer is percent-decoded before it is looked up.";
    ForgedBearerSchemeStripped = "forged-bearer-scheme-stripped", [UpdateAuth], false,
        "The secret is what is left of the Authorization header once every Bearer word is dropped and the rest joined (a doubled scheme, a secret split by a space pass).";
    DeletedTokenStillAuthenticates = "deleted-token-still-authenticates", [UpdateAuth], false,
        "A deleted token's secret keeps authenticating as that token (an authentication cache nobody invalidates).";
    RotatedSecretStillValid = "rotated-secret-still-valid", [UpdateAuth], false,
        "After a rotation the previous secret keeps authenticating as the token (it is never revoked).";
    WriteSpillsToRoleSiblings = "write-spills-to-role-siblings", [UpdateIsolation], false,
        "An update also writes its surface flags to every other token that had the same role (a write keyed by role, not by id).";
    RoleChangeHalfApplied = "role-change-half-applied", [UpdateEffectRole, UpdateIsolation], false,
        "A role sent in an update is stored and shown, but permission decisions keep the role the token had before.";
    StaleDecisionWindow = "stale-decision-window", [UpdateEffectCma], false,
        "One node in three decides can_access_cma as before a change from 50 ms to 200 ms after it (a cache refill that raced the invalidation).";
    NumericBodyIdAccepted = "numeric-body-id-accepted", [UpdateRequestValidation], false,
        "A numeric data.id is accepted and its comparison with the path id skipped (ids read as integer or string).";
    RoleNullAccepted = "role-null-accepted", [UpdateRequestValidation], false,
        "relationships.role.data: null is accepted (an older schema) and takes the token's role away.";
    NameWhitespaceCollapsed = "name-whitespace-collapsed", [UpdateApplies], false,
        "Runs of whitespace inside a name are collapsed to one space.";
    NameLowercased = "name-lowercased", [UpdateApplies], false,
        "Names are stored in lower case (a case-insensitive uniqueness done by storing folded names).";
    PreviewImpliesCda = "preview-implies-cda", [UpdateApplies], false,
        "can_access_cda_preview: true also stores can_access_cda: true (drafts taken to imply published content).";
    RenameSkippedWhenFlagsUnchanged = "rename-skipped-when-flags-unchanged", [UpdateApplies], false,
        "An update whose flags and role equal the stored ones is skipped as a no-op: the name is not written.";
    ResponseShowsPreviousValues = "response-shows-previous-values", [UpdateApplies], false,
        "The update is stored, but its response renders the token as it was before the update.";
    RoleSentSkipsAttributes = "role-sent-skips-attributes", [UpdateApplies], false,
        "An update with relationships.role takes the role-reassignment path, which writes the role only: name and flags are dropped.";
    ResponseRoleFromRequest = "response-role-from-request", [UpdateRolePreserved], false,
        "The role is kept, but the update response builds relationships from the request: role data null when relationships is omitted.";
    CmaFlagOnlyOnReads = "cma-flag-only-on-reads", [UpdateEffectCma, UpdateAuth], false,
        "can_access_cma is enforced by the read path only: writes (PUT, POST, DELETE) by a token without it are let through.";
    CmaDecisionStaleOnce = "cma-decision-stale-once", [UpdateEffectCma], false,
        "The can_access_cma decision is served stale-while-revalidate: each call gets the decision the previous call computed.";
    HardcodedAppliesFlags = "hardcoded-applies-flags", [UpdateHardcodedRejected], false,
        "Factory tokens reject updates, but the surface flags are written before the guard runs.";
    RenameSpillsToRole = "rename-spills-to-role", [UpdateIsolation], false,
        "An update's name is also written to the name of the token's role (a join updated as a whole).";
    SecretRotatedOnCmaRevoke = "secret-rotated-on-cma-revoke", [UpdateSecretUnchanged], false,
        "Turning can_access_cma off re-issues the secret (a revoke implemented as a credential reset).";
    SelfUpdateUnguarded = "self-update-unguarded", [UpdateAuth], false,
        "A token may update itself whatever its role (\"you may always edit your own token\"): a token whose role lacks can_manage_access_tokens moves itself to a role that has it.";
    RoleReferenceUnchecked = "role-reference-unchecked", [UpdateRequestValidation], false,
        "An update's relationships.role is stored without looking the role up: a role id no role has is accepted (200) and the token points at nothing.";
    ContentTypeAppended = "content-type-appended", [HeadersContentType], false,
        "Errors carry a second Content-Type, text/html, after application/json (a middleware that appends a header where it meant to replace it).";
    PermissionCheckedAfterWrite = "permission-checked-after-write", [UpdateAuth], false,
        "can_manage_access_tokens is checked after the update is stored: the caller without it gets INSUFFICIENT_PERMISSIONS, but the update has been applied.";
    BodyIdSelectsToken = "body-id-selects-token", [UpdateIsolation], false,
        "The token updated is the one the body's data.id names, not the path's (the record is loaded from the payload).";
    DeletedTokenUpdatable = "deleted-token-updatable", [UpdateNotFound], false,
        "DELETE only marks a token deleted, and the update's lookup does not filter deleted rows: a deleted token's id still accepts PUT with 200.";
    TokenMassAssigned = "token-mass-assigned", [UpdateSecretUnchanged], false,
        "attributes.token in an update body is mass-assigned: it becomes the token's secret.";
    PreviewRequiresCda = "preview-requires-cda", [UpdateEffectCdaPreview], false,
        "X-Include-Drafts: true is allowed only when can_access_cda is on as well: the preview grant is ignored when can_access_cda is false.";
    RateLimitRemainingFrozen = "rate-limit-remaining-frozen", [HeadersRateLimit], true,
        "X-RateLimit-Remaining is always the limit less one (computed from a counter that is never read back).";
    VisibilityFromRoleBeforeUpdate = "visibility-from-role-before-update", [UpdateTokenVisibility], false,
        "When a token updates itself, the secret shown in the response follows the caller's role as it was before the update (the caller's permissions are loaded once, at authentication).";
    HardcodedGuardAfterValidation = "hardcoded-guard-after-validation", [UpdateHardcodedRejected], false,
        "The body is validated before the factory-token guard runs: an invalid body sent to a factory token gets a validation error instead of NON_EDITABLE_ACCESS_TOKEN.";
    NameNfcNormalised = "name-nfc-normalised", [UpdateApplies], false,
        "Names are stored NFC-normalised: a letter followed by a combining mark is stored as the precomposed letter.";
    NameHtmlEscaped = "name-html-escaped", [UpdateApplies], false,
        "Names are stored HTML-escaped: & < > \" ' become &amp; &lt; &gt; &quot; &#39;.";
    FalseFlagsCompacted = "false-flags-compacted", [UpdateApplies], false,
        "The attributes are passed through a compact_blank before assignment: a flag sent as false is dropped as blank, so the stored value stays (true stays true).";
    PreviewScopeStale = "preview-scope-stale", [UpdateEffectCdaPreview], false,
        "The CDA decides drafts from a denormalised scope column that an update recomputes only when can_access_cda changes: a change of can_access_cda_preview alone does not reach the CDA.";
    CmaRegrantIgnored = "cma-regrant-ignored", [UpdateEffectCma], false,
        "Revoking can_access_cma puts the token on the gateway's CMA deny list; granting it again does not take it off (only a rotation does).";
    HardcodedRoleReassignable = "hardcoded-role-reassignable", [UpdateHardcodedRejected], false,
        "An update of a factory token that sends relationships.role goes through the role-reassignment path, which lacks the factory guard: 200 and the role is changed.";
    VisibilityFromUpdatedTokenRole = "visibility-from-updated-token-role", [UpdateTokenVisibility], false,
        "The update response decides whether to show the secret from the updated token's role instead of the caller's: a manager updating a token whose role lacks can_manage_access_tokens gets token: null.";
    RoleUpgradeRefused = "role-upgrade-refused", [UpdateRoleReassigned], false,
        "An escalation guard compares the new role with the edited token's current role instead of the caller's: a role with a permission the token's role lacks is refused with INSUFFICIENT_PERMISSIONS.";
    VndContentTypeEchoed = "vnd-content-type-echoed", [HeadersContentType], false,
        "A success answering a request sent as application/vnd.api+json is sent as application/vnd.api+json (the responder negotiates from the request's Content-Type).";
    NoOpUpdate204 = "no-op-update-204", [UpdateResponseSchema], false,
        "An update that changes nothing (same name, flags and role) answers 204 No Content with an empty body.";
    NumericNameAsNumber = "numeric-name-as-number", [UpdateResponseSchema], false,
        "The update serializer turns numeric-looking strings into numbers (a JSON_NUMERIC_CHECK): a name of digits comes back as a JSON number.";
    ThrottleBodyNotEnvelope = "throttle-body-not-envelope", [ErrorsEnvelope], false,
        needs: ServerSetting::RateLimit { requests: 100, window: Duration::from_millis(400) },
        "A 429 is rendered by the throttling middleware's own responder: {\"error\": \"Retry later\"} instead of the api_error envelope (the server runs with a 100 per 400 ms limit).";
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
