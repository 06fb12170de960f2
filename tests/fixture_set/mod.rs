//! The suite's recorded requests: the repository's own set (`tests/fixtures/reviews`, always
//! there, described in `tests/fixtures/README.md`) and, only when it exists, an extra corpus
//! (`$PODGATE_EXTRA_FIXTURES`, else `../shared/fixtures` beside the repository).
//!
//! A user's clone has nothing beside it, so nothing here may need the extra corpus: its absence
//! is said (on stderr, and by `scripts/test`) and the suite runs on the own set. An extra corpus
//! that exists but cannot be read is a failure, not a skip.
#![allow(dead_code)]
// Test helpers: failing loudly is their job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The own set has at least this many reviews; fewer means the folder was not found whole.
pub const MIN_OWN: usize = 20;

/// The variable that points the suite at an extra corpus elsewhere.
pub const EXTRA_ENV: &str = "PODGATE_EXTRA_FIXTURES";

/// The repository (the crate's manifest folder).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the own set lives under a repository root.
pub fn own_dir(root: &Path) -> PathBuf {
    root.join("tests/fixtures/reviews")
}

/// Where the extra corpus may be: `$PODGATE_EXTRA_FIXTURES`, else `<root>/../shared/fixtures`.
pub fn default_extra_dir(root: &Path) -> PathBuf {
    match std::env::var_os(EXTRA_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => root.join("../shared/fixtures"),
    }
}

/// One recorded request as a full AdmissionReview.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The file name; extra-corpus names are prefixed `extra/`.
    pub name: String,
    /// The AdmissionReview (a bare `request` stanza is wrapped in a v1 review).
    pub review: Value,
}

impl Fixture {
    /// The review as request bytes.
    pub fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.review).unwrap()
    }
}

/// The fixtures a test run has.
#[derive(Debug)]
pub struct Suite {
    /// The repository's own reviews, sorted by name.
    pub own: Vec<Fixture>,
    /// The extra corpus, when its folder exists.
    pub extra: Option<Vec<Fixture>>,
    /// Where the extra corpus was looked for.
    pub extra_dir: PathBuf,
}

impl Suite {
    /// The own set followed by the extra corpus, if any.
    pub fn all(&self) -> Vec<Fixture> {
        let mut all = self.own.clone();
        all.extend(self.extra.iter().flatten().cloned());
        all
    }

    /// One line saying what runs: printed so that `--nocapture` runs (and failures) show
    /// whether the extra corpus took part.
    pub fn describe(&self) -> String {
        match &self.extra {
            Some(extra) => format!(
                "fixtures: {} own + {} extra from {}",
                self.own.len(),
                extra.len(),
                self.extra_dir.display()
            ),
            None => format!(
                "fixtures: {} own; extra corpus absent ({} does not exist), not run",
                self.own.len(),
                self.extra_dir.display()
            ),
        }
    }
}

/// Reads every `*.json` in `dir` (sorted) as an AdmissionReview, wrapping bare requests.
pub fn read_reviews(dir: &Path, prefix: &str) -> Result<Vec<Fixture>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.extension().is_some_and(|e| e == "json") {
            paths.push(path);
        }
    }
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let value: Value =
            serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let review = if value.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
            value
        } else {
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": value})
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        out.push(Fixture {
            name: format!("{prefix}{name}"),
            review,
        });
    }
    Ok(out)
}

/// The fixtures of the repository at `root`, with the extra corpus looked for at `extra_dir`.
pub fn load_suite(root: &Path, extra_dir: &Path) -> Suite {
    let own_dir = own_dir(root);
    let own = read_reviews(&own_dir, "").unwrap_or_else(|e| panic!("own fixtures: {e}"));
    assert!(
        own.len() >= MIN_OWN,
        "{}: {} reviews, expected at least {MIN_OWN}",
        own_dir.display(),
        own.len()
    );
    let extra = extra_dir.is_dir().then(|| {
        read_reviews(extra_dir, "extra/").unwrap_or_else(|e| panic!("extra fixtures: {e}"))
    });
    Suite {
        own,
        extra,
        extra_dir: extra_dir.to_path_buf(),
    }
}

/// This repository's fixtures (and the extra corpus when present); says which on stderr.
pub fn suite() -> Suite {
    let root = repo_root();
    let suite = load_suite(&root, &default_extra_dir(&root));
    eprintln!("{}", suite.describe());
    suite
}

/// Path of an own fixture by file name.
pub fn own_path(name: &str) -> PathBuf {
    let path = own_dir(&repo_root()).join(name);
    assert!(path.is_file(), "no fixture {}", path.display());
    path
}

/// An own fixture by file name, as a review value.
pub fn own(name: &str) -> Value {
    let bytes = std::fs::read(own_path(name)).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// An own fixture by file name, as request bytes.
pub fn own_bytes(name: &str) -> Vec<u8> {
    serde_json::to_vec(&own(name)).unwrap()
}
