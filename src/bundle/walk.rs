//! File selection: a folder → the files a bundle (or an image's sources) ships, each with its digest,
//! and for every file or folder left out, the rule that left it out.
//!
//! Precedence, lowest first; a later layer overrides an earlier one:
//! 1. the standard ignores ([`STANDARD_IGNORES`]: version control, caches, virtualenvs, build output,
//!    the manifest at the top of the tree);
//! 2. every `.gitignore` in the tree, with git's semantics (nested files, negation, anchoring,
//!    directory-only patterns), no git or repository needed;
//! 3. every `.flyteignore` (same syntax);
//! 4. the manifest's `exclude` globs (a glob that matches a folder leaves out the whole folder);
//! 5. the manifest's `include` globs, when given: a final allowlist of files.
//!
//! As in git, nothing inside an ignored folder can be re-included, and an ignored folder is reported once.
//! Links stay links when they point inside the tree and are refused when they escape it; sockets, pipes
//! and devices are skipped with a warning, and large files are warned about.
//!
//! Scanning (layers 1–3, digests) happens once per tree; selection (layers 4–5) per environment.

use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use globset::{Glob, GlobSet, GlobSetBuilder};
use sha2::{Digest, Sha256};

use super::cache::{Stamp, StatCache, now_ns};
use super::ignore::{IgnoreFile, IgnoreStack};
use super::select::{FileEntry, FileSet, hash_file, is_executable};

/// The standard ignores, in gitignore syntax; `--explain` cites them by line.
pub const STANDARD_IGNORES: &str = "\
.git/
.hg/
.svn/
__pycache__/
.venv/
venv/
dist/
build/
.mypy_cache/
.pytest_cache/
.ruff_cache/
.tox/
.ipynb_checkpoints/
node_modules/
*.pyc
*.pyo
.DS_Store
*.swp
/flyte.toml
/flyte.kdl
";
pub const STANDARD_IGNORES_NAME: &str = "standard ignores";

