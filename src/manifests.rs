//! Manifest files for the offline `podgate check` command: read YAML and JSON files, folders
//! and standard input, and hand back every Kubernetes object in them with where it came from.
//!
//! This is an I/O edge: it reads files and parses text, nothing else. It must not evaluate
//! policy, print, or log; it must not panic on any input, and it refuses files over
//! [`MAX_FILE_BYTES`] before reading them whole. Type checks (is there a `kind`, is it a Pod)
//! belong to the caller.
//!
//! YAML goes through `serde-saphyr` into `serde_json::Value` with:
//! - `strict_booleans`: only `true`/`false` (any case form) are booleans, so YAML 1.1 `on`,
//!   `y`, `no` stay strings. kubectl (go-yaml v2, YAML 1.1) would read them as booleans; podgate
//!   reads them as text on purpose.
//! - `legacy_octal_numbers`: `0755` is 493, as kubectl reads `defaultMode: 0755`. Without it
//!   serde-saphyr returns the float `755.0`, which is neither YAML 1.1 nor what the apiserver
//!   receives. `0o755` is 493 either way; `08` is the float 8.
//! - duplicate keys are an error (the default), and the budget stays on so alias bombs fail
//!   fast; its size limits are raised to fit a 16 MiB file (see `budget()`).
//! - snippets off: errors carry path, line and column as fields instead of a rendered excerpt.
//!
//! Numbers: a float with no fractional part (`1.0`, `1e3`, `08`) becomes an integer, in YAML
//! and JSON alike. kubectl and the apiserver pass numbers through Go's `float64`, and Go's
//! `encoding/json` writes `1.0` as `1`, so this is what an admission webhook receives; rules
//! can then use `as_i64()` without caring how the file spelt the number. Non-finite floats
//! (`.inf`, `.nan`, `1e400`) are errors: JSON cannot carry them.
//!
//! Documents: multi-document YAML (`---`), JSON files holding one value or a stream of values,
//! documents that are arrays of objects (JSON or YAML), and `List` objects (`kind` ending in
//! `List` with an `items` array, as apimachinery's unstructured decoder decides) are expanded,
//! recursively for nested lists. Items keep their container's document number and line. Empty
//! and `null` documents and items are skipped. Any other non-object document is an error.
//!
//! Duplicate keys: an error in YAML, as in kubectl (go-yaml refuses them); in JSON the last one
//! wins, as in the apiserver's default (non-strict) decoding.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;
use serde_saphyr::{MessageFormatter, Spanned, UserMessageFormatter};

/// The largest manifest file, or standard input, that `read_paths` accepts.
pub(crate) const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Extensions picked up when walking a folder (an explicitly named file is read whatever its
/// extension).
const MANIFEST_EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// The path that stands for standard input.
const STDIN: &str = "-";

/// One Kubernetes object read from a manifest file.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file it came from (`-` for standard input).
    pub file: PathBuf,
    /// 1-based document number in the file
    pub index: usize,
    /// 1-based line where the document starts (best effort: the line of its root node, for
    /// JSON too; items of an array or a `List` share their container's line)
    pub line: usize,
    /// The object, as JSON.
    pub object: serde_json::Value,
}

/// Why manifests could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file or folder could not be opened, listed or read.
    #[error("{}: cannot read: {source}", shown(.path))]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("{}: larger than 16 MiB ({limit} bytes), not read", shown(.path))]
    TooLarge { path: PathBuf, limit: u64 },
    /// The file is not UTF-8 text.
    #[error("{}: not utf-8 text (byte {valid_up_to} is invalid)", shown(.path))]
    NotUtf8 { path: PathBuf, valid_up_to: usize },
    /// The YAML is malformed, has a duplicate key, breaches the budget, and so on.
    #[error("{}: invalid yaml: {reason}", at(.path, *.line, *.column))]
    Yaml {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        reason: String,
    },
    /// The JSON is malformed.
    #[error("{}: invalid json: {reason}", at(.path, *.line, *.column))]
    Json {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        reason: String,
    },
    /// A document (or a list item) is a scalar or a sequence where an object was expected.
    #[error(
        "{}: document {index} is {found}, expected a kubernetes object",
        at(.path, Some(*.line), None)
    )]
    NotAnObject {
        path: PathBuf,
        index: usize,
        line: usize,
        found: &'static str,
    },
}

impl ManifestError {
    /// The file (or folder) the error is about; `-` for standard input.
    pub fn path(&self) -> &Path {
        match self {
            ManifestError::Io { path, .. }
            | ManifestError::TooLarge { path, .. }
            | ManifestError::NotUtf8 { path, .. }
            | ManifestError::Yaml { path, .. }
            | ManifestError::Json { path, .. }
            | ManifestError::NotAnObject { path, .. } => path,
        }
    }

