//! `.dockerignore`: which files of a Dockerfile build's context go to the builder.
//!
//! Takes the text of a context's `.dockerignore` and the context folder; gives, for a relative path,
//! whether Docker leaves it out ([`DockerIgnore::excludes`], [`DockerIgnore::decide`]) and the entries
//! that the build context holds ([`context_entries`]).
//!
//! The rules, as Docker reads them:
//! - A UTF-8 byte order mark is dropped; a line whose first character is `#` is a comment (` #x` is a
//!   pattern); surrounding whitespace is trimmed and blank lines are skipped; a leading `!` makes an
//!   exception (whitespace after it is trimmed too). The pattern is cleaned like Go's `filepath.Clean` and
//!   a leading `/` removed, so `/foo`, `./foo`, `foo/` and `foo` are one pattern. A bare `!`, an unclosed
//!   `[`, a backwards range and a trailing `\` are refused, as Docker refuses them.
//! - Globs: see [`pattern`] (`*`, `?`, `[...]`, `\`, and `**` for any number of folders).
//! - A pattern matches a path when it matches the path itself or any folder above it: `build` (or
//!   `build/`) leaves out all of `build/`. The last matching line decides, so `!keep.md` after `*.md`
//!   brings `keep.md` back, and a later line can leave it out again.
//! - An excluded folder is walked into only when an exception could bring back something below it. With
//!   BuildKit's test: when every exception is a plain path (a trailing `/*` or `/**` aside), only the
//!   folders on the way to one; when some exception has another wildcard (`!**/keep`), every excluded
//!   folder, testing each path inside. An excluded folder that holds something brought back is still in
//!   the context (its entry needs a parent), as BuildKit sends it.
//! - `Dockerfile` and `.dockerignore` get no special treatment here. Docker's CLI always sends them, but
//!   only so that the builder can read them: when `.dockerignore` excludes them, `COPY . …` does not see
//!   them (BuildKit reads the Dockerfile through an input of its own, the legacy builder deletes them from
//!   the context). So the image builder reads the Dockerfile itself, not from this list.
//!
//! These are current Docker's semantics (BuildKit's file walker over moby's pattern matcher). Docker 20.10
//! differed in corner cases: it tested a path's parents only at the pattern's own depth, and walked into
//! an excluded folder only for an exception whose text starts with that folder's path.

mod pattern;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use pattern::Glob;

/// The file Docker reads the rules from, at the top of the context.
pub const FILE_NAME: &str = ".dockerignore";