/// Files above this size are warned about: they are usually data that belongs elsewhere.
pub const LARGE_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Why a file or folder was left out.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Reason {
    /// A line of an ignore file (or of the standard ignores).
    Rule { file: String, line: usize, pattern: String },
    /// A manifest `exclude` glob.
    Exclude { pattern: String },
    /// Not matched by any manifest `include` glob.
    NotIncluded,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Rule { file, line, pattern } => write!(f, "{file}:{line}: {pattern}"),
            Reason::Exclude { pattern } => write!(f, "manifest exclude \"{pattern}\""),
            Reason::NotIncluded => write!(f, "matches no manifest include"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LeftOut {
    pub path: String,
    pub dir: bool,
    pub reason: Reason,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Warning {
    /// A socket, pipe or device: not something a bundle can carry.
    Skipped {
        path: String,
        what: &'static str,
    },
    Large {
        path: String,
        bytes: u64,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::Skipped { path, what } => write!(f, "{path} is a {what}; skipped"),
            Warning::Large { path, bytes } => write!(
                f,
                "{path} is {} MiB; data usually belongs in object storage (exclude it, or list it in .flyteignore)",
                bytes / (1024 * 1024)
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is a link to {target}, outside {root}")]
    LinkEscapes { path: String, target: String, root: PathBuf },
}

impl WalkError {
    pub fn help(&self) -> &'static str {
        match self {
            WalkError::Io { .. } => "check that the files exist and are readable",
            WalkError::LinkEscapes { .. } => {
                "a bundle may only hold links that stay inside root_dir: copy the file in, or leave the link out with .flyteignore or the manifest's exclude"
            }
        }
    }
}

/// A scanned tree: the files that the ignore files keep, with digests, and what they left out.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    /// Sorted by path.
    pub files: Vec<FileEntry>,
    pub left_out: Vec<LeftOut>,
    pub warnings: Vec<Warning>,
    /// Files whose digest came from the stat cache, and files that were read.
    pub from_cache: usize,
    pub hashed: usize,
}

/// Scans `root`, reusing and refreshing `cache`.
pub fn scan(root: &Path, cache: &mut StatCache) -> Result<Scan, WalkError> {
    walk_tree(root, Some(cache))
}

/// Lists what `root` holds after the ignore files, without reading any content (digests are zero).
pub fn list(root: &Path) -> Result<Scan, WalkError> {
    walk_tree(root, None)
}

fn walk_tree(root: &Path, cache: Option<&mut StatCache>) -> Result<Scan, WalkError> {
    let started_ns = now_ns();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WalkError::Io { path, source }
    };
    let standard = IgnoreFile::parse("", STANDARD_IGNORES_NAME, STANDARD_IGNORES);
    let mut stack = IgnoreStack::new();
    stack.load_dir(root, "").map_err(io(root))?;
    let mut out = Scan::default();
    let mut pending: Vec<(usize, PathBuf, Stamp)> = Vec::new();
    // Depth first, a folder's entries in byte order; each frame is a folder and its remaining entries.
    let mut frames: Vec<(String, std::vec::IntoIter<(String, std::fs::FileType)>)> =
        vec![(String::new(), read_sorted(root).map_err(io(root))?.into_iter())];
    while let Some((dir, entries)) = frames.last_mut() {
        let Some((name, file_type)) = entries.next() else {
            frames.pop();
            continue;
        };
        let dir = dir.clone();
        stack.pop_to(&dir);
        let path = if dir.is_empty() { name } else { format!("{dir}/{name}") };
        let is_dir = file_type.is_dir();
        let decision =
            stack.decide(&path, is_dir).map(|d| (d.ignored, d.file.file.clone(), d.rule.line, d.rule.text.clone()));
        let decision = decision.or_else(|| {
            standard.decide(&path, is_dir).map(|r| (!r.negated, standard.file.clone(), r.line, r.text.clone()))
        });
        if let Some((true, file, line, pattern)) = decision {
            out.left_out.push(LeftOut { path, dir: is_dir, reason: Reason::Rule { file, line, pattern } });
            continue;
        }
        let full = root.join(&path);
        if is_dir {
            stack.load_dir(root, &path).map_err(io(&full))?;
            let children = read_sorted(&full).map_err(io(&full))?;
            frames.push((path, children.into_iter()));
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(&full).map_err(io(&full))?;
            check_link(root, &path, &target)?;
            let text = target.to_string_lossy().into_owned();
            let digest = Sha256::digest(text.as_bytes()).into();
            out.files.push(FileEntry { path, executable: false, size: text.len() as u64, digest, symlink: true });
        } else if file_type.is_file() {
            let meta = std::fs::symlink_metadata(&full).map_err(io(&full))?;
            let stamp = Stamp::of(&meta);
            if meta.len() > LARGE_FILE_BYTES {
                out.warnings.push(Warning::Large { path: path.clone(), bytes: meta.len() });
            }
            let digest = cache.as_ref().and_then(|c| c.get(&path, &stamp));
            let executable = is_executable(&meta);
            if digest.is_none() && cache.is_some() {
                pending.push((out.files.len(), full, stamp));
            }
            out.files.push(FileEntry {
                path,
                executable,
                size: meta.len(),
                digest: digest.unwrap_or_default(),
                symlink: false,
            });
        } else {
            out.warnings.push(Warning::Skipped { path, what: special_kind(&file_type) });
        }
    }
    out.hashed = pending.len();
    out.from_cache = out.files.iter().filter(|f| !f.symlink).count() - pending.len();
    if let Some(cache) = cache {
        for (position, digest) in hash_all(&pending)? {
            let (index, _, stamp) = &pending[position];
            out.files[*index].digest = digest;
            cache.put(&out.files[*index].path, *stamp, started_ns, digest);
        }
        let kept: std::collections::HashSet<&str> = out.files.iter().map(|f| f.path.as_str()).collect();
        cache.retain(|path| kept.contains(path));
    }
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn read_sorted(dir: &Path) -> std::io::Result<Vec<(String, std::fs::FileType)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        entries.push((entry.file_name().to_string_lossy().into_owned(), entry.file_type()?));
    }
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(entries)
}

/// Refuses a link whose target, resolved from where the link sits, leaves the tree.
fn check_link(root: &Path, path: &str, target: &Path) -> Result<(), WalkError> {
    let escapes = || WalkError::LinkEscapes {
        path: path.to_string(),
        target: target.display().to_string(),
        root: root.to_path_buf(),
    };
    if target.is_absolute() {
        return match (std::fs::canonicalize(target), std::fs::canonicalize(root)) {
            (Ok(resolved), Ok(root)) if resolved.starts_with(&root) => Ok(()),
            _ => Err(escapes()),
        };
    }
    // Lexically: every `..` must stay within the tree, counting from the link's own folder.
    let mut depth = path.split('/').count() as i64 - 1;
    for component in target.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Err(escapes());
        }
    }
    // And through other links: the resolved place, when it exists, must be inside the tree too.
    match (std::fs::canonicalize(root.join(path)), std::fs::canonicalize(root)) {
        (Ok(resolved), Ok(root)) if !resolved.starts_with(&root) => Err(escapes()),
        _ => Ok(()),
    }
}

