//! The vendor matrix: the example targets file runs (the conformant embedded server and two
//! with a fault each); the Markdown is snapshotted, the HTML parsed and its cells asserted;
//! and every kind of mistake in a targets file is reported clearly.

use std::path::Path;
use std::sync::OnceLock;

use token_conformance::checks::Profile;
use token_conformance::matrix::{self, Matrix, MatrixError, MatrixFile, TargetKind};
use token_conformance::spec::Spec;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/matrix.toml");
const SEED: u64 = 5;
const CASES: u32 = 8;
/// The page starts with `<!DOCTYPE html>` (standards mode in browsers): allow that DTD.
fn xml<'a>() -> roxmltree::ParsingOptions<'a> {
    roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    }
}

fn example() -> &'static Matrix {
    static MATRIX: OnceLock<Matrix> = OnceLock::new();
    MATRIX.get_or_init(|| {
        let file = MatrixFile::load(Path::new(EXAMPLE)).unwrap();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(matrix::run_matrix(&file, SEED, CASES))
    })
}

#[test]
fn the_example_file_lists_three_embedded_targets() {
    let file = MatrixFile::load(Path::new(EXAMPLE)).unwrap();
    let names: Vec<&str> = file.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["reference", "role-dropped", "hardcoded-accepts"]);
    assert!(
        file.targets
            .iter()
            .all(|t| matches!(t.kind, TargetKind::Embedded { .. }))
    );
}

#[test]
fn the_markdown_matches_its_snapshot() {
    let markdown = matrix::markdown(example());
    // The tool's version is part of the published table, not of what the snapshot guards.
    let markdown = markdown
        .replace(
            &format!("token-conformance {}", env!("CARGO_PKG_VERSION")),
            "token-conformance [version]",
        )
        .replace(&example().started, "[date]");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots/matrix"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!("example_matrix_markdown", markdown));
}

fn cell<'a>(
    doc: &'a roxmltree::Document<'a>,
    target: &str,
    clause: &str,
) -> roxmltree::Node<'a, 'a> {
    doc.descendants()
        .find(|n| {
            n.has_tag_name("td")
                && n.attribute("data-target") == Some(target)
                && n.attribute("data-clause") == Some(clause)
        })
        .unwrap_or_else(|| panic!("no cell for {target} × {clause}"))
}

/// All the text inside `node`.
fn text_of(node: roxmltree::Node<'_, '_>) -> String {
    node.descendants()
        .filter(roxmltree::Node::is_text)
        .filter_map(|n| n.text())
        .collect()
}

fn status_of(node: roxmltree::Node<'_, '_>) -> String {
    let class = node.attribute("class").unwrap_or("");
    let status = class
        .split_whitespace()
        .find(|c| *c != "status")
        .unwrap_or("");
    let text = text_of(node);
    assert_eq!(text.trim(), status, "the cell's word and its colour agree");
    status.to_owned()
}

#[test]
fn the_html_page_is_well_formed_self_contained_and_links_failures_to_details() {
    let html = matrix::html(example());
    if let Ok(path) = std::env::var("MATRIX_HTML_OUT") {
        std::fs::write(path, &html).unwrap();
    }
    let doc = roxmltree::Document::parse_with_options(&html, xml())
        .unwrap_or_else(|e| panic!("{e}\n{html}"));
    let clauses = Spec::embedded().catalog().clauses();

    // The conformant server passes or skips every clause.
    for clause in clauses {
        let status = status_of(cell(&doc, "reference", &clause.id));
        assert!(
            status == "pass" || status == "skipped",
            "reference × {}: {status}",
            clause.id
        );
    }

    // The faulty server fails the clause its fault breaks, with a working link to details
    // quoting the clause.
    let failed = cell(&doc, "role-dropped", "update.role.preserved");
    assert_eq!(status_of(failed), "fail");
    let link = failed
        .descendants()
        .find(|n| n.has_tag_name("a"))
        .expect("a fail cell links to its details");
    let href = link.attribute("href").unwrap();
    let id = href.strip_prefix('#').expect("an in-page link");
    let target = doc
        .descendants()
        .find(|n| n.attribute("id") == Some(id))
        .unwrap_or_else(|| panic!("no element with id {id}"));
    let text = text_of(target);
    let quote = &Spec::embedded()
        .catalog()
        .clause("update.role.preserved")
        .unwrap()
        .quote;
    assert!(text.contains(quote.as_str()), "{text}");
    assert!(text.contains("reproduce: curl"), "{text}");
    assert!(
        target
            .descendants()
            .any(|n| n.has_tag_name("pre") && n.text().is_some_and(|t| t.contains("replay:")))
    );
    assert_eq!(
        status_of(cell(&doc, "hardcoded-accepts", "update.hardcoded.rejected")),
        "fail"
    );

    // Every link points inside the page; no script, no external resource.
    for node in doc.descendants().filter(roxmltree::Node::is_element) {
        for attr in node.attributes() {
            if matches!(attr.name(), "href" | "src") {
                let value = attr.value();
                assert!(value.starts_with('#'), "{} = {value}", attr.name());
                let id = &value[1..];
                assert!(
                    doc.descendants().any(|n| n.attribute("id") == Some(id)),
                    "broken link {value}"
                );
            }
        }
        assert!(
            !matches!(node.tag_name().name(), "script" | "link" | "img" | "iframe"),
            "<{}>",
            node.tag_name().name()
        );
    }
    assert!(!html.contains("<script"));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    assert!(!html.contains("url(http") && !html.contains("@import"));
}