#[derive(Debug, thiserror::Error)]
pub enum DockerIgnoreError {
    #[error(".dockerignore line {line}: {reason}: {text}")]
    Syntax { line: usize, text: String, reason: &'static str },
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// One pattern line.
#[derive(Clone, Debug)]
pub struct Rule {
    /// 1-based, counting comments and blank lines.
    pub line: usize,
    /// A `!` line: it brings back what earlier lines left out.
    pub exception: bool,
    /// The cleaned pattern, without its `!`.
    pub pattern: String,
    glob: Glob,
}

/// The rules of one `.dockerignore`, in file order.
#[derive(Clone, Debug, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> Result<DockerIgnore, DockerIgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (index, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.starts_with('#') {
                continue;
            }
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            let syntax = |reason| DockerIgnoreError::Syntax { line: index + 1, text: trimmed.to_string(), reason };
            let (exception, pattern) = match trimmed.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, trimmed),
            };
            let mut pattern = match pattern {
                "" => return Err(syntax("an exception needs a pattern after its !")),
                _ => pattern::clean(pattern),
            };
            if pattern.len() > 1 && pattern.starts_with('/') {
                pattern.remove(0);
            }
            // Docker cleans the line once more with its `!`, which turns `!/` into a bare `!`.
            if exception && pattern == "/" {
                return Err(syntax("an exception needs a pattern after its !"));
            }
            let glob = Glob::new(&pattern).map_err(syntax)?;
            rules.push(Rule { line: index + 1, exception, pattern, glob });
        }
        Ok(DockerIgnore { rules })
    }

    /// Reads `CONTEXT/.dockerignore`; no file means no rules.
    pub fn read(context: &Path) -> Result<DockerIgnore, DockerIgnoreError> {
        let path = context.join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => DockerIgnore::parse(&String::from_utf8_lossy(&bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(DockerIgnore::default()),
            Err(source) => Err(DockerIgnoreError::Io { path, source }),
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The line that decides `path` (relative to the context, `/`-separated): the last one that matches
    /// it or a folder above it. `None` when no line does, and for the context itself.
    pub fn decide(&self, path: &str) -> Option<&Rule> {
        let path = pattern::clean(path.trim_start_matches('/'));
        if path == "." {
            return None;
        }
        let mut candidates = Vec::new();
        for (end, _) in path.match_indices('/') {
            candidates.push(&path[..end]);
        }
        candidates.push(&path);
        self.rules.iter().rev().find(|rule| candidates.iter().any(|candidate| rule.glob.matches(candidate)))
    }

    /// Whether Docker leaves `path` out of the build context.
    pub fn excludes(&self, path: &str) -> bool {
        self.decide(path).is_some_and(|rule| !rule.exception)
    }

    /// Whether an exception might bring back something below the excluded folder `dir`, so that it must be
    /// walked rather than skipped whole.
    fn may_bring_back_below(&self, dir: &str) -> bool {
        let mut exceptions = self.rules.iter().filter(|rule| rule.exception).peekable();
        if exceptions.peek().is_none() {
            return false;
        }
        let exceptions: Vec<&Rule> = exceptions.collect();
        if !exceptions.iter().all(|rule| Glob::is_prefix_only(&rule.pattern)) {
            return true;
        }
        let dir = format!("{dir}/");
        exceptions.iter().any(|rule| {
            let plain = rule.pattern.strip_suffix("/**").or_else(|| rule.pattern.strip_suffix("/*"));
            format!("{}/", plain.unwrap_or(&rule.pattern)).starts_with(&dir)
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    /// Not followed: the link itself is in the context.
    Symlink,
    /// A socket, pipe or device.
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextEntry {
    /// Relative to the context, `/`-separated.
    pub path: String,
    pub kind: EntryKind,
}

/// Everything the build context holds after `rules`: folders, files, links and other entries, depth
/// first with each folder's entries in byte order (so sorted by path, component by component, and a
/// folder comes before what it holds). The context folder itself is not listed.
pub fn context_entries(context: &Path, rules: &DockerIgnore) -> Result<Vec<ContextEntry>, DockerIgnoreError> {
    let mut entries = Vec::new();
    walk(context, "", rules, &mut entries)?;
    Ok(entries)
}

fn walk(context: &Path, dir: &str, rules: &DockerIgnore, out: &mut Vec<ContextEntry>) -> Result<(), DockerIgnoreError> {
    let full = if dir.is_empty() { context.to_path_buf() } else { context.join(dir) };
    let io = |source| DockerIgnoreError::Io { path: full.clone(), source };
    let mut children = Vec::new();
    for entry in std::fs::read_dir(&full).map_err(io)? {
        let entry = entry.map_err(io)?;
        let file_type = entry.file_type().map_err(io)?;
        children.push((entry.file_name().to_string_lossy().into_owned(), file_type));
    }
    children.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (name, file_type) in children {
        let path = if dir.is_empty() { name } else { format!("{dir}/{name}") };
        let kind = if file_type.is_dir() {
            EntryKind::Dir
        } else if file_type.is_symlink() {
            EntryKind::Symlink
        } else if file_type.is_file() {
            EntryKind::File
        } else {
            EntryKind::Other
        };
        let excluded = rules.excludes(&path);
        if !excluded {
            out.push(ContextEntry { path: path.clone(), kind });
            if kind == EntryKind::Dir {
                walk(context, &path, rules, out)?;
            }
        } else if kind == EntryKind::Dir && rules.may_bring_back_below(&path) {
            // Listed only if something inside is brought back.
            let mark = out.len();
            out.push(ContextEntry { path: path.clone(), kind });
            walk(context, &path, rules, out)?;
            if out.len() == mark + 1 {
                out.pop();
            }
        }
    }
    Ok(())
}