    /// The 1-based line, when the error has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ManifestError::Yaml { line, .. } | ManifestError::Json { line, .. } => *line,
            ManifestError::NotAnObject { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// The 1-based column, when the error has one.
    pub fn column(&self) -> Option<usize> {
        match self {
            ManifestError::Yaml { column, .. } | ManifestError::Json { column, .. } => *column,
            _ => None,
        }
    }

    /// The message without the `path:line:column: ` prefix.
    pub fn reason(&self) -> String {
        match self {
            ManifestError::Io { source, .. } => format!("cannot read: {source}"),
            ManifestError::TooLarge { limit, .. } => {
                format!("larger than 16 MiB ({limit} bytes), not read")
            }
            ManifestError::NotUtf8 { valid_up_to, .. } => {
                format!("not utf-8 text (byte {valid_up_to} is invalid)")
            }
            ManifestError::Yaml { reason, .. } => format!("invalid yaml: {reason}"),
            ManifestError::Json { reason, .. } => format!("invalid json: {reason}"),
            ManifestError::NotAnObject { index, found, .. } => {
                format!("document {index} is {found}, expected a kubernetes object")
            }
        }
    }

    /// The same error `lines` lines further down (a document parsed on its own).
    fn shifted(self, lines: usize) -> ManifestError {
        match self {
            ManifestError::Yaml {
                path,
                line,
                column,
                reason,
            } => ManifestError::Yaml {
                path,
                line: line.map(|l| l + lines),
                column,
                reason,
            },
            other => other,
        }
    }
}

/// `path:line:column`, with whatever parts are known.
fn at(path: &Path, line: Option<usize>, column: Option<usize>) -> String {
    let path = shown(path);
    match (line, column) {
        (Some(line), Some(column)) => format!("{path}:{line}:{column}"),
        (Some(line), None) => format!("{path}:{line}"),
        _ => path,
    }
}

/// A path for messages; standard input reads better as `<stdin>` than as `-`.
fn shown(path: &Path) -> String {
    if path.as_os_str() == STDIN {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    }
}

/// Read files and folders (recursively; *.yaml, *.yml, *.json in folders, sorted for stable
/// output; an explicitly named file is read whatever its extension; `-` means standard input).
/// Multi-document YAML (`---`), JSON files (one object or a JSON array of objects), and
/// `kind: List` / `*List` objects (their `items` become separate Documents, same index) are
/// expanded. Empty documents and `null` documents are skipped.
#[cfg(test)] // the strict form, for the tests; the CLI reads with `read_all`
fn read_paths(paths: &[PathBuf]) -> Result<Vec<Document>, ManifestError> {
    read_paths_with_stdin(paths, &mut io::stdin().lock())
}

/// [`read_paths`] with standard input passed in, so tests can feed it.
#[cfg(test)]
fn read_paths_with_stdin(
    paths: &[PathBuf],
    stdin: &mut dyn Read,
) -> Result<Vec<Document>, ManifestError> {
    let mut documents = Vec::new();
    for path in paths {
        if path.as_os_str() == STDIN {
            let text = read_limited(path, &mut *stdin)?;
            documents.extend(parse_text(path, &text)?);
            continue;
        }
        let metadata = fs::metadata(path).map_err(|source| io_error(path, source))?;
        let files = if metadata.is_dir() {
            let mut files = Vec::new();
            collect_manifests(path, &mut files)?;
            // Sorted so that output and exit status do not depend on directory order.
            files.sort();
            files
        } else {
            vec![path.clone()]
        };
        for file in files {
            let text = read_file(&file)?;
            documents.extend(parse_text(&file, &text)?);
        }
    }
    Ok(documents)
}

/// Everything read from the inputs: the documents that parsed, and why the rest did not.
#[derive(Debug, Default)]
pub struct Input {
    /// Every object read, in input order.
    pub documents: Vec<Document>,
    /// Files, folders and documents that could not be read, in input order.
    pub errors: Vec<ManifestError>,
    /// How many files (and standard-input reads) were opened.
    pub files: usize,
}

/// Like [`read_paths`], but one bad path, file or document never hides the others: each
/// problem is collected in [`Input::errors`] and reading goes on with the rest. In a
/// multi-document YAML file with a bad document, the other documents are still read (see
/// [`parse_text_lenient`]).
pub(crate) fn read_all(paths: &[PathBuf]) -> Input {
    read_all_with_stdin(paths, &mut io::stdin().lock())
}

/// [`read_all`] with standard input passed in, so tests can feed it.
fn read_all_with_stdin(paths: &[PathBuf], stdin: &mut dyn Read) -> Input {
    let mut input = Input::default();
    for path in paths {
        if path.as_os_str() == STDIN {
            input.files += 1;
            match read_limited(path, &mut *stdin) {
                Ok(text) => input.add(parse_text_lenient(path, &text)),
                Err(e) => input.errors.push(e),
            }
            continue;
        }
        let files = match fs::metadata(path) {
            Err(source) => {
                input.errors.push(io_error(path, source));
                continue;
            }
            Ok(metadata) if metadata.is_dir() => {
                let mut files = Vec::new();
                let mut errors = Vec::new();
                collect_manifests_lenient(path, &mut files, &mut errors);
                input.errors.extend(errors);
                // Sorted so that output and exit status do not depend on directory order.
                files.sort();
                files
            }
            Ok(_) => vec![path.clone()],
        };
        for file in files {
            input.files += 1;
            match read_file(&file) {
                Ok(text) => input.add(parse_text_lenient(&file, &text)),
                Err(e) => input.errors.push(e),
            }
        }
    }
    input
}

impl Input {
    fn add(&mut self, (documents, errors): (Vec<Document>, Vec<ManifestError>)) {
        self.documents.extend(documents);
        self.errors.extend(errors);
    }
}

/// [`parse_text`] that keeps going: the documents that parse, and an error for each one that
/// does not. YAML: when the stream as a whole fails, each `---` document is parsed on its own
/// (a marker at column 0 cannot occur inside any YAML content, so the split is exact), with its
/// number and lines kept. JSON: the values before a syntax error are kept (a JSON stream cannot
/// be resynchronised after one). A document that is not an object is an error on its own.
pub fn parse_text_lenient(file: &Path, text: &str) -> (Vec<Document>, Vec<ManifestError>) {
    let mut errors = Vec::new();
    let roots = if is_json_file(file) {
        let (roots, error) = parse_json_partial(file, text);
        errors.extend(error);
        roots
    } else {
        match parse_yaml(file, text) {
            Ok(roots) => roots,
            Err(whole) => {
                let chunks = split_documents(text);
                if chunks.len() <= 1 {
                    errors.push(whole);
                    Vec::new()
                } else {
                    let mut roots = Vec::new();
                    for (index, first_line, chunk) in chunks {
                        match parse_yaml(file, chunk) {
                            Ok(found) => roots.extend(
                                found
                                    .into_iter()
                                    .map(|(_, line, value)| (index, line + first_line - 1, value)),
                            ),
                            Err(e) => errors.push(e.shifted(first_line - 1)),
                        }
                    }
                    roots
                }
            }
        }
    };
    let mut documents = Vec::new();
    for (index, line, mut value) in roots {
        normalise_numbers(&mut value);
        let mut found = Vec::new();
        match expand(file, index, line, value, &mut found) {
            Ok(()) => documents.extend(found),
            Err(e) => errors.push(e),
        }
    }
    // In file order, whichever stage found them.
    errors.sort_by_key(|e| e.line().unwrap_or(usize::MAX));
    (documents, errors)
}

/// A YAML stream cut at its `---` markers: (1-based document number, 1-based first line,
/// text). Lines before the first marker (comments, directives) stay with the first document,
/// unless they hold content of their own (an implicit first document).
fn split_documents(text: &str) -> Vec<(usize, usize, &str)> {
    let markers = DocumentMarkers::scan(text);
    // Byte offset of the start of each marker line.
    let mut starts = Vec::with_capacity(markers.lines.len());
    let mut offset = 0;
    for (number, line) in text.split_inclusive('\n').enumerate() {
        if markers.lines.binary_search(&(number + 1)).is_ok() {
            starts.push((number + 1, offset));
        }
        offset += line.len();
    }
    // Document 1 starts at the top (with any preamble); each later marker starts the next.
    let mut cuts = vec![(1, 0)];
    let skip_first_marker = !markers.implicit_first;
    for (k, &cut) in starts.iter().enumerate() {
        if k == 0 && skip_first_marker {
            continue;
        }
        cuts.push(cut);
    }
    let mut chunks = Vec::with_capacity(cuts.len());
    for (i, &(line, start)) in cuts.iter().enumerate() {
        let end = cuts.get(i + 1).map_or(text.len(), |&(_, next)| next);
        if let Some(chunk) = text.get(start..end) {
            chunks.push((i + 1, line, chunk));
        }
    }
    chunks
}

fn is_json_file(file: &Path) -> bool {
    file.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// The pure part, for tests and stdin: parse one file's text.
///
/// A `.json` file is read as JSON; anything else (including standard input) as YAML, which also
/// reads JSON text.
pub(crate) fn parse_text(file: &Path, text: &str) -> Result<Vec<Document>, ManifestError> {
    let is_json = file
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let roots = if is_json {
        parse_json(file, text)?
    } else {
        parse_yaml(file, text)?
    };
    let mut documents = Vec::new();
    for (index, line, mut value) in roots {
        normalise_numbers(&mut value);
        expand(file, index, line, value, &mut documents)?;
    }
    Ok(documents)
}

/// A document's root value with its 1-based document number and line.
type Root = (usize, usize, Value);

fn parse_yaml(file: &Path, text: &str) -> Result<Vec<Root>, ManifestError> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        legacy_octal_numbers: true,
        with_snippet: false,
        budget: budget(),
    };
    let roots: Vec<Spanned<Value>> = serde_saphyr::from_multiple_with_options(text, options)
        .map_err(|e| yaml_error(file, &e))?;
    let markers = DocumentMarkers::scan(text);
    Ok(roots
        .into_iter()
        .map(|root| {
            let line = usize::try_from(root.referenced.line()).unwrap_or(1).max(1);
            (markers.index_of(line), line, root.value)
        })
        .collect())
}

