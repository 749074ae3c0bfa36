//! The live progress of `run`, seen as a user sees it: under a pseudo-terminal (util-linux
//! `script`, which gives the binary a terminal for stdout and stderr), a run against a
//! `serve` whose rate limit makes it wait shows the wait and an elapsed time that keeps
//! changing while every request waits; piped, it prints plain `progress:` lines without escape
//! codes; `NO_COLOR` takes the colour codes away and `--quiet` the whole progress.

use crate::common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SECRET: &str = "progress-management-secret-5e1c0a97";

/// The most any one run of these tests may take (the runs below take about 20 s).
const RUN_LIMIT: Duration = Duration::from_secs(150);

/// Ten requests per six seconds: the run below sends about 35, so it waits on the limit
/// three times, about six seconds each.
const RATE_LIMIT: &str = "10/6s";

/// The run: one check with a few generated cases, so that it is short but still hits the limit.
fn run_args(serve: &common::Serve) -> Vec<String> {
    [
        "run",
        "--base-url",
        &serve.cma,
        "--cda-url",
        &serve.cda,
        "--seed",
        "7",
        "--cases",
        "4",
        "--filter",
        "update.applies",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// What a terminal showed: each chunk of output with when it arrived.
struct Screen {
    chunks: Vec<(Instant, String)>,
}

impl Screen {
    fn text(&self) -> String {
        self.chunks.iter().map(|(_, c)| c.as_str()).collect()
    }

    /// Every `elapsed N…` value with the time it was first seen.
    fn elapsed_values(&self) -> Vec<(Instant, String)> {
        let mut seen: Vec<(Instant, String)> = Vec::new();
        for (at, chunk) in &self.chunks {
            for piece in chunk.split("elapsed ").skip(1) {
                let value: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                if !value.is_empty() && !seen.iter().any(|(_, v)| *v == value) {
                    seen.push((*at, value));
                }
            }
        }
        seen
    }
}

/// Run the binary with `args` under a pseudo-terminal of [`COLUMNS`] columns, reading what it draws as
/// it comes; killed after [`RUN_LIMIT`].
fn under_pty(args: &[String], envs: &[(&str, &str)]) -> Screen {
    let bin = env!("CARGO_BIN_EXE_token-conformance");
    let quoted: Vec<String> = std::iter::once(bin.to_owned())
        .chain(args.iter().cloned())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    // `stty` sets the terminal's size (script's own terminal has none without a parent one).
    let inner = format!(
        "stty cols {COLUMNS} rows 24 2>/dev/null; exec {}",
        quoted.join(" ")
    );
    let mut command = Command::new("script");
    command
        .args(["-qfec", &inner, "/dev/null"])
        .env("CONFORMANCE_API_TOKEN", SECRET)
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = command
        .spawn()
        .expect("util-linux `script` runs (it gives the run a pseudo-terminal)");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 || tx.send((Instant::now(), buffer[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + RUN_LIMIT;
    let mut bytes: Vec<(Instant, Vec<u8>)> = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => bytes.push(chunk),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the run under a pseudo-terminal took longer than {RUN_LIMIT:?}");
            }
        }
    }
    let status = child.wait().unwrap();
    let mut errors = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut errors)
        .unwrap();
    assert!(
        status.code().is_some(),
        "script ended by a signal: {status:?} {errors}"
    );
    Screen {
        chunks: bytes
            .into_iter()
            .map(|(at, b)| (at, String::from_utf8_lossy(&b).into_owned()))
            .collect(),
    }
}

/// Whether `text` holds an SGR (colour or style) escape, `ESC [ … m`.
fn has_sgr(text: &str) -> bool {
    text.split('\x1b').skip(1).any(|rest| {
        rest.strip_prefix('[').is_some_and(|params| {
            let end = params
                .find(|c: char| !(c.is_ascii_digit() || c == ';'))
                .unwrap_or(params.len());
            params[end..].starts_with('m')
        })
    })
}

/// The terminal's width in [`under_pty`].
const COLUMNS: usize = 100;

/// The status lines as drawn: the text between carriage returns and line feeds, without
/// escape sequences, and wrapped as the terminal wraps them: a line that fills all
/// [`COLUMNS`] (a status line padded to the width) leaves the cursor waiting at its end, and
/// the next character printed starts a new line.
fn drawn_lines(text: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut column = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            let mut colour = false;
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        colour = c == 'm';
                        break;
                    }
                }
            }
            plain.push('\n');
            // A colour leaves the cursor where it is; a cursor movement or an erase is
            // followed by a carriage return where it matters.
            if !colour {
                column = 0;
            }
        } else {
            if c == '\r' || c == '\n' {
                column = 0;
            } else if column == COLUMNS {
                plain.push('\n');
                column = 1;
            } else {
                column += 1;
            }
            plain.push(c);
        }
    }
    plain
        .split(['\r', '\n'])
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn a_terminal_sees_the_wait_and_an_elapsed_time_that_keeps_moving() {
    let serve = common::serve(SECRET, &["--rate-limit", RATE_LIMIT]);
    let started = Instant::now();
    let screen = under_pty(&run_args(&serve), &[]);
    let took = started.elapsed();
    let text = screen.text();
    assert!(
        text.contains("for the rate limit of the management token"),
        "the wait is shown with whose rate limit it is: {text}"
    );
    assert!(
        text.contains("waiting "),
        "the wait is shown with how long: {text}"
    );
    assert!(
        text.contains("pass update.applies::attributes_are_stored_as_sent"),
        "the finished check is printed: {text}"
    );
    assert!(!text.contains(SECRET), "the token never shows");
    // Loosely "at least once a second": one new value per two seconds of the run, at least 3,
    // and the run (three waits of about six seconds) lasts well over five seconds.
    let values = screen.elapsed_values();
    assert!(
        took >= Duration::from_secs(5),
        "the run waited on the limit: {took:?}"
    );
    let wanted = (took.as_secs() / 2).max(3) as usize;
    assert!(
        values.len() >= wanted,
        "{} distinct elapsed values in {took:?}, wanted {wanted}: {:?}",
        values.len(),
        values.iter().map(|(_, v)| v).collect::<Vec<_>>()
    );
    // The redraw does not wait for a check to end: values keep coming during the waits.
    let gaps = values.windows(2).map(|w| w[1].0 - w[0].0);
    let longest = gaps.max().unwrap_or_default();
    assert!(
        longest < Duration::from_secs(4),
        "the elapsed time froze for {longest:?}"
    );
    assert!(has_sgr(&text), "colour is on by default on a terminal");
    // Kept to the terminal's width: a status line never wraps.
    for line in drawn_lines(&text).iter().filter(|l| l.contains("elapsed ")) {
        assert!(
            line.chars().count() <= COLUMNS,
            "a status line wider than the terminal: {line:?}"
        );
    }
}

