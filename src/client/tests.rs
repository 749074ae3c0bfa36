#![allow(clippy::unwrap_used)]

use std::time::Instant;

use super::transport::EVIDENCE_BYTES;
use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn a_huge_error_code_is_not_quoted_whole() {
    // Every message that names an answer quotes its summary: preflight errors too.
    let code = format!("{}$CAFE0123456789abcdef", " ".repeat(4 << 20));
    let ex = Exchange {
        request: SentRequest {
            method: "GET".to_owned(),
            url: "http://127.0.0.1:1/site".to_owned(),
            headers: Vec::new(),
            body: None,
        }
        .into(),
        status: 401,
        headers: Vec::new(),
        body_text: String::new().into(),
        json: Some(serde_json::json!({"data": [{"attributes": {"code": code}}]})),
        elapsed: Duration::ZERO,
        attempts: 1,
    };
    let summary = ex.summary();
    assert!(summary.len() < 300, "{} bytes", summary.len());
    assert!(!summary.contains("CAFE"), "{summary}");
    let short = Exchange {
        json: Some(serde_json::json!({"data": [{"attributes": {"code": "INVALID_FORMAT"}}]})),
        ..ex
    };
    assert_eq!(short.summary(), "GET /site → 401 INVALID_FORMAT");
}

/// A one-trick server on 127.0.0.1: every connection gets `answer` written to it.
async fn serve<F, Fut>(answer: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                answer(stream).await;
            });
        }
    });
    url
}

fn client(url: &str, timeout: Duration) -> Client {
    Client::with_timeout(
        Target {
            base_url: url.to_owned(),
            cda_url: None,
            environment: None,
            secret: "unit-test-secret-5f2c9a".to_owned(),
            name: "unit".to_owned(),
            embedded: false,
            ca_pem: None,
        },
        timeout,
    )
    .unwrap()
}

fn get() -> Request {
    Request::cma(reqwest::Method::GET, "/site")
}