/// serde-saphyr's default budget, with the size limits scaled to a 16 MiB file.
///
/// The budget counts the whole stream, and its defaults (250 000 nodes, 1 024 documents) refuse
/// a 2 MB bundle of ordinary manifests. Nodes, events and documents that are written out are
/// bounded by [`MAX_FILE_BYTES`] anyway; what the budget must stop is amplification, and the
/// alias limits that do that (total replayed events, alias/anchor ratio) keep their defaults.
/// Depth stays at the default 64: serde-saphyr recurses per level, and at 128 levels a debug
/// build overflows a 2 MiB thread stack (an abort, not an error). JSON files get serde_json's
/// own limit of 128, which is cheap per level.
fn budget() -> Option<serde_saphyr::Budget> {
    serde_saphyr::budget! {
        max_nodes: 4_000_000,
        max_events: 10_000_000,
        max_documents: 1_000_000,
    }
}

fn yaml_error(file: &Path, error: &serde_saphyr::Error) -> ManifestError {
    let location = error.location();
    // The user formatter gives the message without the "at line, column" suffix, which we
    // carry as fields; control characters are escaped as its documentation asks.
    let reason = UserMessageFormatter
        .format_message(error)
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_debug().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    ManifestError::Yaml {
        path: file.to_path_buf(),
        line: location.and_then(|l| usize::try_from(l.line()).ok()),
        column: location.and_then(|l| usize::try_from(l.column()).ok()),
        reason,
    }
}

