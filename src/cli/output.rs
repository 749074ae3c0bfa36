//! What the commands share: report files opened before a run, signals, the live progress
//! and writing a file.

use std::io::{IsTerminal, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::CliError;
use crate::console::errln;

/// A report file given on the command line, opened (created) before the run sends anything,
/// so that a bad path is a configuration error and not the loss of a finished run.
#[derive(Debug)]
pub(crate) struct ReportFile {
    pub(crate) path: PathBuf,
    file: std::fs::File,
    /// Whether the file did not exist before: a run that cannot start removes it again.
    created: bool,
}

impl ReportFile {
    pub(crate) fn open(flag: &str, path: &Path) -> Result<ReportFile, String> {
        let created = !path.exists();
        // Not truncated yet: a run that cannot start leaves a previous report as it was.
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map(|file| ReportFile {
                path: path.to_owned(),
                file,
                created,
            })
            .map_err(|err| format!("cannot write {flag} {}: {err}", path.display()))
    }

    /// Replace the file's contents with `text`; a failure is told at once (the other
    /// reports are still written) and comes back as the error to exit with.
    pub(crate) fn write(&mut self, text: &str) -> Result<(), CliError> {
        let written = (|| {
            self.file.set_len(0)?;
            self.file.rewind()?;
            self.file.write_all(text.as_bytes())?;
            self.file.sync_all()
        })();
        written.map_err(|source| {
            told(CliError::Write {
                what: "",
                path: self.path.clone(),
                source,
            })
        })
    }

    /// The run did not start: remove what `open` created.
    pub(crate) fn discard(self) {
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP. Listening replaces their default action (death, with no
/// cleanup and no report) for the rest of the process.
#[derive(Debug)]
pub(crate) struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn listen() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// The name of the next signal.
    pub(crate) async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                Some(()) = self.int.recv() => "SIGINT",
                Some(()) = self.term.recv() => "SIGTERM",
                Some(()) = self.hup.recv() => "SIGHUP",
                else => std::future::pending().await,
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                Err(_) => std::future::pending().await,
            }
        }
    }
}

/// Report `error` now (so that the next file is still tried) and keep it as the code to exit
/// with.
fn told(error: CliError) -> CliError {
    error.report();
    CliError::Reported(error.code())
}

/// Write `text` to `path` (`what` says what it is, for the message), told at once on failure.
pub(crate) fn write_file(what: &'static str, path: &Path, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|source| {
        told(CliError::Write {
            what,
            path: path.to_owned(),
            source,
        })
    })
}

/// The one-line progress of `mutants` on stderr: redrawn in place on a terminal (by
/// indicatif, cut to the terminal's width); off a terminal printed line by line.
#[derive(Debug)]
pub(crate) struct Progress {
    /// `None` off a terminal.
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Shown everywhere, as plain lines off a terminal (`mutants`: a long run's only sign).
    pub(crate) fn everywhere() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{wide_msg}") {
                bar.set_style(style);
            }
            bar
        });
        Progress { bar }
    }

    /// Show `line` in place of the previous one.
    pub(crate) fn show(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(crate::output::terminal_line(line)),
            None => errln!("{line}"),
        }
    }

    /// Clear the line before the command's own output.
    pub(crate) fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// How often the status area is refreshed: often enough that the elapsed time and a rate-limit
/// wait count down visibly, whatever the checks are doing.
const REFRESH: Duration = Duration::from_millis(250);

/// How often a plain progress line is printed off a terminal (a CI log).
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// The live progress of `run` and `matrix` on stderr. On a terminal: an indicatif status area,
/// one line per target (checks done/total, elapsed time, requests sent, the current rate-limit
/// wait, the last finished check), refreshed by its own thread even while every request waits,
/// with each finished check printed above it. Off a terminal: a plain line every few seconds,
/// no escape codes. Nothing at all with `--quiet`.
#[derive(Debug)]
pub(crate) struct Live {
    shared: Option<Arc<Shared>>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    /// `None` off a terminal.
    multi: Option<MultiProgress>,
    color: bool,
    rows: Mutex<Vec<Row>>,
    stop: AtomicBool,
}

#[derive(Debug)]
struct Row {
    /// The target's name, for `matrix` (one row each).
    name: Option<String>,
    bar: Option<ProgressBar>,
    stats: Option<Arc<crate::client::Stats>>,
    started: Instant,
    done: usize,
    total: Option<usize>,
    last: Option<String>,
    /// Set when the target is done: the row is no longer refreshed.
    ended: Option<Duration>,
}

