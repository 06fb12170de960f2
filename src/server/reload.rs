//! Hot reload of the policy folder, the serving certificate/key and the client CA.
//!
//! A directory watch (notify) gives fast reaction; a periodic content check (hash of the
//! file contents, read through symlinks) catches whatever the watch misses, notably the
//! kubelet's `..data` symlink swap on ConfigMap/Secret volumes. A version that fails to load
//! is logged and counted and the last good one keeps serving. Runs on its own thread: the
//! work is file I/O and parsing, never on the async workers.

use super::metrics::{Metrics, ResultLabels};
use super::tls::{self, CertResolver, TlsMinVersion};
use crate::policy::PolicySet;
use arc_swap::ArcSwap;
use notify::{EventKind, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Events arriving within this window after the first are folded into one check.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Exemptions that expire within this many days are reported.
pub(crate) const EXPIRING_WITHIN_DAYS: i64 = 7;

/// What the reloader keeps current.
pub(crate) struct Reloader {
    pub policies_dir: PathBuf,
    pub policies: Arc<ArcSwap<PolicySet>>,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Reload `cert`/`key` from disk; off when the certificate comes from the API
    /// (`--manage-webhooks`, see `crate::cluster`).
    pub watch_cert: bool,
    pub resolver: Arc<CertResolver>,
    pub client_ca: Option<PathBuf>,
    pub tls_config: Arc<ArcSwap<rustls::ServerConfig>>,
    pub min_version: TlsMinVersion,
    pub metrics: Metrics,
    pub interval: Duration,
    /// Marked once a valid policy set serves (a replica that started with a broken one).
    pub health: Arc<super::probe::Health>,
}

/// One log line per policy error, with its position as fields, so a log search finds each.
pub(crate) fn log_policy_errors(dir: &Path, errors: &crate::policy::LoadErrors) {
    for e in &errors.0 {
        tracing::error!(
            dir = %dir.display(),
            file = %e.file,
            line = e.line,
            column = e.column,
            reason = %e.reason,
            "policy error: {e}"
        );
    }
}

/// Stops the reload thread when dropped.
pub(crate) struct ReloadHandle {
    stop: Arc<AtomicBool>,
    wake: mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ReloadHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Hash of every regular file under `dir` whose path has no component starting with `.`
/// (skips the kubelet's `..data`/`..2024_..` internals; the visible names link through them),
/// following symlinks. `None` when the directory cannot be read.
pub(crate) fn fingerprint_dir(dir: &Path) -> Option<[u8; 32]> {
    fn walk(dir: &Path, rel: &Path, depth: usize, out: &mut Vec<(PathBuf, Vec<u8>)>) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let rel = rel.join(&name);
            // metadata() follows symlinks.
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() && depth < 4 => {
                    walk(&path, &rel, depth + 1, out);
                }
                Ok(m) if m.is_file() => {
                    let bytes = std::fs::read(&path).unwrap_or_default();
                    out.push((rel, bytes));
                }
                _ => {}
            }
        }
        true
    }
    let mut files = Vec::new();
    if !walk(dir, Path::new(""), 0, &mut files) {
        return None;
    }
    files.sort();
    let mut hasher = Sha256::new();
    for (path, bytes) in &files {
        hasher.update(path.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    Some(hasher.finalize().into())
}

/// Hash of the contents of `paths` (through symlinks); unreadable files hash as empty.
pub(crate) fn fingerprint_files(paths: &[&Path]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for path in paths {
        let bytes = std::fs::read(path).unwrap_or_default();
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    hasher.finalize().into()
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

struct Seen {
    policies: Option<[u8; 32]>,
    cert: [u8; 32],
    client_ca: Option<[u8; 32]>,
}

impl Reloader {
    /// Starts the watch and the poll thread. The fingerprints of what is loaded now are the
    /// baseline, so nothing reloads until something changes.
    pub fn spawn(self) -> std::io::Result<ReloadHandle> {
        let (wake, events) = mpsc::channel::<()>();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Seen {
            policies: fingerprint_dir(&self.policies_dir),
            cert: fingerprint_files(&[&self.cert, &self.key]),
            client_ca: self.client_ca.as_deref().map(|p| fingerprint_files(&[p])),
        };
        let watcher = self.watch(wake.clone());
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("podgate-reload".into())
            .spawn(move || {
                // Keep the watcher alive for as long as the loop runs.
                let _watcher = watcher;
                self.run(seen, &events, &thread_stop);
            })?;
        Ok(ReloadHandle {
            stop,
            wake,
            thread: Some(thread),
        })
    }

    fn watch(&self, wake: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
        let handler = move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            // Our own reads raise open/close events; only changes matter.
            if let EventKind::Access(kind) = event.kind
                && !matches!(
                    kind,
                    notify::event::AccessKind::Close(notify::event::AccessMode::Write)
                )
            {
                return;
            }
            let _ = wake.send(());
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(w) => w,
            Err(error) => {
                tracing::warn!(%error, "file watch unavailable; relying on the periodic check");
                return None;
            }
        };
        let mut dirs = vec![(self.policies_dir.clone(), RecursiveMode::Recursive)];
        if self.watch_cert {
            dirs.push((parent(&self.cert), RecursiveMode::NonRecursive));
            dirs.push((parent(&self.key), RecursiveMode::NonRecursive));
        }
        if let Some(ca) = &self.client_ca {
            dirs.push((parent(ca), RecursiveMode::NonRecursive));
        }
        dirs.dedup_by(|a, b| a.0 == b.0);
        for (dir, mode) in dirs {
            if let Err(error) = watcher.watch(&dir, mode) {
                tracing::warn!(dir = %dir.display(), %error, "cannot watch directory; relying on the periodic check");
            }
        }
        Some(watcher)
    }

    fn run(&self, mut seen: Seen, events: &mpsc::Receiver<()>, stop: &AtomicBool) {
        self.update_exemptions();
        loop {
            match events.recv_timeout(self.interval) {
                Ok(()) => {
                    // Fold a burst (a symlink swap is several events) into one check.
                    std::thread::sleep(DEBOUNCE);
                    while events.try_recv().is_ok() {}
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            if stop.load(Ordering::SeqCst) {
                return;
            }
            self.check_policies(&mut seen);
            self.check_cert(&mut seen);
            self.check_client_ca(&mut seen);
            self.update_exemptions();
        }
    }

    fn count(
        family: &prometheus_client::metrics::family::Family<
            ResultLabels,
            prometheus_client::metrics::counter::Counter,
        >,
        ok: bool,
    ) {
        family
            .get_or_create(&ResultLabels {
                result: if ok { "success" } else { "error" }.into(),
            })
            .inc();
    }

    fn check_policies(&self, seen: &mut Seen) {
        let now = fingerprint_dir(&self.policies_dir);
        if now.is_none() || now == seen.policies {
            return;
        }
        seen.policies = now;
        match PolicySet::load_dir(&self.policies_dir) {
            Ok(set) => {
                self.metrics.policy_last_reload_successful.set(1);
                let old = self.policies.load();
                if set.hash() == old.hash() && self.health.policies() {
                    return;
                }
                if !self.health.policies() {
                    tracing::info!(dir = %self.policies_dir.display(), "a valid policy set appeared: Ready");
                }
                tracing::info!(
                    dir = %self.policies_dir.display(),
                    old_hash = old.hash(),
                    new_hash = set.hash(),
                    policies = set.len(),
                    "policy set reloaded"
                );
                for warning in set.warnings() {
                    tracing::warn!(hash = set.hash(), warning = %warning, "policy warning");
                }
                self.metrics
                    .policies_loaded
                    .set(i64::try_from(set.len()).unwrap_or(i64::MAX));
                self.policies.store(Arc::new(set));
                self.health.set_policies(true);
                Self::count(&self.metrics.policy_reloads, true);
            }
            Err(errors) => {
                log_policy_errors(&self.policies_dir, &errors);
                if self.health.policies() {
                    tracing::error!(
                        dir = %self.policies_dir.display(),
                        errors = errors.0.len(),
                        serving_hash = self.policies.load().hash(),
                        "policy reload refused; keeping the last good set"
                    );
                } else {
                    tracing::error!(
                        dir = %self.policies_dir.display(),
                        errors = errors.0.len(),
                        "policy set refused; still no valid set: not Ready"
                    );
                }
                self.metrics.policy_last_reload_successful.set(0);
                Self::count(&self.metrics.policy_reloads, false);
            }
        }
    }

    fn check_cert(&self, seen: &mut Seen) {
        if !self.watch_cert {
            return;
        }
        let now = fingerprint_files(&[&self.cert, &self.key]);
        if now == seen.cert {
            return;
        }
        seen.cert = now;
        let provider = tls::provider();
        match tls::load_pair(
            &self.cert,
            &self.key,
            &provider,
            jiff::Timestamp::now().as_second(),
        ) {
            Ok(loaded) => {
                self.resolver.swap(loaded.key);
                self.health.set_certificate(true);
                self.metrics.cert_expiry.set(loaded.not_after);
                Self::count(&self.metrics.cert_reloads, true);
                tracing::info!(cert = %self.cert.display(), not_after = %tls::format_ts(loaded.not_after), "serving certificate reloaded");
            }
            Err(error) => {
                Self::count(&self.metrics.cert_reloads, false);
                tracing::error!(%error, "certificate reload refused; keeping the current certificate");
            }
        }
    }

    fn check_client_ca(&self, seen: &mut Seen) {
        let Some(ca) = &self.client_ca else { return };
        let now = fingerprint_files(&[ca]);
        if Some(now) == seen.client_ca {
            return;
        }
        seen.client_ca = Some(now);
        let built = tls::load_client_roots(ca).and_then(|roots| {
            tls::server_config(
                tls::provider(),
                self.min_version,
                self.resolver.clone(),
                Some(roots),
            )
        });
        match built {
            Ok(config) => {
                self.tls_config.store(Arc::new(config));
                Self::count(&self.metrics.cert_reloads, true);
                tracing::info!(client_ca = %ca.display(), "client CA reloaded");
            }
            Err(error) => {
                Self::count(&self.metrics.cert_reloads, false);
                tracing::error!(%error, "client CA reload refused; keeping the current one");
            }
        }
    }

    fn update_exemptions(&self) {
        let n = self
            .policies
            .load()
            .exemptions_expiring(jiff::Timestamp::now(), EXPIRING_WITHIN_DAYS);
        self.metrics
            .exemptions_expiring
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// Lays out `dir` like a kubelet ConfigMap volume pointing at version `v`.
    fn publish(dir: &Path, v: &str, content: &str) {
        let vdir = dir.join(format!("..{v}"));
        std::fs::create_dir_all(&vdir).unwrap();
        std::fs::write(vdir.join("p.yaml"), content).unwrap();
        let tmp = dir.join("..data_tmp");
        symlink(format!("..{v}"), &tmp).unwrap();
        std::fs::rename(&tmp, dir.join("..data")).unwrap();
        if std::fs::symlink_metadata(dir.join("p.yaml")).is_err() {
            symlink("..data/p.yaml", dir.join("p.yaml")).unwrap();
        }
    }

    #[test]
    fn fingerprint_changes_on_a_kubelet_data_swap_and_ignores_dot_entries() {
        let dir = tempfile::tempdir().unwrap();
        publish(dir.path(), "v1", "a: 1\n");
        let first = fingerprint_dir(dir.path()).unwrap();
        assert_eq!(
            fingerprint_dir(dir.path()),
            Some(first),
            "stable without changes"
        );
        std::fs::write(dir.path().join(".hidden"), "x").unwrap();
        assert_eq!(
            fingerprint_dir(dir.path()),
            Some(first),
            "dot entries are ignored"
        );
        publish(dir.path(), "v2", "a: 2\n");
        assert_ne!(fingerprint_dir(dir.path()), Some(first), "swap not seen");
    }

    const POLICY: &str = "apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: NAME
spec:
  action: Enforce
  validate:
    hostNamespaces:
      forbiddenCombinations:
        - [hostNetwork]
";

    fn reloader(dir: &Path, certs: &Path) -> Reloader {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Metrics::register(&mut registry);
        let bundle = crate::certs::generate(&crate::certs::CertSpec::localhost(30)).unwrap();
        crate::certs::write_bundle(certs, &bundle, false).unwrap();
        let (cert, key) = (certs.join("tls.crt"), certs.join("tls.key"));
        let loaded = tls::load_pair(&cert, &key, &tls::provider(), 0).unwrap();
        let resolver = Arc::new(CertResolver::new(loaded.key));
        let config =
            tls::server_config(tls::provider(), TlsMinVersion::V1_2, resolver.clone(), None)
                .unwrap();
        Reloader {
            policies_dir: dir.to_path_buf(),
            policies: Arc::new(ArcSwap::from_pointee(PolicySet::load_dir(dir).unwrap())),
            cert,
            key,
            watch_cert: true,
            resolver,
            client_ca: None,
            tls_config: Arc::new(ArcSwap::from_pointee(config)),
            min_version: TlsMinVersion::V1_2,
            metrics,
            interval: Duration::from_secs(10),
            health: Arc::new(crate::server::probe::Health::ready_now()),
        }
    }

    fn count(r: &Reloader, result: &str) -> u64 {
        r.metrics
            .policy_reloads
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .get()
    }

    #[test]
    fn periodic_check_swaps_a_valid_set_once_and_refuses_a_broken_one() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("policies");
        std::fs::create_dir(&dir).unwrap();
        publish(&dir, "v1", &POLICY.replace("NAME", "one"));
        let r = reloader(&dir, &root.path().join("certs"));
        let mut seen = Seen {
            policies: fingerprint_dir(&dir),
            cert: fingerprint_files(&[&r.cert, &r.key]),
            client_ca: None,
        };
        let first = r.policies.load().hash().to_string();
        r.check_policies(&mut seen);
        assert_eq!(
            (count(&r, "success"), count(&r, "error")),
            (0, 0),
            "nothing changed"
        );

        publish(&dir, "v2", &POLICY.replace("NAME", "two"));
        r.check_policies(&mut seen);
        let second = r.policies.load().hash().to_string();
        assert_ne!(first, second);
        assert_eq!(count(&r, "success"), 1);
        r.check_policies(&mut seen);
        assert_eq!(
            count(&r, "success"),
            1,
            "an unchanged folder is not reloaded again"
        );

        publish(&dir, "v3", "apiVersion: [broken");
        r.check_policies(&mut seen);
        r.check_policies(&mut seen);
        assert_eq!(count(&r, "error"), 1, "a broken version is counted once");
        assert_eq!(
            r.policies.load().hash(),
            second,
            "the last good set keeps serving"
        );
    }

    #[test]
    fn periodic_check_refuses_a_mismatched_key_and_keeps_the_certificate() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("policies");
        std::fs::create_dir(&dir).unwrap();
        publish(&dir, "v1", &POLICY.replace("NAME", "one"));
        let r = reloader(&dir, &root.path().join("certs"));
        let mut seen = Seen {
            policies: fingerprint_dir(&dir),
            cert: fingerprint_files(&[&r.cert, &r.key]),
            client_ca: None,
        };
        let serving = r.resolver.current().unwrap();
        let other = crate::certs::generate(&crate::certs::CertSpec::localhost(30)).unwrap();
        std::fs::write(&r.key, other.key_pem).unwrap();
        r.check_cert(&mut seen);
        assert!(
            Arc::ptr_eq(&serving, &r.resolver.current().unwrap()),
            "mismatched pair applied"
        );
        let errors = r
            .metrics
            .cert_reloads
            .get_or_create(&ResultLabels {
                result: "error".into(),
            })
            .get();
        assert_eq!(errors, 1);
        std::fs::write(&r.cert, other.cert_pem).unwrap();
        r.check_cert(&mut seen);
        assert!(
            !Arc::ptr_eq(&serving, &r.resolver.current().unwrap()),
            "matching pair not applied"
        );
    }

    #[test]
    fn fingerprint_of_a_missing_folder_is_none() {
        assert_eq!(
            fingerprint_dir(Path::new("/nonexistent/podgate/policies")),
            None
        );
    }
}