// Parse errors. `env` stands for the process environment.

fn parse(text: &str) -> Result<MatrixFile, MatrixError> {
    let env = |name: &str| (name == "SET_TOKEN").then(|| "tok-3f9a-secret".to_owned());
    MatrixFile::parse(text, Path::new("targets.toml"), &env)
}

fn error(text: &str) -> String {
    let err = parse(text).expect_err("the file is wrong");
    let message = err.to_string();
    assert!(message.starts_with("targets.toml"), "{message}");
    message
}

#[test]
fn a_remote_target_reads_its_token_from_the_named_variable() {
    let file = parse(
        "[[target]]\nname = \"staging\"\nbase_url = \"https://staging.example/cma/\"\ncda_url = \"https://staging.example/cda\"\ntoken_env = \"SET_TOKEN\"\n",
    )
    .unwrap();
    let target = &file.targets[0];
    assert!(
        matches!(&target.kind, TargetKind::Remote { base_url, token_env, .. }
        if base_url == "https://staging.example/cma" && token_env == "SET_TOKEN")
    );
    assert_eq!(target.description(), "https://staging.example/cma");
    assert!(!format!("{file:?}").contains("tok-3f9a-secret"));
}

#[test]
fn an_unreadable_file_is_named() {
    let err = MatrixFile::load(Path::new("/nonexistent/targets.toml")).unwrap_err();
    assert!(matches!(err, MatrixError::Read { .. }));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/targets.toml: cannot read the targets file"),
        "{err}"
    );
}

#[test]
fn bad_toml_names_the_line() {
    let message = error("[[target]]\nname = \"a\"\nembedded = tru\n");
    assert!(
        message.starts_with("targets.toml:3: not valid TOML"),
        "{message}"
    );
}

#[test]
fn unknown_and_missing_fields_name_the_target_and_the_field() {
    let message = error(
        "[[target]]\nname = \"ok\"\nembedded = true\n\n[[target]]\nname = \"staging\"\nbase_ur = \"https://x.example\"\n",
    );
    assert!(
        message.starts_with("targets.toml:7: target \"staging\": unknown field `base_ur`"),
        "{message}"
    );

    let message = error("[[target]]\nembedded = true\n");
    assert!(message.contains("target #1"), "{message}");
    assert!(message.contains("missing field `name`"), "{message}");

    let message = error("[[targets]]\nname = \"a\"\nembedded = true\n");
    assert!(message.contains("top level"), "{message}");
    assert!(message.contains("unknown field `targets`"), "{message}");

    let message = error("[[target]]\nname = \"a\"\nembedded = \"yes\"\n");
    assert!(message.contains("target \"a\""), "{message}");
    assert!(message.contains("invalid type"), "{message}");

    let message = error("[[target]]\nname = \"a\"\nbase_url = \"https://x.example\"\n");
    assert!(
        message.contains("target \"a\": missing field `token_env`"),
        "{message}"
    );

    let message = error("[[target]]\nname = \"a\"\nembedded = true\ntoken_env = \"SET_TOKEN\"\n");
    assert!(
        message.contains("token_env: applies only to a remote target"),
        "{message}"
    );

    let message = error(
        "[[target]]\nname = \"a\"\nbase_url = \"https://x.example\"\ntoken_env = \"SET_TOKEN\"\nfaults = [\"stale-read\"]\n",
    );
    assert!(
        message.contains("faults: apply only to the embedded"),
        "{message}"
    );

    let message = error(
        "[[target]]\nname = \"a\"\nbase_url = \"ftp://x.example\"\ntoken_env = \"SET_TOKEN\"\n",
    );
    assert!(message.contains("target \"a\": base_url:"), "{message}");

    let message = error("[[target]]\nname = \"a b\"\nembedded = true\n");
    assert!(message.contains("name: must be"), "{message}");

    assert!(matches!(parse(""), Err(MatrixError::NoTargets { .. })));
}