impl Live {
    /// Shown on stderr unless `quiet`.
    pub(crate) fn start(quiet: bool) -> Live {
        if quiet {
            return Live {
                shared: None,
                ticker: None,
            };
        }
        let tty = std::io::stderr().is_terminal();
        let shared = Arc::new(Shared {
            multi: tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            rows: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let ticker = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("progress".to_owned())
                .spawn(move || shared.tick_until_stopped())
                .ok()
        };
        Live {
            shared: Some(shared),
            ticker,
        }
    }

    /// A new row (a target of `matrix`, or the one of `run`), with the client's totals to poll.
    /// The previous row ends.
    pub(crate) fn target(
        &self,
        name: Option<&str>,
        stats: Option<Arc<crate::client::Stats>>,
        total: Option<usize>,
    ) {
        let Some(shared) = &self.shared else { return };
        let Ok(mut rows) = shared.rows.lock() else {
            return;
        };
        if let Some(previous) = rows.last_mut() {
            shared.end(previous);
        }
        let bar = shared.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(shared.style());
            bar
        });
        let row = Row {
            name: name.map(str::to_owned),
            bar,
            stats,
            started: Instant::now(),
            done: 0,
            total,
            last: None,
            ended: None,
        };
        shared.draw(&row);
        rows.push(row);
    }

    /// A check finished: counted on the current row and, on a terminal, printed above it.
    pub(crate) fn finished(&self, check: &crate::report::CheckReport, done: usize, total: usize) {
        let Some(shared) = &self.shared else { return };
        let Ok(mut rows) = shared.rows.lock() else {
            return;
        };
        let Some(row) = rows.last_mut() else { return };
        let line = format!("{} {}", check.status, check.full_name());
        if let Some(multi) = &shared.multi {
            let line = match &row.name {
                Some(name) => format!("{name}: {line}"),
                None => line.clone(),
            };
            let _ = multi.println(crate::output::terminal_line(&line));
        }
        row.done = done;
        row.total = Some(total);
        row.last = Some(line);
        shared.draw(row);
    }

    /// Stop the display: `run`'s row is cleared (the report follows), `matrix`'s rows stay as
    /// one line per target.
    pub(crate) fn finish(mut self, keep_rows: bool) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        shared.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
        let Ok(mut rows) = shared.rows.lock() else {
            return;
        };
        for row in rows.iter_mut() {
            shared.end(row);
            if let Some(bar) = &row.bar {
                if keep_rows {
                    bar.finish();
                } else {
                    bar.finish_and_clear();
                }
            }
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.stop.store(true, Ordering::Relaxed);
        }
    }
}

impl Shared {
    fn style(&self) -> ProgressStyle {
        // `wide_msg` takes the rest of the line and is cut to the terminal's width: a long
        // check name never wraps (a wrapped line leaves stale copies behind).
        let template = if self.color {
            "{spinner:.cyan} {wide_msg}"
        } else {
            "{spinner} {wide_msg}"
        };
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
    }

    fn tick_until_stopped(&self) {
        let mut last_plain = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(REFRESH);
            let Ok(rows) = self.rows.lock() else { return };
            let Some(row) = rows.iter().rev().find(|r| r.ended.is_none()) else {
                continue;
            };
            if self.multi.is_some() {
                self.draw(row);
            } else if last_plain.elapsed() >= PLAIN_EVERY {
                last_plain = Instant::now();
                crate::console::errln!("progress: {}", status_line(row));
            }
        }
    }

    /// Redraw `row` (a terminal only: off it, lines are printed by the ticker).
    fn draw(&self, row: &Row) {
        if let Some(bar) = &row.bar {
            bar.set_message(crate::output::terminal_line(&status_line(row)));
            bar.tick();
        }
    }

    fn end(&self, row: &mut Row) {
        if row.ended.is_none() {
            row.ended = Some(row.started.elapsed());
            self.draw(row);
        }
    }
}

/// `target: [3/18] elapsed 12s · waiting 2.1 s for the rate limit of token $FIXTURE_TOKEN_3 ·
/// 57 requests · last: pass clause::check`.
fn status_line(row: &Row) -> String {
    let mut parts = Vec::new();
    let counts = match row.total {
        Some(total) => format!("[{}/{total}]", row.done),
        None => format!("[{}]", row.done),
    };
    let elapsed = row.ended.unwrap_or_else(|| row.started.elapsed());
    parts.push(format!("{counts} elapsed {}", elapsed_text(elapsed)));
    // The wait before the request count: on a narrow terminal the end of the line is cut.
    if let Some(stats) = &row.stats {
        if row.ended.is_none()
            && let Some((caller, left)) = stats.current_wait()
        {
            parts.push(format!(
                "waiting {:.1} s for the rate limit of {caller}",
                left.as_secs_f64()
            ));
        }
        let requests = stats.requests.load(Ordering::Relaxed);
        parts.push(format!(
            "{requests} request{}",
            if requests == 1 { "" } else { "s" }
        ));
    }
    if row.ended.is_some() {
        parts.push("done".to_owned());
    } else if let Some(last) = &row.last {
        parts.push(format!("last: {last}"));
    }
    let line = parts.join(" · ");
    match &row.name {
        Some(name) => format!("{name}: {line}"),
        None => line,
    }
}

/// `12s`, `3m05s`: whole seconds, so that the number changes once a second.
fn elapsed_text(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}
