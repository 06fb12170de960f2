//! PLACEHOLDER on main until the image branch lands with the real manifest reader.

use std::path::{Path, PathBuf};

/// One Kubernetes object read from a manifest file.
#[derive(Debug, Clone)]
pub struct Document {
    /// File.
    pub file: PathBuf,
    /// 1-based document number.
    pub index: usize,
    /// 1-based line.
    pub line: usize,
    /// The object.
    pub object: serde_json::Value,
}

/// Error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(String);

/// Reads files.
pub fn read_paths(paths: &[PathBuf]) -> Result<Vec<Document>, ManifestError> {
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| ManifestError(e.to_string()))?;
        out.extend(parse_text(p, &text)?);
    }
    Ok(out)
}

/// Parses text.
pub fn parse_text(file: &Path, text: &str) -> Result<Vec<Document>, ManifestError> {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(text).map_err(|e| ManifestError(e.to_string()))?;
    Ok(docs
        .into_iter()
        .enumerate()
        .filter(|(_, v)| !v.is_null())
        .map(|(i, object)| Document {
            file: file.to_path_buf(),
            index: i + 1,
            line: 1,
            object,
        })
        .collect())
}
