//! A list of files with their content digests, and the one framed digest over such a list that
//! versions are made of.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the walked folder, '/'-separated.
    pub path: String,
    pub executable: bool,
    pub size: u64,
    /// sha256 of the content (of the link target's text, for a symlink).
    pub digest: [u8; 32],
    pub symlink: bool,
}

impl FileEntry {
    /// Reads one file (following links), named relative to `root`.
    pub fn read(root: &Path, relative: &str) -> std::io::Result<FileEntry> {
        let full = root.join(relative);
        let meta = std::fs::metadata(&full)?;
        let digest = hash_file(&full, &mut vec![0u8; 64 * 1024])?;
        Ok(FileEntry {
            path: relative.to_string(),
            executable: is_executable(&meta),
            size: meta.len(),
            digest,
            symlink: false,
        })
    }
}

/// Files sorted by path.
#[derive(Clone, Debug, Default)]
pub struct FileSet {
    pub files: Vec<FileEntry>,
}

impl FileSet {
    /// One digest over paths, modes and contents, framed so that no two different lists collide:
    /// every path is preceded by its length, every mode is one byte, every content digest 32 bytes.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"flyte-files-v1\0");
        hasher.update((self.files.len() as u64).to_be_bytes());
        for file in &self.files {
            hasher.update((file.path.len() as u64).to_be_bytes());
            hasher.update(file.path.as_bytes());
            hasher.update([match (file.symlink, file.executable) {
                (true, _) => 2,
                (false, true) => 1,
                (false, false) => 0,
            }]);
            hasher.update(file.digest);
        }
        hasher.finalize().into()
    }

    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Whether any execute bit is set: the only permission a bundle keeps.
#[cfg(unix)]
pub fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
pub fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

/// sha256 of a file's content, read through `buffer`.
pub fn hash_file(path: &Path, buffer: &mut [u8]) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    loop {
        let read = file.read(buffer)?;
        if read == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buffer[..read]);
    }
}
