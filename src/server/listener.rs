//! The TLS accept loop: one task per connection (hyper-util auto = HTTP/1.1 or h2), with
//! TCP_NODELAY, a handshake timeout, a request-head timeout (timed from the head's first
//! byte, see `Activity`), an idle timeout, at most 100 concurrent h2 streams, and a graceful
//! drain on shutdown.
//!
//! A slow or stuck client only ever holds its own task. Nothing here knows about reviews.

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::metrics::Metrics;

/// Per-connection limits.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    pub handshake: Duration,
    pub header_read: Duration,
    pub idle: Duration,
    pub max_h2_streams: u32,
}

/// Where the per-connection TLS config comes from (re-read per connection, so a client-CA
/// reload applies to new connections).
pub(crate) type TlsSource = Arc<arc_swap::ArcSwap<rustls::ServerConfig>>;

/// Accepts until `shutdown` turns true, then stops accepting (the listener is dropped, so
/// new connections are refused), asks every connection to finish gracefully and waits up to
/// `grace` for them. Returns the number of connections still open when the grace ran out.
pub async fn serve(
    listener: TcpListener,
    tls: TlsSource,
    app: Router,
    limits: ConnLimits,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) -> usize {
    let (close_tx, close_rx) = watch::channel(());
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Without NODELAY, h2 frames wait for delayed ACKs (~40 ms per request).
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "set_nodelay failed");
        }
        let acceptor = TlsAcceptor::from(tls.load_full());
        let app = app.clone();
        let shutdown = shutdown.clone();
        let close_rx = close_rx.clone();
        let metrics = metrics.clone();
        let open = open.clone();
        tokio::spawn(async move {
            open.fetch_add(1, Ordering::Relaxed);
            // A connection still in its handshake has sent no request: on shutdown close it
            // rather than let it (or a silent TCP client) hold the drain for the whole grace.
            let mut stopping = shutdown.clone();
            let handshake = tokio::select! {
                handshake = tokio::time::timeout(limits.handshake, acceptor.accept(stream)) => handshake,
                _ = stopping.wait_for(|stop| *stop) => {
                    tracing::debug!(%peer, "shutting down; closing a connection in its tls handshake");
                    open.fetch_sub(1, Ordering::Relaxed);
                    drop(close_rx);
                    return;
                }
            };
            match handshake {
                Ok(Ok(tls_stream)) => {
                    let h2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2");
                    connection(tls_stream, h2, app, limits, shutdown).await;
                }
                Ok(Err(error)) => {
                    metrics.tls_handshake_errors.inc();
                    tracing::debug!(%peer, %error, "tls handshake failed");
                }
                Err(_) => {
                    metrics.tls_handshake_errors.inc();
                    tracing::debug!(%peer, "tls handshake timed out");
                }
            }
            open.fetch_sub(1, Ordering::Relaxed);
            drop(close_rx);
        });
    }
    drop(listener);
    drop(close_rx);
    let remaining = open.load(Ordering::Relaxed);
    tracing::info!(
        connections = remaining,
        ?grace,
        "stopped accepting; draining connections"
    );
    match tokio::time::timeout(grace, close_tx.closed()).await {
        Ok(()) => 0,
        Err(_) => open.load(Ordering::Relaxed),
    }
}

/// Marks "no request head in progress" in `Activity::head_ms`.
const NO_HEAD: u64 = u64::MAX;

/// What one connection is doing, shared by its IO wrapper, its service and its task.
///
/// hyper's own HTTP/1 header-read timer also runs while a keep-alive connection waits for
/// its next request, so it would close idle connections at 30 s, before the apiserver's
/// Go client (idle timeout 90 s) does; a POST written onto a connection the server is just
/// closing is not retried (net/http `shouldRetryRequest`). So, like Go's server, we time
/// the head from its first byte and the idle wait separately.
struct Activity {
    epoch: Instant,
    /// Requests whose handler is running.
    active: AtomicUsize,
    /// When the last request finished, ms since `epoch`.
    last_ms: AtomicU64,
    /// When the first byte of the current request head arrived, ms since `epoch`, or `NO_HEAD`.
    head_ms: AtomicU64,
    /// HTTP/1 only: h2 multiplexes and pings, so a byte read while idle says nothing there.
    track_heads: bool,
}

impl Activity {
    fn new(track_heads: bool) -> Activity {
        Activity {
            epoch: Instant::now(),
            active: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            // The first head is due from the end of the handshake.
            head_ms: AtomicU64::new(if track_heads { 0 } else { NO_HEAD }),
            track_heads,
        }
    }
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(NO_HEAD - 1)
    }
    fn bytes_read(&self) {
        if self.track_heads && self.active.load(Ordering::SeqCst) == 0 {
            let now = self.now_ms();
            let _ = self
                .head_ms
                .compare_exchange(NO_HEAD, now, Ordering::SeqCst, Ordering::SeqCst);
        }
    }
    fn request_started(&self) {
        self.active.fetch_add(1, Ordering::SeqCst);
        self.head_ms.store(NO_HEAD, Ordering::SeqCst);
    }
    fn request_finished(&self) {
        self.last_ms.store(self.now_ms(), Ordering::SeqCst);
        self.active.fetch_sub(1, Ordering::SeqCst);
    }
    /// How long the current request head has been arriving, if one is.
    fn head_for(&self) -> Option<Duration> {
        let head = self.head_ms.load(Ordering::SeqCst);
        (head != NO_HEAD).then(|| Duration::from_millis(self.now_ms().saturating_sub(head)))
    }
    /// How long the connection has had nothing to do, if it has nothing to do.
    fn idle_for(&self) -> Option<Duration> {
        if self.active.load(Ordering::SeqCst) > 0 || self.head_for().is_some() {
            return None;
        }
        let last = self.last_ms.load(Ordering::SeqCst);
        Some(Duration::from_millis(self.now_ms().saturating_sub(last)))
    }
}

