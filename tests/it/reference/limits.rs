//! The reference server's bounds on connections: idle and half-sent connections beyond the
//! cap do not delay a normal client (CMA, CDA and TLS), a request head or body that does not
//! arrive in time and an idle kept-alive connection are closed after their timeouts, a
//! connection with a request in progress is never the one closed, and `serve` documents and
//! applies the limits.
//!
//! Every flood stays far below common descriptor limits (a few hundred sockets per test), and
//! every wait is bounded.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use token_conformance::reference::{
    DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, ReferenceServer,
    ServerConfig, ServerError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "limits-management-secret-7c1d";
/// The cap in the flood tests: small, so that a flood well above it stays small too.
const CAP: usize = 64;
/// Attackers of each kind in a flood: above the cap.
const N: usize = 100;
/// What the issue asks of a normal client's answer during a flood.
const ONE_SECOND: Duration = Duration::from_secs(1);

async fn start(config: ServerConfig) -> ReferenceServer {
    ReferenceServer::start(ServerConfig {
        admin_secret: Some(SECRET.to_owned()),
        rate_limit: None,
        ..config
    })
    .await
    .unwrap()
}

/// Limits whose timeouts cannot fire during a flood: only the cap is at work.
fn flood_config() -> ServerConfig {
    ServerConfig {
        max_connections: CAP,
        header_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    }
}

fn addr(url: &str) -> String {
    url.split_once("://").unwrap().1.to_owned()
}

fn client(ca_pem: Option<&str>) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10));
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).unwrap();
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().unwrap()
}

const CMA_GET: &str = "GET /site HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\
    X-Api-Version: 3\r\nAuthorization: Bearer limits-management-secret-7c1d\r\n\r\n";

fn cda_post() -> String {
    let body = json!({"query": "{ _site { locales } }"}).to_string();
    format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {SECRET}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Which listener a flood goes to, and how a normal client asks it something.
#[derive(Debug, Clone, Copy)]
enum Api {
    Cma,
    Cda,
}

impl Api {
    fn raw_request(self) -> String {
        match self {
            Api::Cma => CMA_GET.to_owned(),
            Api::Cda => cda_post(),
        }
    }

    fn url(self, server: &ReferenceServer) -> String {
        match self {
            Api::Cma => server.cma_url(),
            Api::Cda => server.cda_url(),
        }
    }

    /// A fresh client's request (a new connection), timed from before the connect to the
    /// whole answer.
    async fn normal_request(self, server: &ReferenceServer) -> Duration {
        let http = client(server.tls_ca_pem());
        let started = Instant::now();
        let request = match self {
            Api::Cma => http
                .get(format!("{}/site", server.cma_url()))
                .header("accept", "application/json")
                .header("x-api-version", "3"),
            Api::Cda => http
                .post(format!("{}/", server.cda_url()))
                .header("content-type", "application/json")
                .body(json!({"query": "{ _site { locales } }"}).to_string()),
        };
        let response = request.bearer_auth(SECRET).send().await.unwrap();
        assert_eq!(response.status(), 200, "{self:?}");
        response.bytes().await.unwrap();
        started.elapsed()
    }
}

/// The status of one answer read from `stream` (head, then a `Content-Length` body), or `None`
/// when the connection closed first.
async fn read_answer(stream: &mut TcpStream) -> Option<u16> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= head_end + 4 + length {
                return head.get(9..12).and_then(|code| code.parse().ok());
            }
        }
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            Ok(_) => return None,
            Err(_) => panic!("no answer and no close within 10 s"),
        }
    }
}

/// Waits (at most `limit`) for the server to close `stream`; returns how long that took from
/// `since` and the bytes that came before the close, or `None` if it stayed open.
async fn closed_within(
    stream: &mut TcpStream,
    since: Instant,
    limit: Duration,
) -> Option<(Duration, Vec<u8>)> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some((since.elapsed(), got)),
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            Err(_) => return None,
        }
    }
}

