//! Image references, parsed as the kubelet and apiserver parse them.
//!
//! The apiserver defaults `imagePullPolicy` from the image's tag with `parsers.ParseImageName`
//! (k8s.io/kubernetes/pkg/util/parsers), which calls `ParseNormalizedNamed` from
//! github.com/distribution/reference (v0.6.0 in Kubernetes' go.mod) and reads the tag and
//! digest off the result; with neither, the tag is `latest`. podgate decides "is this tag
//! mutable?" from the same answer, so this module must agree with that code on every input,
//! including its quirks. It is pure: no I/O, no logging, no policy.
//!
//! Why hand-written rather than a crate: `container_image_dist_ref` (Apache-2.0) ports the bare
//! `Parse` grammar only (no docker.io normalisation, no go-digest check that a sha256 digest is
//! 64 lowercase hex), checks the 255 limit on the whole name where upstream has checked only the
//! path since distribution/reference#9 (in v0.6.0), and adds its own digest length caps;
//! it also keeps `unreachable!()` on its parse path, where podgate wants no panic on any input.
//! `oci-spec`'s `Reference` would bring the whole OCI runtime and image spec (and its derive
//! crates) for one function.
//! The grammar is small, so it is transcribed here from `regexp.go`, `reference.go` and
//! `normalize.go` (and go-digest v1.0.0's `Digest.Validate`) into `regex` patterns, keeping the
//! Go names so a reviewer can compare them line by line. `regex` is Go's RE2 semantics
//! (leftmost-first, linear time); the only translation is `\w`, which is Unicode in Rust and
//! ASCII in Go, so it is written as an explicit ASCII class.
//!
//! Quirks kept on purpose because Kubernetes has them:
//! - A first component with an uppercase letter is taken as a domain (`UPPER/x` parses, domain
//!   `UPPER`), as in `splitDockerDomain`; only the repository path must be lowercase.
//! - A first component with a `.` or `:` that is not a valid domain (`foo_bar.com/x`) is kept
//!   by the normaliser, and then `Parse` reads the whole name as a path: domain `""`.
//! - The 255 limit is on the path (`library/nginx`), not on `domain/path`.

use std::sync::LazyLock;

use regex::Regex;

/// `RepositoryNameTotalLengthMax` in distribution/reference: the longest path, in bytes.
pub(crate) const MAX_PATH_LENGTH: usize = 255;

/// A parsed, normalised image reference (`nginx` is `docker.io/library/nginx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host and optional port, e.g. `docker.io`, `localhost:5000`, `[::1]:5000`.
    /// Empty only in the `foo_bar.com/x` quirk described in the module header.
    pub domain: String,
    /// Repository path inside the registry, e.g. `library/nginx`.
    pub path: String,
    /// The tag as written (case-sensitive), if any.
    pub tag: Option<String>,
    /// The digest as written (`sha256:<64 hex>`), if any.
    pub digest: Option<String>,
}

impl ImageRef {
    /// The tag Kubernetes uses for pull-policy defaulting: the tag, or "latest" when there is
    /// neither tag nor digest.
    /// (The reference for `pull_policy`'s own `effective_tag`, which skips the parse.)
    #[cfg(test)]
    pub(crate) fn effective_tag(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => Some(tag),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG),
        }
    }

    /// The repository name as Kubernetes reports it (`named.Name()`): `domain/path`.
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }
}

/// Why a reference was refused. Messages follow distribution/reference and go-digest so that
/// they read like the apiserver's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    /// The reference does not match the grammar (also the answer for an empty reference, as in
    /// `ParseNormalizedNamed`, which turns `""` into `docker.io/library/` first).
    #[error("invalid reference format")]
    InvalidFormat,
    /// The repository path has uppercase letters.
    #[error("invalid reference format: repository name ({repository}) must be lowercase")]
    Uppercase { repository: String },
    /// A bare 64-hex string, which docker reads as an image id, not a name.
    #[error("invalid repository name ({reference}), cannot specify 64-byte hexadecimal strings")]
    Identifier { reference: String },
    /// The path is longer than [`MAX_PATH_LENGTH`].
    #[error("repository name must not be more than 255 characters (got {length})")]
    NameTooLong { length: usize },
    /// The digest is malformed for its algorithm (e.g. uppercase hex).
    #[error("invalid checksum digest format: {digest}")]
    DigestInvalidFormat { digest: String },
    /// The digest's hex part has the wrong length for its algorithm.
    #[error("invalid checksum digest length: {digest}")]
    DigestInvalidLength { digest: String },
    /// The digest algorithm is well formed but not one of sha256, sha384, sha512.
    #[error("unsupported digest algorithm: {algorithm}")]
    DigestUnsupported { algorithm: String },
    /// The grammar's patterns failed to compile; a bug here, never the input's fault.
    #[error("image reference grammar failed to compile: {reason}")]
    Grammar { reason: String },
}

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const LOCALHOST: &str = "localhost";
/// The tag of a reference with neither tag nor digest.
pub(crate) const DEFAULT_TAG: &str = "latest";