struct ActiveGuard(Arc<Activity>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// The TLS stream, reporting reads to `Activity`. When hyper drops it, the stream goes back
/// through `home` so the connection task can `linger` before closing the socket.
struct Tracked<S> {
    inner: Option<S>,
    activity: Arc<Activity>,
    home: Option<tokio::sync::oneshot::Sender<S>>,
}

impl<S> Tracked<S> {
    fn inner(&mut self) -> std::io::Result<&mut S> {
        self.inner
            .as_mut()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotConnected))
    }
}

impl<S> Drop for Tracked<S> {
    fn drop(&mut self) {
        if let (Some(inner), Some(home)) = (self.inner.take(), self.home.take()) {
            let _ = home.send(inner);
        }
    }
}

/// After hyper is done with a connection, read and discard what the client still sends,
/// for at most this long: closing a socket with unread bytes makes the kernel send a RST,
/// which can destroy a response the client has not read yet (a 413 answered from the
/// Content-Length while the body is still coming). Go's net/http waits 500 ms likewise
/// (`closeWriteAndWait`).
const LINGER: Duration = Duration::from_millis(500);
/// And at most this many bytes.
const LINGER_MAX_BYTES: usize = 8 << 20;

async fn linger<S>(mut stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(LINGER, async {
        let _ = stream.shutdown().await;
        let mut buf = vec![0u8; 16 * 1024];
        let mut drained = 0usize;
        while drained < LINGER_MAX_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = match self.inner() {
            Ok(inner) => std::pin::Pin::new(inner).poll_read(cx, buf),
            Err(error) => std::task::Poll::Ready(Err(error)),
        };
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        result
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(self.inner()?).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(self.inner()?).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(S::is_write_vectored)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(self.inner()?).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(self.inner()?).poll_shutdown(cx)
    }
}

async fn connection<S>(
    stream: S,
    h2: bool,
    app: Router,
    limits: ConnLimits,
    mut shutdown: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new(!h2));
    let tracker = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        tracker.request_started();
        let guard = ActiveGuard(tracker.clone());
        let app = app.clone();
        async move {
            let response = app.oneshot(request.map(axum::body::Body::new)).await;
            drop(guard);
            response
        }
    });

    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Header-read timing is ours (see `Activity`); hyper's would also cut idle keep-alive.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_h2_streams);
    let (home, mut returned) = tokio::sync::oneshot::channel();
    let io = Tracked {
        inner: Some(stream),
        activity: activity.clone(),
        home: Some(home),
    };
    let mut conn = Box::pin(builder.serve_connection(TokioIo::new(io), service));

    let check_every = (limits.header_read.min(limits.idle) / 4).max(Duration::from_millis(50));
    let mut ticker = tokio::time::interval(check_every);
    let mut closing = false;
    let finished = loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                break true;
            }
            _ = shutdown.wait_for(|stop| *stop), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = ticker.tick() => {
                if activity.head_for().is_some_and(|t| t >= limits.header_read) {
                    tracing::debug!("request head not received in time; closing");
                    break false;
                }
                if !closing && activity.idle_for().is_some_and(|t| t >= limits.idle) {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    };
    drop(conn);
    // A client cut off for slowness gets no linger; one that was answered does.
    if let (true, Ok(stream)) = (finished, returned.try_recv()) {
        linger(stream).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http1_head_timer_starts_at_the_first_byte_after_a_request_and_stops_at_the_next() {
        let a = Activity::new(true);
        assert!(
            a.head_for().is_some(),
            "first head is due from the handshake"
        );
        assert!(a.idle_for().is_none());
        a.request_started();
        assert!(a.head_for().is_none() && a.idle_for().is_none());
        a.bytes_read(); // body bytes while a request runs are not a head
        assert!(a.head_for().is_none());
        a.request_finished();
        assert!(a.idle_for().is_some(), "idle after the response");
        a.bytes_read();
        assert!(
            a.head_for().is_some() && a.idle_for().is_none(),
            "next head started"
        );
    }

    #[test]
    fn h2_connections_are_only_ever_idle_or_busy() {
        let a = Activity::new(false);
        assert!(a.head_for().is_none());
        assert!(
            a.idle_for().is_some(),
            "a silent h2 connection counts as idle"
        );
        a.bytes_read(); // pings, window updates
        assert!(a.head_for().is_none() && a.idle_for().is_some());
        a.request_started();
        assert!(a.idle_for().is_none());
        a.request_finished();
        assert!(a.idle_for().is_some());
    }
}
