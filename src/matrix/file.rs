//! The targets file: its format, its checks, and what a target is. Secrets are never in the
//! file, only the name of the variable that holds one; the [`Debug`] of a loaded file prints
//! `[secret]`.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::checks::Profile;
use crate::client::normalize_url;
use crate::faults::Fault;

/// What is wrong with a targets file. Every message names the file, and the target (by name,
/// or by position when it has none) and the field concerned; a token's value is never shown.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// The file could not be read.
    #[error("{}: cannot read the targets file: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML at all.
    #[error("{}:{line}: not valid TOML: {message}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What the parser says.
        message: String,
    },
    /// A field is missing, unknown, of the wrong type, or has a bad value.
    #[error("{}:{line}: {target}: {message}", file.display())]
    Field {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// `target "name"`, `target #2` when it has no name, or `top level`.
        target: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// No `[[target]]` table.
    #[error("{}: no targets: the file needs at least one [[target]] table", file.display())]
    NoTargets {
        /// The file.
        file: PathBuf,
    },
    /// Two targets share a name.
    #[error("{}:{line}: target {name:?}: name is already used by the target at line {first}", file.display())]
    DuplicateName {
        /// The file.
        file: PathBuf,
        /// 1-based line of the second one.
        line: usize,
        /// The name.
        name: String,
        /// 1-based line of the first one.
        first: usize,
    },
    /// Both `base_url` and `embedded = true`.
    #[error(
        "{}:{line}: target {name:?}: base_url and embedded = true are both set; a target is either a remote server (base_url) or the embedded reference server (embedded = true)",
        file.display()
    )]
    BothKinds {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The target.
        name: String,
    },
    /// Neither `base_url` nor `embedded = true`.
    #[error(
        "{}:{line}: target {name:?}: neither base_url nor embedded = true is set; give the server's base_url (and token_env), or embedded = true",
        file.display()
    )]
    NeitherKind {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The target.
        name: String,
    },
    /// A name in `faults` that is no fault.
    #[error(
        "{}:{line}: target {name:?}: faults: unknown fault {fault:?} (`token-conformance mutants --list` lists them)",
        file.display()
    )]
    UnknownFault {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The target.
        name: String,
        /// The unknown name.
        fault: String,
    },
}

/// A target's secret: shown by `Debug` as `[secret]`, never printed.
#[derive(Clone)]
pub struct Secret(pub(super) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[secret]")
    }
}

/// Where a target is.
#[derive(Debug, Clone)]
pub enum TargetKind {
    /// A fresh embedded reference server, with these faults switched on.
    Embedded {
        /// Its faults (none: the conformant server).
        faults: Vec<Fault>,
    },
    /// A server somewhere else.
    Remote {
        /// CMA base URL.
        base_url: String,
        /// CDA URL.
        cda_url: Option<String>,
        /// `X-Environment`.
        environment: Option<String>,
        /// The variable the secret came from.
        token_env: String,
        /// The management token; `None` when the variable is not set, and the target is then
        /// shown as not tested (see [`MatrixTarget::not_tested`]).
        secret: Option<Secret>,
    },
}

/// One `[[target]]` of the file.
#[derive(Debug, Clone)]
pub struct MatrixTarget {
    /// Its name: a column of the matrix.
    pub name: String,
    /// The line of its `[[target]]` table.
    pub line: usize,
    /// Where it is.
    pub kind: TargetKind,
    /// Its `profile` key; `None` takes the `--profile` of the command line.
    pub profile: Option<Profile>,
}

