//! The target is untrusted (issue 9, Must-show 1): a hostile target, one mode per attack,
//! run against the CLI as a black box.
//!
//! The target is a recording proxy in front of the real reference server ([`proxy`]). Each
//! test asserts the exit code, that no secret shows in any output or report (raw, JSON-escaped,
//! percent-encoded, base64), that no raw control character does, that no request left the
//! run's own fixtures (the proxy's record, and the server's state before and after), and the
//! time. Exit codes: a target that breaks the contract is a failure (1), one that refuses the
//! management token is a configuration problem (2), a deadline hit is inconclusive (3), a
//! target that cannot be tested at all is 4.

mod harness;
mod proxy;

use std::time::Duration;

use harness::{Run, State, Upstream, audit, conclude, secrets_of};
use proxy::{Mode, Proxy, QUOTE_NAME, QUOTE_SECRET};

const FAIL: i32 = 1;
const CONFIG: i32 = 2;
const INCONCLUSIVE: i32 = 3;
const UNTESTABLE: i32 = 4;
/// A run against a loopback target takes about a second; anything near this is a hang.
const BOUND: Duration = Duration::from_secs(30);

/// One upstream server, one hostile proxy in front of it, and the state before the run.
struct Attack {
    up: Upstream,
    proxy: Proxy,
    before: State,
    /// Names the proxy shows for factory tokens, which an unchanged update may send back.
    shown_names: Vec<&'static str>,
    /// Secrets the proxy invented (not secrets of anyone).
    invented: Vec<&'static str>,
}

impl Attack {
    async fn on(up: Upstream, mode: Mode) -> Attack {
        let proxy = Proxy::start("127.0.0.1:0", &up.url(), mode).await;
        let before = up.state().await;
        Attack {
            up,
            proxy,
            before,
            shown_names: Vec::new(),
            invented: Vec::new(),
        }
    }

    async fn new(mode: Mode) -> Attack {
        Attack::on(Upstream::start().await, mode).await
    }

    async fn run(&self, label: &str, extra: &[&str]) -> Run {
        harness::run_suite(label, &self.proxy.url(), &self.up, extra).await
    }

    async fn matrix(&self, label: &str) -> Run {
        harness::run_matrix(label, &self.proxy.url(), &self.up).await
    }

