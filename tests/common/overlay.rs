//! A user's overlay of the shipped install, rendered as `kubectl kustomize` renders it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use serde_json::Value;

/// Renders the kustomization `text` from a folder `wrap/` beside copies of the repository's
/// `deploy/` and `policies/` (so `../deploy/...` resolves as in a user's tree); the documents.
pub fn render(text: &str) -> Vec<Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tree = tempfile::tempdir().unwrap();
    for dir in ["deploy", "policies"] {
        let status = std::process::Command::new("cp")
            .arg("-R")
            .arg(root.join(dir))
            .arg(tree.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let wrap = tree.path().join("wrap");
    std::fs::create_dir_all(&wrap).unwrap();
    std::fs::write(wrap.join("kustomization.yaml"), text).unwrap();
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(&wrap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap()
}
