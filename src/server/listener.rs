//! The TLS accept loop: one task per connection (hyper-util auto = HTTP/1.1 or h2), with
//! TCP_NODELAY, a handshake timeout, hyper's header-read timeout, an idle timeout and a
//! graceful drain on shutdown.
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
pub type TlsSource = Arc<arc_swap::ArcSwap<rustls::ServerConfig>>;

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
            let handshake = tokio::time::timeout(limits.handshake, acceptor.accept(stream)).await;
            match handshake {
                Ok(Ok(tls_stream)) => connection(tls_stream, app, limits, shutdown).await,
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

/// Tracks requests on one connection so an idle one can be closed.
struct Activity {
    epoch: Instant,
    active: AtomicUsize,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }
    fn idle_for(&self) -> Option<Duration> {
        if self.active.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(self.epoch.elapsed().saturating_sub(last))
    }
}

struct ActiveGuard(Arc<Activity>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn connection<S>(
    stream: S,
    app: Router,
    limits: ConnLimits,
    mut shutdown: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity {
        epoch: Instant::now(),
        active: AtomicUsize::new(0),
        last_ms: AtomicU64::new(0),
    });
    let tracker = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        tracker.active.fetch_add(1, Ordering::Relaxed);
        let guard = ActiveGuard(tracker.clone());
        let app = app.clone();
        async move {
            let response = app.oneshot(request.map(axum::body::Body::new)).await;
            drop(guard);
            response
        }
    });

    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's header-read timer also runs while an HTTP/1.1 keep-alive connection waits for
    // its next request, so it bounds h1 idle time too; the idle check below covers h2.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_h2_streams);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);

    let check_every = (limits.idle / 4).max(Duration::from_millis(50));
    let mut ticker = tokio::time::interval(check_every);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                break;
            }
            _ = shutdown.wait_for(|stop| *stop), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = ticker.tick(), if !closing => {
                if activity.idle_for().is_some_and(|idle| idle >= limits.idle) {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