/// Parse a reference exactly as `ParseNormalizedNamed` does, returning its parts.
///
/// Note for callers deciding pull policy: when parsing fails, Kubernetes' defaulting ignores
/// the error and, having no tag, picks `IfNotPresent` (`SetDefaults_Container` in
/// pkg/apis/core/v1/defaults.go); validation then rejects only empty or whitespace-padded
/// images. An error here is therefore not proof that the apiserver refuses the Pod.
pub fn parse(reference: &str) -> Result<ImageRef, ImageRefError> {
    let grammar = grammar()?;
    parse_canonical(grammar, &normalized(grammar, reference)?)
}

/// Whether [`parse`] accepts `reference`, decided without building its parts: the patterns'
/// `is_match` (a DFA) where `parse` runs `captures` (the capture engines, most of its cost).
/// The same answer as `parse(reference).is_ok()` on every input: the name and the tag hold no
/// `@`, so a digest is what follows the first `@`, and the path is no longer than the whole
/// normalised reference (a longer one is left to `parse`).
pub(crate) fn accepts(reference: &str) -> bool {
    let Ok(grammar) = grammar() else {
        return false;
    };
    let Ok(s) = normalized(grammar, reference) else {
        return false;
    };
    if !grammar.reference.is_match(&s) {
        return false;
    }
    if s.len() > MAX_PATH_LENGTH {
        return parse_canonical(grammar, &s).is_ok();
    }
    s.split_once('@')
        .is_none_or(|(_, digest)| validate_digest(digest).is_ok())
}

/// The checks `ParseNormalizedNamed` makes before `Parse`, and the `domain/remainder` string
/// it then parses.
fn normalized(grammar: &Grammar, reference: &str) -> Result<String, ImageRefError> {
    // `^[a-f0-9]{64}$` matches 64 bytes or nothing: other lengths skip the regex.
    if reference.len() == 64 && grammar.anchored_identifier.is_match(reference) {
        return Err(ImageRefError::Identifier {
            reference: reference.to_owned(),
        });
    }
    let (domain, prefix, remainder) = split_docker_domain(reference);
    // Upstream checks only up to the first ':', so a tag may be uppercase but `app@SHA256:..`
    // fails here rather than in the digest check. The prefix (`library/`) is lowercase.
    let remote = remainder.split_once(':').map_or(remainder, |(r, _)| r);
    if has_uppercase(remote) {
        return Err(ImageRefError::Uppercase {
            repository: format!("{prefix}{remote}"),
        });
    }
    let mut s = String::with_capacity(domain.len() + 1 + prefix.len() + remainder.len());
    s.push_str(domain);
    s.push('/');
    s.push_str(prefix);
    s.push_str(remainder);
    Ok(s)
}

/// Whether lowercasing changes `s` (`strings.ToLower(s) != s`), without building the
/// lowercase copy for the ASCII text that nearly every reference is.
fn has_uppercase(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        s.to_lowercase() != s
    }
}

