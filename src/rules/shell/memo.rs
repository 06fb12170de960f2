//! Analysing the same command once: the Pods of one workload carry the same commands, a Pod
//! may repeat a script in many containers, and probes are nearly always the same few commands.
//!
//! A result is reused only where a fresh analysis would give the same one. The analysis is a
//! pure function of the command (`argv`, whether the program is known), the values it read
//! from the container's start state (`env`, `workingDir`), and the work budget it was given. So
//! an entry records every start value the analysis read and the work units it spent; a lookup
//! matches the command exactly, replays those reads against the new container's start state,
//! and is taken only when the review's budget still holds those units, which are then charged
//! as if the analysis had run. An analysis that met the work limit, or that an inline budget
//! may have changed ([`super::Budget::inline`]), is not stored. Bytes for
//! `brush-parser` are not charged again: no parse is done, and with or without the parser the
//! analysis is sound (the parser only makes it more precise).
//!
//! Bounded: each thread (`podgate serve` evaluates reviews on its async workers, one per
//! core, and on its blocking pool, capped at the evaluation slots plus a few) keeps at most
//! [`MAX_BYTES`] of commands and reads, and forgets everything when that is full; at most
//! [`MAX_PER_HASH`] entries share one hash, so a lookup costs a hash of the command and a few
//! comparisons, linear in its size. The memo changes how long an analysis takes, never its
//! result, so the analysis stays a pure function. (One corner: a review that has spent the
//! lexer's whole allowance reads every further command with the parser as well; a stored
//! answer is the one a review with allowance left gets.)

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use ahash::RandomState;

use super::Analysis;
use super::kubelet::Start;
use super::words::Value;

/// Bytes of commands, reads and results kept per thread; when full, everything is forgotten.
const MAX_BYTES: usize = 2 << 20;
/// Commands larger than this are not stored (a hit would save little next to the hash).
const MAX_ARGV: usize = 256 << 10;
/// Entries kept for one hash of a command (the same command with different reads).
const MAX_PER_HASH: usize = 4;

/// A start value as the analysis read it (`Value` without its shared pointer, so that the
/// memo can live in a `Send` budget).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seen {
    Known(Box<str>),
    Unknown,
    Unset,
}

impl From<&Value> for Seen {
    fn from(value: &Value) -> Self {
        match value {
            Value::Known(s) => Seen::Known(s.as_ref().into()),
            Value::Unknown => Seen::Unknown,
            Value::Unset => Seen::Unset,
        }
    }
}

/// The start values one analysis read, by name (`PWD` is `workingDir`).
pub(super) type Reads = RefCell<HashMap<Box<str>, Seen>>;

/// The value of `name` in the container's start state, as the analysis sees it.
pub(super) fn start_var(start: &Start, name: &str) -> Value {
    match start_text(start, name) {
        Some(text) => Value::Known(text.into()),
        None => Value::Unknown,
    }
}

/// [`start_var`]'s text when it is known.
fn start_text<'s>(start: &'s Start, name: &str) -> Option<&'s str> {
    if name == "PWD" {
        return start.working_dir;
    }
    start.text(name)
}

/// Whether `start` gives `name` the value an analysis read as `seen` (no copy made).
fn reads_the_same(start: &Start, name: &str, seen: &Seen) -> bool {
    match (start_text(start, name), seen) {
        (Some(text), Seen::Known(s)) => **s == *text,
        (None, Seen::Unknown) => true,
        _ => false,
    }
}

#[derive(Debug)]
struct Entry {
    known_program: bool,
    argv: Vec<String>,
    reads: Vec<(Box<str>, Seen)>,
    /// Work units the analysis spent.
    units: u64,
    result: Analysis,
}

/// Keyed by a hash of the command ([`ahash`], with this thread's random keys): the commands
/// are the Pod creator's, so a hash they could make collide must cost nothing that matters, and
/// it does not. At most [`MAX_PER_HASH`] entries share a hash, so a lookup compares at most
/// that many stored commands with this one (each compare stops at the first difference, and
/// costs at most what hashing it did); a colliding command is then analysed as if the memo
/// were not there (within the review's budget) and not stored once the hash holds
/// [`MAX_PER_HASH`] entries; the memo is bounded in bytes ([`MAX_BYTES`]) whatever the hashes.
/// A collision never yields another command's answer: the command itself is compared.
#[derive(Debug, Default)]
struct Memo {
    state: RandomState,
    entries: HashMap<u64, Vec<Entry>, RandomState>,
    bytes: usize,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

/// A stored analysis of this command whose reads `start` gives the same values, with the
/// units it spent; otherwise the command's hash, for [`put`].
pub(super) fn get<S: AsRef<str>>(
    argv: &[S],
    known_program: bool,
    start: &Start,
) -> Result<(Analysis, u64), u64> {
    MEMO.with_borrow(|memo| {
        let mut h = memo.state.build_hasher();
        known_program.hash(&mut h);
        argv.len().hash(&mut h);
        for a in argv {
            a.as_ref().hash(&mut h);
        }
        let hash = h.finish();
        let entry = memo.entries.get(&hash).and_then(|bucket| {
            bucket.iter().find(|e| {
                e.known_program == known_program
                    && e.argv.len() == argv.len()
                    && e.argv.iter().zip(argv).all(|(e, a)| *e == a.as_ref())
                    && e.reads
                        .iter()
                        .all(|(name, seen)| reads_the_same(start, name, seen))
            })
        });
        match entry {
            Some(e) => Ok((e.result.clone(), e.units)),
            None => Err(hash),
        }
    })
}

/// Forgets this thread's memo (tests that compare fresh analyses).
#[cfg(test)]
pub(super) fn forget() {
    MEMO.with_borrow_mut(|memo| {
        memo.entries.clear();
        memo.bytes = 0;
    });
}

/// Stores an analysis that met no work limit.
pub(super) fn put(
    hash: u64,
    argv: Vec<String>,
    known_program: bool,
    reads: Reads,
    units: u64,
    result: &Analysis,
) {
    let argv_size: usize = argv.iter().map(|a| a.len() + 24).sum();
    if argv_size > MAX_ARGV {
        return;
    }
    let reads: Vec<(Box<str>, Seen)> = reads.into_inner().into_iter().collect();
    let reads_size: usize = reads
        .iter()
        .map(|(n, s)| {
            n.len()
                + 32
                + match s {
                    Seen::Known(v) => v.len(),
                    _ => 0,
                }
        })
        .sum();
    let result_size: usize = result
        .writes
        .iter()
        .map(|w| {
            w.how.len()
                + 64
                + w.entries
                    .iter()
                    .map(|e| e.ip.len() + e.hostnames.iter().map(|h| h.len() + 24).sum::<usize>())
                    .sum::<usize>()
        })
        .chain(result.undecided.iter().map(|u| u.len() + 24))
        .sum();
    let size = argv_size + reads_size + result_size + 128;
    MEMO.with_borrow_mut(|memo| {
        if memo.bytes + size > MAX_BYTES {
            memo.entries.clear();
            memo.bytes = 0;
        }
        let bucket = memo.entries.entry(hash).or_default();
        if bucket.len() >= MAX_PER_HASH {
            return;
        }
        memo.bytes += size;
        bucket.push(Entry {
            known_program,
            argv,
            reads,
            units,
            result: result.clone(),
        });
    });
}
