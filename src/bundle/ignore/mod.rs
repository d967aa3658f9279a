//! `.gitignore` semantics exactly as git applies them, without git or a repository; `.flyteignore` files
//! use the same syntax.
//!
//! # Layering
//!
//! Every ignore file applies to the folder it sits in and everything below. A path's decision is made by
//! the last rule that matches it, where rules are ordered by:
//!
//! 1. precedence ([`IgnoreFile::precedence`]): [`FLYTEIGNORE_PRECEDENCE`] (`.flyteignore`) beats
//!    [`GITIGNORE_PRECEDENCE`] (`.gitignore`, and any other name), at every depth: a `.flyteignore` rule
//!    at the root beats a `.gitignore` rule in the deepest folder;
//! 2. within one precedence, a deeper file beats a shallower one (as git does between `.gitignore` files);
//! 3. within one file, a later line beats an earlier one.
//!
//! [`IgnoreFile::parse`] sets the precedence from the file name; set the public field to layer other
//! files. One [`IgnoreStack`] holds both kinds and applies that order in [`IgnoreStack::decide`].
//!
//! # Walker contract
//!
//! Git never looks inside an excluded directory: "it is not possible to re-include a file if a parent
//! directory of that file is excluded". The stack mirrors that by being asked about a directory before
//! anything inside it, and the walker not descending into a directory that is ignored:
//!
//! ```text
//! stack.load_dir(root, "")?;                       // the root's .gitignore and .flyteignore
//! for each entry, depth first, a directory before its contents:
//!     stack.pop_to(parent of entry);               // leave the folders the walk has finished
//!     if stack.decide(path, is_dir).is_some_and(|d| d.ignored) {
//!         skip it, and if it is a directory do not descend (everything below is ignored);
//!     } else if is_dir {
//!         stack.load_dir(root, path)?;              // its ignore files apply to its contents
//!     }
//! ```
//!
//! Paths are relative to the walk root, `/`-separated, with no leading `./`, no leading or trailing `/`.
//! `is_dir` is false for a symbolic link, even to a directory (git treats a link as a file). An ignore file
//! that is itself ignored is still read (git does too); one that is a symbolic link is not (git ≥ 2.32
//! refuses to follow it and warns).
//!
//! # Semantics (checked against git 2.47)
//!
//! - The file is bytes (not necessarily UTF-8); a UTF-8 byte order mark at its start is skipped; lines
//!   end at `\n`, and one `\r` before it (or at the end of the file) is dropped.
//! - Blank lines match nothing; a line starting with `#` is a comment (`\#` starts a pattern with `#`).
//! - Trailing spaces (not tabs) are dropped unless escaped with `\` (`foo\ ` keeps one space; `foo\\ `
//!   drops it, the backslash being escaped).
//! - A leading `!` negates (`\!` is a literal `!`); `!` alone matches nothing.
//! - One trailing `/` makes the rule match directories only; then a `/` at the start or in the middle
//!   anchors the pattern to the ignore file's folder (one leading `/` is removed), otherwise it is matched
//!   against the last path component at any depth.
//! - `*` matches any run of bytes but `/`, `?` one byte but `/`, `[...]` one byte but `/` from a set:
//!   ranges `a-z` (a reversed range matches only its first byte), `[!...]`/`[^...]`, `]` first is literal,
//!   `-` first or last is literal, `\` escapes, POSIX classes `[:alpha:]` etc. (ASCII only; `[:space:]`
//!   is tab, LF, CR and space). An unknown class or an unterminated `[` makes the rule match nothing; a
//!   `[:` without a closing `:]` is a literal `[`.
//! - `\x` matches `x`; a pattern ending in a lone `\` matches nothing.
//! - `**` is "any path": at the start or after a `/`, and at the end or before a `/`: `**/x` matches `x`
//!   at any depth, `x/**` everything inside `x` (not `x` itself), `a/**/b` matches `a/b`, `a/x/b`, ...
//!   Before an escaped slash (`**\/`) it spans slashes but cannot match zero folders. Any other `**` is a
//!   `*`. Quirk kept from git: in an anchored pattern, a `**` right after the literal start of the pattern
//!   counts as being at the start (`a**/b` matches `ab`, `a/b` and `a/x/y/b`; `a/b**` matches `a/bc/d`).
//! - Matching is on bytes and case-sensitive (git's default on Linux).
//!
//! Matching never recurses: globs run as a bit-set automaton, O(pattern × path) at worst, after literal,
//! suffix (`*.pyc`) and literal prefix/suffix checks computed at parse time.

mod rule;
mod wildmatch;

pub use rule::Rule;
pub use wildmatch::wildmatch;

use std::io;
use std::path::Path;

