//! Serving a listener: the accept loop, and what bounds each connection, so that idle or
//! half-sent connections cannot starve normal clients.
//!
//! Every connection is in one [`Phase`], and a watchdog closes it when that phase has lasted
//! too long:
//! - *head*: from the accept (and the TLS handshake), or from the first byte of a request after
//!   an idle spell, the request head must be complete within the header timeout;
//! - *busy*: from a complete head until its answer has been handed to the socket, within the
//!   header timeout too (this bounds a body that trickles in, or never comes);
//! - *idle*: between requests on a keep-alive connection, at most the idle timeout.
//!
//! The timer is not restarted by each byte, so a client that trickles its head byte by byte is
//! closed as surely as a silent one. hyper's own header timeout is off: it starts when a
//! connection goes idle, so it cannot tell idle from half-sent.
//!
//! At most `max_connections` are open per listener. At the cap, a new connection takes the
//! place of the open one that has been idle or sending its head the longest (closing it is
//! safe: no request of it is being handled); if every open connection is busy, the new one is
//! closed at once. Refusing at the cap would let a few hundred idle sockets lock every client
//! out until their timeouts; evicting the longest-waiting one lets a fresh client in at once,
//! and a client in the middle of a request is never cut.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How long the accept loop pauses after an error that is not about one connection (such as
/// running out of descriptors), so that it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The bounds of [`serve`], from [`ServerConfig`](super::ServerConfig).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
}

/// Where a connection is, and since when.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for (the rest of) a request head.
    Head(Instant),
    /// A request is being handled or answered.
    Busy(Instant),
    /// Between requests.
    Idle(Instant),
    /// Evicted to make room: the connection is being closed.
    Closing,
}

/// What the accept loop, the socket, the service and the watchdog share about one connection.
#[derive(Debug)]
struct Slot {
    id: u64,
    phase: watch::Sender<Phase>,
}

impl Slot {
    /// Bytes arrived: an idle connection starts a request head.
    fn on_bytes(&self) {
        self.phase.send_if_modified(|phase| match phase {
            Phase::Idle(_) => {
                *phase = Phase::Head(Instant::now());
                true
            }
            _ => false,
        });
    }

    /// A complete head: the connection is busy, unless it was evicted (then the request must
    /// not be handled, as its answer would be cut).
    fn begin_request(&self) -> bool {
        self.phase.send_if_modified(|phase| match phase {
            Phase::Closing => false,
            _ => {
                *phase = Phase::Busy(Instant::now());
                true
            }
        })
    }

    fn end_request(&self) {
        self.phase.send_if_modified(|phase| match phase {
            Phase::Busy(_) => {
                *phase = Phase::Idle(Instant::now());
                true
            }
            _ => false,
        });
    }

    /// Since when the connection has been waiting on its client, if it may be evicted.
    fn evictable_since(&self) -> Option<Instant> {
        match *self.phase.borrow() {
            Phase::Head(since) | Phase::Idle(since) => Some(since),
            Phase::Busy(_) | Phase::Closing => None,
        }
    }

    /// Mark the connection for closing if it is still not busy.
    fn evict(&self) -> bool {
        self.phase.send_if_modified(|phase| match phase {
            Phase::Head(_) | Phase::Idle(_) => {
                *phase = Phase::Closing;
                true
            }
            Phase::Busy(_) | Phase::Closing => false,
        })
    }
}

/// The open connections of one listener.
#[derive(Debug)]
struct Registry {
    max: usize,
    inner: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    next_id: u64,
    open: HashMap<u64, Arc<Slot>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // The map stays consistent through a panic elsewhere: every change is one call.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a new connection, evicting the longest-waiting one at the cap; `None` when
    /// every open connection is busy.
    fn admit(&self) -> Option<Arc<Slot>> {
        let mut slots = self.lock();
        if slots.open.len() >= self.max {
            let mut candidates: Vec<(Instant, u64)> = slots
                .open
                .values()
                .filter_map(|slot| slot.evictable_since().map(|since| (since, slot.id)))
                .collect();
            candidates.sort_unstable();
            // A candidate may have turned busy since it was looked at: then the next one.
            let evicted = candidates
                .into_iter()
                .find(|(_, id)| slots.open.get(id).is_some_and(|slot| slot.evict()))?;
            slots.open.remove(&evicted.1);
        }
        let id = slots.next_id;
        slots.next_id += 1;
        let (phase, _) = watch::channel(Phase::Head(Instant::now()));
        let slot = Arc::new(Slot { id, phase });
        slots.open.insert(id, slot.clone());
        Some(slot)
    }