impl MatrixTarget {
    /// What it is, in words: `embedded reference server with fault `x``, or its base URL.
    pub fn description(&self) -> String {
        match &self.kind {
            TargetKind::Embedded { faults } if faults.is_empty() => {
                "embedded reference server".to_owned()
            }
            TargetKind::Embedded { faults } => format!(
                "embedded reference server with fault{} {}",
                if faults.len() == 1 { "" } else { "s" },
                faults
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TargetKind::Remote { base_url, .. } => base_url.clone(),
        }
    }

    /// Why the target cannot be run at all, known before any request: its token variable is
    /// not set. Its column then says so, and the other targets still run.
    pub fn not_tested(&self) -> Option<String> {
        match &self.kind {
            TargetKind::Remote {
                token_env,
                secret: None,
                ..
            } => Some(format!(
                "the environment variable {token_env} (token_env) is not set or is empty; export the target's management token in it"
            )),
            _ => None,
        }
    }
}

/// A parsed targets file.
#[derive(Debug, Clone)]
pub struct MatrixFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its targets, in the file's order.
    pub targets: Vec<MatrixTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    target: Vec<Spanned<RawTarget>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: String,
    base_url: Option<String>,
    cda_url: Option<String>,
    environment: Option<String>,
    token_env: Option<String>,
    embedded: Option<bool>,
    faults: Option<Vec<String>>,
    profile: Option<String>,
}