#[tokio::test]
async fn an_endless_body_stops_at_the_cap_and_is_a_failure() {
    let url = serve(|mut stream| async move {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = format!("10000\r\n{}\r\n", "[".repeat(0x10000));
        // Endless, but bounded here so a client that never stops cannot hang the test.
        for _ in 0..4096 {
            if stream.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await;
    let started = Instant::now();
    let err = client(&url, Duration::from_secs(20))
        .send_once(&get())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(15));
    let TransportError::TooLarge { cap, partial, .. } = &err else {
        panic!("not TooLarge: {err}");
    };
    assert_eq!(*cap, MAX_BODY_BYTES);
    assert_eq!(partial.status, 200);
    assert!(partial.body_text.len() <= EVIDENCE_BYTES);
    assert!(
        err.to_string()
            .contains(&format!("exceeded the {MAX_BODY_BYTES}-byte cap")),
        "{err}"
    );
}

#[tokio::test]
async fn an_announced_huge_body_is_not_read_at_all() {
    let url = serve(|mut stream| async move {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{";
        let _ = stream.write_all(head.as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let started = Instant::now();
    let err = client(&url, Duration::from_secs(20))
        .send_once(&get())
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::TooLarge { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_body_that_drips_is_cut_off_by_the_request_timeout() {
    let url = serve(|mut stream| async move {
        let head =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for _ in 0..1000 {
            if stream.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let started = Instant::now();
    let err = client(&url, Duration::from_secs(1))
        .send_once(&get())
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_redirect_is_the_answer_and_says_so() {
    let url = serve(|mut stream| async move {
        let answer = "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.2:9/elsewhere\r\nContent-Length: 0\r\n\r\n";
        let _ = stream.write_all(answer.as_bytes()).await;
    })
    .await;
    let ex = client(&url, Duration::from_secs(5))
        .send(&get())
        .await
        .unwrap();
    assert_eq!(ex.status, 307);
    assert!(
        ex.summary().ends_with(
            "→ 307 (redirect to http://127.0.0.2:9/elsewhere, redirects are not followed)"
        ),
        "{}",
        ex.summary()
    );
}

#[tokio::test]
async fn a_stop_ends_waiting_requests_of_the_handles_it_covers() {
    let url = serve(|_stream| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let client = client(&url, Duration::from_secs(20));
    let cleanup = client.uncapped();
    let (check, cleaning) = (client.clone(), cleanup.clone());
    let in_check = tokio::spawn(async move { check.send(&get()).await });
    let in_cleanup = tokio::spawn(async move { cleaning.send(&get()).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    client.stop(StopLevel::Checks, "the run's deadline of 1s passed");
    let err = in_check.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, TransportError::Stopped(r) if r == "the run's deadline of 1s passed"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !in_cleanup.is_finished(),
        "cleanup goes on at the first level"
    );
    assert!(matches!(
        client.send_once(&get()).await,
        Err(TransportError::Stopped(_))
    ));
    client.stop(StopLevel::All, "cleanup did not finish within 30s");
    let err = in_cleanup.await.unwrap().unwrap_err();
    assert!(matches!(err, TransportError::Stopped(_)), "{err}");
    let state = client.stop_state();
    assert_eq!(state.reason, "cleanup did not finish within 30s");
    assert_eq!(state.cause, "the run's deadline of 1s passed");
}

fn target(base_url: &str, secret: &str) -> Target {
    Target {
        base_url: base_url.to_owned(),
        cda_url: None,
        environment: None,
        secret: secret.to_owned(),
        name: "t".to_owned(),
        embedded: false,
        ca_pem: None,
    }
}

#[test]
fn credentials_in_a_url_are_refused_and_never_shown() {
    for url in [
        "http://user:hunter2-pass@127.0.0.1:3000",
        "http://:hunter2-pass@127.0.0.1:3000/cma",
        "https://hunter2-pass@staging.example",
        "http:hunter2-pass@127.0.0.1",
        "http://user:hunter2 pass@host",
        "http://@127.0.0.1:3000",
    ] {
        let err = normalize_url("base", url).err();
        let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(
            matches!(err, Some(ClientError::Userinfo { .. })),
            "{url}: {text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("CONFORMANCE_API_TOKEN"), "{text}");
    }
    assert!(normalize_url("base", "http://127.0.0.1:3000/").is_ok());
    assert!(normalize_url("base", "http://127.0.0.1:3000/a@b").is_ok());
    let err = Client::new(Target {
        cda_url: Some("http://u:hunter2-pass@127.0.0.1:1".to_owned()),
        ..target("http://127.0.0.1:1", "secret")
    })
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(err.contains("CDA URL") && !err.contains("hunter2"), "{err}");
}

#[test]
fn a_token_that_is_no_header_value_is_refused_before_any_request() {
    for (secret, words) in [
        ("abc\n", "a line break"),
        ("abc\r\ndef", "a line break"),
        ("ab\u{1b}c", "a control character"),
        ("ab\u{7f}c", "a control character"),
        ("ab\u{0}", "a control character"),
    ] {
        let err = Client::new(target("http://127.0.0.1:1", secret))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("not a valid HTTP header value") && err.contains(words),
            "{secret:?}: {err}"
        );
        assert!(!err.contains("abc"), "{err}");
    }
    assert!(Client::new(target("http://127.0.0.1:1", "abc-DEF_123.~+/=")).is_ok());
}

#[test]
fn recorded_requests_are_redacted_and_terminal_safe() {
    let client = Client::new(target("http://127.0.0.1:1", "mgmt-secret-0a1b2c3d4e5f")).ok();
    let Some(client) = client else {
        panic!("a client");
    };
    client
        .secrets()
        .register("fixture-secret-9f8e7d6c5b", "$FIXTURE_TOKEN_5");
    let req = Request::cma(reqwest::Method::PUT, "/access_tokens/5 x\u{1b}y")
        .json(serde_json::json!({"name": "a fixture-secret-9f8e7d6c5b \u{9b}\u{202e} mgmt-secret-0a1b2c3d4e5f"}))
        .auth(Auth::Token {
            secret: "fixture-secret-9f8e7d6c5b".to_owned(),
            label: "$FIXTURE_TOKEN_5".to_owned(),
        });
    let sent = client.recorded(&req).ok();
    let Some(sent) = sent else {
        panic!("recorded");
    };
    let all = format!("{sent:?}");
    assert!(
        !all.contains("fixture-secret") && !all.contains("mgmt-secret"),
        "{all}"
    );
    assert_eq!(sent.url, "http://127.0.0.1:1/access_tokens/5%20x%1By");
    assert_eq!(
        sent.body.as_deref(),
        Some(r#"{"name":"a $FIXTURE_TOKEN_5 \u009b\u202e $CONFORMANCE_API_TOKEN"}"#)
    );
    assert!(sent.headers.contains(&(
        "Authorization".to_owned(),
        "Bearer $FIXTURE_TOKEN_5".to_owned()
    )));
}

#[test]
fn only_an_https_url_needs_tls() {
    let target = |base: &str, cda: Option<&str>| Target {
        base_url: base.to_owned(),
        cda_url: cda.map(str::to_owned),
        environment: None,
        secret: "s".to_owned(),
        name: "t".to_owned(),
        embedded: false,
        ca_pem: None,
    };
    assert!(!needs_tls(&target("http://127.0.0.1:1", None)));
    assert!(!needs_tls(&target(
        "http://127.0.0.1:1",
        Some("http://127.0.0.1:2")
    )));
    assert!(needs_tls(&target("HTTPS://127.0.0.1:1", None)));
    assert!(needs_tls(&target(
        "http://127.0.0.1:1",
        Some("https://127.0.0.1:2")
    )));
}

#[tokio::test]
async fn an_exchange_redacted_when_read_hides_secrets_learned_after_it() {
    // The answer echoes the management token and shows a token's secret: both are hidden
    // when the exchange is read, and so is a secret the run learned only after it.
    let url = serve(|mut stream| async move {
        let body = r#"{"data":{"attributes":{"echo":"unit-test-secret-5f2c9a","token":"Tk9pQ7vXr2LmW8sZ","note":"late-secret-3Jq8Zr5Wn1Xb"}}}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
    })
    .await;
    let client = client(&url, Duration::from_secs(20));
    let req = Request::cma(reqwest::Method::PUT, "/access_tokens/7")
        .json(serde_json::json!({"name": "late-secret-3Jq8Zr5Wn1Xb"}));
    let ex = client.send_once(&req).await.unwrap();
    client
        .secrets()
        .register("late-secret-3Jq8Zr5Wn1Xb", "$FIXTURE_TOKEN_9");
    let shown = format!(
        "{} {:?} {:?} {:?} {:?}",
        &*ex.body_text, ex.request.url, ex.request.headers, ex.request.body, ex.body_text
    );
    for secret in [
        "unit-test-secret-5f2c9a",
        "Tk9pQ7vXr2LmW8sZ",
        "late-secret-3Jq8Zr5Wn1Xb",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(
        ex.request.headers.contains(&(
            "Authorization".to_owned(),
            "Bearer $CONFORMANCE_API_TOKEN".to_owned()
        )),
        "{:?}",
        ex.request.headers
    );
    assert!(
        ex.body_text.contains("$FIXTURE_TOKEN_9"),
        "{}",
        &*ex.body_text
    );
    // The checks still read the real values.
    assert_eq!(
        ex.json.as_ref().unwrap().pointer("/data/attributes/token"),
        Some(&serde_json::json!("Tk9pQ7vXr2LmW8sZ"))
    );
}

/// A server whose every answer is `answer` (bytes), then closes the connection.
async fn answers(answer: Vec<u8>) -> String {
    let answer = Arc::new(answer);
    serve(move |mut stream| {
        let answer = Arc::clone(&answer);
        async move {
            let _ = stream.write_all(&answer).await;
            let _ = stream.shutdown().await;
        }
    })
    .await
}

#[tokio::test]
async fn an_answer_that_is_not_valid_http_is_malformed_with_the_request_as_evidence() {
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: [(&str, Vec<u8>); 5] = [
        (
            "101 headers",
            format!("HTTP/1.1 200 OK\r\n{many}Content-Length: 0\r\n\r\n").into_bytes(),
        ),
        (
            "a header byte 0x07",
            b"HTTP/1.1 200 OK\r\nX-Bell: a\x07b\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ),
        (
            "a 2 MB header",
            format!(
                "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
                "a".repeat(2 << 20)
            )
            .into_bytes(),
        ),
        (
            "a Content-Length longer than the body",
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{}"
                .to_vec(),
        ),
        (
            "a chunk size that overflows",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\nx\r\n"
                .to_vec(),
        ),
    ];
    for (what, answer) in cases {
        let url = answers(answer).await;
        let err = client(&url, Duration::from_secs(5))
            .send_once(&get())
            .await
            .unwrap_err();
        let TransportError::Malformed {
            attempts, partial, ..
        } = &err
        else {
            panic!("{what}: not Malformed: {err}");
        };
        assert_eq!(*attempts, 1, "{what}");
        assert_eq!(partial.request.method, "GET", "{what}");
        assert!(partial.request.url.ends_with("/site"), "{what}");
        assert!(
            err.to_string().contains("is not valid HTTP/1.1: ")
                && err.to_string().ends_with("(on its only attempt)"),
            "{what}: {err}"
        );
        assert!(!err.to_string().contains("unit-test-secret"), "{err}");
    }
}

#[tokio::test]
async fn malformed_on_every_attempt_is_malformed_and_no_answer_is_not() {
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let url =
        answers(format!("HTTP/1.1 200 OK\r\n{many}Content-Length: 0\r\n\r\n").into_bytes()).await;
    let err = client(&url, Duration::from_secs(5))
        .send(&get())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TransportError::Malformed { attempts, .. } if *attempts == MALFORMED_ATTEMPTS),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with(&format!("(on all {MALFORMED_ATTEMPTS} attempts)")),
        "{err}"
    );
    // A connection closed before any byte of an answer: not malformed, a dropped connection.
    let url = answers(Vec::new()).await;
    let err = client(&url, Duration::from_secs(5))
        .send(&get())
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::GaveUp { .. }), "{err}");
    // Nothing listening: unreachable.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = client(&url, Duration::from_secs(5))
        .send(&get())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::Unreachable { .. } | TransportError::GaveUp { .. }
        ),
        "{err}"
    );
}

#[test]
fn a_body_with_more_containers_than_the_cap_is_not_parsed() {
    let body = format!("[{}0]", r#"{"":0},"#.repeat(10));
    // Eleven containers: the array and ten objects.
    assert_eq!(json_within(body.as_bytes(), 10), Err(11));
    let parsed = json_within(body.as_bytes(), 11).unwrap().unwrap();
    assert_eq!(parsed.as_array().map(Vec::len), Some(11));
    assert_eq!(json_within(b"not json", 10), Ok(None));
    assert_eq!(json_within(b"{}", 0), Err(1));
}

#[tokio::test]
async fn an_amplifying_json_body_is_shown_as_text_with_a_note_not_parsed() {
    // About 1.4 MB: 200,000 objects, twice the cap.
    let body = format!("[{}0]", r#"{"":0},"#.repeat(2 * MAX_JSON_CONTAINERS));
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let url = answers(answer.into_bytes()).await;
    let ex = client(&url, Duration::from_secs(10))
        .send_once(&get())
        .await
        .unwrap();
    assert!(ex.json.is_none());
    assert!(
        ex.body_text.len() < EVIDENCE_BYTES + 300,
        "{}",
        ex.body_text.len()
    );
    let note = format!(
        "[{} bytes, {} objects and arrays: over the {MAX_JSON_CONTAINERS} the suite parses as JSON, so not parsed; its start:] [{{\"\":0}},",
        body.len(),
        2 * MAX_JSON_CONTAINERS + 1
    );
    assert!(
        ex.body_text.starts_with(&note),
        "{}",
        crate::text::truncate(&ex.body_text, 300)
    );
}

#[tokio::test]
async fn a_request_sent_once_is_not_retried_and_spends_no_retry() {
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let url = serve(move |mut stream| {
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let body = "{\"data\":[]}";
            let head = format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    })
    .await;
    let client = client(&url, Duration::from_secs(5));
    let budget = || {
        client
            .stats()
            .retry_budget
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    let before = budget();
    let once = client.send(&get().sent_once()).await.unwrap();
    assert_eq!(once.status, 503);
    assert_eq!(once.attempts, 1);
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(budget(), before, "a request sent once spends no retry");
    // The same request as usual is retried, and its retries come out of the budget.
    let _ = client.send(&get()).await;
    assert!(count.load(std::sync::atomic::Ordering::SeqCst) > 2);
    assert!(budget() < before);
}

#[tokio::test]
async fn an_exchange_without_its_body_keeps_the_rest_and_says_how_big_the_body_was() {
    let body = format!("{{\"data\":\"{}\"}}", "x".repeat(5000));
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let url = answers(answer.into_bytes()).await;
    let ex = client(&url, Duration::from_secs(5))
        .send(&get())
        .await
        .unwrap();
    assert_eq!(ex.body_len(), body.len());
    assert!(ex.json.is_some());
    let slim = ex.without_body("a test");
    assert_eq!(slim.status, 200);
    assert_eq!(slim.header("content-type"), Some("application/json"));
    assert!(slim.json.is_none());
    assert_eq!(
        &*slim.body_text,
        format!("(a body of {} bytes, not kept: a test)", body.len())
    );
}