    fn release(&self, id: u64) {
        self.lock().open.remove(&id);
    }
}

/// A connection's place in the registry, given back when its task ends (or is aborted).
struct Admitted {
    registry: Arc<Registry>,
    slot: Arc<Slot>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.registry.release(self.slot.id);
    }
}

/// Serve `router` on `listener` (over TLS with `tls`) until `stopped` resolves (sent or
/// dropped); then stop accepting, let open requests finish and close idle connections.
/// Aborting the returned future's task cuts every connection.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    mut stopped: oneshot::Receiver<()>,
) {
    let registry = Arc::new(Registry {
        max: limits.max_connections.max(1),
        inner: Mutex::new(Slots::default()),
    });
    let (stopping, stop_signal) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    // Every open connection is busy: this one is closed unanswered.
                    let Some(slot) = registry.admit() else { continue };
                    let admitted = Admitted { registry: registry.clone(), slot };
                    let _ = tcp.set_nodelay(true);
                    connections.spawn(connection(
                        tcp,
                        router.clone(),
                        tls.clone(),
                        admitted,
                        limits,
                        stop_signal.clone(),
                    ));
                }
                Err(err) if is_per_connection(&err) => {}
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            // Reap finished connections, so that the set does not grow with every one served.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut stopped => break,
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    while connections.join_next().await.is_some() {}
}

fn is_per_connection(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

/// One connection, from the (TLS) handshake to its close, under its watchdog.
async fn connection(
    tcp: TcpStream,
    router: Router,
    tls: Option<TlsAcceptor>,
    admitted: Admitted,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) {
    let slot = admitted.slot.clone();
    let serving = async {
        match tls {
            None => {
                http(
                    Tracked::new(tcp, slot.clone()),
                    router,
                    &slot,
                    &mut stopping,
                )
                .await
            }
            Some(acceptor) => {
                let stream = tokio::select! {
                    handshake = acceptor.accept(tcp) => match handshake {
                        Ok(stream) => stream,
                        // A failed handshake closes this connection only.
                        Err(_) => return,
                    },
                    _ = stopping.wait_for(|stop| *stop) => return,
                };
                http(
                    Tracked::new(stream, slot.clone()),
                    router,
                    &slot,
                    &mut stopping,
                )
                .await;
            }
        }
    };
    tokio::select! {
        () = serving => {}
        () = watchdog(slot.phase.subscribe(), limits) => {}
    }
    drop(admitted);
}

/// Returns when the connection's phase has lasted longer than its limit, or it was evicted.
async fn watchdog(mut phase: watch::Receiver<Phase>, limits: Limits) {
    loop {
        let deadline = match *phase.borrow_and_update() {
            Phase::Head(since) | Phase::Busy(since) => since + limits.header_timeout,
            Phase::Idle(since) => since + limits.idle_timeout,
            Phase::Closing => return,
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                if !phase.has_changed().unwrap_or(false) {
                    return;
                }
            }
            changed = phase.changed() => {
                // The sender lives in the slot, as long as the connection: never taken.
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// HTTP/1.1 over `io` until the client closes, an error, or a graceful stop.
async fn http<S>(
    io: Tracked<S>,
    router: Router,
    slot: &Arc<Slot>,
    stopping: &mut watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let slot = slot.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let (router, slot) = (router.clone(), slot.clone());
        async move {
            if !slot.begin_request() {
                return Err(Evicted);
            }
            let busy = BusyUntilDropped(slot);
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok(response.map(|body| GuardedBody { body, _busy: busy }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The watchdog bounds the head instead (see the module docs).
    builder.header_read_timeout(None);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = stopping.wait_for(|stop| *stop), if !draining => {
                draining = true;
                // Closes an idle connection now, a busy one after its answer.
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The service's error for a request that arrived on an evicted connection: hyper closes it.
#[derive(Debug, thiserror::Error)]
#[error("the connection was closed to make room for another")]
struct Evicted;

/// Marks the connection busy while alive: held by the answer's body, so the connection stays
/// busy until hyper has taken the whole answer.
struct BusyUntilDropped(Arc<Slot>);

impl Drop for BusyUntilDropped {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

/// An answer's body, carrying the busy mark.
struct GuardedBody {
    body: Body,
    _busy: BusyUntilDropped,
}

impl HttpBody for GuardedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The connection's stream, reporting arriving bytes to its slot.
struct Tracked<S> {
    io: S,
    slot: Arc<Slot>,
}

impl<S> Tracked<S> {
    fn new(io: S, slot: Arc<Slot>) -> Tracked<S> {
        Tracked { io, slot }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.slot.on_bytes();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests;
