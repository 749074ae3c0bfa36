//! The stable id of a finding, for `token-conformance replay ID`: the same check, seed,
//! cases and profile always give the same id.

/// `check` is the check's full name (`clause/check`).
pub fn replay_id(seed: u64, cases: u32, profile: &str, check: &str) -> String {
    let text = format!("{seed}/{cases}/{profile}/{check}");
    format!(
        "{:010x}",
        crate::text::fnv1a(text.as_bytes()) & 0xff_ffff_ffff
    )
}
