//! The crate's shape, enforced: the `crate::…` paths in `src/` (`use` lines and paths in code,
//! not comments or strings) give a graph of its top-level modules, and the tests here fail on
//! a cycle in it, on the reference server reaching anything but `spec` and `faults` (it is the
//! oracle the suite is measured against, so the two must not share logic), on the model and
//! the reference server importing each other, on the HTTP client reaching the checks, the
//! fixtures or the engine, and on the reports reaching the engine.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules it names → where (`file:line`), one each.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// `text` without its comments and the insides of its string and char literals (kept as
/// spaces and line breaks, so that lines still count).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('"' | '#'))
            && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'))
        {
            // A raw string: r"…", r#"…"#, ….
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            out.push('"');
            while j < chars.len() {
                if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                out.push(blank(chars[j]));
                j += 1;
            }
            out.push('"');
            i = j;
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    out.push(blank(ch));
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if c == '\''
            && (next == Some('\\') && chars.get(i + 3).is_some() || chars.get(i + 2) == Some(&'\''))
        {
            // A char literal ('x', '\n', '\u{1b}'); a lifetime has no closing quote.
            let mut j = i + 1;
            if chars.get(j) == Some(&'\\') {
                j += 2;
            } else {
                j += 1;
            }
            while j < chars.len() && chars[j] != '\'' && chars[j] != '\n' {
                j += 1;
            }
            out.push_str("' '");
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The top-level modules a file of module `depth` (1 for `src/x.rs` and `src/x/mod.rs`, 2
/// for `src/x/y.rs`) names, with their lines: `crate::m`, `crate::{m, n::…}`, and `super::`
/// chains that climb to the crate root (inline `mod … {` blocks counted).
fn imports(text: &str, depth: usize) -> Vec<(String, usize)> {
    let code = code_only(text);
    let tokens = tokenize(&code);
    let mut found = Vec::new();
    // Each open brace: whether it opened an inline module.
    let mut braces: Vec<bool> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (tok, line) = (&tokens[i].0, tokens[i].1);
        let at = |k: usize| tokens.get(i + k).map(|t| t.0.as_str());
        match tok.as_str() {
            "{" => braces.push(i >= 2 && tokens[i - 2].0 == "mod"),
            "}" => {
                braces.pop();
            }
            "crate" if at(1) == Some("::") => match at(2) {
                Some("{") => {
                    let mut nesting = 0;
                    let mut expect_name = true;
                    let mut k = i + 3;
                    while let Some((t, l)) = tokens.get(k) {
                        match t.as_str() {
                            "{" => nesting += 1,
                            "}" if nesting == 0 => break,
                            "}" => nesting -= 1,
                            "," if nesting == 0 => expect_name = true,
                            name if expect_name && nesting == 0 && is_ident(name) => {
                                found.push((name.to_owned(), *l));
                                expect_name = false;
                            }
                            _ => {}
                        }
                        k += 1;
                    }
                }
                Some(name) if is_ident(name) => found.push((name.to_owned(), line)),
                _ => {}
            },
            "super" if i == 0 || tokens[i - 1].0 != "::" => {
                let mut ups = 0;
                let mut k = i;
                while tokens.get(k).map(|t| t.0.as_str()) == Some("super")
                    && tokens.get(k + 1).map(|t| t.0.as_str()) == Some("::")
                {
                    ups += 1;
                    k += 2;
                }
                let here = depth + braces.iter().filter(|m| **m).count();
                if ups >= here
                    && let Some((name, l)) = tokens.get(k)
                    && is_ident(name)
                {
                    found.push((name.clone(), *l));
                }
            }
            _ => {}
        }
        i += 1;
    }
    found
}

fn is_ident(word: &str) -> bool {
    word.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && word.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Identifiers, `::`, and single punctuation characters, each with its 1-based line.
fn tokenize(code: &str) -> Vec<(String, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push((chars[start..i].iter().collect(), line));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push(("::".to_owned(), line));
            i += 2;
        } else {
            tokens.push((c.to_string(), line));
            i += 1;
        }
    }
    tokens
}

/// The graph of `src/`'s top-level modules, from the files under `src` (`main.rs`, the
/// binary, is not part of the library).
fn graph_of(src: &Path) -> Graph {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut sources = Vec::new();
    for path in files {
        let Ok(rel) = path.strip_prefix(src) else {
            continue;
        };
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts == ["main.rs"] || parts == ["lib.rs"] {
            continue;
        }
        let top = parts[0].trim_end_matches(".rs").to_owned();
        let depth = if parts.last().is_some_and(|p| p == "mod.rs") {
            parts.len() - 1
        } else {
            parts.len()
        };
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        sources.push((top, rel.display().to_string(), depth, text));
    }
    graph_from(&sources)
}

/// The graph from `(top-level module, file name, depth, text)` per file. Only names that are
/// top-level modules count (a `super::Thing` that is an item is not an edge).
fn graph_from(sources: &[(String, String, usize, String)]) -> Graph {
    let modules: BTreeSet<&str> = sources.iter().map(|s| s.0.as_str()).collect();
    let mut graph = Graph::new();
    for (top, file, depth, text) in sources {
        let edges = graph.entry(top.clone()).or_default();
        for (name, line) in imports(text, *depth) {
            if name != *top && modules.contains(name.as_str()) {
                edges
                    .entry(name)
                    .or_insert_with(|| format!("{file}:{line}"));
            }
        }
    }
    graph
}

/// A cycle of the graph, as `a -> b (where) -> … -> a`, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    // 0: not seen, 1: on the path, 2: done.
    fn visit(
        graph: &Graph,
        node: &str,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(|e| e.keys()) {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = path.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle: Vec<String> = path[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(graph, next, state, path) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            let mut path = Vec::new();
            if let Some(cycle) = visit(graph, node, &mut state, &mut path) {
                return Some(cycle);
            }
        }
    }
    None
}

/// A cycle in words, each edge with the place that makes it.
fn describe(graph: &Graph, cycle: &[String]) -> String {
    let mut out = cycle.first().cloned().unwrap_or_default();
    for pair in cycle.windows(2) {
        let at = graph
            .get(&pair[0])
            .and_then(|e| e.get(&pair[1]))
            .cloned()
            .unwrap_or_default();
        out.push_str(&format!(" -> {} ({at})", pair[1]));
    }
    out
}

/// Every module `from` reaches, each with the first edge that leads there.
fn reachable(graph: &Graph, from: &str) -> BTreeMap<String, String> {
    let mut seen = BTreeMap::new();
    let mut todo = vec![from.to_owned()];
    while let Some(node) = todo.pop() {
        for (next, at) in graph.get(&node).into_iter().flatten() {
            if next != from && !seen.contains_key(next) {
                seen.insert(next.clone(), format!("{node} -> {next} ({at})"));
                todo.push(next.clone());
            }
        }
    }
    seen
}

/// What is wrong with the graph: a cycle, or a module reaching one it must not.
fn violations(graph: &Graph) -> Vec<String> {
    let mut wrong = Vec::new();
    if let Some(cycle) = find_cycle(graph) {
        wrong.push(format!("import cycle: {}", describe(graph, &cycle)));
    }
    for (module, edge) in reachable(graph, "reference") {
        if module != "spec" && module != "faults" {
            wrong.push(format!(
                "the reference server reaches {module}, not only spec and faults: {edge}"
            ));
        }
    }
    for (from, to) in [("model", "reference"), ("reference", "model")] {
        if let Some(edge) = reachable(graph, from).get(to) {
            wrong.push(format!("{from} reaches {to}: {edge}"));
        }
    }
    let client = reachable(graph, "client");
    for module in ["checks", "fixtures", "engine"] {
        if let Some(edge) = client.get(module) {
            wrong.push(format!("the HTTP client reaches {module}: {edge}"));
        }
    }
    if let Some(edge) = reachable(graph, "report").get("engine") {
        wrong.push(format!("the reports reach the engine: {edge}"));
    }
    wrong
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn src(top: &str, file: &str, depth: usize, text: &str) -> (String, String, usize, String) {
        (top.to_owned(), file.to_owned(), depth, text.to_owned())
    }

    #[test]
    fn the_crate_has_no_cycle_and_keeps_its_boundaries() {
        let graph = graph_of(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
        // The scan found the crate: the reference server's own imports, and the client's.
        assert!(graph["reference"].contains_key("spec"), "{graph:?}");
        assert!(graph["reference"].contains_key("faults"), "{graph:?}");
        assert!(graph["checks"].contains_key("client"), "{graph:?}");
        let wrong = violations(&graph);
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// The model is the oracle for the reference server: neither may be built on the other
    /// (once a test of its own in `model`, now read off the same graph).
    #[test]
    fn the_model_and_the_reference_server_do_not_import_each_other() {
        let graph = graph_of(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
        assert!(graph.contains_key("model") && graph.contains_key("reference"));
        for (from, to) in [("model", "reference"), ("reference", "model")] {
            assert_eq!(reachable(&graph, from).get(to), None, "{from} reaches {to}");
        }
    }

    #[test]
    fn a_cycle_is_found_and_shown_with_its_places() {
        let graph = graph_from(&[
            src("a", "a.rs", 1, "use crate::b::X;\n"),
            src("b", "b/mod.rs", 1, "fn f() {}\nuse crate::{c, text};\n"),
            src("c", "c/deep.rs", 2, "fn f() { super::super::a::g() }\n"),
            src("d", "d.rs", 1, "use crate::a;\n"),
        ]);
        let cycle = find_cycle(&graph).unwrap();
        let shown = describe(&graph, &cycle);
        assert_eq!(
            shown, "a -> b (a.rs:1) -> c (b/mod.rs:2) -> a (c/deep.rs:1)",
            "{graph:?}"
        );
        assert!(violations(&graph)[0].starts_with("import cycle: a -> b"));
        let acyclic = graph_from(&[
            src("a", "a.rs", 1, "use crate::b::X;\n"),
            src("b", "b.rs", 1, "use crate::c;\n"),
            src("c", "c.rs", 1, "\n"),
        ]);
        assert_eq!(find_cycle(&acyclic), None);
        assert!(violations(&acyclic).is_empty());
    }

    #[test]
    fn comments_strings_and_items_are_not_imports() {
        let graph = graph_from(&[
            src(
                "a",
                "a.rs",
                1,
                concat!(
                    "//! see [`crate::b`]\n",
                    "/* crate::b /* nested */ crate::b */\n",
                    "const S: &str = \"crate::b \\\" crate::b\";\n",
                    "const R: &str = r#\"crate::b \" crate::b\"#;\n",
                    "fn f<'a>(x: &'a str) -> char { '\"' }\n",
                    "mod tests { use super::b; use super::super::c; }\n",
                ),
            ),
            src("b", "b.rs", 1, ""),
            src("c", "c.rs", 1, ""),
        ]);
        // Only the inline module's climb to the root names a module.
        assert_eq!(graph["a"].keys().collect::<Vec<_>>(), ["c"], "{graph:?}");
    }

    #[test]
    fn each_boundary_is_enforced() {
        for (from, to, words) in [
            ("reference", "checks", "the reference server reaches checks"),
            ("reference", "model", "reference reaches model"),
            ("model", "reference", "model reaches reference"),
            ("client", "checks", "the HTTP client reaches checks"),
            ("client", "fixtures", "the HTTP client reaches fixtures"),
            ("report", "engine", "the reports reach the engine"),
        ] {
            let graph = graph_from(&[
                src(from, "x.rs", 1, &format!("use crate::{to}::Y;\n")),
                src(to, "y.rs", 1, ""),
            ]);
            let wrong = violations(&graph);
            assert!(
                wrong.iter().any(|w| w.contains(words)),
                "{from}->{to}: {wrong:?}"
            );
        }
        // Also when reached through another module.
        let graph = graph_from(&[
            src("reference", "r.rs", 1, "use crate::faults::F;\n"),
            src("faults", "f.rs", 1, "use crate::checks::C;\n"),
            src("checks", "c.rs", 1, ""),
        ]);
        let wrong = violations(&graph);
        assert!(
            wrong
                .iter()
                .any(|w| w.contains("reaches checks") && w.contains("faults -> checks (f.rs:1)")),
            "{wrong:?}"
        );
    }
}