/// Name of git's ignore files.
pub const GITIGNORE: &str = ".gitignore";
/// Name of flyte's own ignore files (same syntax, higher precedence).
pub const FLYTEIGNORE: &str = ".flyteignore";
/// Precedence of `.gitignore` files (and of any file not named `.flyteignore`).
pub const GITIGNORE_PRECEDENCE: u8 = 0;
/// Precedence of `.flyteignore` files: their rules beat every `.gitignore` rule.
pub const FLYTEIGNORE_PRECEDENCE: u8 = 1;

/// A parsed ignore file.
#[derive(Clone, Debug)]
pub struct IgnoreFile {
    /// Its folder relative to the walk root, `/`-separated, `""` for the root.
    pub dir: String,
    /// Its path relative to the walk root, e.g. `sub/.gitignore` (for messages).
    pub file: String,
    /// Layering between kinds of files: a higher precedence rule beats any lower one; see the module doc.
    pub precedence: u8,
    pub rules: Vec<Rule>,
}

impl IgnoreFile {
    /// Parses the content of the ignore file `file` in folder `dir` (bytes; need not be UTF-8). The
    /// precedence is [`FLYTEIGNORE_PRECEDENCE`] when the file is named `.flyteignore`, else
    /// [`GITIGNORE_PRECEDENCE`].
    pub fn parse(dir: &str, file: &str, text: impl AsRef<[u8]>) -> IgnoreFile {
        let mut bytes = text.as_ref();
        if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
            bytes = rest;
        }
        let rules = bytes.split(|&b| b == b'\n').enumerate().filter_map(|(i, line)| Rule::parse(i + 1, line)).collect();
        let name = file.rsplit('/').next().unwrap_or(file);
        let precedence = if name == FLYTEIGNORE { FLYTEIGNORE_PRECEDENCE } else { GITIGNORE_PRECEDENCE };
        IgnoreFile { dir: dir.trim_matches('/').to_owned(), file: file.to_owned(), precedence, rules }
    }

    /// Reads `root/dir/name`. `Ok(None)` when it does not exist, is a directory or is a symbolic link
    /// (git does not follow a linked `.gitignore`).
    pub fn read(root: &Path, dir: &str, name: &str) -> io::Result<Option<IgnoreFile>> {
        let dir = dir.trim_matches('/');
        let relative = if dir.is_empty() { name.to_owned() } else { format!("{dir}/{name}") };
        let path = root.join(&relative);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        if !meta.is_file() {
            return Ok(None);
        }
        let text = std::fs::read(&path)?;
        Ok(Some(IgnoreFile::parse(dir, &relative, text)))
    }

    /// The last rule of this file matching `path` (relative to the walk root), if any; `None` also when
    /// `path` is not below this file's folder.
    pub fn decide(&self, path: &str, is_dir: bool) -> Option<&Rule> {
        let path = path.as_bytes();
        let relative = relative_to(self.dir.as_bytes(), path)?;
        self.last_match(relative, basename(path), is_dir)
    }

    fn last_match(&self, relative: &[u8], base: &[u8], is_dir: bool) -> Option<&Rule> {
        self.rules.iter().rev().find(|rule| rule.matches_parts(relative, base, is_dir))
    }
}

/// Which rule of which file decided a path.
#[derive(Clone, Copy, Debug)]
pub struct Decision<'a> {
    /// The path is excluded (the deciding rule is not negated).
    pub ignored: bool,
    pub file: &'a IgnoreFile,
    pub rule: &'a Rule,
}

/// The ignore files in force at the current point of a depth-first walk, shallowest first.
#[derive(Clone, Debug, Default)]
pub struct IgnoreStack {
    files: Vec<IgnoreFile>,
}

impl IgnoreStack {
    pub fn new() -> Self {
        IgnoreStack::default()
    }

    /// Adds a file when entering its folder (once per file: a folder may have a `.gitignore` and a
    /// `.flyteignore`, in any order). Its folder must be at or below the folders already on the stack.
    pub fn push(&mut self, file: IgnoreFile) {
        self.files.push(file);
    }

    /// Reads and pushes the `.gitignore` and `.flyteignore` of `root/dir` (those that exist).
    pub fn load_dir(&mut self, root: &Path, dir: &str) -> io::Result<()> {
        for name in [GITIGNORE, FLYTEIGNORE] {
            if let Some(file) = IgnoreFile::read(root, dir, name)? {
                self.push(file);
            }
        }
        Ok(())
    }

    /// Leaves folders: drops the files whose folder is not `dir` or one of its ancestors. Call it with the
    /// parent folder of each entry before [`decide`](Self::decide).
    pub fn pop_to(&mut self, dir: &str) {
        let dir = dir.trim_matches('/').as_bytes();
        while let Some(top) = self.files.last() {
            let top = top.dir.as_bytes();
            if top.is_empty() || top == dir || relative_to(top, dir).is_some() {
                break;
            }
            self.files.pop();
        }
    }