/// Where `---` document markers are, so a root's line can be turned into a document number
/// counting the empty and `null` documents that serde-saphyr skips.
struct DocumentMarkers {
    /// 1-based lines holding a `---` marker, in order.
    lines: Vec<usize>,
    /// Whether content comes before the first marker, i.e. the first document is implicit.
    implicit_first: bool,
}

impl DocumentMarkers {
    fn scan(text: &str) -> Self {
        let mut lines = Vec::new();
        let mut implicit_first = false;
        for (number, line) in text.lines().enumerate() {
            let line = line.strip_prefix('\u{feff}').unwrap_or(line);
            // A marker is `---` at column 0 followed by whitespace or the end of the line;
            // YAML forbids that sequence inside any scalar, so this cannot misfire on content.
            let is_marker = line
                .strip_prefix("---")
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
            if is_marker {
                lines.push(number + 1);
            } else if lines.is_empty() && !implicit_first {
                let trimmed = line.trim_start();
                // Comments, blank lines, directives and `...` do not make a document.
                implicit_first = !(trimmed.is_empty()
                    || trimmed.starts_with('#')
                    || line.starts_with('%')
                    || line.starts_with("..."));
            }
        }
        Self {
            lines,
            implicit_first,
        }
    }

    /// The 1-based number of the document whose root node is on `line`. A bare document after
    /// `...` without a `---` is counted with the one before it (best effort).
    fn index_of(&self, line: usize) -> usize {
        let markers_before = self.lines.iter().take_while(|&&m| m <= line).count();
        (markers_before + usize::from(self.implicit_first)).max(1)
    }
}

fn parse_json(file: &Path, text: &str) -> Result<Vec<Root>, ManifestError> {
    match parse_json_partial(file, text) {
        (roots, None) => Ok(roots),
        (_, Some(error)) => Err(error),
    }
}

/// The values of a JSON stream up to the first syntax error, and that error.
fn parse_json_partial(file: &Path, text: &str) -> (Vec<Root>, Option<ManifestError>) {
    // serde_json does not skip a byte-order mark; editors on Windows write one.
    // Stripping it shifts no line numbers.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut roots = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut start = 0;
    while let Some(next) = stream.next() {
        let value = match next {
            Ok(value) => value,
            Err(e) => {
                let error = ManifestError::Json {
                    path: file.to_path_buf(),
                    line: Some(e.line()).filter(|&l| l > 0),
                    column: Some(e.column()).filter(|&c| c > 0),
                    reason: json_reason(&e),
                };
                return (roots, Some(error));
            }
        };
        // The value began at the first non-blank byte after the previous one ended.
        let skipped = text
            .get(start..)
            .map_or(0, |rest| rest.len() - rest.trim_start().len());
        let line = line_of(text, start + skipped);
        start = stream.byte_offset();
        if !value.is_null() {
            roots.push((roots.len() + 1, line, value));
        }
    }
    (roots, None)
}

/// serde_json's message without its " at line X column Y" suffix, which we keep as fields.
fn json_reason(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    message
        .strip_suffix(&suffix)
        .map_or(message.clone(), str::to_owned)
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let prefix = text.get(..offset).unwrap_or(text);
    prefix.bytes().filter(|&b| b == b'\n').count() + 1
}

/// Turn one root value into documents: objects as they are, sequences and `List` objects item
/// by item, `null` skipped.
fn expand(
    file: &Path,
    index: usize,
    line: usize,
    value: Value,
    out: &mut Vec<Document>,
) -> Result<(), ManifestError> {
    match value {
        Value::Null => Ok(()),
        Value::Array(items) => items
            .into_iter()
            .try_for_each(|item| expand_item(file, index, line, item, out)),
        Value::Object(mut object) => {
            let is_list = object
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|kind| kind.ends_with("List"))
                && object.get("items").is_some_and(Value::is_array);
            if is_list {
                let items = object.remove("items").unwrap_or(Value::Null);
                return expand(file, index, line, items, out);
            }
            out.push(Document {
                file: file.to_path_buf(),
                index,
                line,
                object: Value::Object(object),
            });
            Ok(())
        }
        other => Err(not_an_object(file, index, line, &other)),
    }
}

/// An element of an array or of a `List`'s `items`: an object (maybe itself a list) or null.
fn expand_item(
    file: &Path,
    index: usize,
    line: usize,
    item: Value,
    out: &mut Vec<Document>,
) -> Result<(), ManifestError> {
    match item {
        Value::Null | Value::Object(_) => expand(file, index, line, item, out),
        other => Err(not_an_object(file, index, line, &other)),
    }
}

fn not_an_object(file: &Path, index: usize, line: usize, value: &Value) -> ManifestError {
    let found = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a nested array",
        Value::Object(_) => "an object",
    };
    ManifestError::NotAnObject {
        path: file.to_path_buf(),
        index,
        line,
        found,
    }
}

