//! Token names from the whole of Unicode.
//!
//! Every Unicode scalar value may appear except U+0000, which PostgreSQL-backed services
//! cannot store in text. Names mix emoji, right-to-left text (and the U+202E override),
//! combining marks, leading, trailing and inner whitespace of several kinds, and long runs.
//! The check puts its marker between `before` and `after`, so a name is never blank.

use proptest::prelude::*;

/// The longest name generated, in Unicode scalar values, marker included (documented bound).
pub const MAX_GENERATED_NAME_CHARS: usize = 160;

/// The generated parts of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameParts {
    /// Leading whitespace.
    pub lead: String,
    /// Text before the marker.
    pub before: String,
    /// Text after the marker.
    pub after: String,
    /// Trailing whitespace.
    pub trail: String,
}

fn whitespace() -> impl Strategy<Value = char> {
    proptest::sample::select(vec![
        ' ', '\t', '\n', '\u{00A0}', '\u{2003}', '\u{3000}', '\u{200B}', '\u{FEFF}',
    ])
}

fn interesting_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'z'),
        3 => any::<char>().prop_filter("U+0000 is not storable", |c| *c != '\0'),
        2 => proptest::char::range('\u{1F300}', '\u{1FAFF}'),        // emoji
        2 => proptest::char::range('\u{05D0}', '\u{05EA}'),          // Hebrew (RTL)
        2 => proptest::char::range('\u{0627}', '\u{064A}'),          // Arabic (RTL)
        1 => Just('\u{202E}'),                                       // right-to-left override
        2 => proptest::char::range('\u{0300}', '\u{036F}'),          // combining marks
        2 => whitespace(),
        1 => proptest::char::range('\u{4E00}', '\u{9FFF}'),          // CJK
    ]
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::collection::vec(interesting_char(), 0..12),
        1 => proptest::collection::vec(interesting_char(), 0..max),
    ]
    .prop_map(|chars| chars.into_iter().collect())
}

fn edge_whitespace() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just(String::new()),
        1 => proptest::collection::vec(whitespace(), 1..4).prop_map(|c| c.into_iter().collect()),
    ]
}

/// Name parts whose total length, with a marker of `marker_len` characters, stays within
/// [`MAX_GENERATED_NAME_CHARS`].
pub fn name_parts(marker_len: usize) -> impl Strategy<Value = NameParts> {
    let room = MAX_GENERATED_NAME_CHARS
        .saturating_sub(marker_len + 6)
        .max(2);
    (
        edge_whitespace(),
        text(room / 2),
        text(room / 2),
        edge_whitespace(),
    )
        .prop_map(|(lead, before, after, trail)| NameParts {
            lead,
            before,
            after,
            trail,
        })
}
