//! What the commands share: report files opened before a run, signals, the progress line
//! and writing a file.

use std::io::{IsTerminal, Seek, Write};
use std::path::{Path, PathBuf};

use super::CliError;
use crate::console::{err, errln};

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

/// The one-line progress of a command on stderr: redrawn in place on a terminal; off a
/// terminal printed line by line, or not at all.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    tty: bool,
    plain: bool,
}

impl Progress {
    /// Shown on a terminal only (`run`, `matrix`: a CI log gets the report instead).
    pub(crate) fn terminal_only() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            plain: false,
        }
    }

    /// Shown everywhere, as plain lines off a terminal (`mutants`: a long run's only sign).
    pub(crate) fn everywhere() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            plain: true,
        }
    }

    /// Show `line` in place of the previous one.
    pub(crate) fn show(&self, line: &str) {
        if self.tty {
            err!("\r\x1b[2K{line}");
        } else if self.plain {
            errln!("{line}");
        }
    }

    /// Clear the line before the command's own output.
    pub(crate) fn clear(&self) {
        if self.tty {
            err!("\r\x1b[2K");
        }
    }
}
