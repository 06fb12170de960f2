//! The floor: the least any admission webhook must do, to measure podgate's own cost against.
//!
//! rustls (ring provider only) TLS 1.2/1.3 with ALPN `h2` + `http/1.1`, HTTP/1.1 keep-alive and
//! h2 through hyper-util's auto builder, TCP_NODELAY, a tokio multi-thread runtime sized to the
//! cores (as `podgate serve`). Every `POST` body is read whole (7 MiB cap), parsed once as an
//! AdmissionReview with the object decoded to a `serde_json::Value` (every JSON node visited
//! and built, as kube-core's `AdmissionReview<DynamicObject>` does), and answered
//! `allowed: true` with the request's uid and apiVersion. No policy, no logs, no metrics.
//!
//! ```text
//! cargo build --release --example floor
//! target/release/examples/floor --listen 127.0.0.1:9443 --tls-cert tls.crt --tls-key tls.key
//! ```
//! It prints `listening on ADDR` once the socket is bound and runs until killed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Same cap as `podgate serve` (2 objects × 3 MiB + 1 MiB, as controller-runtime).
const MAX_BODY: usize = 7 * 1024 * 1024;

struct Args {
    listen: SocketAddr,
    cert: PathBuf,
    key: PathBuf,
}

fn args() -> anyhow::Result<Args> {
    let mut listen: SocketAddr = "127.0.0.1:9443".parse()?;
    let mut cert = None;
    let mut key = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = value.parse().context("--listen")?,
            "--tls-cert" => cert = Some(PathBuf::from(value)),
            "--tls-key" => key = Some(PathBuf::from(value)),
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(Args {
        listen,
        cert: cert.context("--tls-cert is required")?,
        key: key.context("--tls-key is required")?,
    })
}

fn tls_config(args: &Args) -> anyhow::Result<ServerConfig> {
    let chain = CertificateDer::pem_file_iter(&args.cert)
        .with_context(|| format!("reading {}", args.cert.display()))?
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&args.key)
        .with_context(|| format!("reading {}", args.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[derive(Deserialize)]
struct ReviewIn {
    #[serde(rename = "apiVersion")]
    api_version: String,
    request: RequestIn,
}

#[derive(Deserialize)]
struct RequestIn {
    uid: String,
    // Every webhook has to read the object; this decodes all of it once.
    #[serde(default)]
    #[allow(dead_code)]
    object: serde_json::Value,
    #[serde(default, rename = "oldObject")]
    #[allow(dead_code)]
    old_object: serde_json::Value,
}

#[derive(Serialize)]
struct ReviewOut<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    if req.method() != Method::POST {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, Vec::new()));
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::PAYLOAD_TOO_LARGE, Vec::new())),
    };
    let review: ReviewIn = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, Vec::new())),
    };
    let out = ReviewOut {
        api_version: &review.api_version,
        kind: "AdmissionReview",
        response: ResponseOut {
            uid: &review.request.uid,
            allowed: true,
        },
    };
    let body = serde_json::to_vec(&out).unwrap_or_default();
    Ok(reply(StatusCode::OK, body))
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(&args)?));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(args.listen).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            // Without it h2 (and pipelined HTTP/1.1) stalls ~40 ms on delayed ACKs.
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder.http2().max_concurrent_streams(100);
                let _ = builder
                    .serve_connection(TokioIo::new(tls), service_fn(handle))
                    .await;
            });
        }
    })
}