#[test]
fn duplicate_names_are_refused() {
    let message = error(
        "[[target]]\nname = \"a\"\nembedded = true\n\n[[target]]\nname = \"a\"\nembedded = true\nfaults = [\"stale-read\"]\n",
    );
    assert_eq!(
        message,
        "targets.toml:5: target \"a\": name is already used by the target at line 1"
    );
}

#[test]
fn a_missing_token_variable_is_a_column_that_says_so_and_no_value_is_shown() {
    // Not an error of the file: that target is not tested, the others run.
    let file = parse(
        "[[target]]\nname = \"staging\"\nbase_url = \"https://x.example\"\ntoken_env = \"UNSET_TOKEN\"\n",
    )
    .unwrap();
    let reason = file.targets[0].not_tested().unwrap();
    assert!(
        reason.starts_with("the environment variable UNSET_TOKEN (token_env) is not set"),
        "{reason}"
    );
    let matrix = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(matrix::run_matrix(&file, 1, 1));
    assert_eq!(matrix.targets[0].not_tested(), Some(reason.as_str()));
    let markdown = matrix::markdown(&matrix);
    assert!(
        markdown.contains("| [not tested](#e-staging) |"),
        "{markdown}"
    );
    assert!(markdown.contains("UNSET_TOKEN"), "{markdown}");
    // A set variable's value never shows in an error about another field.
    let message = error(
        "[[target]]\nname = \"staging\"\nbase_url = \"https://x.example\"\ntoken_env = \"SET_TOKEN\"\nfaults = []\n",
    );
    assert!(!message.contains("tok-3f9a-secret"), "{message}");
}

#[test]
fn a_target_is_either_remote_or_embedded() {
    let message =
        error("[[target]]\nname = \"a\"\nembedded = true\nbase_url = \"https://x.example\"\n");
    assert!(
        message.contains("base_url and embedded = true are both set"),
        "{message}"
    );
    let message = error("[[target]]\nname = \"a\"\n");
    assert!(
        message.contains("neither base_url nor embedded = true"),
        "{message}"
    );
    let message = error("[[target]]\nname = \"a\"\nembedded = false\n");
    assert!(
        message.contains("neither base_url nor embedded = true"),
        "{message}"
    );
}

#[test]
fn an_unknown_fault_is_named() {
    let message = error(
        "[[target]]\nname = \"a\"\nembedded = true\nfaults = [\"stale-read\", \"no-such-fault\"]\n",
    );
    assert!(
        message
            .starts_with("targets.toml:1: target \"a\": faults: unknown fault \"no-such-fault\""),
        "{message}"
    );
}

#[test]
fn an_unreachable_target_is_one_not_tested_cell_with_the_reason() {
    // Port 9 (discard) on loopback: nothing listens there in the test environment.
    let env = |_: &str| Some("tok".to_owned());
    let file = MatrixFile::parse(
        "[[target]]\nname = \"down\"\nbase_url = \"http://127.0.0.1:9\"\ntoken_env = \"T\"\n",
        Path::new("t.toml"),
        &env,
    )
    .unwrap();
    let matrix = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(matrix::run_matrix(&file, 1, 1));
    let reason = matrix.targets[0].outcome.as_ref().unwrap_err();
    assert!(reason.contains("could not be reached"), "{reason}");
    let markdown = matrix::markdown(&matrix);
    assert!(
        markdown.contains("`down` could not be tested: the target could not be reached"),
        "{markdown}"
    );
    let html = matrix::html(&matrix);
    let doc = roxmltree::Document::parse_with_options(&html, xml()).unwrap();
    let clauses = Spec::embedded().catalog().clauses();
    // One cell spans the column, instead of one inconclusive cell per clause.
    let cells: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("td") && n.attribute("data-target") == Some("down"))
        .filter(|n| n.attribute("data-clause").is_some())
        .collect();
    assert_eq!(cells.len(), 1);
    let node = cell(&doc, "down", &clauses[0].id);
    assert_eq!(
        node.attribute("rowspan"),
        Some(clauses.len().to_string().as_str())
    );
    assert!(text_of(node).starts_with("not tested"), "{}", text_of(node));
    assert!(text_of(node).contains("could not be reached"));
    let href = node
        .descendants()
        .find_map(|n| n.attribute("href"))
        .unwrap();
    assert_eq!(href, "#e-down");
    assert!(
        doc.descendants()
            .any(|n| n.attribute("id") == Some("e-down"))
    );
    assert_eq!(
        matrix.overall(),
        token_conformance::outcome::Status::Inconclusive
    );
}