    /// The files on the stack, shallowest first.
    pub fn files(&self) -> &[IgnoreFile] {
        &self.files
    }

    /// The decision for `path` (relative to the walk root, `/`-separated, no trailing slash), or `None`
    /// when no rule matches. Only the path's own name is looked at: the caller must not ask about paths
    /// below an ignored directory (see the walker contract in the module doc).
    pub fn decide(&self, path: &str, is_dir: bool) -> Option<Decision<'_>> {
        let path = path.as_bytes();
        let base = basename(path);
        let mut above = u16::MAX;
        loop {
            // The highest precedence below `above`; few files and two precedences, so a scan is cheap.
            let level = self.files.iter().map(|f| u16::from(f.precedence)).filter(|&p| p < above).max()?;
            for file in self.files.iter().rev().filter(|f| u16::from(f.precedence) == level) {
                let Some(relative) = relative_to(file.dir.as_bytes(), path) else { continue };
                if let Some(rule) = file.last_match(relative, base, is_dir) {
                    return Some(Decision { ignored: !rule.negated, file, rule });
                }
            }
            above = level;
        }
    }

    /// Whether `path` is ignored (a shorthand for [`decide`](Self::decide)).
    pub fn is_ignored(&self, path: &str, is_dir: bool) -> bool {
        self.decide(path, is_dir).is_some_and(|d| d.ignored)
    }
}

/// `path` relative to the folder `dir` (`""` is the root), when `path` is strictly below it.
fn relative_to<'p>(dir: &[u8], path: &'p [u8]) -> Option<&'p [u8]> {
    if dir.is_empty() {
        return Some(path);
    }
    match path.strip_prefix(dir) {
        Some([b'/', rest @ ..]) => Some(rest),
        _ => None,
    }
}

fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_handles_crlf_bom_and_bytes() {
        let file = IgnoreFile::parse("", ".gitignore", b"\xEF\xBB\xBF#c\r\nfoo\r\nbar\r\r\n\xff\xfe\nlast\r");
        let patterns: Vec<_> = file.rules.iter().map(|r| (r.line, r.pattern.clone())).collect();
        assert_eq!(
            patterns,
            vec![(2, b"foo".to_vec()), (3, b"bar\r".to_vec()), (4, b"\xff\xfe".to_vec()), (5, b"last".to_vec())]
        );
        assert_eq!(file.precedence, GITIGNORE_PRECEDENCE);
        assert_eq!(IgnoreFile::parse("a", "a/.flyteignore", "").precedence, FLYTEIGNORE_PRECEDENCE);
    }

    #[test]
    fn stack_precedence_and_popping() {
        let mut stack = IgnoreStack::new();
        stack.push(IgnoreFile::parse("", ".gitignore", "*.log\n!keep.log\n"));
        stack.push(IgnoreFile::parse("", ".flyteignore", "secret\n!build/\n"));
        assert!(stack.is_ignored("a.log", false));
        assert!(!stack.is_ignored("keep.log", false));
        assert!(stack.is_ignored("x/secret", false));
        stack.push(IgnoreFile::parse("sub", "sub/.gitignore", "!*.log\n!secret\nkeep.log\n"));
        let d = stack.decide("sub/a.log", false).unwrap();
        assert!(!d.ignored && d.file.file == "sub/.gitignore" && d.rule.line == 1);
        // A root .flyteignore rule beats a deeper .gitignore rule.
        let d = stack.decide("sub/secret", false).unwrap();
        assert!(d.ignored && d.file.file == ".flyteignore");
        assert!(stack.is_ignored("sub/keep.log", false));
        assert!(stack.decide("sub", true).is_none());
        stack.pop_to("subway");
        assert_eq!(stack.files().len(), 2);
        assert!(!stack.is_ignored("subway/keep.log", false));
        stack.push(IgnoreFile::parse("a/b", "a/b/.gitignore", "x\n"));
        stack.pop_to("a/b/c");
        assert_eq!(stack.files().len(), 3);
        stack.pop_to("a");
        assert_eq!(stack.files().len(), 2);
        stack.pop_to("");
        assert_eq!(stack.files().len(), 2);
    }

    #[test]
    fn never_panics_on_odd_input() {
        let odd: [&[u8]; 12] =
            [b"[", b"\\", b"[\\", b"[a-", b"[a-\\", b"[[:", b"[[:a", b"**", b"/**/", b"!\\", b"[!", b"[^]"];
        for pattern in odd {
            for text in [&b""[..], b"a", b"/", b"a/b", b"["] {
                let _ = wildmatch(pattern, text);
            }
            let file = IgnoreFile::parse("", ".gitignore", pattern);
            let mut stack = IgnoreStack::new();
            stack.push(file);
            let _ = stack.decide("a/[", true);
            let _ = stack.decide("", false);
        }
    }
}