/// The same file without the field rules: only to name the target an error is in.
#[derive(Deserialize)]
struct LooseFile {
    #[serde(default)]
    target: Vec<Spanned<toml::Table>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Which target of the file `span` falls in, as `target "name"` or `target #n`: the last
/// `[[target]]` header at or before it, unless the header of another table comes in between.
fn target_at(text: &str, span: &Range<usize>) -> Option<String> {
    let loose: LooseFile = toml::from_str(text).ok()?;
    let (index, table) = loose
        .target
        .iter()
        .enumerate()
        .rfind(|(_, t)| t.span().start <= span.start)?;
    let between = text
        .get(table.span().end..span.start.min(text.len()))
        .unwrap_or("");
    let other_table = between.lines().skip(1).any(|line| {
        let line = line.trim_start();
        line.starts_with('[') && !line.starts_with("[target.") && !line.starts_with("[[target.")
    });
    if other_table {
        return None;
    }
    Some(
        match table.get_ref().get("name").and_then(toml::Value::as_str) {
            Some(name) => format!("target {name:?}"),
            None => format!("target #{}", index + 1),
        },
    )
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl MatrixFile {
    /// `profile` (the command line's `--profile`) for every target without a `profile` key.
    pub fn with_profile(mut self, profile: Profile) -> MatrixFile {
        for target in &mut self.targets {
            target.profile.get_or_insert(profile);
        }
        self
    }

    /// Read and check `path`; token secrets come from the process environment.
    pub fn load(path: &Path) -> Result<MatrixFile, MatrixError> {
        let text = std::fs::read_to_string(path).map_err(|source| MatrixError::Read {
            file: path.to_owned(),
            source,
        })?;
        MatrixFile::parse(&text, path, &|name| std::env::var(name).ok())
    }

    /// Check the text of a targets file read from `path` (used in messages only); `env`
    /// looks up the variables that `token_env` names.
    pub fn parse(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<MatrixFile, MatrixError> {
        let file = path.to_owned();
        // Syntax first, so that a broken file is reported as such, not as a missing field.
        if let Err(err) = text.parse::<toml::Table>() {
            return Err(MatrixError::Syntax {
                line: err.span().map_or(1, |s| line_of(text, s.start)),
                message: err.message().trim().to_owned(),
                file,
            });
        }
        let raw: RawFile = toml::from_str(text).map_err(|err| {
            let span = err.span().unwrap_or(0..0);
            MatrixError::Field {
                line: line_of(text, span.start),
                target: target_at(text, &span).unwrap_or_else(|| "top level".to_owned()),
                message: err.message().trim().to_owned(),
                file: file.clone(),
            }
        })?;
        if raw.target.is_empty() {
            return Err(MatrixError::NoTargets { file });
        }
        let mut targets: Vec<MatrixTarget> = Vec::with_capacity(raw.target.len());
        for spanned in raw.target {
            let line = line_of(text, spanned.span().start);
            let raw = spanned.into_inner();
            let name = raw.name;
            let field = |message: String| MatrixError::Field {
                file: file.clone(),
                line,
                target: format!("target {name:?}"),
                message,
            };
            if !valid_name(&name) {
                return Err(field(
                    "name: must be 1 to 64 ASCII letters, digits, '-', '_' or '.' (it names a column and an anchor of the report)".to_owned(),
                ));
            }
            if let Some(first) = targets.iter().find(|t| t.name == name) {
                return Err(MatrixError::DuplicateName {
                    file,
                    line,
                    name,
                    first: first.line,
                });
            }
            let profile = match raw.profile.as_deref() {
                None => None,
                Some(text) => Some(<Profile as clap::ValueEnum>::from_str(text, false).map_err(
                    |_| {
                        field(format!(
                            "profile: unknown profile {text:?} (documented, strict or staging)"
                        ))
                    },
                )?),
            };
            let embedded = raw.embedded.unwrap_or(false);
            let kind = match (embedded, raw.base_url) {
                (true, Some(_)) => return Err(MatrixError::BothKinds { file, line, name }),
                (false, None) => return Err(MatrixError::NeitherKind { file, line, name }),
                (true, None) => {
                    for (key, set) in [
                        ("cda_url", raw.cda_url.is_some()),
                        ("token_env", raw.token_env.is_some()),
                        ("environment", raw.environment.is_some()),
                    ] {
                        if set {
                            return Err(field(format!(
                                "{key}: applies only to a remote target (base_url); the embedded server has its own"
                            )));
                        }
                    }
                    let mut faults = Vec::new();
                    for fault in raw.faults.unwrap_or_default() {
                        match fault.parse::<Fault>() {
                            Ok(f) if !faults.contains(&f) => faults.push(f),
                            Ok(_) => {}
                            Err(_) => {
                                return Err(MatrixError::UnknownFault {
                                    file,
                                    line,
                                    name,
                                    fault,
                                });
                            }
                        }
                    }
                    TargetKind::Embedded { faults }
                }
                (false, Some(base_url)) => {
                    if raw.faults.is_some() {
                        return Err(field(
                            "faults: apply only to the embedded reference server (embedded = true)"
                                .to_owned(),
                        ));
                    }
                    let base_url = normalize_url("base", &base_url)
                        .map_err(|err| field(format!("base_url: {err}")))?;
                    let cda_url = raw
                        .cda_url
                        .map(|u| normalize_url("CDA", &u))
                        .transpose()
                        .map_err(|err| field(format!("cda_url: {err}")))?;
                    let Some(token_env) = raw.token_env else {
                        return Err(field(
                            "missing field `token_env`: the name of the environment variable that holds the target's management token".to_owned(),
                        ));
                    };
                    if token_env.trim().is_empty() {
                        return Err(field(
                            "token_env: must name an environment variable".to_owned(),
                        ));
                    }
                    // A missing token is not a mistake in the file: that target is shown as not
                    // tested, and the others still run.
                    let secret = env(&token_env).filter(|s| !s.trim().is_empty());
                    if secret.as_ref().is_some_and(|secret| {
                        reqwest::header::HeaderValue::from_str(&format!("Bearer {secret}")).is_err()
                    }) {
                        return Err(field(format!(
                            "token_env: the value of {token_env} is not a valid HTTP header value (a control character, \
                             a line break or a character outside visible ASCII; a trailing newline from a file, say); \
                             the value is not shown"
                        )));
                    }
                    TargetKind::Remote {
                        base_url,
                        cda_url,
                        environment: raw.environment,
                        token_env,
                        secret: secret.map(Secret),
                    }
                }
            };
            targets.push(MatrixTarget {
                name,
                line,
                kind,
                profile,
            });
        }
        Ok(MatrixFile {
            path: path.to_owned(),
            targets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
