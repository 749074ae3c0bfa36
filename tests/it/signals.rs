//! A run that is stopped from outside still cleans up and writes its report: SIGTERM (what CI
//! sends on cancel), Ctrl-C while stderr goes to a pipe nobody reads any more, stdout closed
//! after the first line (`| head -1`), and the run's own deadline. The binary runs against an
//! in-process reference server with its rate limit on, so that a run lasts long enough to be
//! interrupted half-way.
#![cfg(unix)]

use crate::common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use token_conformance::reference::{RateLimit, ReferenceServer, ServerConfig};
use token_conformance::spec::{SchemaId, Spec};

const SECRET: &str = "signals-management-secret-3b8f41c2";

/// How long any one wait of these tests may take.
const WAIT: Duration = Duration::from_secs(90);

struct Fixture {
    rt: tokio::runtime::Runtime,
    server: ReferenceServer,
    dir: PathBuf,
}

fn fixture(name: &str, rate_limit: Option<&str>) -> Fixture {
    let rt = common::runtime();
    let config = ServerConfig {
        admin_secret: Some(SECRET.to_owned()),
        rate_limit: rate_limit.map(|r| r.parse::<RateLimit>().unwrap()),
        ..ServerConfig::default()
    };
    let server = rt.block_on(ReferenceServer::start(config)).unwrap();
    let dir = std::env::temp_dir().join(format!("tc-signals-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Fixture { rt, server, dir }
}

impl Fixture {
    fn command(&self, extra: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_token-conformance"));
        command
            .args([
                "run",
                "--base-url",
                &self.server.cma_url(),
                "--cda-url",
                &self.server.cda_url(),
                "--seed",
                "3",
                "--no-destructive",
            ])
            .args(extra)
            .env("CONFORMANCE_API_TOKEN", SECRET)
            .env_remove("CONFORMANCE_DEADLINE")
            .env_remove("CONFORMANCE_CASES")
            .stdin(Stdio::null());
        command
    }

    fn json_path(&self) -> PathBuf {
        self.dir.join("report.json")
    }

    /// The names of every token and role on the target that look like a run's fixtures.
    fn fixture_names(&self) -> Vec<String> {
        let base = self.server.cma_url();
        self.rt.block_on(async {
            let mut names = Vec::new();
            for path in ["/access_tokens", "/roles"] {
                for item in common::list(&base, SECRET, path).await {
                    let name = item["attributes"]["name"].as_str().unwrap_or_default();
                    if name.contains("conformance-") {
                        names.push(name.to_owned());
                    }
                }
            }
            names
        })
    }

    /// Wait until the run has fixtures out there: it is then half-way, with something to lose.
    fn wait_for_fixtures(&self, child: &mut Child) {
        let until = Instant::now() + WAIT;
        while self.fixture_names().is_empty() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the run ended before it created fixtures"
            );
            assert!(
                Instant::now() < until,
                "the run created no fixtures in {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} failed");
}

/// Wait for the child at most `WAIT` (then kill it and fail), and say how long it took.
fn wait(child: &mut Child) -> (ExitStatus, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, started.elapsed());
        }
        if started.elapsed() > WAIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run did not end within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Collect a stream on a thread, so that a full pipe never blocks the child.
fn drain(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The `--json` report: written, valid JSON, valid against its schema.
fn report(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the --json report was not written");
    let json: Value = serde_json::from_str(&text).expect("the --json report is not JSON");
    assert_eq!(
        Spec::embedded().schemas().validate(SchemaId::Report, &json),
        Ok(())
    );
    json
}

/// Every check's (status, message).
fn checks(json: &Value) -> Vec<(String, String)> {
    json["clauses"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["checks"].as_array().unwrap().clone())
        .map(|k| {
            (
                k["status"].as_str().unwrap().to_owned(),
                k["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn assert_no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("being shutdown"),
        "panic text on stderr:\n{stderr}"
    );
}

#[test]
fn sigterm_stops_the_run_cleans_up_and_writes_the_report() {
    interrupted_run("TERM");
}

#[test]
fn sighup_is_handled_like_sigterm() {
    interrupted_run("HUP");
}

/// A run stopped by `SIG<name>` half-way: exit 130, both reports written, nothing left.
fn interrupted_run(name: &str) {
    let fx = fixture(&name.to_ascii_lowercase(), Some("20/1s"));
    let json_path = fx.json_path();
    let junit_path = fx.dir.join("report.xml");
    let mut child = fx
        .command(&[
            "--json",
            json_path.to_str().unwrap(),
            "--junit",
            junit_path.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, stderr) = (
        drain(child.stdout.take().unwrap()),
        drain(child.stderr.take().unwrap()),
    );
    fx.wait_for_fixtures(&mut child);
    signal(&child, name);
    let (status, took) = wait(&mut child);
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert_eq!(status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(took < Duration::from_secs(40), "stopping took {took:?}");
    assert_no_panic(&stderr);
    let interrupted_by = format!("interrupted (SIG{name})");
    assert!(stderr.contains(&interrupted_by), "{stderr}");
    assert!(
        stdout.contains("clauses:"),
        "the human report is printed too: {stdout}"
    );
    let json = report(&json_path);
    let interrupted = checks(&json)
        .into_iter()
        .filter(|(status, message)| status == "inconclusive" && message.contains(&interrupted_by))
        .count();
    assert!(interrupted > 0, "no check says it was interrupted: {json}");
    let junit = std::fs::read_to_string(&junit_path).unwrap();
    roxmltree::Document::parse(&junit).expect("the JUnit report is XML");
    assert_eq!(
        fx.fixture_names(),
        Vec::<String>::new(),
        "left on the target"
    );
}

#[test]
fn sigint_with_stderr_on_a_closed_pipe_still_cleans_up() {
    let fx = fixture("int", Some("20/1s"));
    let json_path = fx.json_path();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = fx
        .command(&["--json", json_path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(writer)
        .spawn()
        .unwrap();
    let stdout = drain(child.stdout.take().unwrap());
    fx.wait_for_fixtures(&mut child);
    signal(&child, "INT");
    let (status, _) = wait(&mut child);
    let stdout = stdout.join().unwrap();
    // A panic (stderr gone) would be 101, or a death by signal without a code.
    assert_eq!(status.code(), Some(130), "{stdout}");
    assert_no_panic(&stdout);
    let json = report(&json_path);
    assert!(
        checks(&json)
            .iter()
            .any(|(_, message)| message.contains("interrupted (SIGINT)")),
        "{json}"
    );
    assert_eq!(
        fx.fixture_names(),
        Vec::<String>::new(),
        "left on the target"
    );
}

#[test]
fn stdout_closed_after_the_first_line_is_no_panic_and_no_leftover() {
    let fx = fixture("head", None);
    let snapshots = fx.dir.join("snapshots");
    let mut child = fx
        .command(&[
            "--cases",
            "2",
            "--verbose",
            // Writes a line after the report, once the reader is long gone.
            "--update-snapshots",
            "--snapshot-dir",
            snapshots.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = drain(child.stderr.take().unwrap());
    let mut first = String::new();
    {
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut first).unwrap();
    } // `head -1` exits: the read end is closed.
    let (status, _) = wait(&mut child);
    let stderr = stderr.join().unwrap();
    assert!(first.starts_with("target "), "{first}");
    assert_no_panic(&stderr);
    assert_ne!(status.code(), Some(101), "{stderr}");
    assert!(
        matches!(status.code(), Some(0 | 1 | 3)),
        "{status:?}\n{stderr}"
    );
    assert_eq!(
        fx.fixture_names(),
        Vec::<String>::new(),
        "left on the target"
    );
}

#[test]
fn the_deadline_makes_the_rest_inconclusive_and_the_report_is_written() {
    let fx = fixture("deadline", Some("20/1s"));
    let json_path = fx.json_path();
    let started = Instant::now();
    let out = fx
        .command(&["--deadline", "2s", "--json", json_path.to_str().unwrap()])
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    // The deadline, plus at most the cleanup's 30 s (here far less), plus start-up.
    assert!(took < Duration::from_secs(35), "the run took {took:?}");
    assert_no_panic(&stderr);
    assert!(
        stderr.contains("the run's deadline of 2s passed"),
        "{stderr}"
    );
    let json = report(&json_path);
    let checks = checks(&json);
    assert!(
        checks
            .iter()
            .any(|(status, message)| status == "inconclusive"
                && message.contains("the run's deadline of 2s passed")),
        "{json}"
    );
    assert!(checks.iter().all(|(status, _)| status != "fail"), "{json}");
    // A check the run would not have run (destructive, without --destructive) is skipped,
    // deadline or not.
    let destructive = json["clauses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "update.hardcoded.still_deletable")
        .unwrap();
    assert_eq!(
        destructive["checks"][0]["status"], "skipped",
        "{destructive}"
    );
    assert_eq!(
        fx.fixture_names(),
        Vec::<String>::new(),
        "left on the target"
    );
}

#[test]
fn bad_report_paths_and_cases_are_refused_before_any_request() {
    // A listener that counts connections stands in for the target.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let dir = std::env::temp_dir().join(format!("tc-signals-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_token-conformance"))
            .args(["run", "--base-url", &base])
            .args(extra)
            .env("CONFORMANCE_API_TOKEN", SECRET)
            .env_remove("CONFORMANCE_DEADLINE")
            .env_remove("CONFORMANCE_CASES")
            .output()
            .unwrap()
    };
    let missing = dir.join("no-such-dir").join("report.json");
    let out = run(&["--json", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot write --json"), "{stderr}");
    // A directory is not a file either; the JUnit path is checked as well.
    let out = run(&["--junit", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write --junit"));
    for cases in ["0", "10001", "999999999"] {
        assert_eq!(
            run(&["--cases", cases]).status.code(),
            Some(2),
            "--cases {cases}"
        );
    }
    assert_eq!(run(&["--deadline", "soon"]).status.code(), Some(2));
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a request reached the target"
    );
    // A run that cannot start removes the report file it created (nothing listens now).
    drop(listener);
    let json = dir.join("report.json");
    assert_eq!(
        run(&["--json", json.to_str().unwrap()]).status.code(),
        Some(4)
    );
    assert!(!json.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `matrix` runs the same checks against remote targets, so SIGTERM there must clean up too,
/// and the table must still be written (the checks cut short shown as inconclusive).
#[test]
fn sigterm_stops_a_matrix_run_cleans_up_and_writes_the_table() {
    let fx = fixture("matrix", Some("20/1s"));
    let targets = fx.dir.join("targets.toml");
    std::fs::write(
        &targets,
        format!(
            "[[target]]\nname = \"live\"\nbase_url = \"{}\"\ncda_url = \"{}\"\ntoken_env = \"SIGNALS_MATRIX_TOKEN\"\n",
            fx.server.cma_url(),
            fx.server.cda_url()
        ),
    )
    .unwrap();
    let markdown = fx.dir.join("matrix.md");
    let mut child = Command::new(env!("CARGO_BIN_EXE_token-conformance"))
        .args(["matrix", targets.to_str().unwrap(), "--seed", "3"])
        .args(["--markdown", markdown.to_str().unwrap()])
        .env("SIGNALS_MATRIX_TOKEN", SECRET)
        .env_remove("CONFORMANCE_DEADLINE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, stderr) = (
        drain(child.stdout.take().unwrap()),
        drain(child.stderr.take().unwrap()),
    );
    fx.wait_for_fixtures(&mut child);
    signal(&child, "TERM");
    let (status, took) = wait(&mut child);
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert_eq!(status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(took < Duration::from_secs(40), "stopping took {took:?}");
    assert_no_panic(&stderr);
    assert!(stderr.contains("interrupted (SIGTERM)"), "{stderr}");
    let table = std::fs::read_to_string(&markdown).expect("the table was not written");
    assert!(table.contains("live"), "{table}");
    assert_eq!(
        fx.fixture_names(),
        Vec::<String>::new(),
        "left on the target"
    );
}