/// Floats with no fractional part that fit an `f64` exactly become integers (see the module
/// header for why).
fn normalise_numbers(value: &mut Value) {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match value {
        Value::Number(number) if !number.is_i64() && !number.is_u64() => {
            if let Some(float) = number.as_f64()
                && float.fract() == 0.0
                && float.abs() <= EXACT
            {
                // In range and integral, so the cast is exact.
                *value = Value::from(float as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise_numbers),
        Value::Object(object) => object.values_mut().for_each(normalise_numbers),
        _ => {}
    }
}

/// Append the manifest files under `folder` (recursively) to `out`. Symlinks to files are
/// read; symlinks to folders are not followed, so a link loop cannot recurse forever.
#[cfg(test)]
fn collect_manifests(folder: &Path, out: &mut Vec<PathBuf>) -> Result<(), ManifestError> {
    let mut errors = Vec::new();
    collect_manifests_lenient(folder, out, &mut errors);
    match errors.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(()),
    }
}

/// [`collect_manifests`] that notes a folder or entry it cannot read and goes on.
fn collect_manifests_lenient(
    folder: &Path,
    out: &mut Vec<PathBuf>,
    errors: &mut Vec<ManifestError>,
) {
    let entries = match fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(source) => return errors.push(io_error(folder, source)),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(source) => {
                errors.push(io_error(folder, source));
                continue;
            }
        };
        let path = entry.path();
        let file_type = match entry.file_type() {
            Ok(file_type) => file_type,
            Err(source) => {
                errors.push(io_error(&path, source));
                continue;
            }
        };
        if file_type.is_dir() {
            collect_manifests_lenient(&path, out, errors);
        } else if has_manifest_extension(&path) {
            let is_file = if file_type.is_symlink() {
                // A dangling link is reported when it is read, like any unreadable file.
                fs::metadata(&path).map_or(true, |m| m.is_file())
            } else {
                file_type.is_file()
            };
            if is_file {
                out.push(path);
            }
        }
    }
}

fn has_manifest_extension(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        MANIFEST_EXTENSIONS
            .iter()
            .any(|m| e.eq_ignore_ascii_case(m))
    })
}

fn read_file(path: &Path) -> Result<String, ManifestError> {
    let file = fs::File::open(path).map_err(|source| io_error(path, source))?;
    // Check the size first so a huge file is refused without reading it; the bounded read
    // below still catches files that grow, and devices or pipes that report no size.
    let size = file
        .metadata()
        .map_err(|source| io_error(path, source))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(ManifestError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_FILE_BYTES,
        });
    }
    read_limited(path, file)
}

/// Read at most [`MAX_FILE_BYTES`] as UTF-8 text.
fn read_limited(path: &Path, reader: impl Read) -> Result<String, ManifestError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| io_error(path, source))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ManifestError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_FILE_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|e| ManifestError::NotUtf8 {
        path: path.to_path_buf(),
        valid_up_to: e.utf8_error().valid_up_to(),
    })
}