/// `splitDockerDomain` (normalize.go): pick the registry and add `library/` on Docker Hub.
/// Returns the domain, the prefix added to the remainder (`library/` or nothing) and the
/// remainder as written.
fn split_docker_domain(name: &str) -> (&str, &'static str, &str) {
    let Some((maybe_domain, maybe_remote)) = name.split_once('/') else {
        // A single element is a Docker Hub official image, even `localhost` or `example.com`.
        return (DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX, name);
    };
    let (domain, remote) = if maybe_domain == LOCALHOST {
        (maybe_domain, maybe_remote)
    } else if maybe_domain == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, maybe_remote)
    } else if maybe_domain.contains(['.', ':']) {
        (maybe_domain, maybe_remote)
    } else if has_uppercase(maybe_domain) {
        // Namespaces are lowercase, so upstream reads an uppercase first element as a host.
        (maybe_domain, maybe_remote)
    } else {
        (DEFAULT_DOMAIN, name)
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        return (domain, OFFICIAL_REPO_PREFIX, remote);
    }
    (domain, "", remote)
}

/// `Parse` (reference.go) on an already normalised `domain/remainder` string.
fn parse_canonical(grammar: &Grammar, s: &str) -> Result<ImageRef, ImageRefError> {
    let Some(matches) = grammar.reference.captures(s) else {
        let lower = s.to_lowercase();
        if lower != s && grammar.reference.is_match(&lower) {
            return Err(ImageRefError::Uppercase {
                repository: s.to_owned(),
            });
        }
        return Err(ImageRefError::InvalidFormat);
    };
    let name = matches.get(1).map_or("", |m| m.as_str());
    let (domain, path) = match grammar.anchored_name.captures(name) {
        Some(parts) => (
            parts.get(1).map_or("", |m| m.as_str()),
            parts.get(2).map_or("", |m| m.as_str()),
        ),
        None => ("", name),
    };
    if path.len() > MAX_PATH_LENGTH {
        return Err(ImageRefError::NameTooLong { length: path.len() });
    }
    let tag = matches.get(2).map(|m| m.as_str().to_owned());
    let digest = match matches.get(3) {
        Some(m) => {
            validate_digest(m.as_str())?;
            Some(m.as_str().to_owned())
        }
        None => None,
    };
    Ok(ImageRef {
        domain: domain.to_owned(),
        path: path.to_owned(),
        tag,
        digest,
    })
}

/// go-digest v1.0.0 `Digest.Validate`: only sha256/384/512 are registered in Kubernetes, and
/// their hex must be lowercase and exactly the hash size, stricter than the reference grammar.
fn validate_digest(digest: &str) -> Result<(), ImageRefError> {
    let invalid_format = || ImageRefError::DigestInvalidFormat {
        digest: digest.to_owned(),
    };
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return Err(invalid_format());
    };
    if algorithm.is_empty() || encoded.is_empty() {
        return Err(invalid_format());
    }
    let hex_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            // go-digest's own digest grammar wants a lowercase algorithm; anything it rejects
            // is a format error, anything it accepts is merely an unknown algorithm.
            let grammar = grammar()?;
            if grammar.go_digest.is_match(digest) {
                return Err(ImageRefError::DigestUnsupported {
                    algorithm: algorithm.to_owned(),
                });
            }
            return Err(invalid_format());
        }
    };
    if encoded.len() != hex_len {
        return Err(ImageRefError::DigestInvalidLength {
            digest: digest.to_owned(),
        });
    }
    if !encoded
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(invalid_format());
    }
    Ok(())
}

/// The compiled patterns of regexp.go, built once.
struct Grammar {
    reference: Regex,
    anchored_name: Regex,
    anchored_identifier: Regex,
    go_digest: Regex,
}

static GRAMMAR: LazyLock<Result<Grammar, String>> = LazyLock::new(build_grammar);

fn grammar() -> Result<&'static Grammar, ImageRefError> {
    GRAMMAR.as_ref().map_err(|reason| ImageRefError::Grammar {
        reason: reason.clone(),
    })
}

