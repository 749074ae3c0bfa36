//! Small text helpers shared by the client, the checks, the fixtures and the reports. A leaf:
//! it imports nothing from the crate, so any module may use it without making a cycle.

/// At most `max` characters of `text`, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// FNV-1a: a stable hash (std's hasher is randomly seeded per process).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `text` as a JSON string (quoted and escaped): how a message shows a value, never Rust's
/// `Debug` quoting.
pub fn json_str(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// An optional text as a JSON string, or `absent` (words such as "no role") when there is none.
pub fn json_or(text: Option<&str>, absent: &str) -> String {
    text.map_or_else(|| absent.to_owned(), json_str)
}
