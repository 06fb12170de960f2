//! Helpers for `tests/hostile.rs`: the real binary with flags, its memory and descriptors
//! from /proc, exact-size reviews, raw HTTP/1.1 over TLS, a TLS 1.1 ClientHello and a seeded
//! byte generator. Included with `#[path]` so `tests/common/mod.rs` stays untouched.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const MIB: usize = 1024 * 1024;

/// `podgate serve` (the real binary) on `layout`'s volumes with `extra` flags, ready
/// (`Process::start` retries on fresh ports if one was taken meanwhile).
pub async fn spawn_ready(layout: &Layout, extra: &[&str], name: &str) -> Process {
    let certs = layout.certs();
    let (cert, key, policies) = (
        certs.join("tls.crt"),
        certs.join("tls.key"),
        layout.policies(),
    );
    let mut args = vec![
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--policies",
        policies.to_str().unwrap(),
        "--log-format",
        "json",
    ];
    args.extend_from_slice(extra);
    let log = layout.root.path().join(format!("{name}.log"));
    Process::start(layout.root.path(), &args, log).await
}

pub fn https(addr: SocketAddr, path: &str) -> String {
    format!("https://localhost:{}{path}", addr.port())
}

/// Resident memory of a process, KiB: now (VmRSS) and peak (VmHWM).
#[derive(Clone, Copy, Debug)]
pub struct Mem {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

impl std::fmt::Display for Mem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VmRSS {:.1} MiB, VmHWM {:.1} MiB",
            self.rss_kib as f64 / 1024.0,
            self.hwm_kib as f64 / 1024.0
        )
    }
}

pub fn mem(pid: u32) -> Mem {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in /proc/{pid}/status"))
    };
    Mem {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}

/// Open descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Soft and hard `RLIMIT_NOFILE` of this process.
pub fn nofile_limits() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut nums = line.split_whitespace().filter_map(|w| {
        w.parse::<u64>()
            .ok()
            .or((w == "unlimited").then_some(u64::MAX))
    });
    (nums.next().unwrap(), nums.next().unwrap())
}

/// Makes sure this process (and the servers it spawns later) may open `want` descriptors:
/// raises the soft limit towards the hard one with util-linux `prlimit` (no `unsafe`, no
/// dependency). Returns the soft limit in force.
pub fn ensure_nofile(want: u64) -> u64 {
    let (soft, hard) = nofile_limits();
    if soft >= want || hard <= soft {
        return soft;
    }
    let target = hard.min(want.max(4096));
    let _ = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={target}:{hard}"))
        .status();
    nofile_limits().0
}

/// A Pod review (`pod_review`) padded with an annotation to exactly `len` bytes.
pub fn sized_review(uid: &str, len: usize) -> Vec<u8> {
    let mut review: serde_json::Value = serde_json::from_slice(&pod_review(uid, false)).unwrap();
    review["request"]["object"]["metadata"]["annotations"] = serde_json::json!({"pad": ""});
    let base = serde_json::to_vec(&review).unwrap().len();
    assert!(len >= base, "{len} < {base}");
    review["request"]["object"]["metadata"]["annotations"]["pad"] = "x".repeat(len - base).into();
    let body = serde_json::to_vec(&review).unwrap();
    assert_eq!(body.len(), len);
    body
}

/// A raw HTTP/1.1 request on an open stream; reads one Content-Length response.
pub async fn http1_request<S>(
    stream: &mut S,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: podgate.podgate.svc\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    read_http1_response(stream).await
}

/// Reads until EOF, an error or `limit`: (bytes read, whether the peer closed within `limit`).
pub async fn read_until_closed<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    limit: Duration,
) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Err(_) => return (buf, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (buf, true),
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > 1 << 20 {
                    return (buf, false);
                }
            }
        }
    }
}

/// A ClientHello as a TLS 1.0/1.1-only client sends it: legacy_version 0x0302, no
/// `supported_versions` extension, and only pre-TLS 1.2 (CBC/SHA-1) suites. rustls cannot
/// speak TLS 1.1 as a client, so the bytes are built by hand.
pub fn tls11_client_hello() -> Vec<u8> {
    fn u16be(v: usize) -> [u8; 2] {
        u16::try_from(v).unwrap().to_be_bytes()
    }
    let sni = b"localhost";
    let mut ext = Vec::new();
    // server_name
    let mut name = vec![0u8];
    name.extend_from_slice(&u16be(sni.len()));
    name.extend_from_slice(sni);
    let mut list = u16be(name.len()).to_vec();
    list.extend_from_slice(&name);
    ext.extend_from_slice(&[0x00, 0x00]);
    ext.extend_from_slice(&u16be(list.len()));
    ext.extend_from_slice(&list);
    // supported_groups: x25519, secp256r1
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17]);
    // ec_point_formats: uncompressed
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);

    let mut hello = vec![0x03, 0x02]; // legacy_version = TLS 1.1
    hello.extend((0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(11))); // random
    hello.push(0); // session id
    // ECDHE-ECDSA-AES128-SHA, ECDHE-ECDSA-AES256-SHA, ECDHE-RSA-AES128-SHA,
    // ECDHE-RSA-AES256-SHA, AES128-SHA, AES256-SHA
    let suites = [0xc009u16, 0xc00a, 0xc013, 0xc014, 0x002f, 0x0035];
    hello.extend_from_slice(&u16be(suites.len() * 2));
    for s in suites {
        hello.extend_from_slice(&s.to_be_bytes());
    }
    hello.extend_from_slice(&[0x01, 0x00]); // compression: null
    hello.extend_from_slice(&u16be(ext.len()));
    hello.extend_from_slice(&ext);

    let len = hello.len();
    let mut handshake = vec![0x01, 0x00];
    handshake.extend_from_slice(&u16be(len));
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&u16be(handshake.len()));
    record.extend_from_slice(&handshake);
    record
}

/// xorshift64*: reproducible "random" bytes without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 32) as u8).collect()
    }
}