    /// What every mode demands besides its exit code: no secret and no control character in
    /// any output, no write outside the run's fixtures, the server as it was (minus
    /// `removed`). Then the verdict: every problem noted on `run`.
    async fn judge(&self, run: &Run, removed: &[(&str, &str)]) -> Option<String> {
        run.expect_no_secret(&secrets_of(&self.up, &self.proxy, &self.invented))
            .expect_no_control();
        for violation in audit(
            &self.proxy.requests(),
            &self.proxy.created(),
            &self.before,
            &self.up.management_id,
            &self.shown_names,
        ) {
            run.problem(violation);
        }
        match self.up.try_state().await {
            Ok(after) => self
                .before
                .untouched(&after, removed)
                .into_iter()
                .for_each(|change| run.problem(change)),
            Err(problem) => run.problem(problem),
        }
        run.verdict()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traversal_id_in_a_listing_never_becomes_a_request_path() {
    let mut verdicts = Vec::new();
    for forged in [
        "../access_tokens/{m}",
        "%2e%2e%2faccess_tokens%2f{m}",
        "{m}/regenerate_token",
    ] {
        let up = Upstream::start().await;
        let forged = forged.replace("{m}", &up.management_id);
        let attack = Attack::on(up, Mode::ListingTraversal(forged.clone())).await;
        let run = attack.run(&format!("listing {forged}"), &[]).await;
        run.expect_exit(&[FAIL]).expect_within(BOUND);
        verdicts.push(attack.judge(&run, &[]).await);
    }
    conclude(verdicts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traversal_id_in_a_create_answer_never_reaches_a_bystander() {
    let up = Upstream::start().await;
    let (token, role) = up.create_pair("Bystander token", "Bystander role").await;
    let mode = Mode::CreateTraversal {
        token: format!("../access_tokens/{token}"),
        role: format!("../roles/{role}"),
    };
    let attack = Attack::on(up, mode).await;
    let run = attack.run("create traversal", &[]).await;
    run.expect_exit(&[FAIL]).expect_within(BOUND);
    conclude([attack.judge(&run, &[]).await]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_answer_naming_an_existing_bystander_never_reaches_it() {
    // The ids of a token and a role that existed before the run, in every create answer: the
    // suite must neither write to them nor delete them (a failure, and the real fixtures,
    // found by name, cleaned up).
    let up = Upstream::start().await;
    let (token, role) = up.create_pair("Bystander token", "Bystander role").await;
    let attack = Attack::on(up, Mode::CreateTraversal { token, role }).await;
    let run = attack.run("create names a bystander", &[]).await;
    run.expect_exit(&[FAIL]).expect_within(BOUND);
    let said = run
        .outputs
        .iter()
        .any(|(_, bytes)| String::from_utf8_lossy(bytes).contains("existed before the run"));
    if !said {
        run.problem(
            "the failure does not say the create answer named an existing resource".to_owned(),
        );
    }
    conclude([attack.judge(&run, &[]).await]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_breaking_name_with_a_matching_secret_runs_nothing_in_a_reproducer() {
    let mut attack = Attack::new(Mode::QuoteBreaking).await;
    attack.shown_names = vec![QUOTE_NAME];
    attack.invented = vec![QUOTE_SECRET];
    let run = attack.run("quote", &[]).await;
    run.expect_exit(&[FAIL]).expect_within(BOUND);
    let reproducers = run.reproducers();
    if !reproducers.iter().any(|r| r.contains("touch pwned")) {
        run.problem(format!(
            "no reproducer carries the hostile name, so the attack was not exercised: {reproducers:#?}"
        ));
    }
    for line in &reproducers {
        if let Err(problem) = harness::replay_in_shell(line) {
            run.problem(format!("a reproducer did more than call curl: {problem}"));
        }
    }
    conclude([attack.judge(&run, &[]).await]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_echoed_in_error_answers_never_shows_in_any_encoding() {
    let attack = Attack::new(Mode::EchoSecret).await;
    let run = attack.run("echo", &[]).await;
    run.expect_exit(&[FAIL]).expect_within(BOUND);
    // Every encoding at least twice, or the attack was not exercised.
    if attack.proxy.echoes() < 8 {
        run.problem(format!(
            "only {} answers echoed the secret",
            attack.proxy.echoes()
        ));
    }
    let mut verdicts = vec![attack.judge(&run, &[]).await];
    let matrix = attack.matrix("echo matrix").await;
    matrix.expect_exit(&[0]).expect_within(BOUND);
    verdicts.push(attack.judge(&matrix, &[]).await);
    conclude(verdicts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_echoed_at_preflight_never_shows_nor_reaches_the_matrix() {
    // A JSON 401 refuses the management token (exit 2); a text answer is not the API (4).
    let mut verdicts = Vec::new();
    for (json, code) in [(true, CONFIG), (false, UNTESTABLE)] {
        let attack = Attack::new(Mode::EchoAtPreflight { json }).await;
        let run = attack
            .run(&format!("preflight echo json={json}"), &[])
            .await;
        run.expect_exit(&[code]).expect_within(BOUND);
        verdicts.push(attack.judge(&run, &[]).await);
        let matrix = attack
            .matrix(&format!("matrix preflight echo json={json}"))
            .await;
        matrix.expect_exit(&[0]).expect_within(BOUND);
        for file in ["m.md", "m.html"] {
            if matrix.output(file).is_none() {
                matrix.problem(format!("the matrix wrote no {file}"));
            }
        }
        verdicts.push(attack.judge(&matrix, &[]).await);
    }
    conclude(verdicts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_from_the_target_never_reach_the_terminal_or_reports() {
    let attack = Attack::new(Mode::ControlChars).await;
    let run = attack.run("control", &[]).await;
    run.expect_exit(&[FAIL]).expect_within(BOUND);
    let mut verdicts = vec![attack.judge(&run, &[]).await];
    let verbose = attack.run("control verbose", &["--verbose"]).await;
    verbose.expect_exit(&[FAIL]).expect_within(BOUND);
    verdicts.push(attack.judge(&verbose, &[]).await);
    let matrix = attack.matrix("control matrix").await;
    matrix.expect_exit(&[0]).expect_within(BOUND);
    verdicts.push(attack.judge(&matrix, &[]).await);
    conclude(verdicts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_text_answer_with_control_characters_reaches_no_report_raw() {
    let attack = Attack::new(Mode::PlainTextControls).await;
    let run = attack.run("plain controls", &[]).await;
    run.expect_exit(&[FAIL]).expect_within(BOUND);
    // The body is quoted in the summary, escaped: readable, and the id not shortened.
    let summary = run.output("r.md").unwrap_or_default();
    if !summary.contains("\\u{1b}]0;pwned\\u{7}") || !summary.contains("975\\u{200b}") {
        run.problem(format!(
            "the summary does not quote the body escaped:\n{}",
            harness::cut(&summary, 3000)
        ));
    }
    conclude([attack.judge(&run, &[]).await]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_that_would_amplify_memory_is_not_parsed() {
    // 4 MiB less a little of `{"":0},`: under the body cap; parsed, gigabytes (the harness
    // kills the CLI past 1 GiB resident).
    let attack = Attack::new(Mode::Amplifying((4 << 20) / 7 - 16)).await;
    let run = attack.run("amplifying", &[]).await;
    run.expect_exit(&[FAIL]).expect_within(BOUND);
    // The evidence in the JSON report says why the body is not JSON.
    if !run
        .output("r.json")
        .unwrap_or_default()
        .contains("the suite parses as JSON, so not parsed; its start:")
    {
        run.problem("the JSON report does not say the body was not parsed".to_owned());
    }
    conclude([attack.judge(&run, &[]).await]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_is_not_valid_http_is_a_failure_not_inconclusive() {
    // 101 extra headers: more than the client's parser takes, on every attempt.
    let attack = Attack::new(Mode::ManyHeaders(101)).await;
    let run = attack.run("many headers", &[]).await;
    run.expect_exit(&[FAIL]).expect_within(BOUND);
    let stdout = run.output("stdout").unwrap_or_default();
    if !stdout.contains("is not valid HTTP/1.1: ") {
        run.problem("stdout does not say the answer is not valid HTTP/1.1".to_owned());
    }
    if stdout.contains("gave up on") {
        run.problem("a malformed answer is still reported as given up on".to_owned());
    }
    conclude([attack.judge(&run, &[]).await]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_removes_only_safe_fixtures_and_prints_no_control_characters() {
    let up = Upstream::start().await;
    let (bystander_token, bystander_role) =
        up.create_pair("Bystander token", "Bystander role").await;
    let (left_token, left_role) = up
        .create_pair(
            "conformance-0123abcd-2-0-left-token",
            "conformance-0123abcd-1-0-left-role",
        )
        .await;
    let mode = Mode::SweepBait {
        bystander_token,
        bystander_role,
    };
    let attack = Attack::on(up, mode).await;
    let sweep = harness::run_sweep("sweep", &attack.proxy.url(), &attack.up).await;
    // 1: something offered could not (or must not) be removed.
    sweep.expect_exit(&[0, FAIL]).expect_within(BOUND);
    // The sweep creates nothing: only the two real leftovers may be written to.
    let mut allowed = attack.proxy.created();
    allowed.0.insert(left_token.clone());
    allowed.1.insert(left_role.clone());
    for violation in audit(
        &attack.proxy.requests(),
        &allowed,
        &attack.before,
        &attack.up.management_id,
        &[],
    ) {
        sweep.problem(violation);
    }
    sweep
        .expect_no_secret(&secrets_of(&attack.up, &attack.proxy, &[]))
        .expect_no_control();
    match attack.up.try_state().await {
        Ok(after) => attack
            .before
            .untouched(&after, &[("token", &left_token), ("role", &left_role)])
            .into_iter()
            .for_each(|change| sweep.problem(change)),
        Err(problem) => sweep.problem(problem),
    }
    conclude([sweep.verdict()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_cut_short_and_reported() {
    let attack = Attack::new(Mode::EndlessBody).await;
    let run = attack.run("endless", &[]).await;
    run.expect_exit(&[FAIL]).expect_within(BOUND);
    conclude([attack.judge(&run, &[]).await]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_body_is_cut_short_and_reported() {
    let attack = Attack::new(Mode::HugeBody(200 << 20)).await;
    let run = attack.run("huge", &[]).await;
    run.expect_exit(&[FAIL]).expect_within(BOUND);
    conclude([attack.judge(&run, &[]).await]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_after_preflight_ends_at_the_deadline_with_a_report() {
    let attack = Attack::new(Mode::SilentAfterPreflight).await;
    let run = attack.run("silent", &["--deadline", "10s"]).await;
    // Deadline plus cleanup slack; the checks left are inconclusive.
    run.expect_exit(&[INCONCLUSIVE])
        .expect_within(Duration::from_secs(45));
    run.json_report();
    conclude([attack.judge(&run, &[]).await]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_loopback_host_is_not_followed() {
    let trap = Proxy::start("127.0.0.2:0", "http://127.0.0.2:9", Mode::Trap).await;
    let elsewhere = format!("http://127.0.0.2:{}", trap.port());
    let attack = Attack::new(Mode::RedirectTo(elsewhere)).await;
    let run = attack.run("redirect", &[]).await;
    run.expect_exit(&[FAIL]).expect_within(BOUND);
    let followed = trap.requests();
    if !followed.is_empty() {
        run.problem(format!(
            "{} request(s) followed the redirect to 127.0.0.2, the first {} {} with headers {:?}",
            followed.len(),
            followed[0].method,
            followed[0].path,
            followed[0]
                .headers
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
        ));
    }
    conclude([attack.judge(&run, &[]).await]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_ids_in_create_answers_are_a_failure_that_names_the_shape() {
    let attack = Attack::new(Mode::NumericIds).await;
    let run = attack.run("numeric", &[]).await;
    run.expect_exit(&[FAIL]).expect_within(BOUND);
    if let Some(report) = run.json_report() {
        let names_the_shape = report["clauses"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["checks"].as_array().into_iter().flatten())
            .filter(|check| check["status"] == "fail")
            .any(|check| {
                let message = check["message"].as_str().unwrap_or("");
                message.contains("id") && (message.contains("number") || message.contains("string"))
            });
        if !names_the_shape {
            run.problem("no failing check says that data.id is a number, not a string".to_owned());
        }
    }
    conclude([attack.judge(&run, &[]).await]);
}

/// The control experiment: the same proxy, answering honestly, must let a run pass and
/// leave everything as it was; otherwise the other tests prove nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_proxy_passes_and_is_left_as_it_was() {
    let attack = Attack::new(Mode::Honest).await;
    let run = attack.run("honest", &[]).await;
    // 0 once destructive clauses are skipped on a remote target (they are skips, not passes).
    run.expect_exit(&[0]).expect_within(BOUND);
    conclude([attack.judge(&run, &[]).await]);
}

/// The searches the attacks rely on find what they look for (else every test above could
/// pass by looking in the wrong place).
#[test]
fn the_secret_search_sees_every_encoding_and_the_shell_replay_sees_injection() {
    use harness::{base64, leaked, replay_in_shell};
    let s = "hostile-0123456789abcdef-fedcba9876543210";
    assert_eq!(base64(b"hello"), "aGVsbG8=");
    assert_eq!(leaked(&format!("code {s}."), s), Some("raw"));
    let escaped = s.replace('-', "\\u002d");
    assert_eq!(leaked(&format!("\"{escaped}\""), s), Some("JSON-escaped"));
    let percent: String = s.bytes().map(|b| format!("%{b:02x}")).collect();
    assert_eq!(leaked(&percent, s), Some("percent-encoded"));
    assert_eq!(
        leaked(&s.replace('-', "&#x2D;"), s),
        Some("XML character references")
    );
    let basic = format!("Basic {}", base64(format!("x:{s}").as_bytes()));
    assert_eq!(leaked(&basic, s), Some("base64"));
    assert_eq!(leaked("Bearer $CONFORMANCE_API_TOKEN [secret]", s), None);

    assert!(
        replay_in_shell("curl -g 'http://127.0.0.1:1/x' -X PUT --data-binary '{\"a\":1}'").is_ok()
    );
    assert!(replay_in_shell("curl -g 'http://127.0.0.1:1/x'; touch pwned").is_err());
    assert!(replay_in_shell("curl -g \"$(echo hi)\" ; echo hi").is_err());
}
