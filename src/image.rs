//! Image references, parsed as the kubelet and apiserver parse them.
//! PLACEHOLDER on main until the image branch lands.

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host.
    pub domain: String,
    /// Repository path.
    pub path: String,
    /// Tag.
    pub tag: Option<String>,
    /// Digest.
    pub digest: Option<String>,
}

impl ImageRef {
    /// The tag used for pull-policy defaulting.
    pub fn effective_tag(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, None) => Some("latest"),
            (None, Some(_)) => None,
        }
    }
}

/// Parse error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference")]
pub struct ImageRefError;

/// Parses a reference.
pub fn parse(reference: &str) -> Result<ImageRef, ImageRefError> {
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d.to_string())),
        None => (reference, None),
    };
    let (path, tag) = match rest.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, Some(t.to_string())),
        _ => (rest, None),
    };
    Ok(ImageRef {
        domain: String::new(),
        path: path.to_string(),
        tag,
        digest,
    })
}
