//! Content-addressed versions: a sha256 over labelled, framed inputs, each kept for `--explain`.
//!
//! Inputs are the canonical encoding of a resolved spec (see [`super::canon`]: struct fields in
//! declaration order, maps sorted), file digests and other steps' versions. Nothing machine-specific
//! enters: no absolute path, no mtime, no hash-seed order, so the same manifest and files give the same
//! version anywhere.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// One thing that went into a version.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct HashInput {
    pub label: String,
    /// sha256 of the input's bytes, hex: a spec's canonical encoding, a file list's digest, a version.
    pub digest: String,
    /// What the bytes were, for people: a spec as JSON, or a file count. Empty where the label says
    /// it all (another step's version), and for deployment specs of a plan made without explanations.
    pub detail: String,
}

#[derive(Clone, Default)]
pub struct VersionHasher {
    inputs: Vec<HashInput>,
}

thread_local! {
    /// The length of the last spec written on this thread: the next starts with that much room, so a
    /// large environment's JSON is not grown (and copied) several times.
    static LAST_LEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// The canonical bytes of the spec being hashed on this thread, kept for the next one.
    static CANONICAL: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How many hex digits of the digest make a version: 80 bits, plenty for names that never collide by chance.
pub const VERSION_LEN: usize = 20;

impl VersionHasher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value by its canonical JSON.
    pub fn spec<T: Serialize>(&mut self, label: &str, value: &T) {
        self.inputs.push(spec_input(label, value));
    }

    /// Adds an input made beforehand (by [`spec_input`], perhaps on another thread).
    pub fn push(&mut self, input: HashInput) {
        self.inputs.push(input);
    }

    /// Adds an input whose digest is already known (a file list, another step's version).
    pub fn raw(&mut self, label: &str, digest: String, detail: String) {
        self.inputs.push(HashInput { label: label.to_string(), digest, detail });
    }

    /// The full digest (hex) over every input, and the inputs.
    pub fn finish(self) -> (String, Vec<HashInput>) {
        let mut framer = Framer::new();
        for input in &self.inputs {
            framer.input(&[&input.label], &input.digest);
        }
        (framer.finish(), self.inputs)
    }
}

/// The version digest itself: each input's label and digest, framed by their lengths, in order. It
/// takes a label in pieces, so a caller that only needs the digest need not join them.
pub struct Framer(Sha256);

impl Framer {
    pub fn new() -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"flyte-version-v1\0");
        Framer(hasher)
    }

    /// Adds one input: the label is the pieces joined.
    pub fn input(&mut self, label: &[&str], digest: &str) {
        let length: usize = label.iter().map(|piece| piece.len()).sum();
        self.0.update((length as u64).to_be_bytes());
        for piece in label {
            self.0.update(piece.as_bytes());
        }
        self.0.update((digest.len() as u64).to_be_bytes());
        self.0.update(digest.as_bytes());
    }

    /// The digest, hex.
    pub fn finish(self) -> String {
        to_hex(&self.0.finalize())
    }
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

/// A value as a hash input: the sha256 of its canonical encoding, and its JSON for people.
pub fn spec_input<T: Serialize>(label: &str, value: &T) -> HashInput {
    HashInput { label: label.to_string(), digest: spec_digest(value), detail: json(value) }
}

/// A value as a hash input without the JSON: the version is the same, `--explain` has nothing to show.
pub fn spec_input_unexplained<T: Serialize>(label: &str, value: &T) -> HashInput {
    HashInput { label: label.to_string(), digest: spec_digest(value), detail: String::new() }
}

/// The sha256 (hex) of a value's canonical encoding.
pub fn spec_digest<T: Serialize>(value: &T) -> String {
    CANONICAL.with_borrow_mut(|bytes| {
        bytes.clear();
        super::canon::encode(value, bytes);
        to_hex(&Sha256::digest(bytes.as_slice()))
    })
}

/// A value's JSON, as `--explain` shows it.
fn json<T: Serialize>(value: &T) -> String {
    let mut json = Vec::with_capacity(LAST_LEN.get() + 64);
    // Serialising into memory fails only for maps with non-string keys, which no spec has.
    let json = match serde_json::to_writer(&mut json, value) {
        Ok(()) => String::from_utf8(json).unwrap_or_default(),
        Err(_) => String::new(),
    };
    LAST_LEN.set(json.len());
    json
}

/// Lowercase hex, by table: digests are made hundreds of thousands of times in a large plan.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)]);
        out.push(DIGITS[usize::from(byte & 0xf)]);
    }
    // Only ASCII digits and letters were written.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_complete() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(to_hex(&[]), "");
        let digest = Sha256::digest(b"flyte");
        assert_eq!(to_hex(&digest), hex::encode(digest));
    }

    #[test]
    fn framing_keeps_label_and_digest_boundaries_apart() {
        let digest = |pairs: &[(&str, &str)]| {
            let mut hasher = VersionHasher::new();
            for (label, digest) in pairs {
                hasher.raw(label, digest.to_string(), String::new());
            }
            hasher.finish().0
        };
        assert_ne!(digest(&[("ab", "c")]), digest(&[("a", "bc")]));
        assert_ne!(digest(&[("a", "b"), ("c", "d")]), digest(&[("a", "b")]));
        assert_eq!(digest(&[("a", "b")]), digest(&[("a", "b")]));
        // A label given in pieces is the label joined.
        let mut pieces = Framer::new();
        pieces.input(&["deploy:", "web"], "d1");
        pieces.input(&[], "d2");
        assert_eq!(pieces.finish(), digest(&[("deploy:web", "d1"), ("", "d2")]));
    }
}