/// Reads and hashes files on every core; gives each digest with its position in `pending`.
fn hash_all(pending: &[(usize, PathBuf, Stamp)]) -> Result<Vec<(usize, [u8; 32])>, WalkError> {
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(pending.len().div_ceil(8));
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(pending.len()));
    let failure: Mutex<Option<WalkError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                let mut buffer = vec![0u8; 128 * 1024];
                let mut local = Vec::new();
                loop {
                    let at = next.fetch_add(1, Ordering::Relaxed);
                    let Some((_, path, _)) = pending.get(at) else { break };
                    match hash_file(path, &mut buffer) {
                        Ok(digest) => local.push((at, digest)),
                        Err(source) => {
                            *failure.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some(WalkError::Io { path: path.clone(), source });
                            next.store(pending.len(), Ordering::Relaxed);
                            break;
                        }
                    }
                }
                results.lock().unwrap_or_else(|e| e.into_inner()).extend(local);
            });
        }
    });
    if let Some(error) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(error);
    }
    Ok(results.into_inner().unwrap_or_else(|e| e.into_inner()))
}

#[cfg(unix)]
fn special_kind(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_socket() {
        "socket"
    } else if file_type.is_fifo() {
        "named pipe"
    } else {
        "device"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "special file"
}

/// What one environment ships from a scan: layers 4 and 5, the manifest's globs.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub files: FileSet,
    pub left_out: Vec<LeftOut>,
}

/// Compiled include and exclude globs; globs were checked in validation, so one that fails here is skipped.
pub struct Globs {
    include: Option<(GlobSet, Vec<String>)>,
    exclude: (GlobSet, Vec<String>),
}

impl Globs {
    pub fn new<S: AsRef<str>>(include: &[S], exclude: &[S]) -> Globs {
        let build = |patterns: &[S]| {
            let mut builder = GlobSetBuilder::new();
            let mut kept = Vec::new();
            for pattern in patterns {
                let pattern = pattern.as_ref();
                if let Ok(glob) = Glob::new(pattern) {
                    builder.add(glob);
                    kept.push(pattern.to_string());
                }
            }
            (builder.build().unwrap_or_else(|_| GlobSet::empty()), kept)
        };
        Globs { include: (!include.is_empty()).then(|| build(include)), exclude: build(exclude) }
    }

    pub fn is_empty(&self) -> bool {
        self.include.is_none() && self.exclude.1.is_empty()
    }
}

impl Scan {
    /// The files an environment ships, and what its globs left out (an excluded folder once).
    pub fn select(&self, globs: &Globs) -> Selection {
        if globs.is_empty() {
            return Selection { files: FileSet { files: self.files.clone() }, left_out: Vec::new() };
        }
        let mut selection = Selection::default();
        let mut excluded_dirs: Vec<String> = Vec::new();
        for file in &self.files {
            if excluded_dirs
                .iter()
                .any(|d| file.path.starts_with(d.as_str()) && file.path.as_bytes().get(d.len()) == Some(&b'/'))
            {
                continue;
            }
            if let Some((dir, pattern)) = excluded_ancestor(&file.path, &globs.exclude) {
                excluded_dirs.push(dir.to_string());
                selection.left_out.push(LeftOut {
                    path: dir.to_string(),
                    dir: true,
                    reason: Reason::Exclude { pattern },
                });
                continue;
            }
            if let Some(index) = globs.exclude.0.matches(&file.path).first() {
                let pattern = globs.exclude.1[*index].clone();
                selection.left_out.push(LeftOut {
                    path: file.path.clone(),
                    dir: false,
                    reason: Reason::Exclude { pattern },
                });
                continue;
            }
            if let Some((include, _)) = &globs.include
                && !include.is_match(&file.path)
            {
                selection.left_out.push(LeftOut { path: file.path.clone(), dir: false, reason: Reason::NotIncluded });
                continue;
            }
            selection.files.files.push(file.clone());
        }
        selection
    }
}

/// The top-most folder above `path` that an exclude glob matches, with the glob.
fn excluded_ancestor<'a>(path: &'a str, exclude: &(GlobSet, Vec<String>)) -> Option<(&'a str, String)> {
    if exclude.1.is_empty() {
        return None;
    }
    path.match_indices('/')
        .map(|(at, _)| &path[..at])
        .find_map(|dir| exclude.0.matches(dir).first().map(|i| (dir, exclude.1[*i].clone())))
}