/// Whether the server has closed `stream`, without waiting.
fn is_closed(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.try_read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => err.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// How many of `streams` the server still holds open once closes have settled.
async fn still_open(streams: &[TcpStream]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let open = streams.iter().filter(|s| !is_closed(s)).count();
        if open <= CAP || Instant::now() > deadline {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// N idle connections (half of them silent since the connect, half kept alive after one
/// answered request; over TLS all silent) and N with a half-sent request head (over TLS, a
/// half-sent ClientHello).
async fn flood(addr: &str, api: Api, plain_http: bool) -> Vec<TcpStream> {
    let mut attackers = Vec::new();
    for i in 0..N {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        if plain_http && i % 2 == 1 {
            stream
                .write_all(api.raw_request().as_bytes())
                .await
                .unwrap();
            assert_eq!(read_answer(&mut stream).await, Some(200), "{api:?}");
        }
        attackers.push(stream);
    }
    for _ in 0..N {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let partial: &[u8] = if plain_http {
            b"GET /site HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: appli"
        } else {
            // The first bytes of a TLS record carrying a ClientHello.
            b"\x16\x03\x01\x02\x00\x01"
        };
        stream.write_all(partial).await.unwrap();
        attackers.push(stream);
    }
    attackers
}

async fn a_flood_does_not_delay_a_normal_client(server: &ReferenceServer, api: Api) {
    let plain = server.tls_ca_pem().is_none();
    let attackers = flood(&addr(&api.url(server)), api, plain).await;
    assert_eq!(attackers.len(), 2 * N);
    for _ in 0..3 {
        let took = api.normal_request(server).await;
        eprintln!("{api:?}: a normal client answered in {took:?} during the flood");
        assert!(took < ONE_SECOND, "{api:?}: answered after {took:?}");
    }
    let open = still_open(&attackers).await;
    assert!(
        (1..=CAP).contains(&open),
        "{api:?}: {open} of {} attacking connections open with a cap of {CAP}",
        attackers.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_connections_above_the_cap_do_not_delay_a_normal_client() {
    let server = start(flood_config()).await;
    a_flood_does_not_delay_a_normal_client(&server, Api::Cma).await;
    a_flood_does_not_delay_a_normal_client(&server, Api::Cda).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_too_a_flood_does_not_delay_a_normal_client() {
    let server = start(ServerConfig {
        tls: true,
        ..flood_config()
    })
    .await;
    a_flood_does_not_delay_a_normal_client(&server, Api::Cma).await;
    a_flood_does_not_delay_a_normal_client(&server, Api::Cda).await;
    server.shutdown().await;
}

/// Short timeouts, the idle one clearly longer than the header one, so that each is seen apart.
fn timeout_config() -> ServerConfig {
    ServerConfig {
        header_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(3),
        ..ServerConfig::default()
    }
}

/// Timers never fire early; the margin only absorbs the clock's granularity.
const EARLY: Duration = Duration::from_millis(950);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_or_body_that_does_not_arrive_in_time_is_closed_unanswered() {
    let server = start(timeout_config()).await;
    let cma = addr(&server.cma_url());
    let partial_body = "POST /access_tokens HTTP/1.1\r\nHost: 127.0.0.1\r\n\
        Accept: application/json\r\nX-Api-Version: 3\r\nContent-Type: application/json\r\n\
        Authorization: Bearer limits-management-secret-7c1d\r\nContent-Length: 10\r\n\r\n{\"a\":";
    for (what, sent) in [
        ("silent", ""),
        (
            "half-sent head",
            "GET /site HTTP/1.1\r\nHost: 127.0.0.1\r\nAcc",
        ),
        ("half-sent body", partial_body),
    ] {
        let started = Instant::now();
        let mut stream = TcpStream::connect(&cma).await.unwrap();
        stream.write_all(sent.as_bytes()).await.unwrap();
        let (took, got) = closed_within(&mut stream, started, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{what}: still open after 10 s"));
        assert!(took >= EARLY, "{what}: closed after {took:?}");
        assert!(got.is_empty(), "{what}: {}", String::from_utf8_lossy(&got));
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_trickled_byte_by_byte_is_timed_from_its_start() {
    let server = start(timeout_config()).await;
    let mut stream = TcpStream::connect(addr(&server.cma_url())).await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    // A header line that never ends, a byte every 100 ms: at most 10 s.
    for _ in 0..100 {
        if stream.write_all(b"x").await.is_err() || is_closed(&stream) {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    assert!(closed, "still open after {took:?}");
    assert!(took >= EARLY && took < Duration::from_secs(5), "{took:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let server = start(timeout_config()).await;
    let mut stream = TcpStream::connect(addr(&server.cma_url())).await.unwrap();
    stream.write_all(CMA_GET.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut stream).await, Some(200));
    let idle_since = Instant::now();
    // Past the header timeout, an idle connection is still open: the idle timeout applies.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!is_closed(&stream), "closed before the idle timeout");
    let (took, got) = closed_within(&mut stream, idle_since, Duration::from_secs(10))
        .await
        .expect("still open 10 s after the idle timeout");
    assert!(
        took >= Duration::from_secs(3) - Duration::from_millis(50),
        "{took:?}"
    );
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_a_connection_that_never_shakes_hands_is_closed_after_the_header_timeout() {
    let server = start(ServerConfig {
        tls: true,
        ..timeout_config()
    })
    .await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr(&server.cda_url())).await.unwrap();
    stream.write_all(b"\x16\x03\x01").await.unwrap();
    let (took, _) = closed_within(&mut stream, started, Duration::from_secs(10))
        .await
        .expect("still open after 10 s");
    assert!(took >= EARLY, "{took:?}");
    server.shutdown().await;
}

/// A POST whose body is held back, returned once the server is handling it (busy): it asks
/// for `100 Continue`, which hyper sends when the handler starts reading the body.
async fn busy_connection(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = "POST /access_tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\
        X-Api-Version: 3\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n\
        Authorization: Bearer limits-management-secret-7c1d\r\nContent-Length: 10\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 256];
    while !got.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&chunk[..n]),
            other => panic!("no 100 Continue: {other:?}"),
        }
    }
    let interim = String::from_utf8_lossy(&got);
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    stream.write_all(b"{\"a\":").await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_progress_is_never_cut_and_a_full_house_refuses_at_once() {
    let server = start(ServerConfig {
        max_connections: 2,
        header_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    })
    .await;
    let cma = addr(&server.cma_url());
    let mut first = busy_connection(&cma).await;
    // Newer connections make room among themselves, never by closing the busy one.
    let mut others = Vec::new();
    for _ in 0..10 {
        others.push(TcpStream::connect(&cma).await.unwrap());
    }
    let mut second = busy_connection(&cma).await;
    // Both places are busy: a new connection is closed at once, unanswered.
    let started = Instant::now();
    let mut refused = TcpStream::connect(&cma).await.unwrap();
    let (took, got) = closed_within(&mut refused, started, Duration::from_secs(10))
        .await
        .expect("a connection beyond a busy cap stays open");
    assert!(took < ONE_SECOND, "{took:?}");
    assert!(got.is_empty());
    for stream in [&mut first, &mut second] {
        stream.write_all(b"1234}").await.unwrap();
        let status = read_answer(stream).await.expect("the busy request was cut");
        assert!((200..500).contains(&status), "{status}");
    }
    // Once idle, they make room again.
    let took = Api::Cma.normal_request(&server).await;
    assert!(took < ONE_SECOND, "{took:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn zero_limits_are_refused_at_start() {
    for config in [
        ServerConfig {
            max_connections: 0,
            ..ServerConfig::default()
        },
        ServerConfig {
            header_timeout: Duration::ZERO,
            ..ServerConfig::default()
        },
        ServerConfig {
            idle_timeout: Duration::ZERO,
            ..ServerConfig::default()
        },
    ] {
        let err = ReferenceServer::start(config).await.unwrap_err();
        assert!(matches!(err, ServerError::Limits(_)), "{err:?}");
    }
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_token-conformance"))
}

#[test]
fn serve_help_documents_the_limits_and_their_defaults() {
    let out = binary().args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--header-timeout <DURATION>".to_owned(),
        format!("[default: {}s]", DEFAULT_HEADER_TIMEOUT.as_secs()),
        "closed without an answer".to_owned(),
        "--idle-timeout <DURATION>".to_owned(),
        format!("[default: {}s]", DEFAULT_IDLE_TIMEOUT.as_secs()),
        "--max-connections <N>".to_owned(),
        format!("[default: {DEFAULT_MAX_CONNECTIONS}]"),
        "per listener".to_owned(),
        "idle or sending its request head the longest".to_owned(),
        "the new connection is closed at once".to_owned(),
    ] {
        assert!(help.contains(&needle), "{needle:?} missing from:\n{help}");
    }
}

#[test]
fn serve_refuses_limits_it_cannot_apply() {
    for args in [
        ["--max-connections", "0"],
        ["--header-timeout", "0s"],
        ["--idle-timeout", "10"],
        ["--header-timeout", "soon"],
    ] {
        let out = binary().arg("serve").args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[0]), "{args:?}: {err}");
    }
}

#[test]
fn serve_applies_the_limits_it_is_given() {
    let serve = common::serve(
        SECRET,
        &["--header-timeout", "1s", "--max-connections", "8"],
    );
    let cma = addr(&serve.cma);
    let banner = serve
        .banner
        .iter()
        .find(|line| line.starts_with("connections:"))
        .cloned()
        .expect("no connections line");
    assert!(banner.contains("at most 8 per listener"), "{banner}");
    assert!(banner.contains("within 1s"), "{banner}");
    assert!(banner.contains("idle up to 30s"), "{banner}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let started = Instant::now();
        let mut stream = TcpStream::connect(&cma).await.unwrap();
        let (took, _) = closed_within(&mut stream, started, Duration::from_secs(10))
            .await
            .expect("a silent connection outlived --header-timeout 1s by 9 s");
        assert!(took >= EARLY, "{took:?}");
    });
    drop(serve);
}
