//! The accept loop (in place of `axum::serve`): HTTP/1.1 connections served by hyper with a cap
//! on open connections (overall and per client address), timeouts for a slow request head, an
//! idle keep-alive connection and a stalled request body, the peer address for every handler
//! ([`ConnectInfo`]), and a graceful shutdown that stops accepting and lets in-flight requests
//! finish within a grace period.
//!
//! Timeouts are kept here rather than by hyper's `header_read_timeout`, because hyper restarts
//! that timer whenever a keep-alive connection waits for its next request: the idle timeout
//! could then never be longer than the header timeout (and a load balancer reusing a connection
//! after 60 s would hit closed ones).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::Router;
use futures_util::FutureExt as _;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tower_service::Service;

use crate::limits::{client_key, ServerLimits};

/// File descriptors kept free for the database, log files and the engine when the connection
/// cap is fitted to the process's open-file limit.
const RESERVED_FDS: usize = 256;

/// Serves `app` on `listener` under `limits` until `shutdown` completes, then drains.
pub(crate) async fn run(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let limits = Arc::new(fit_to_open_file_limit(limits));
    let tracker = Arc::new(Tracker::new(&limits));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (close_tx, close_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            // The client gave up between the handshake and the accept: nothing to do.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors or memory: back off briefly instead of spinning; the
                // connections being served finish and free some.
                tracing::error!(error = %e, "cannot accept a connection");
                metrics::counter!("tailor_http_accept_errors_total").increment(1);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let guard = match tracker.admit(peer.ip()) {
            Ok(guard) => guard,
            Err(reason) => {
                refuse(&stream, reason);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            app: app.clone(),
            peer,
            limits: limits.clone(),
            stop: stop_rx.clone(),
            _close: close_rx.clone(),
            _guard: guard,
        };
        tokio::spawn(conn.serve(stream));
    }
    // Stop accepting: from here the operating system refuses new connections.
    drop(listener);
    let _ = stop_tx.send(true);
    drop(close_rx);
    tracing::info!(open = tracker.open(), "shutting down: finishing in-flight requests");
    if tokio::time::timeout(limits.shutdown_grace(), close_tx.closed()).await.is_err() {
        tracing::warn!(open = tracker.open(), "shutdown grace period over: dropping the connections still open");
    }
    Ok(())
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Lowers the connection cap when the process may not open that many files (each connection is
/// one), so that a flood is refused by the cap instead of failing `accept` and the database.
fn fit_to_open_file_limit(mut limits: ServerLimits) -> ServerLimits {
    if let Some(soft) = open_file_limit() {
        let usable = soft.saturating_sub(RESERVED_FDS).max(16);
        if limits.max_connections > usable {
            tracing::warn!(
                configured = limits.max_connections,
                open_file_limit = soft,
                using = usable,
                "max_connections lowered to fit the open-file limit (raise it with `ulimit -n`)"
            );
            limits.max_connections = usable;
        }
    }
    limits
}

/// The soft limit on open files, read from `/proc/self/limits` (Linux); `None` elsewhere.
fn open_file_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Global,
    PerIp,
}

/// Answers a refused connection with a 503 problem (when the socket takes it at once) and closes
/// it: the file descriptor is freed immediately, whatever the client does.
fn refuse(stream: &TcpStream, reason: Refusal) {
    let label = match reason {
        Refusal::Global => "global",
        Refusal::PerIp => "per_ip",
    };
    metrics::counter!("tailor_http_connections_refused_total", "reason" => label).increment(1);
    static ANSWERS: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    let answers = ANSWERS.get_or_init(|| {
        let answer = |detail: &str| {
            let body = serde_json::json!({
                "type": tailor_core::ErrorCode::Overloaded.type_uri(),
                "title": tailor_core::ErrorCode::Overloaded.title(),
                "status": 503,
                "detail": detail,
                "code": tailor_core::ErrorCode::Overloaded.name(),
            })
            .to_string();
            format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\n\
                 connection: close\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        };
        [answer(Refusal::Global.detail()), answer(Refusal::PerIp.detail())]
    });
    let _ = stream.try_write(&answers[reason as usize]);
}

impl Refusal {
    fn detail(self) -> &'static str {
        match self {
            Refusal::Global => "the server holds as many connections as it may; retry shortly",
            Refusal::PerIp => "too many open connections from this address; close some and retry",
        }
    }
}

/// Counts open connections, overall and per client address.
struct Tracker {
    max_total: usize,
    max_per_ip: usize,
    trusted_proxies: Vec<IpAddr>,
    open: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it frees its place.
struct Admitted {
    tracker: Arc<Tracker>,
    ip: Option<IpAddr>,
}

impl Tracker {
    fn new(limits: &ServerLimits) -> Self {
        Self {
            max_total: limits.max_connections,
            max_per_ip: limits.max_connections_per_ip,
            trusted_proxies: limits.trusted_proxies.clone(),
            open: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
        }
    }

    fn open(&self) -> usize {
        self.open.load(Relaxed)
    }

    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refusal> {
        if self.open.fetch_add(1, Relaxed) >= self.max_total {
            self.open.fetch_sub(1, Relaxed);
            return Err(Refusal::Global);
        }
        // A trusted proxy carries many clients: it is capped only by the overall limit.
        let ip = (!self.trusted_proxies.contains(&ip)).then(|| client_key(ip));
        if let Some(ip) = ip {
            let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let n = map.entry(ip).or_insert(0);
            if *n >= self.max_per_ip {
                drop(map);
                self.open.fetch_sub(1, Relaxed);
                return Err(Refusal::PerIp);
            }
            *n += 1;
        }
        metrics::gauge!("tailor_http_connections_open").increment(1.0);
        Ok(Admitted { tracker: self.clone(), ip })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut map = self.tracker.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
        self.tracker.open.fetch_sub(1, Relaxed);
        metrics::gauge!("tailor_http_connections_open").decrement(1.0);
    }
}

/// One accepted connection and what it needs to be served.
struct Connection {
    app: Router,
    peer: SocketAddr,
    limits: Arc<ServerLimits>,
    stop: watch::Receiver<bool>,
    /// Held until the connection ends, so that shutdown can wait for every connection.
    _close: watch::Receiver<()>,
    _guard: Admitted,
}

impl Connection {
    async fn serve(mut self, stream: TcpStream) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched { inner: stream, activity: activity.clone() });
        let service = ConnService { app: self.app.clone(), peer: self.peer, activity: activity.clone() };
        let mut builder = http1::Builder::new();
        // The timers below replace hyper's header timeout (see the module doc).
        builder.keep_alive(true).header_read_timeout(None);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let mut draining = false;
        loop {
            let wake = activity.deadline(&self.limits).map_or_else(
                || Instant::now() + self.limits.body_read_timeout().max(Duration::from_secs(1)),
                |(at, _)| at,
            );
            tokio::select! {
                done = conn.as_mut() => {
                    if let Err(e) = done {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    break;
                }
                () = tokio::time::sleep_until(wake) => {
                    if let Some((at, phase)) = activity.deadline(&self.limits) {
                        if Instant::now() >= at {
                            metrics::counter!("tailor_http_connections_timed_out_total", "phase" => phase.name())
                                .increment(1);
                            tracing::debug!(peer = %self.peer.ip(), phase = phase.name(), "connection timed out");
                            break;
                        }
                    }
                }
                // The connection changed phase: its deadline may be earlier now.
                () = activity.changed.notified() => {}
                changed = self.stop.changed(), if !draining => {
                    let _ = changed;
                    draining = true;
                    // Finishes the request in flight (if any), then closes.
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Which timeout closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Header,
    Idle,
    Body,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Header => "header",
            Phase::Idle => "idle",
            Phase::Body => "body",
        }
    }
}

/// What a connection is doing, for its timeouts. Times are milliseconds since it was accepted.
struct Activity {
    base: Instant,
    /// Requests whose response has not been sent in full.
    in_flight: AtomicU32,
    /// Requests whose body is still being received.
    reading_body: AtomicU32,
    /// Requests received on this connection.
    requests: AtomicU64,
    /// When the last response was sent.
    idle_since: AtomicU64,
    /// When the first byte of the next request head came (plus one; zero: none yet).
    head_started: AtomicU64,
    /// When a byte last came.
    last_read: AtomicU64,
    /// Woken when the phase changes (a head starts, a request starts or ends, a body is read).
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            in_flight: AtomicU32::new(0),
            reading_body: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            last_read: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64, plus: Duration) -> Instant {
        self.base + Duration::from_millis(ms) + plus
    }

    fn bytes_read(&self) {
        let now = self.now();
        self.last_read.store(now, Relaxed);
        if self.in_flight.load(Relaxed) == 0 && self.head_started.load(Relaxed) == 0 {
            self.head_started.store(now + 1, Relaxed);
            self.changed.notify_one();
        }
    }

    fn request_started(&self) {
        self.requests.fetch_add(1, Relaxed);
        self.in_flight.fetch_add(1, Relaxed);
        self.head_started.store(0, Relaxed);
        self.changed.notify_one();
    }

    fn response_finished(&self) {
        self.idle_since.store(self.now(), Relaxed);
        self.in_flight.fetch_sub(1, Relaxed);
        self.changed.notify_one();
    }

    /// When the connection times out if nothing happens, and which timeout that is; `None`
    /// while a handler works or a response is being sent (those are not bounded here).
    fn deadline(&self, limits: &ServerLimits) -> Option<(Instant, Phase)> {
        if self.in_flight.load(Relaxed) > 0 {
            return (self.reading_body.load(Relaxed) > 0)
                .then(|| (self.at(self.last_read.load(Relaxed), limits.body_read_timeout()), Phase::Body));
        }
        let head = self.head_started.load(Relaxed);
        if head > 0 {
            return Some((self.at(head - 1, limits.header_read_timeout()), Phase::Header));
        }
        if self.requests.load(Relaxed) == 0 {
            // A new connection must send its first request head in time.
            return Some((self.at(0, limits.header_read_timeout()), Phase::Header));
        }
        Some((self.at(self.idle_since.load(Relaxed), limits.idle_timeout()), Phase::Idle))
    }
}

/// The socket, noting when bytes come in.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Hands each request of a connection to the router, with the peer address.
struct ConnService {
    app: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
}

type BoxedResponse = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxedResponse;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.activity.request_started();
        let in_flight = InFlight(self.activity.clone());
        let activity = self.activity.clone();
        let mut req = req.map(|body| Body::new(RequestBody::new(body, activity)));
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let mut app = self.app.clone();
        Box::pin(async move {
            // A handler that panics answers 500 problem+json instead of dropping the connection.
            let response = match std::panic::AssertUnwindSafe(app.call(req)).catch_unwind().await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => {
                    metrics::counter!("tailor_http_panics_total").increment(1);
                    tracing::error!("a request handler panicked");
                    let error = crate::ApiError::new(
                        tailor_core::ErrorCode::Internal,
                        "an internal error occurred; it was logged — retry, and report it if it persists",
                    );
                    axum::response::IntoResponse::into_response(error)
                }
            };
            Ok(response.map(|inner| ResponseBody { inner, _in_flight: in_flight }))
        })
    }
}

/// Marks the end of a request when its response has been sent (or dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.response_finished();
    }
}

/// The response body; the request counts as in flight until it is dropped.
pub(crate) struct ResponseBody {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body, noting while it is still being received.
struct RequestBody {
    inner: Incoming,
    activity: Arc<Activity>,
    reading: bool,
}

impl RequestBody {
    fn new(inner: Incoming, activity: Arc<Activity>) -> Self {
        let reading = !http_body::Body::is_end_stream(&inner);
        if reading {
            activity.reading_body.fetch_add(1, Relaxed);
            activity.changed.notify_one();
        }
        Self { inner, activity, reading }
    }

    fn done(&mut self) {
        if self.reading {
            self.reading = false;
            self.activity.reading_body.fetch_sub(1, Relaxed);
            self.activity.changed.notify_one();
        }
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        self.done();
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => this.done(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.done(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