fn io_error(path: &Path, source: io::Error) -> ManifestError {
    ManifestError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(file: &str, text: &str) -> Vec<Document> {
        parse_text(Path::new(file), text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn summary(documents: &[Document]) -> Vec<(usize, usize, String)> {
        documents
            .iter()
            .map(|d| {
                let name = d.object["metadata"]["name"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned();
                (d.index, d.line, name)
            })
            .collect()
    }

    #[test]
    fn multi_document_yaml_counts_skipped_documents_in_the_index() {
        let text = "\
# leading comment
---
kind: Pod
metadata: {name: one}
---
---
# only a comment
---
null
---

kind: Pod
metadata: {name: two}
...
--- {kind: Pod, metadata: {name: three}}
";
        let documents = parse("pods.yaml", text);
        assert_eq!(
            summary(&documents),
            vec![
                (1, 3, "one".to_owned()),
                (5, 12, "two".to_owned()),
                (6, 15, "three".to_owned()),
            ]
        );
        assert!(documents.iter().all(|d| d.file == Path::new("pods.yaml")));
    }

    #[test]
    fn implicit_first_document_is_number_one() {
        let text = "kind: Pod\nmetadata: {name: a}\n---\nkind: Pod\nmetadata: {name: b}\n";
        assert_eq!(
            summary(&parse("x.yaml", text)),
            vec![(1, 1, "a".to_owned()), (2, 4, "b".to_owned())]
        );
    }

    #[test]
    fn list_items_become_documents_with_the_list_index() {
        let text = "\
kind: ConfigMap
metadata: {name: before}
---
apiVersion: v1
kind: List
items:
- kind: Pod
  metadata: {name: p}
- null
- kind: PodList
  items:
  - kind: Pod
    metadata: {name: nested}
- kind: Service
  metadata: {name: s}
";
        assert_eq!(
            summary(&parse("list.yaml", text)),
            vec![
                (1, 1, "before".to_owned()),
                (2, 4, "p".to_owned()),
                (2, 4, "nested".to_owned()),
                (2, 4, "s".to_owned()),
            ]
        );
    }

    #[test]
    fn kind_ending_in_list_without_items_array_is_an_object() {
        let text = "kind: AllowList\nmetadata: {name: allow}\nspec: {items: 3}\n";
        let documents = parse("x.yaml", text);
        assert_eq!(documents.len(), 1);
        assert_eq!(documents[0].object["kind"], "AllowList");
    }

    #[test]
    fn empty_list_yields_nothing() {
        assert!(parse("x.yaml", "kind: List\nitems: []\n").is_empty());
    }

    #[test]
    fn json_array_expands_to_objects_with_one_index() {
        let text = r#"[{"kind": "Pod", "metadata": {"name": "a"}},
 {"kind": "Pod", "metadata": {"name": "b"}}]"#;
        assert_eq!(
            summary(&parse("pods.json", text)),
            vec![(1, 1, "a".to_owned()), (1, 1, "b".to_owned())]
        );
    }

    #[test]
    fn json_stream_yields_one_document_per_value_with_lines() {
        let text = "{\"kind\": \"Pod\", \"metadata\": {\"name\": \"a\"}}\nnull\n\n  {\"kind\": \"Pod\",\n \"metadata\": {\"name\": \"b\"}}\n";
        assert_eq!(
            summary(&parse("pods.json", text)),
            vec![(1, 1, "a".to_owned()), (2, 4, "b".to_owned())]
        );
    }

    #[test]
    fn json_with_byte_order_mark_is_read() {
        let documents = parse("bom.json", "\u{feff}{\"kind\": \"Pod\"}");
        assert_eq!(documents[0].object, json!({"kind": "Pod"}));
    }

    #[test]
    fn json_text_on_stdin_is_read_as_yaml() {
        let documents = parse("-", r#"[{"kind": "Pod"}, {"kind": "Service"}]"#);
        assert_eq!(documents.len(), 2);
        assert_eq!(documents[1].object["kind"], "Service");
    }

    #[test]
    fn errors_on_stdin_say_stdin() {
        let error = parse_text(Path::new("-"), "a: [\n").err();
        let message = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.starts_with("<stdin>:1:4: invalid yaml: "),
            "{message}"
        );
    }

    #[test]
    fn yaml_sequence_of_objects_expands_like_a_json_array() {
        let documents = parse("x.yaml", "- kind: Pod\n- kind: Service\n");
        let kinds: Vec<&Value> = documents.iter().map(|d| &d.object["kind"]).collect();
        assert_eq!(kinds, [&json!("Pod"), &json!("Service")]);
        assert!(documents.iter().all(|d| d.index == 1));
    }

    #[test]
    fn json_duplicate_key_keeps_the_last_value() {
        let documents = parse("x.json", r#"{"kind": "Pod", "kind": "Service"}"#);
        assert_eq!(documents[0].object["kind"], "Service");
    }

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        let text = "kind: X\na: on\nb: y\nc: no\nd: yes\ne: off\nf: true\ng: False\n";
        let documents = parse("x.yaml", text);
        assert_eq!(
            documents[0].object,
            json!({"kind": "X", "a": "on", "b": "y", "c": "no", "d": "yes", "e": "off", "f": true, "g": false})
        );
    }

    #[test]
    fn numbers_read_as_kubectl_sends_them() {
        let text = "mode: 0755\nexplicit: 0o755\nquoted: \"0755\"\none: 1.0\nthousand: 1e3\nhalf: 0.5\neight: 08\nbig: 12345678901234567890\n";
        let documents = parse("x.yaml", text);
        assert_eq!(
            documents[0].object,
            json!({"mode": 493, "explicit": 493, "quoted": "0755", "one": 1, "thousand": 1000,
                   "half": 0.5, "eight": 8, "big": 12_345_678_901_234_567_890_u64})
        );
        let json_documents = parse("x.json", r#"{"one": 1.0, "half": 0.5}"#);
        assert_eq!(json_documents[0].object, json!({"one": 1, "half": 0.5}));
    }

    #[test]
    fn non_finite_float_is_an_error() {
        let error = parse_text(Path::new("x.yaml"), "a: .inf\n");
        assert!(
            matches!(error, Err(ManifestError::Yaml { line: Some(1), .. })),
            "{error:?}"
        );
    }

    #[test]
    fn yaml_syntax_error_has_path_line_and_column() {
        let text = "kind: Pod\nmetadata:\n  name: x\n   bad: y\n";
        let error = parse_text(Path::new("bad.yaml"), text).err();
        let Some(ManifestError::Yaml {
            path,
            line,
            column,
            reason,
        }) = &error
        else {
            panic!("expected a yaml error, got {error:?}");
        };
        assert_eq!(path, Path::new("bad.yaml"));
        assert_eq!((*line, *column), (Some(4), Some(7)));
        assert!(!reason.contains("line"), "{reason}");
        let message = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.starts_with("bad.yaml:4:7: invalid yaml: "),
            "{message}"
        );
    }

    #[test]
    fn syntax_error_in_a_later_document_has_its_line() {
        let error = parse_text(Path::new("x.yaml"), "a: 1\n---\nb: [\n");
        assert!(
            matches!(error, Err(ManifestError::Yaml { line: Some(3), .. })),
            "{error:?}"
        );
    }

    #[test]
    fn duplicate_key_is_an_error_with_its_line() {
        let text = "kind: Pod\nmetadata:\n  name: a\n  name: b\n";
        let error = parse_text(Path::new("dup.yaml"), text).err();
        let Some(ManifestError::Yaml { line, reason, .. }) = &error else {
            panic!("expected a yaml error, got {error:?}");
        };
        assert_eq!(*line, Some(4));
        assert!(reason.contains("duplicate"), "{reason}");
    }

    #[test]
    fn json_syntax_error_has_line_and_column() {
        let error = parse_text(Path::new("bad.json"), "{\n  \"kind\": \"Pod\",\n}\n").err();
        let Some(ManifestError::Json {
            line,
            column,
            reason,
            ..
        }) = &error
        else {
            panic!("expected a json error, got {error:?}");
        };
        assert_eq!((*line, *column), (Some(3), Some(1)));
        assert!(!reason.contains("line"), "{reason}");
    }

    #[test]
    fn scalar_document_is_not_an_object() {
        let error = parse_text(Path::new("x.yaml"), "kind: Pod\n---\nhello\n");
        assert!(
            matches!(
                error,
                Err(ManifestError::NotAnObject {
                    index: 2,
                    line: 3,
                    found: "a string",
                    ..
                })
            ),
            "{error:?}"
        );
        let in_list = parse_text(Path::new("x.json"), "[{\"kind\": \"Pod\"}, 3]");
        assert!(matches!(
            in_list,
            Err(ManifestError::NotAnObject {
                found: "a number",
                ..
            })
        ));
    }

    #[test]
    fn alias_bomb_is_refused_by_the_budget() {
        let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for pair in names.windows(2) {
            let refs = vec![format!("*{}", pair[0]); 9].join(", ");
            text.push_str(&format!("{}: &{} [{refs}]\n", pair[1], pair[1]));
        }
        let error = parse_text(Path::new("bomb.yaml"), &text);
        assert!(
            matches!(error, Err(ManifestError::Yaml { .. })),
            "{error:?}"
        );
    }

    #[test]
    fn large_bundles_fit_the_budget() {
        let many_documents: String = (0..2_000)
            .map(|i| format!("---\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n"))
            .collect();
        assert_eq!(parse("many.yaml", &many_documents).len(), 2_000);
        let mut many_nodes = String::from("kind: ConfigMap\ndata:\n");
        for i in 0..150_000 {
            many_nodes.push_str(&format!("  k{i}: v\n"));
        }
        assert_eq!(
            parse("big.yaml", &many_nodes)[0].object["data"]
                .as_object()
                .map(|d| d.len()),
            Some(150_000)
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // Test threads have a 2 MiB stack, less than the CLI's main thread: a good canary.
        let nested_maps = |depth: usize| -> String {
            (0..depth)
                .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
                .collect::<String>()
                + &" ".repeat(depth)
                + "leaf: 1\n"
        };
        assert_eq!(parse("ok.yaml", &nested_maps(60)).len(), 1);
        for depth in [65, 200, 10_000] {
            let error = parse_text(Path::new("deep.yaml"), &nested_maps(depth));
            assert!(
                matches!(error, Err(ManifestError::Yaml { .. })),
                "{depth}: {error:?}"
            );
            let flow = format!("a: {}1{}\n", "[".repeat(depth), "]".repeat(depth));
            let error = parse_text(Path::new("deep.yaml"), &flow);
            assert!(
                matches!(error, Err(ManifestError::Yaml { .. })),
                "{depth}: {error:?}"
            );
            let json = format!("{{\"a\": {}1{}}}", "[".repeat(depth), "]".repeat(depth));
            let error = parse_text(Path::new("deep.json"), &json);
            let want_error = depth > 127;
            assert_eq!(
                matches!(error, Err(ManifestError::Json { .. })),
                want_error,
                "{depth}"
            );
        }
    }

    #[test]
    fn empty_and_comment_only_text_yields_nothing() {
        assert!(parse("x.yaml", "").is_empty());
        assert!(parse("x.yaml", "# nothing\n---\n...\n").is_empty());
        assert!(parse("x.json", "  \n").is_empty());
    }

    mod files {
        use super::*;
        use std::fs;

        fn write(path: &Path, text: &str) {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).unwrap();
            }
            fs::write(path, text).unwrap();
        }

        fn pod(name: &str) -> String {
            format!("kind: Pod\nmetadata: {{name: {name}}}\n")
        }

        #[test]
        fn folders_are_walked_recursively_in_sorted_order() {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            write(&root.join("b.yaml"), &pod("b"));
            write(&root.join("a.yml"), &pod("a"));
            write(
                &root.join("sub/c.json"),
                r#"{"kind": "Pod", "metadata": {"name": "c"}}"#,
            );
            write(&root.join("sub/deeper/d.YAML"), &pod("d"));
            write(&root.join("aa/e.yaml"), &pod("e"));
            write(&root.join("notes.txt"), "not: a manifest\n");
            write(&root.join("README"), "# readme\n");

            let documents = read_paths(&[root.to_path_buf()]).unwrap();
            let seen: Vec<(String, String)> = documents
                .iter()
                .map(|d| {
                    let file = d.file.strip_prefix(root).unwrap().display().to_string();
                    let name = d.object["metadata"]["name"].as_str().unwrap().to_owned();
                    (file, name)
                })
                .collect();
            let want = [
                ("a.yml", "a"),
                ("aa/e.yaml", "e"),
                ("b.yaml", "b"),
                ("sub/c.json", "c"),
                ("sub/deeper/d.YAML", "d"),
            ];
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(f, n)| ((*f).to_owned(), (*n).to_owned()))
                .collect();
            assert_eq!(seen, want);
        }

        #[test]
        fn named_file_is_read_whatever_its_extension() {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("manifest.txt");
            write(&file, &pod("named"));
            let documents = read_paths(std::slice::from_ref(&file)).unwrap();
            assert_eq!(documents.len(), 1);
            assert_eq!(documents[0].file, file);
        }

        #[test]
        fn paths_are_read_in_the_order_given() {
            let dir = tempfile::tempdir().unwrap();
            let (z, a) = (dir.path().join("z.yaml"), dir.path().join("a.yaml"));
            write(&z, &pod("z"));
            write(&a, &pod("a"));
            let documents = read_paths(&[z, a]).unwrap();
            let names: Vec<&str> = documents
                .iter()
                .filter_map(|d| d.object["metadata"]["name"].as_str())
                .collect();
            assert_eq!(names, ["z", "a"]);
        }

        #[test]
        fn dash_reads_standard_input() {
            let mut stdin = io::Cursor::new("kind: Pod\n---\nkind: Service\n");
            let documents = read_paths_with_stdin(&[PathBuf::from("-")], &mut stdin).unwrap();
            assert_eq!(documents.len(), 2);
            assert_eq!(documents[1].file, Path::new("-"));
            assert_eq!((documents[1].index, documents[1].line), (2, 3));
        }

        #[test]
        fn standard_input_over_16_mib_is_refused() {
            let mut stdin = io::repeat(b' ').take(MAX_FILE_BYTES + 10);
            let error = read_paths_with_stdin(&[PathBuf::from("-")], &mut stdin).err();
            assert!(
                matches!(error, Some(ManifestError::TooLarge { .. })),
                "{error:?}"
            );
        }

        #[test]
        fn missing_path_is_an_io_error_naming_it() {
            let dir = tempfile::tempdir().unwrap();
            let missing = dir.path().join("missing.yaml");
            let error = read_paths(std::slice::from_ref(&missing)).err();
            assert!(
                matches!(&error, Some(ManifestError::Io { path, .. }) if *path == missing),
                "{error:?}"
            );
        }

        #[test]
        fn file_over_16_mib_is_refused() {
            let dir = tempfile::tempdir().unwrap();
            let big = dir.path().join("big.yaml");
            let file = fs::File::create(&big).unwrap();
            // Sparse, so the test writes nothing to disk.
            file.set_len(MAX_FILE_BYTES + 1).unwrap();
            let error = read_paths(&[big]).err();
            assert!(
                matches!(error, Some(ManifestError::TooLarge { .. })),
                "{error:?}"
            );
            let message = error.map(|e| e.to_string()).unwrap_or_default();
            assert!(
                message.ends_with("big.yaml: larger than 16 MiB (16777216 bytes), not read"),
                "{message}"
            );
        }

        #[test]
        fn file_of_exactly_16_mib_is_read() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("edge.yaml");
            let mut text = String::from("# padding\n");
            text.push_str(&" ".repeat(usize::try_from(MAX_FILE_BYTES).unwrap() - text.len()));
            write(&path, &text);
            assert!(read_paths(&[path]).unwrap().is_empty());
        }

        #[test]
        fn non_utf8_file_is_refused() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("latin1.yaml");
            fs::write(&path, b"kind: Pod\nname: caf\xe9\n").unwrap();
            let error = read_paths(&[path]).err();
            assert!(
                matches!(
                    error,
                    Some(ManifestError::NotUtf8 {
                        valid_up_to: 19,
                        ..
                    })
                ),
                "{error:?}"
            );
        }

        #[test]
        fn errors_name_the_file_inside_a_folder() {
            let dir = tempfile::tempdir().unwrap();
            write(&dir.path().join("good.yaml"), &pod("good"));
            write(&dir.path().join("z/bad.yaml"), "a: [\n");
            let error = read_paths(&[dir.path().to_path_buf()]).err();
            let message = error.map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains("z/bad.yaml:"), "{message}");
        }
    }

    /// The repository's fixture: five documents, the third with a duplicated key.
    const MIXED_APP: &str = include_str!("../tests/fixtures/manifests/mixed/app.yaml");

    #[test]
    fn lenient_parse_reads_every_document_around_a_bad_one() {
        let (documents, errors) = parse_text_lenient(Path::new("app.yaml"), MIXED_APP);
        assert_eq!(
            summary(&documents),
            vec![
                (1, 2, "web-config".to_string()),
                (2, 10, "web".to_string()),
                (4, 40, "web-debug".to_string()),
                (5, 51, "web-debug".to_string()),
            ]
        );
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].line(), errors[0].column()), (Some(38), Some(7)));
        assert!(errors[0].reason().contains("duplicate"), "{}", errors[0]);
        // The strict parser stops at the same error.
        let strict = parse_text(Path::new("app.yaml"), MIXED_APP).unwrap_err();
        assert_eq!(strict.line(), Some(38));
    }

    #[test]
    fn lenient_parse_keeps_json_values_before_a_syntax_error_and_skips_non_objects() {
        let text = "{\"kind\": \"A\", \"metadata\": {\"name\": \"a\"}}\n7\n{\"kind\": \"B\", \"metadata\": {\"name\": \"b\"}}\n{nope";
        let (documents, errors) = parse_text_lenient(Path::new("s.json"), text);
        assert_eq!(
            summary(&documents),
            vec![(1, 1, "a".to_string()), (3, 3, "b".to_string())]
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(matches!(
            errors[0],
            ManifestError::NotAnObject { index: 2, .. }
        ));
        assert!(matches!(
            errors[1],
            ManifestError::Json { line: Some(4), .. }
        ));
    }

    #[test]
    fn lenient_parse_of_a_single_bad_document_is_one_error() {
        let (documents, errors) = parse_text_lenient(Path::new("x.yaml"), "# c\na: 1\na: 2\n");
        assert!(documents.is_empty());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line(), Some(3));
    }

    #[test]
    fn read_all_goes_on_past_missing_paths_and_unreadable_files() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let good = dir.path().join("good.yaml");
        fs::write(&good, "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let bad = dir.path().join("bad.yaml");
        fs::write(&bad, [0xff_u8, 0xfe]).unwrap_or_else(|e| panic!("{e}"));
        let input = read_all_with_stdin(
            &[dir.path().join("missing"), dir.path().to_path_buf()],
            &mut io::empty(),
        );
        assert_eq!(input.files, 2);
        assert_eq!(summary(&input.documents), vec![(1, 1, "p".to_string())]);
        assert_eq!(input.errors.len(), 2);
        assert!(matches!(input.errors[0], ManifestError::Io { .. }));
        assert!(matches!(input.errors[1], ManifestError::NotUtf8 { .. }));
    }
}