#[test]
fn no_color_takes_the_colour_codes_away() {
    let serve = common::serve(SECRET, &["--rate-limit", RATE_LIMIT]);
    let screen = under_pty(&run_args(&serve), &[("NO_COLOR", "1")]);
    let text = screen.text();
    assert!(
        text.contains("elapsed "),
        "the status area is still drawn: {text}"
    );
    assert!(!has_sgr(&text), "no colour code with NO_COLOR: {text:?}");
}

#[test]
fn a_pipe_gets_plain_progress_lines_and_quiet_gets_none() {
    let serve = common::serve(SECRET, &["--rate-limit", RATE_LIMIT]);
    let run = |extra: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_token-conformance"))
            .args(run_args(&serve))
            .args(extra)
            .env("CONFORMANCE_API_TOKEN", SECRET)
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + RUN_LIMIT;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the piped run took longer than {RUN_LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let output = child.wait_with_output().unwrap();
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (stdout, stderr) = run(&[]);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert!(
        !lines.is_empty(),
        "a run of several seconds prints plain progress lines: {stderr}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.contains("elapsed ") && l.contains(" requests")),
        "{lines:?}"
    );
    assert!(
        !stderr.contains('\x1b') && !stdout.contains('\x1b'),
        "no escape codes off a terminal: {stderr:?} {stdout:?}"
    );
    assert!(!stderr.contains(SECRET) && !stdout.contains(SECRET));
    assert!(
        stdout.contains("update.applies"),
        "the report follows: {stdout}"
    );

    let (stdout, stderr) = run(&["--quiet"]);
    assert!(
        !stderr.contains("progress: "),
        "--quiet prints no progress: {stderr}"
    );
    assert!(
        stdout.contains("update.applies"),
        "the report still is: {stdout}"
    );
}

#[test]
fn matrix_shows_one_line_per_target() {
    let dir = std::env::temp_dir().join(format!("tc-progress-matrix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let targets = dir.join("targets.toml");
    std::fs::write(
        &targets,
        "[[target]]\nname = \"first-server\"\nembedded = true\n\n\
         [[target]]\nname = \"second-server\"\nembedded = true\nfaults = [\"role-dropped-when-omitted\"]\n",
    )
    .unwrap();
    let args = [
        "matrix".to_owned(),
        targets.display().to_string(),
        "--cases".to_owned(),
        "2".to_owned(),
        "--seed".to_owned(),
        "7".to_owned(),
    ];
    let screen = under_pty(&args, &[]);
    let _ = std::fs::remove_dir_all(&dir);
    let lines = drawn_lines(&screen.text());
    for name in ["first-server", "second-server"] {
        let prefix = format!("{name}: [");
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&prefix) && l.contains("elapsed ") && l.contains(" requests")),
            "a status line for {name}: {lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&prefix) && l.ends_with("done")),
            "{name}'s line stays, marked done: {lines:#?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("second-server: fail update.role.preserved::")),
        "finished checks are printed above the lines, with their target: {lines:#?}"
    );
}

#[test]
fn a_line_that_fills_the_terminal_wraps_before_the_next_output() {
    // A finished status line padded to the width, then the report on stdout with no line
    // feed between them: the terminal puts the report on the next line.
    let status = format!(
        "{:<98}",
        "second-server: [23/23] elapsed 1s · 1293 requests · done"
    );
    let screen = format!("\r\x1b[2K\x1b[36m⠁\x1b[0m {status}# Compatibility matrix\n");
    assert_eq!(
        drawn_lines(&screen),
        [
            "⠁",
            "second-server: [23/23] elapsed 1s · 1293 requests · done",
            "# Compatibility matrix"
        ]
    );
}