fn build_grammar() -> Result<Grammar, String> {
    // Names as in distribution/reference regexp.go.
    let alphanumeric = "[a-z0-9]+";
    let separator = "(?:[._]|__|[-]+)";
    let domain_name_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let optional_port = "(?::[0-9]+)?";
    // Go's `\w` is ASCII-only.
    let tag = "[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}";
    let digest_pat = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}";
    let identifier = "([a-f0-9]{64})";
    let ipv6address = r"\[(?:[a-fA-F0-9:]+)\]";
    let domain_name = format!(r"{domain_name_component}(?:\.{domain_name_component})*");
    let host = format!("(?:{domain_name}|{ipv6address})");
    let domain_and_port = format!("{host}{optional_port}");
    let path_component = format!("{alphanumeric}(?:{separator}{alphanumeric})*");
    let remote_name = format!("{path_component}(?:/{path_component})*");
    let name_pat = format!("(?:{domain_and_port}/)?{remote_name}");
    let anchored_name = format!("^(?:({domain_and_port})/)?({remote_name})$");
    let reference = format!("^({name_pat})(?::({tag}))?(?:@({digest_pat}))?$");
    // go-digest v1.0.0 DigestRegexp.
    let go_digest = "^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$";

    let compile = |pattern: &str| Regex::new(pattern).map_err(|e| e.to_string());
    Ok(Grammar {
        reference: compile(&reference)?,
        anchored_name: compile(&anchored_name)?,
        anchored_identifier: compile(&format!("^{identifier}$"))?,
        go_digest: compile(go_digest)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_uppercase_is_lowercasing_changes_the_text() {
        for s in [
            "",
            "nginx",
            "Nginx",
            "library/nginx",
            "a-b_c.d",
            "ABC",
            "é",
            "É",
            "ǅ",
            "ǆ",
            "İ",
            "ß",
            "Σσς",
            "σ",
            "ﬀ",
            "x1:Y",
            "日本",
            "Ω",
        ] {
            assert_eq!(has_uppercase(s), s.to_lowercase() != s, "{s:?}");
        }
    }

    #[test]
    fn identifier_check_needs_64_bytes() {
        let g = grammar().unwrap();
        let id = "a".repeat(64);
        assert!(matches!(
            normalized(g, &id),
            Err(ImageRefError::Identifier { .. })
        ));
        for other in ["a".repeat(63), "a".repeat(65), format!("{id}\n")] {
            assert!(!g.anchored_identifier.is_match(&other), "{other}");
        }
    }

    const SHA256: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    const SHA256_B: &str =
        "sha256:1234567890098765432112345667890098765432112345667890098765432112";

    fn image(domain: &str, path: &str, tag: Option<&str>, digest: Option<&str>) -> ImageRef {
        ImageRef {
            domain: domain.to_owned(),
            path: path.to_owned(),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        }
    }

    #[test]
    fn parses_valid_references_like_parse_normalized_named() {
        let sha512 = format!("sha512:{}", "f".repeat(128));
        let long_path = "a".repeat(255);
        let long_tag = "t".repeat(128);
        let cases: Vec<(&str, String, ImageRef)> = vec![
            (
                "bare name is a docker hub official image",
                "nginx".into(),
                image("docker.io", "library/nginx", None, None),
            ),
            (
                "bare name with tag",
                "nginx:1.25".into(),
                image("docker.io", "library/nginx", Some("1.25"), None),
            ),
            (
                "tags are case-sensitive",
                "nginx:LATEST".into(),
                image("docker.io", "library/nginx", Some("LATEST"), None),
            ),
            (
                "registry with port and namespace",
                "registry:5000/team/app".into(),
                image("registry:5000", "team/app", None, None),
            ),
            (
                "digest only",
                format!("app@{SHA256}"),
                image("docker.io", "library/app", None, Some(SHA256)),
            ),
            (
                "tag and digest",
                format!("app:latest@{SHA256}"),
                image("docker.io", "library/app", Some("latest"), Some(SHA256)),
            ),
            (
                "docker.io/nginx gets library/",
                "docker.io/nginx".into(),
                image("docker.io", "library/nginx", None, None),
            ),
            (
                "docker.io/library/nginx unchanged",
                "docker.io/library/nginx".into(),
                image("docker.io", "library/nginx", None, None),
            ),
            (
                "index.docker.io is docker.io",
                "index.docker.io/nginx".into(),
                image("docker.io", "library/nginx", None, None),
            ),
            (
                "index.docker.io keeps a namespace",
                "index.docker.io/team/app:v1".into(),
                image("docker.io", "team/app", Some("v1"), None),
            ),
            (
                "namespace on docker hub",
                "team/app:v1".into(),
                image("docker.io", "team/app", Some("v1"), None),
            ),
            (
                "localhost is a domain",
                "localhost/x".into(),
                image("localhost", "x", None, None),
            ),
            (
                "localhost with port",
                "localhost:5000/x".into(),
                image("localhost:5000", "x", None, None),
            ),
            (
                "bare localhost is an image name",
                "localhost".into(),
                image("docker.io", "library/localhost", None, None),
            ),
            (
                "bare dotted name is an image name",
                "example.com".into(),
                image("docker.io", "library/example.com", None, None),
            ),
            (
                "bare name colon digits is a tag, not a port",
                "test.com:5000".into(),
                image("docker.io", "library/test.com", Some("5000"), None),
            ),
            (
                "host without dot but with port",
                "test:5000/repo:tag".into(),
                image("test:5000", "repo", Some("tag"), None),
            ),
            (
                "ipv6 with port",
                "[::1]:5000/x".into(),
                image("[::1]:5000", "x", None, None),
            ),
            (
                "ipv6 without port",
                "[2001:db8::1]/repo".into(),
                image("[2001:db8::1]", "repo", None, None),
            ),
            (
                "ipv6 trailing double colon",
                "[2001:db8::]:5000/repo".into(),
                image("[2001:db8::]:5000", "repo", None, None),
            ),
            (
                "ipv6 full form with tag",
                "[2001:db8:1:2:3:4:5:6]/repo:tag".into(),
                image("[2001:db8:1:2:3:4:5:6]", "repo", Some("tag"), None),
            ),
            (
                "ipv6 with port, tag and digest",
                format!("[2001:db8::1]:5000/repo:tag@{SHA256}"),
                image("[2001:db8::1]:5000", "repo", Some("tag"), Some(SHA256)),
            ),
            (
                "ipv4 with port and numeric tag",
                "192.168.1.1:5000/repo:5050".into(),
                image("192.168.1.1:5000", "repo", Some("5050"), None),
            ),
            (
                "ipv4 without port",
                "192.168.1.1/repo".into(),
                image("192.168.1.1", "repo", None, None),
            ),
            (
                "subdomain with port, tag and digest",
                format!("sub.domain.com:8080/repo:tag@{SHA256_B}"),
                image("sub.domain.com:8080", "repo", Some("tag"), Some(SHA256_B)),
            ),
            (
                "deep path",
                "sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(),
                image(
                    "sub-dom1.foo.com",
                    "bar/baz/quux",
                    Some("some-long-tag"),
                    None,
                ),
            ),
            (
                "dotted path component and dotted tag",
                "b.gcr.io/test.example.com/my-app:test.example.com".into(),
                image(
                    "b.gcr.io",
                    "test.example.com/my-app",
                    Some("test.example.com"),
                    None,
                ),
            ),
            (
                "punycode domain",
                "xn--n3h.com/myimage:xn--n3h.com".into(),
                image("xn--n3h.com", "myimage", Some("xn--n3h.com"), None),
            ),
            (
                "double underscore separator",
                "a__b/c".into(),
                image("docker.io", "a__b/c", None, None),
            ),
            (
                "repeated dash separator",
                "a---b".into(),
                image("docker.io", "library/a---b", None, None),
            ),
            (
                "dot and underscore separators",
                "team/a_b.c".into(),
                image("docker.io", "team/a_b.c", None, None),
            ),
            (
                "uppercase first element is a domain",
                "UPPER/x".into(),
                image("UPPER", "x", None, None),
            ),
            (
                "invalid dotted first element falls back to a path",
                "foo_bar.com/x".into(),
                image("", "foo_bar.com/x", None, None),
            ),
            (
                "uppercase tag",
                "lowercase:Uppercase".into(),
                image("docker.io", "library/lowercase", Some("Uppercase"), None),
            ),
            (
                "sha512 digest",
                format!("x.com/a@{sha512}"),
                image("x.com", "a", None, Some(&sha512)),
            ),
            (
                "path of exactly 255 bytes",
                format!("example.com/{long_path}:tag"),
                image("example.com", &long_path, Some("tag"), None),
            ),
            (
                "tag of 128 characters",
                format!("app:{long_tag}"),
                image("docker.io", "library/app", Some(&long_tag), None),
            ),
            (
                "tag may start with underscore",
                "app:_x".into(),
                image("docker.io", "library/app", Some("_x"), None),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(parse(&input), Ok(want), "{name}: {input}");
        }
    }

    #[test]
    fn rejects_invalid_references_with_upstream_errors() {
        use ImageRefError::*;
        let cases: Vec<(&str, String, ImageRefError)> = vec![
            ("empty", String::new(), InvalidFormat),
            ("tag only", ":tag".into(), InvalidFormat),
            ("digest only", format!("@{SHA256}"), InvalidFormat),
            ("two colons", "a:b:c".into(), InvalidFormat),
            ("space", "nginx latest".into(), InvalidFormat),
            ("trailing space", "nginx ".into(), InvalidFormat),
            ("trailing newline", "nginx\n".into(), InvalidFormat),
            ("empty tag", "nginx:".into(), InvalidFormat),
            ("leading slash", "/nginx".into(), InvalidFormat),
            ("trailing slash", "team/".into(), InvalidFormat),
            ("double slash", "team//app".into(), InvalidFormat),
            ("leading separator", "-docker".into(), InvalidFormat),
            ("trailing separator", "docker-".into(), InvalidFormat),
            ("triple underscore", "a___b".into(), InvalidFormat),
            ("double dot", "a..b".into(), InvalidFormat),
            ("punctuation in path", "aa/asdf$$^/aa".into(), InvalidFormat),
            (
                "ipv6 without path",
                "[2001:db8::1]:5000".into(),
                InvalidFormat,
            ),
            (
                "ipv6 zone",
                "[fe80::1%eth0]:5000/repo".into(),
                InvalidFormat,
            ),
            (
                "tag too long",
                format!("app:{}", "t".repeat(129)),
                InvalidFormat,
            ),
            ("tag starting with dot", "app:.x".into(), InvalidFormat),
            ("non-ascii", "nginx:tæg".into(), InvalidFormat),
            (
                "uppercase bare name",
                "UPPER".into(),
                Uppercase {
                    repository: "library/UPPER".into(),
                },
            ),
            (
                "uppercase bare name with tag",
                "Uppercase:tag".into(),
                Uppercase {
                    repository: "library/Uppercase".into(),
                },
            ),
            (
                "uppercase in path after a registry",
                "test:5000/Uppercase/lowercase:tag".into(),
                Uppercase {
                    repository: "Uppercase/lowercase".into(),
                },
            ),
            (
                "uppercase in path on docker hub",
                "docker.io/Nginx".into(),
                Uppercase {
                    repository: "library/Nginx".into(),
                },
            ),
            (
                "uppercase digest algorithm fails the path check",
                format!("app@SHA256:{}", "f".repeat(64)),
                Uppercase {
                    repository: "library/app@SHA256".into(),
                },
            ),
            (
                "bare image id",
                "f".repeat(64),
                Identifier {
                    reference: "f".repeat(64),
                },
            ),
            (
                "path too long on docker hub",
                format!("domain/{}:tag", "a".repeat(256)),
                NameTooLong { length: 263 },
            ),
            (
                "normalised path too long",
                "a".repeat(250),
                NameTooLong { length: 258 },
            ),
            (
                "too many components",
                format!("{}a:tag", "a/".repeat(128)),
                NameTooLong { length: 257 },
            ),
            (
                "short sha256",
                "repo@sha256:ffffffffffffffffffffffffffffffffff".into(),
                DigestInvalidLength {
                    digest: "sha256:ffffffffffffffffffffffffffffffffff".into(),
                },
            ),
            (
                "uppercase sha256 hex",
                format!("repo@sha256:{}", "F".repeat(64)),
                DigestInvalidFormat {
                    digest: format!("sha256:{}", "F".repeat(64)),
                },
            ),
            (
                "unknown algorithm",
                format!("validname@invaliddigest:{}", "f".repeat(64)),
                DigestUnsupported {
                    algorithm: "invaliddigest".into(),
                },
            ),
            (
                "md5 is not registered",
                format!("repo@md5:{}", "f".repeat(32)),
                DigestUnsupported {
                    algorithm: "md5".into(),
                },
            ),
            (
                "digest hex too short for the grammar",
                "repo@sha256:abc".into(),
                InvalidFormat,
            ),
            (
                "digest with non-hex",
                format!("repo@sha256:{}", "g".repeat(64)),
                InvalidFormat,
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(parse(&input), Err(want), "{name}: {input:?}");
        }
    }

    /// `TestValidateReferenceName` and `TestValidateRemoteName` in normalize_test.go.
    #[test]
    fn agrees_with_upstream_valid_and_invalid_name_lists() {
        let valid = [
            "docker/docker",
            "library/debian",
            "debian",
            "docker.io/docker/docker",
            "docker.io/library/debian",
            "docker.io/debian",
            "index.docker.io/docker/docker",
            "index.docker.io/library/debian",
            "index.docker.io/debian",
            "127.0.0.1:5000/docker/docker",
            "127.0.0.1:5000/library/debian",
            "127.0.0.1:5000/debian",
            "192.168.0.1",
            "192.168.0.1:80",
            "192.168.0.1:8/debian",
            "192.168.0.2:25000/debian",
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
            "[fc00::1]:5000/docker",
            "[fc00::1]:5000/docker/docker",
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
            "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "Docker/docker",
            "DOCKER/docker",
            "docker-rules/docker",
            "docker---rules/docker",
            "doc/docker",
            "d/docker",
            "jess/t",
            "dock__er/docker",
        ];
        for name in valid {
            assert!(parse(name).is_ok(), "{name}: {:?}", parse(name));
        }
        let invalid = [
            "https://github.com/docker/docker",
            "docker/Docker",
            "-docker",
            "-docker/docker",
            "-docker.io/docker/docker",
            "docker///docker",
            "docker.io/docker/Docker",
            "docker.io/docker///docker",
            "[fc00::1]",
            "[fc00::1]:5000",
            "fc00::1:5000/debian",
            "[fe80::1%eth0]:5000/debian",
            "[2001:db8:3:4::192.0.2.33]:5000/debian",
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "docker-/docker",
            "-docker-/docker",
            "____/____",
            "_docker/_docker",
            "dock..er/docker",
            "dock_.er/docker",
            "dock-.er/docker",
            "docker/",
        ];
        for name in invalid {
            assert!(parse(name).is_err(), "{name}: {:?}", parse(name));
        }
    }

    /// `TestNormalizedSplitHostname` and `TestParseRepositoryInfo` in normalize_test.go.
    #[test]
    fn splits_domain_and_path_like_upstream() {
        let cases = [
            ("test.com/foo", "test.com", "foo"),
            ("test_com/foo", "docker.io", "test_com/foo"),
            ("docker/migrator", "docker.io", "docker/migrator"),
            ("test.com:8080/foo", "test.com:8080", "foo"),
            ("test-com:8080/foo", "test-com:8080", "foo"),
            ("foo", "docker.io", "library/foo"),
            ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
            ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
            ("library/foo/bar", "docker.io", "library/foo/bar"),
            ("store/foo/bar", "docker.io", "store/foo/bar"),
            (
                "ubuntu-12.04-base",
                "docker.io",
                "library/ubuntu-12.04-base",
            ),
            (
                "127.0.0.1:8000/privatebase",
                "127.0.0.1:8000",
                "privatebase",
            ),
            ("Foo/bar", "Foo", "bar"),
            ("FOO/bar", "FOO", "bar"),
        ];
        for (input, domain, path) in cases {
            let got = parse(input).map(|i| (i.domain, i.path));
            assert_eq!(got, Ok((domain.to_owned(), path.to_owned())), "{input}");
        }
    }

    #[test]
    fn lowercase_fallback_reports_uppercase_like_parse() {
        // The Kelvin sign lowercases to ASCII `k` in Go and Rust alike, so upstream's `Parse`
        // calls this an uppercase name rather than an invalid format.
        let input = "app:\u{212A}";
        assert_eq!(
            parse(input),
            Err(ImageRefError::Uppercase {
                repository: "docker.io/library/app:\u{212A}".to_owned()
            })
        );
    }

    #[test]
    fn effective_tag_is_latest_only_without_tag_and_digest() {
        let cases: Vec<(&str, String, Option<&str>)> = vec![
            ("untagged", "nginx".into(), Some("latest")),
            (
                "untagged with registry port",
                "registry:5000/team/app".into(),
                Some("latest"),
            ),
            ("tagged", "nginx:1.25".into(), Some("1.25")),
            (
                "uppercase latest is not latest",
                "nginx:LATEST".into(),
                Some("LATEST"),
            ),
            ("digest pins", format!("app@{SHA256}"), None),
            (
                "tag beside a digest is kept",
                format!("app:latest@{SHA256}"),
                Some("latest"),
            ),
        ];
        for (name, input, want) in cases {
            let image = parse(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(image.effective_tag(), want, "{name}");
        }
    }

    #[test]
    fn name_joins_domain_and_path() {
        assert_eq!(
            parse("nginx").map(|i| i.name()),
            Ok("docker.io/library/nginx".to_owned())
        );
        assert_eq!(
            parse("foo_bar.com/x").map(|i| i.name()),
            Ok("foo_bar.com/x".to_owned())
        );
    }

    #[test]
    fn error_messages_are_lowercase_without_trailing_period() {
        let errors = [
            parse("").err(),
            parse("UPPER").err(),
            parse(&"f".repeat(64)).err(),
            parse(&"a".repeat(300)).err(),
            parse("repo@sha256:ffffffffffffffffffffffffffffffffff").err(),
            parse(&format!("repo@md5:{}", "f".repeat(32))).err(),
        ];
        for error in errors {
            let message = error.map(|e| e.to_string()).unwrap_or_default();
            assert!(message.starts_with(|c: char| c.is_lowercase()), "{message}");
            assert!(!message.ends_with('.'), "{message}");
        }
    }

    #[test]
    fn never_panics_on_awkward_input() {
        let inputs = [
            "",
            ":",
            "@",
            "/",
            "//",
            "[",
            "]",
            "[]/x",
            "[::1",
            "::",
            "a@",
            "a@:",
            "a@b:",
            "@:",
            "é",
            "\u{0}",
            "İ/x",
            "\u{212A}",
            "a:b@c:d",
            "localhost:",
            "x/.",
            "x/./y",
        ];
        for input in inputs {
            // Every one of these is invalid; the point is an error value rather than a panic.
            assert!(parse(input).is_err(), "{input:?}");
        }
        let long = "a/".repeat(10_000);
        assert!(parse(&long).is_err());
    }

    /// `accepts` is `parse(..).is_ok()`: every combination of valid and invalid domains,
    /// paths, tags and digests, and the image-id form.
    #[test]
    fn accepts_exactly_what_parse_accepts() {
        let hex64 = "f".repeat(64);
        let domains = [
            "",
            "docker.io/",
            "index.docker.io/",
            "localhost/",
            "localhost:5000/",
            "Registry.Example.com:443/",
            "[::1]:5000/",
            "foo_bar.com/",
            "UPPER/",
            "a..b/",
        ];
        let long = "a".repeat(250);
        let paths = [
            "nginx",
            "team/app",
            "Team/app",
            "a__b/c--d",
            "a_-b",
            "",
            "-x",
            long.as_str(),
        ];
        let long_tag = format!(":{}", "t".repeat(128));
        let tags = [
            "",
            ":latest",
            ":LATEST",
            ":1.25",
            ":-bad",
            ":",
            long_tag.as_str(),
        ];
        let digests = [
            String::new(),
            format!("@sha256:{hex64}"),
            format!("@sha256:{}", "F".repeat(64)),
            "@sha256:abc".to_owned(),
            format!("@sha512:{}", "f".repeat(128)),
            format!("@md5:{}", "f".repeat(32)),
            format!("@SHA256:{hex64}"),
            format!("@sha256:{}", "f".repeat(63)),
        ];
        let mut compared = 0;
        for domain in domains {
            for path in paths {
                for tag in tags {
                    for digest in &digests {
                        let reference = format!("{domain}{path}{tag}{digest}");
                        assert_eq!(
                            accepts(&reference),
                            parse(&reference).is_ok(),
                            "{reference}"
                        );
                        compared += 1;
                    }
                }
            }
        }
        for reference in [hex64.as_str(), "sha256:x", "a@b@c", "a:b:c", "a/b:c/d"] {
            assert_eq!(accepts(reference), parse(reference).is_ok(), "{reference}");
        }
        assert!(compared > 4000);
    }
}
