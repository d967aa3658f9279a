//! Walks a folder into a sorted, digested file list, with the standard ignores and optional globs.

use std::io::Read;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use sha2::{Digest, Sha256};

/// Folder names never shipped: version control, caches, virtualenvs and build output.
pub const IGNORED_DIRS: [&str; 14] = [
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    ".venv",
    "venv",
    "dist",
    "build",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".tox",
    ".ipynb_checkpoints",
    "node_modules",
];
/// File name suffixes never shipped.
pub const IGNORED_SUFFIXES: [&str; 4] = [".pyc", ".pyo", ".DS_Store", ".swp"];
/// The manifest describes the deployment; editing it must not change every bundle's version.
pub const IGNORED_ROOT_FILES: [&str; 2] = ["flyte.toml", "flyte.kdl"];

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

/// The files of one folder, sorted by path.
#[derive(Clone, Debug, Default)]
pub struct FileSet {
    pub files: Vec<FileEntry>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct WalkError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl FileSet {
    /// Walks `dir`, skipping the standard ignores.
    pub fn walk(dir: &Path) -> Result<FileSet, WalkError> {
        let mut files = Vec::new();
        let walker =
            walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name().into_iter().filter_entry(|entry| {
                let name = entry.file_name().to_string_lossy();
                let top = entry.depth() == 1;
                let ignored_dir = entry.file_type().is_dir() && IGNORED_DIRS.contains(&name.as_ref());
                let ignored_file = IGNORED_SUFFIXES.iter().any(|s| name.ends_with(s))
                    || (top && IGNORED_ROOT_FILES.contains(&name.as_ref()));
                !(ignored_dir || ignored_file)
            });
        for entry in walker {
            let entry = entry.map_err(|error| {
                let path = error.path().unwrap_or(dir).to_path_buf();
                WalkError {
                    path,
                    source: error.into_io_error().unwrap_or_else(|| std::io::Error::other("file system loop")),
                }
            })?;
            let file_type = entry.file_type();
            if !(file_type.is_file() || file_type.is_symlink()) {
                continue;
            }
            let full = entry.path();
            let relative = full.strip_prefix(dir).unwrap_or(full);
            let path = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            let error = |source| WalkError { path: full.to_path_buf(), source };
            let (digest, size, executable) = if file_type.is_symlink() {
                let target = std::fs::read_link(full).map_err(error)?;
                let text = target.to_string_lossy().into_owned();
                (Sha256::digest(text.as_bytes()).into(), text.len() as u64, false)
            } else {
                let meta = entry
                    .metadata()
                    .map_err(|e| error(e.into_io_error().unwrap_or_else(|| std::io::Error::other("metadata"))))?;
                (hash_file(full).map_err(error)?, meta.len(), is_executable(&meta))
            };
            files.push(FileEntry { path, executable, size, digest, symlink: file_type.is_symlink() });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(FileSet { files })
    }

    /// One digest over paths, modes and contents, framed so that no two different lists collide.
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

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

fn hash_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().into())
}

/// Include and exclude globs over paths relative to the walked folder.
pub struct Selection {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl Selection {
    /// Globs were checked during validation; one that still fails to build matches nothing.
    pub fn new(include: &[String], exclude: &[String]) -> Selection {
        let build = |patterns: &[String]| {
            let mut builder = GlobSetBuilder::new();
            for pattern in patterns {
                if let Ok(glob) = Glob::new(pattern) {
                    builder.add(glob);
                }
            }
            builder.build().unwrap_or_else(|_| GlobSet::empty())
        };
        Selection { include: (!include.is_empty()).then(|| build(include)), exclude: build(exclude) }
    }

    pub fn keeps(&self, path: &str) -> bool {
        !self.exclude.is_match(path) && self.include.as_ref().is_none_or(|i| i.is_match(path))
    }

    pub fn apply(&self, set: &FileSet) -> FileSet {
        FileSet { files: set.files.iter().filter(|f| self.keeps(&f.path)).cloned().collect() }
    }
}
