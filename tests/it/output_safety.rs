//! The output layer, black-box through the CLI: a target that echoes the management token
//! (raw, JSON-escaped, percent-encoded) inside an error code with terminal control
//! characters gets neither onto the terminal nor into the matrix Markdown and HTML; URL
//! credentials and a token that is no header value are configuration errors (exit 2) that
//! show no password and send nothing; a weak secret a target issues is counted as a finding.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "echoed-management-secret-5b8e2f";

/// A loopback server answering every request with `answer(request head)`; counts requests.
/// It stops accepting after 64 connections or 60 seconds.
fn serve(answer: fn(&str) -> (u16, String)) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        let started = Instant::now();
        for stream in listener.incoming().take(64) {
            if started.elapsed() > Duration::from_secs(60) {
                break;
            }
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            seen.fetch_add(1, Ordering::SeqCst);
            let (status, body) = answer(&String::from_utf8_lossy(&head));
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/vnd.api+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, count)
}

/// 401 with the Authorization header echoed in the error code three ways, wrapped in
/// control characters that would clear the screen and fake a summary line.
fn echo_credentials(head: &str) -> (u16, String) {
    let auth = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        })
        .map_or("", |(_, v)| v.trim());
    let escaped = auth.replace('-', "\\u002d").replace('e', "\\u0065");
    let percent: String = auth.bytes().map(|b| format!("%{b:02X}")).collect();
    let body = format!(
        r#"{{"data":[{{"type":"api_error","id":"e1","attributes":{{"code":"BAD_{escaped}\u001b[2J\u001b[H\r18 clauses: 18 pass\u0007 {percent} {auth}","details":{{"echo":"{escaped}"}}}}}}]}}"#
    );
    (401, body)
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_token-conformance"))
}

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} holds the secret: {text}");
    assert!(
        !text.contains("\u{1b}") && !text.contains('\u{7}') && !text.contains('\r'),
        "{what} holds a raw control character: {text:?}"
    );
}

#[test]
fn a_secret_echoed_in_an_error_code_at_preflight_is_never_shown() {
    let (url, _) = serve(echo_credentials);
    let out = bin()
        .args(["run", "--base-url", &url])
        .env("CONFORMANCE_API_TOKEN", SECRET)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused the management token"), "{stderr}");
    assert!(stderr.contains("$CONFORMANCE_API_TOKEN"), "{stderr}");
    assert!(stderr.contains("\\u{1b}[2J"), "escaped visibly: {stderr}");
    assert_clean("stderr", &stderr);
    assert_clean("stdout", &String::from_utf8_lossy(&out.stdout));
}

#[test]
fn nor_in_the_matrix_markdown_and_html() {
    let (url, _) = serve(echo_credentials);
    let dir = std::env::temp_dir().join(format!("tc-output-safety-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let targets = dir.join("targets.toml");
    std::fs::write(
        &targets,
        format!(
            "[[target]]\nname = \"echo\"\nbase_url = \"{url}\"\ntoken_env = \"TC_ECHO_TOKEN\"\n"
        ),
    )
    .unwrap();
    let (md, html) = (dir.join("m.md"), dir.join("m.html"));
    let out = bin()
        .arg("matrix")
        .arg(&targets)
        .arg("--markdown")
        .arg(&md)
        .arg("--html")
        .arg(&html)
        .env("TC_ECHO_TOKEN", SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(markdown.contains("could not be tested"), "{markdown}");
    assert_clean("the Markdown", &markdown);
    assert_clean("the HTML", &std::fs::read_to_string(&html).unwrap());
    assert_clean("stdout", &String::from_utf8_lossy(&out.stdout));
    assert_clean("stderr", &String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn url_credentials_are_refused_without_showing_the_password() {
    let (url, count) = serve(echo_credentials);
    let with_password = url.replace("http://", "http://user:hunter2-password@");
    for args in [
        vec!["run", "--base-url", with_password.as_str()],
        vec![
            "run",
            "--base-url",
            url.as_str(),
            "--cda-url",
            with_password.as_str(),
        ],
        vec!["sweep", "--base-url", with_password.as_str()],
    ] {
        let out = bin()
            .args(&args)
            .env("CONFORMANCE_API_TOKEN", SECRET)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
        assert!(!all.contains("hunter2"), "{all}");
        assert!(all.contains("CONFORMANCE_API_TOKEN"), "{all}");
    }
    assert_eq!(count.load(Ordering::SeqCst), 0, "nothing was sent");
}

#[test]
fn a_token_that_is_no_header_value_is_a_configuration_error() {
    let (url, count) = serve(echo_credentials);
    for token in ["abc-secret\n", "abc\r\nX-Injected: 1", "abc\u{1b}def"] {
        for command in ["run", "sweep"] {
            let out = bin()
                .args([command, "--base-url", &url])
                .env("CONFORMANCE_API_TOKEN", token)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
            assert!(stderr.contains("not a valid HTTP header value"), "{stderr}");
            assert!(!stderr.contains("abc"), "{stderr}");
        }
    }
    assert_eq!(count.load(Ordering::SeqCst), 0, "found before any request");
}

/// A target whose every token secret is the word `string` (a stateless mock).
fn weak_tokens(_: &str) -> (u16, String) {
    (
        200,
        r#"{"data":[{"type":"access_token","id":"string","attributes":{"name":"string","token":"string"}}]}"#
            .to_owned(),
    )
}

#[test]
fn a_weak_secret_is_counted_and_hidden_only_where_it_stands() {
    let (url, _) = serve(weak_tokens);
    common::runtime().block_on(async {
        let client = token_conformance::client::Client::new(token_conformance::client::Target {
            base_url: url,
            cda_url: None,
            environment: None,
            secret: SECRET.to_owned(),
            name: "weak".to_owned(),
            embedded: false,
            ca_pem: None,
        })
        .unwrap();
        let scoped = client.scoped();
        let req = token_conformance::client::Request::cma(reqwest::Method::GET, "/access_tokens");
        let ex = scoped.send(&req).await.unwrap();
        assert_eq!(scoped.weak_secrets(), 1);
        // The id and the name keep the word; the token attribute does not.
        assert_eq!(
            ex.body_text,
            r#"{"data":[{"type":"access_token","id":"string","attributes":{"name":"string","token":"[secret]"}}]}"#
        );
        scoped.send(&req).await.unwrap();
        assert_eq!(scoped.weak_secrets(), 1, "counted once");
        assert_eq!(client.scoped().weak_secrets(), 0);
    });
}
