//! Content-addressed versions: a sha256 over labelled, framed inputs, each kept for `--explain`.
//!
//! Inputs are the canonical encoding of a resolved spec (see [`super::canon`]: struct fields in
//! declaration order, maps sorted), file digests and other steps' versions. Nothing machine-specific
//! enters: no absolute path, no mtime, no hash-seed order, so the same manifest and files give the same
//! version anywhere.

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// One thing that went into a version.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct HashInput {
    /// Shared with the step it names, when it is another step's version.
    pub label: Arc<str>,
    /// sha256 of the input's bytes, hex: a spec's canonical encoding, a file list's digest, a version.
    pub digest: Digest,
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

/// Lowercase hex digits kept inline: a large plan makes hundreds of thousands of digests and versions,
/// and each was an allocation of its own.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hex<const N: usize>([u8; N]);

/// A sha256, as 64 hex digits.
pub type Digest = Hex<64>;
/// A step's version: the first [`VERSION_LEN`] hex digits of its digest.
pub type Version = Hex<VERSION_LEN>;

impl<const N: usize> Hex<N> {
    pub fn as_str(&self) -> &str {
        // Only made from hex digits (below), which are ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// All zeros: a place to fill in.
impl<const N: usize> Default for Hex<N> {
    fn default() -> Self {
        Hex([b'0'; N])
    }
}

impl Digest {
    /// The hex of a sha256.
    pub fn of(bytes: &[u8; 32]) -> Digest {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0; 64];
        for (pair, &byte) in hex.chunks_exact_mut(2).zip(bytes) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0xf)];
        }
        Hex(hex)
    }

    pub fn version(&self) -> Version {
        let mut version = [0; VERSION_LEN];
        version.copy_from_slice(&self.0[..VERSION_LEN]);
        Hex(version)
    }
}

impl<const N: usize> std::ops::Deref for Hex<N> {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> std::fmt::Display for Hex<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Through `pad`, so widths and alignment in format strings apply as to a string.
        f.pad(self.as_str())
    }
}

impl<const N: usize> std::fmt::Debug for Hex<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl VersionHasher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value by its canonical encoding, its JSON kept for `--explain`.
    pub fn spec<T: Serialize>(&mut self, label: &str, value: &T) {
        self.inputs.push(spec_input(label, value));
    }

    /// Adds an input whose digest is already known (a file list, another step's version).
    pub fn raw(&mut self, label: impl Into<Arc<str>>, digest: Digest, detail: String) {
        self.inputs.push(HashInput { label: label.into(), digest, detail });
    }

    /// The full digest over every input, and the inputs.
    pub fn finish(self) -> (Digest, Vec<HashInput>) {
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

    pub fn finish(self) -> Digest {
        Digest::of(&self.0.finalize().into())
    }
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

/// A value as a hash input: the sha256 of its canonical encoding, and its JSON for people.
pub fn spec_input<T: Serialize>(label: &str, value: &T) -> HashInput {
    HashInput { label: label.into(), digest: spec_digest(value), detail: json(value) }
}

/// The sha256 of a value's canonical encoding.
pub fn spec_digest<T: Serialize>(value: &T) -> Digest {
    CANONICAL.with_borrow_mut(|bytes| {
        bytes.clear();
        super::canon::encode(value, bytes);
        Digest::of(&Sha256::digest(bytes.as_slice()).into())
    })
}

/// A value's JSON, as `--explain` shows it.
pub fn json<T: Serialize>(value: &T) -> String {
    let mut json = Vec::with_capacity(LAST_LEN.get() + 64);
    // Serialising into memory fails only for maps with non-string keys, which no spec has.
    let json = match serde_json::to_writer(&mut json, value) {
        Ok(()) => String::from_utf8(json).unwrap_or_default(),
        Err(_) => String::new(),
    };
    LAST_LEN.set(json.len());
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_complete() {
        let mut bytes = [0; 32];
        bytes[..4].copy_from_slice(&[0x00, 0x0f, 0xa5, 0xff]);
        assert!(Digest::of(&bytes).starts_with("000fa5ff000000"));
        let digest: [u8; 32] = Sha256::digest(b"flyte").into();
        assert_eq!(Digest::of(&digest).as_str(), hex::encode(digest));
        assert_eq!(Digest::of(&digest).version().as_str(), &hex::encode(digest)[..VERSION_LEN]);
        // Formatted as a string: widths apply.
        assert_eq!(format!("[{:<24}]", Digest::of(&digest).version()), format!("[{:<24}]", &hex::encode(digest)[..20]));
    }

    #[test]
    fn framing_keeps_label_and_digest_boundaries_apart() {
        let framed = |pairs: &[(&str, &str)]| {
            let mut framer = Framer::new();
            for (label, digest) in pairs {
                framer.input(&[label], digest);
            }
            framer.finish()
        };
        assert_ne!(framed(&[("ab", "c")]), framed(&[("a", "bc")]));
        assert_ne!(framed(&[("a", "b"), ("c", "d")]), framed(&[("a", "b")]));
        assert_eq!(framed(&[("a", "b")]), framed(&[("a", "b")]));
        // A label given in pieces is the label joined.
        let mut pieces = Framer::new();
        pieces.input(&["deploy:", "web"], "d1");
        pieces.input(&[], "d2");
        assert_eq!(pieces.finish(), framed(&[("deploy:web", "d1"), ("", "d2")]));
        // The hasher frames its inputs the same way, in order.
        let (a, b): (Digest, Digest) =
            (Digest::of(&Sha256::digest(b"a").into()), Digest::of(&Sha256::digest(b"b").into()));
        let mut hasher = VersionHasher::new();
        hasher.raw("spec", a, "shown, not hashed".to_string());
        hasher.raw("image:web", b, String::new());
        assert_eq!(hasher.finish().0, framed(&[("spec", &a), ("image:web", &b)]));
    }
}
