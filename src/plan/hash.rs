//! Content-addressed versions: a sha256 over labelled, framed inputs, each kept for `--explain`.
//!
//! Inputs are the canonical JSON of a resolved spec (struct fields in declaration order, maps sorted),
//! file digests and other steps' versions. Nothing machine-specific enters: no absolute path, no mtime,
//! no hash-seed order, so the same manifest and files give the same version anywhere.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// One thing that went into a version.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct HashInput {
    pub label: String,
    /// sha256 of the input's bytes, hex.
    pub digest: String,
    /// What the bytes were, for people: the canonical JSON, or a file's path and mode.
    pub detail: String,
}

#[derive(Clone, Default)]
pub struct VersionHasher {
    inputs: Vec<HashInput>,
}

thread_local! {
    /// The buffer [`VersionHasher::spec`] writes JSON into.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How many hex digits of the digest make a version: 80 bits, plenty for names that never collide by chance.
pub const VERSION_LEN: usize = 20;

impl VersionHasher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value by its canonical JSON.
    pub fn spec<T: Serialize>(&mut self, label: &str, value: &T) {
        // Written into one buffer that every spec reuses, then copied out at its final size: writing
        // each into a fresh string grows it (and copies it) several times for a large environment.
        let json = SCRATCH.with(|scratch| {
            let mut buffer = scratch.borrow_mut();
            buffer.clear();
            match serde_json::to_writer(&mut *buffer, value) {
                Ok(()) => String::from_utf8(buffer.to_vec()).unwrap_or_default(),
                Err(_) => String::new(),
            }
        });
        self.raw(label, hex::encode(Sha256::digest(json.as_bytes())), json);
    }

    /// Adds an input whose digest is already known (a file list, another step's version).
    pub fn raw(&mut self, label: &str, digest: String, detail: String) {
        self.inputs.push(HashInput { label: label.to_string(), digest, detail });
    }

    /// The full digest (hex) over every input, and the inputs.
    pub fn finish(self) -> (String, Vec<HashInput>) {
        let mut hasher = Sha256::new();
        hasher.update(b"flyte-version-v1\0");
        for input in &self.inputs {
            hasher.update((input.label.len() as u64).to_be_bytes());
            hasher.update(input.label.as_bytes());
            hasher.update((input.digest.len() as u64).to_be_bytes());
            hasher.update(input.digest.as_bytes());
        }
        (hex::encode(hasher.finalize()), self.inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
