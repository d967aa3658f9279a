//! Building a code bundle: a selection of files → a deterministic tar.gz, kept in the cache by content
//! digest so that an unchanged bundle is never built twice.
//!
//! The content digest (the version input) is [`FileSet::digest`]: a sha256 over a framed encoding of
//! every path, mode and content digest. The archive's own sha256 is reported too; for the same files it
//! is the same on every machine (see [`super::archive`]).

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::archive::{self, Entry};
use super::cache::{self, Stamp};
use super::select::FileSet;

#[derive(Clone, Debug, Serialize)]
pub struct Bundle {
    /// The content digest, hex: what versions are made of.
    pub digest: String,
    pub files: usize,
    /// Bytes of content before compression.
    pub bytes: u64,
    pub archive: PathBuf,
    pub archive_bytes: u64,
    /// sha256 of the archive's bytes, hex.
    pub archive_sha256: String,
    /// True when the archive was already in the cache.
    pub reused: bool,
    pub millis: u128,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot write the bundle to {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read {path} while bundling: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} changed while it was being bundled")]
    Changed { path: String },
}

/// Builds (or finds) the bundle of `files`, read from `root`, in the cache folder `cache_dir`.
pub fn build(root: &Path, files: &FileSet, cache_dir: &Path) -> Result<Bundle, BuildError> {
    let started = Instant::now();
    let digest = hex::encode(files.digest());
    let target = cache::bundle_path(cache_dir, &digest);
    let bundle = |archive_bytes: u64, archive_sha256: String, reused: bool| Bundle {
        digest: digest.clone(),
        files: files.files.len(),
        bytes: files.total_size(),
        archive: target.clone(),
        archive_bytes,
        archive_sha256,
        reused,
        millis: started.elapsed().as_millis(),
    };
    let sidecar = target.with_extension("sha256");
    if let Ok(meta) = std::fs::metadata(&target) {
        // Reused without reading it: the name is the content digest, and it was written atomically;
        // the archive's own sha256 was noted beside it when it was built.
        let sha256 = match std::fs::read_to_string(&sidecar) {
            Ok(text) if text.trim().len() == 64 => text.trim().to_string(),
            _ => sha256_of(&target).map_err(|source| BuildError::Read { path: target.clone(), source })?,
        };
        return Ok(bundle(meta.len(), sha256, true));
    }
    let stamps = stamps(root, files)?;
    let entries = entries(root, files)?;
    let write_error = |source| BuildError::Write { path: target.clone(), source };
    let parent = target.parent().unwrap_or(cache_dir);
    std::fs::create_dir_all(parent).map_err(write_error)?;
    let temp = tempfile::NamedTempFile::new_in(parent).map_err(write_error)?;
    let mut out = BufWriter::with_capacity(1 << 20, temp.as_file());
    let written = archive::write(&entries, &mut out, &archive::Options::default()).map_err(write_error)?;
    drop(out);
    // A file edited while it was read would give an archive that does not match the digest it is
    // filed under; stat again and refuse rather than cache a lie.
    if let Some(path) = stamps.iter().find(|(path, stamp)| self::stamp(root, path).ok() != Some(*stamp)).map(|(p, _)| p)
    {
        return Err(BuildError::Changed { path: path.clone() });
    }
    let sha256 = hex::encode(written.sha256);
    cache::write_atomic(&sidecar, sha256.as_bytes()).map_err(write_error)?;
    temp.persist(&target).map_err(|e| write_error(e.error))?;
    Ok(bundle(written.bytes, sha256, false))
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

fn stamp(root: &Path, path: &str) -> std::io::Result<Stamp> {
    std::fs::symlink_metadata(root.join(path)).map(|m| Stamp::of(&m))
}

fn stamps(root: &Path, files: &FileSet) -> Result<Vec<(String, Stamp)>, BuildError> {
    files
        .files
        .iter()
        .map(|f| {
            stamp(root, &f.path)
                .map(|s| (f.path.clone(), s))
                .map_err(|source| BuildError::Read { path: root.join(&f.path), source })
        })
        .collect()
}

fn entries(root: &Path, files: &FileSet) -> Result<Vec<Entry>, BuildError> {
    files
        .files
        .iter()
        .map(|file| {
            let source = root.join(&file.path);
            if file.symlink {
                let target =
                    std::fs::read_link(&source).map_err(|e| BuildError::Read { path: source.clone(), source: e })?;
                Ok(Entry::symlink(file.path.clone(), target.to_string_lossy().into_owned()))
            } else {
                Ok(Entry::file(file.path.clone(), source, file.executable))
            }
        })
        .collect()
}

/// Copies a built bundle to `out` atomically (a temporary file beside it, then a rename).
pub fn copy_out(bundle: &Bundle, out: &Path) -> std::io::Result<()> {
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(parent)?;
    std::io::copy(&mut std::fs::File::open(&bundle.archive)?, &mut temp)?;
    temp.as_file().sync_all()?;
    temp.persist(out).map_err(|e| e.error)?;
    Ok(())
}