/// Like `run`, a table path that cannot be written is refused before any request: not after
/// every target has been tested (and its fixtures created).
#[test]
fn an_unwritable_table_path_is_refused_before_any_request() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let dir = std::env::temp_dir().join(format!("tc-matrix-paths-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let targets = dir.join("targets.toml");
    std::fs::write(
        &targets,
        format!(
            "[[target]]\nname = \"a\"\nbase_url = \"http://{}\"\ntoken_env = \"MATRIX_PATHS_TOKEN\"\n",
            listener.local_addr().unwrap()
        ),
    )
    .unwrap();
    for flag in ["--markdown", "--html"] {
        let missing = dir.join("no-such-dir").join("table");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_token-conformance"))
            .args(["matrix", targets.to_str().unwrap(), "--cases", "1"])
            .args([flag, missing.to_str().unwrap()])
            .env("MATRIX_PATHS_TOKEN", "matrix-paths-secret-0123456789")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&format!("cannot write {flag}")), "{stderr}");
        assert!(
            listener.accept().is_err(),
            "{flag}: the target was contacted"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_profile_comes_from_the_target_or_from_the_command_line() {
    let file = parse(
        "[[target]]\nname = \"a\"\nembedded = true\nprofile = \"strict\"\n\n[[target]]\nname = \"b\"\nembedded = true\n",
    )
    .unwrap();
    assert_eq!(file.targets[0].profile, Some(Profile::Strict));
    assert_eq!(file.targets[1].profile, None);
    assert_eq!(file.targets[1].run_profile(), Profile::Documented);
    let file = file.with_profile(Profile::Staging);
    assert_eq!(file.targets[0].run_profile(), Profile::Strict);
    assert_eq!(file.targets[1].run_profile(), Profile::Staging);
    let message = error("[[target]]\nname = \"a\"\nembedded = true\nprofile = \"Strict\"\n");
    assert!(
        message.starts_with(
            "targets.toml:1: target \"a\": profile: unknown profile \"Strict\" (documented, strict or staging)"
        ),
        "{message}"
    );
}

#[test]
fn the_markdown_links_each_failing_cell_to_its_details_and_ends_with_a_newline() {
    let markdown = matrix::markdown(example());
    assert!(markdown.ends_with('\n') && !markdown.ends_with("\n\n"));
    let links: Vec<&str> = markdown
        .match_indices("[**fail**](#")
        .map(|(i, m)| {
            let rest = &markdown[i + m.len()..];
            &rest[..rest.find(')').unwrap()]
        })
        .collect();
    // The example's three failing cells.
    assert_eq!(links.len(), 3, "{markdown}");
    for id in links {
        let at = markdown
            .find(&format!("<a id=\"{id}\"></a>"))
            .unwrap_or_else(|| panic!("no anchor {id}"));
        assert!(at > markdown.find("## Details").unwrap());
    }
    assert!(markdown.contains("role-dropped` · `update.role.preserved`: fail"));
}

#[test]
fn the_html_page_shows_the_date_and_version_and_no_embedded_port() {
    let matrix = example();
    let html = matrix::html(matrix);
    assert!(html.contains(&format!("<time>{}</time>", matrix.started)));
    assert!(html.contains(&format!("token-conformance {}", env!("CARGO_PKG_VERSION"))));
    let ports: Vec<String> = matrix
        .targets
        .iter()
        .filter_map(|t| t.outcome.as_ref().ok())
        .map(|r| r.base_url.clone())
        .collect();
    assert_eq!(ports.len(), 3);
    for url in ports {
        let authority = url.trim_start_matches("http://");
        let authority = authority.split('/').next().unwrap();
        assert!(!html.contains(authority), "{authority} shown");
    }
    assert!(
        html.contains("127.0.0.1:PORT"),
        "the failures' requests are shown"
    );
    assert!(html.contains("table.matrix { width: 100%; }"));
}

#[test]
fn a_staging_target_runs_within_the_staging_budget() {
    let file =
        parse("[[target]]\nname = \"shared\"\nembedded = true\nprofile = \"staging\"\n").unwrap();
    let matrix = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(matrix::run_matrix(&file, 1, 32));
    let report = matrix.targets[0].outcome.as_ref().unwrap();
    assert_eq!(report.profile, Profile::Staging);
    let fit = token_conformance::plan::staging_cases(
        token_conformance::plan::STAGING_DEFAULT_MAX_REQUESTS,
    )
    .unwrap();
    assert_eq!(report.cases, fit.min(32));
    assert!(report.cases < 32);
    assert!(report.requests <= token_conformance::plan::STAGING_DEFAULT_MAX_REQUESTS);
    let markdown = matrix::markdown(&matrix);
    assert!(
        markdown.contains(&format!("| staging · {} cases |", report.cases)),
        "{markdown}"
    );
}
