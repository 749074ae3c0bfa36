//! Is the target the API? The one probe a session makes before any check, and how its
//! errors are told.

use reqwest::Method;

use super::RunError;
use crate::client::{Client, Request, TransportError, shown};

/// Does the target answer like the API? One `GET /site` as the management token. What the
/// target said is redacted before it is part of an error (its error code may echo the token).
pub(super) async fn preflight(client: &Client) -> Result<(), RunError> {
    preflight_raw(client)
        .await
        .map_err(|err| redact_error(client, err))
}

/// `err` with every secret `client` knows replaced in the target's words.
fn redact_error(client: &Client, err: RunError) -> RunError {
    let secrets = client.secrets();
    match err {
        RunError::NotTheApi { url, detail } => RunError::NotTheApi {
            url: secrets.redact(&url),
            detail: secrets.redact(&detail),
        },
        RunError::Credentials { detail } => RunError::Credentials {
            detail: secrets.redact(&detail),
        },
        RunError::Unreachable(err) => RunError::Unreachable(err.redacted(secrets)),
        other => other,
    }
}

// The body is redacted before it is cut: a secret cut in two would not be recognised.
async fn preflight_raw(client: &Client) -> Result<(), RunError> {
    let req = Request::cma(Method::GET, "/site");
    let ex = match client.send(&req).await {
        Ok(ex) => ex,
        Err(err @ TransportError::TooLarge { .. }) => {
            return Err(RunError::NotTheApi {
                url: client.target().base_url.clone(),
                detail: err.to_string(),
            });
        }
        Err(err) => return Err(RunError::Unreachable(err)),
    };
    let url = ex.request.url.clone();
    if (300..400).contains(&ex.status) {
        return Err(RunError::NotTheApi {
            url,
            detail: format!(
                "{}: give the URL the API answers at as --base-url",
                ex.summary()
            ),
        });
    }
    if ex.json.is_none() {
        let content_type = ex.header("content-type").unwrap_or("(none)").to_owned();
        return Err(RunError::NotTheApi {
            url,
            detail: format!(
                "GET /site answered status {}, Content-Type {content_type}, a body that is not JSON: {}",
                ex.status,
                shown(&client.secrets().redact(&ex.body_text))
            ),
        });
    }
    if ex.status == 401 || ex.status == 403 {
        return Err(RunError::Credentials {
            detail: ex.summary(),
        });
    }
    if !ex.is_success() && ex.status < 500 && ex.error_code().is_none() {
        return Err(RunError::NotTheApi {
            url,
            detail: format!(
                "{} with no api_error code, body {}",
                ex.summary(),
                shown(&client.secrets().redact(&ex.body_text))
            ),
        });
    }
    Ok(())
}

/// Why nothing answered, said once: the URL and the innermost causes, without the HTTP
/// library's own wrapping of them (which repeats the URL).
pub(super) fn unreachable_text(err: &TransportError) -> String {
    match err {
        TransportError::Unreachable { url, message } => {
            let causes: Vec<&str> = message
                .split(": ")
                .filter(|part| {
                    !part.starts_with("error sending request")
                        && !part.starts_with("client error (")
                        && !part.contains(url.as_str())
                })
                .collect();
            let cause = if causes.is_empty() {
                message.as_str().to_owned()
            } else {
                causes.join(": ")
            };
            format!("nothing answered at {url}: {cause}")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use crate::engine::{RunError, Session};
    use crate::plan::{Limits, Plan, Remote, TargetKind};

    /// A target on 127.0.0.1 that writes `answer` on every connection.
    async fn raw_target(answer: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let _ = stream.write_all(answer.as_bytes()).await;
                    // A huge announced body that never comes: the client must not wait for it.
                    tokio::time::sleep(Duration::from_secs(20)).await;
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn a_redirect_or_a_huge_answer_at_preflight_is_not_the_api() {
        for (answer, expected) in [
            (
                "HTTP/1.1 301 Moved Permanently\r\nLocation: https://127.0.0.1:9/v2\r\nContent-Length: 0\r\n\r\n",
                "301 (redirect to https://127.0.0.1:9/v2, redirects are not followed)",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{",
                "-byte cap",
            ),
        ] {
            let plan = Plan {
                target: TargetKind::Remote(Remote::new(
                    raw_target(answer).await,
                    "engine-test-secret-81c4",
                )),
                limits: Limits {
                    max_requests: None,
                    deadline: Some(Duration::from_secs(10)),
                },
                ..Plan::default()
            };
            let Err(err) = Session::open(&plan).await else {
                panic!("the session opened");
            };
            assert!(matches!(err, RunError::NotTheApi { .. }), "{err}");
            assert!(err.to_string().contains(expected), "{err}");
        }
    }
}
