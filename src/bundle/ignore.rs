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

/// One rule (pattern line) of an ignore file.
#[derive(Clone, Debug)]
pub struct Rule {
    /// 1-based line number in its file.
    pub line: usize,
    /// The line as written, without its line ending (lossy UTF-8, for messages).
    pub text: String,
    /// The line started with `!`: a match re-includes the path.
    pub negated: bool,
    /// The pattern ended with `/`: it matches directories only.
    pub dir_only: bool,
    /// The pattern had a `/` at its start or middle: it matches the path relative to the file's folder,
    /// otherwise the last path component.
    pub anchored: bool,
    /// The glob after removing `!`, the leading and trailing `/` and trailing spaces.
    pub pattern: Vec<u8>,
    matcher: Matcher,
}

impl Rule {
    /// Parses one line (without its `\n`; a final `\r` is dropped). `None` for blank lines and comments.
    pub fn parse(line: usize, raw: &[u8]) -> Option<Rule> {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() || raw[0] == b'#' {
            return None;
        }
        let trimmed = trim_trailing_spaces(raw);
        if trimmed.is_empty() {
            return None;
        }
        let (negated, rest) = match trimmed.strip_prefix(b"!") {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let (dir_only, rest) = match rest.strip_suffix(b"/") {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let anchored = rest.contains(&b'/');
        let pattern = if anchored { rest.strip_prefix(b"/").unwrap_or(rest) } else { rest };
        Some(Rule {
            line,
            text: String::from_utf8_lossy(raw).into_owned(),
            negated,
            dir_only,
            anchored,
            pattern: pattern.to_vec(),
            matcher: Matcher::compile(pattern, anchored),
        })
    }

    /// Whether the pattern matches `relative` (relative to the rule's folder, no trailing `/`). Says
    /// nothing about negation: a negated rule that matches re-includes the path.
    pub fn matches(&self, relative: &str, is_dir: bool) -> bool {
        let relative = relative.as_bytes();
        self.matches_parts(relative, basename(relative), is_dir)
    }

    /// Whether the rule can ever match anything (false for `!`, `/`, malformed brackets, ...).
    pub fn can_match(&self) -> bool {
        !matches!(self.matcher, Matcher::Never)
    }

    fn matches_parts(&self, relative: &[u8], base: &[u8], is_dir: bool) -> bool {
        if self.dir_only && !is_dir {
            return false;
        }
        self.matcher.matches(if self.anchored { relative } else { base })
    }
}

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

/// git's wildmatch with pathname semantics (`WM_PATHNAME`): `*`, `?` and `[...]` never match `/`, `**`
/// between slashes matches any number of folders. `false` for a malformed pattern.
pub fn wildmatch(pattern: &[u8], text: &[u8]) -> bool {
    match Glob::compile(pattern, None) {
        Some(glob) => glob.matches(text),
        None => false,
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

/// Drops trailing spaces that are not escaped with a backslash.
fn trim_trailing_spaces(line: &[u8]) -> &[u8] {
    let mut end = 0;
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b' ' => i += 1,
            b'\\' => {
                i = (i + 2).min(line.len());
                end = i;
            }
            _ => {
                i += 1;
                end = i;
            }
        }
    }
    &line[..end]
}

/// `pattern` without its escapes when it has no wildcard; `None` otherwise (or when it ends in a lone `\`).
fn unescape_literal(pattern: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'*' | b'?' | b'[' => return None,
            b'\\' => {
                out.push(*pattern.get(i + 1)?);
                i += 2;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

#[derive(Clone, Debug)]
enum Matcher {
    /// Empty or malformed: matches nothing.
    Never,
    /// No wildcard: the target equals these bytes.
    Exact(Vec<u8>),
    /// `*` then no wildcard, unanchored: the basename ends with these bytes.
    Suffix(Vec<u8>),
    Glob(Glob),
}

impl Matcher {
    fn compile(pattern: &[u8], anchored: bool) -> Matcher {
        // Paths never start or end with `/`, so neither can a pattern that matches one.
        if pattern.is_empty() || pattern.starts_with(b"/") || pattern.ends_with(b"/") {
            return Matcher::Never;
        }
        if let Some(literal) = unescape_literal(pattern) {
            return Matcher::Exact(literal);
        }
        if !anchored
            && let Some(rest) = pattern.strip_prefix(b"*")
            && let Some(literal) = unescape_literal(rest)
        {
            return Matcher::Suffix(literal);
        }
        // git compares an anchored pattern's literal start before globbing the rest, so a `**` right
        // after that start is at the start of what wildmatch sees.
        let quirk = if anchored {
            pattern
                .iter()
                .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
                .filter(|&i| i > 0 && pattern[i] == b'*')
        } else {
            None
        };
        match Glob::compile(pattern, quirk) {
            Some(glob) => Matcher::Glob(glob),
            None => Matcher::Never,
        }
    }

    fn matches(&self, target: &[u8]) -> bool {
        match self {
            Matcher::Never => false,
            Matcher::Exact(literal) => target == literal.as_slice(),
            Matcher::Suffix(suffix) => target.ends_with(suffix),
            Matcher::Glob(glob) => glob.matches(target),
        }
    }
}

/// 256-bit byte set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn add(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }
    fn remove(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] &= !(1 << (b & 63));
    }
    fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }
    fn add_range(&mut self, lo: u8, hi: u8) {
        for b in lo..=hi {
            self.add(b);
        }
    }
    fn add_set(&mut self, other: ByteSet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
    }
    fn complement(&mut self) {
        for word in &mut self.0 {
            *word = !*word;
        }
    }
    /// A POSIX class by name, ASCII only as in git; `None` for an unknown name.
    fn class(name: &[u8]) -> Option<ByteSet> {
        let test: fn(u8) -> bool = match name {
            b"alnum" => |b| b.is_ascii_alphanumeric(),
            b"alpha" => |b| b.is_ascii_alphabetic(),
            b"blank" => |b| b == b' ' || b == b'\t',
            b"cntrl" => |b| b < 0x20 || b == 0x7f,
            b"digit" => |b| b.is_ascii_digit(),
            b"graph" => |b| (0x21..=0x7e).contains(&b),
            b"lower" => |b| b.is_ascii_lowercase(),
            b"print" => |b| (0x20..=0x7e).contains(&b),
            b"punct" => |b| b.is_ascii_punctuation(),
            b"space" => |b| matches!(b, b'\t' | b'\n' | b'\r' | b' '),
            b"upper" => |b| b.is_ascii_uppercase(),
            b"xdigit" => |b| b.is_ascii_hexdigit(),
            _ => return None,
        };
        let mut set = ByteSet::default();
        (0..=255u8).filter(|&b| test(b)).for_each(|b| set.add(b));
        Some(set)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Byte(u8),
    /// `?`: one byte but `/`.
    Any,
    /// `[...]`, `/` already removed.
    Class(ByteSet),
    /// `*`: any run of bytes but `/`.
    Star,
    /// `**` (at the end, or before `\/`): any run of bytes.
    StarStar,
    /// Starts `**/` (nothing, or any run of bytes ending with `/`), compiled as `SkipDirs StarStar DirSlash`:
    /// consumes nothing and goes on either to the `StarStar` or past the `DirSlash`.
    SkipDirs,
    /// The `/` ending `**/` (not a `Byte`, so it never joins the literal prefix or suffix).
    DirSlash,
}

/// A compiled pattern: literal bytes required at the start and end, and an automaton for the middle.
#[derive(Clone, Debug)]
struct Glob {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    middle: Vec<Token>,
}

impl Glob {
    /// `None` for a malformed pattern. `star_start` is a position whose `*` run counts as being at the
    /// start of the pattern (git's literal-prefix quirk).
    fn compile(p: &[u8], star_start: Option<usize>) -> Option<Glob> {
        let mut tokens = Vec::with_capacity(p.len());
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                b'*' => {
                    let mut j = i;
                    while j < p.len() && p[j] == b'*' {
                        j += 1;
                    }
                    let at_start = i == 0 || p[i - 1] == b'/' || star_start == Some(i);
                    let at_end = j == p.len() || p[j] == b'/' || (p[j] == b'\\' && p.get(j + 1) == Some(&b'/'));
                    if j - i >= 2 && at_start && at_end {
                        if p.get(j) == Some(&b'/') {
                            tokens.extend([Token::SkipDirs, Token::StarStar, Token::DirSlash]);
                            j += 1;
                        } else {
                            tokens.push(Token::StarStar);
                        }
                    } else if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                    i = j;
                }
                b'?' => {
                    tokens.push(Token::Any);
                    i += 1;
                }
                b'[' => {
                    let (set, next) = parse_bracket(p, i + 1)?;
                    tokens.push(Token::Class(set));
                    i = next;
                }
                b'\\' => {
                    tokens.push(Token::Byte(*p.get(i + 1)?));
                    i += 2;
                }
                b => {
                    tokens.push(Token::Byte(b));
                    i += 1;
                }
            }
        }
        let bytes = |tokens: &[Token]| {
            tokens.iter().map_while(|t| if let Token::Byte(b) = t { Some(*b) } else { None }).count()
        };
        let lead = bytes(&tokens);
        let trail = tokens[lead..].iter().rev().take_while(|t| matches!(t, Token::Byte(_))).count();
        let literal = |tokens: &[Token]| {
            tokens.iter().filter_map(|t| if let Token::Byte(b) = t { Some(*b) } else { None }).collect()
        };
        let suffix = literal(&tokens[tokens.len() - trail..]);
        let prefix = literal(&tokens[..lead]);
        let middle = tokens[lead..tokens.len() - trail].to_vec();
        Some(Glob { prefix, suffix, middle })
    }

    fn matches(&self, text: &[u8]) -> bool {
        if text.len() < self.prefix.len() + self.suffix.len()
            || !text.starts_with(&self.prefix)
            || !text.ends_with(&self.suffix)
        {
            return false;
        }
        let middle = &text[self.prefix.len()..text.len() - self.suffix.len()];
        let states = self.middle.len() + 1;
        let words = states.div_ceil(64);
        if words <= 4 {
            let (mut current, mut next) = ([0u64; 4], [0u64; 4]);
            run(&self.middle, middle, &mut current[..words], &mut next[..words])
        } else {
            let mut buffer = vec![0u64; 2 * words];
            let (current, next) = buffer.split_at_mut(words);
            run(&self.middle, middle, current, next)
        }
    }
}

/// Parses a bracket expression whose `[` is just before `start`: the set (without `/`) and the position
/// after its `]`; `None` when unterminated or naming an unknown class.
fn parse_bracket(p: &[u8], start: usize) -> Option<(ByteSet, usize)> {
    let mut i = start;
    let negated = matches!(p.get(i), Some(b'!' | b'^'));
    if negated {
        i += 1;
    }
    let mut set = ByteSet::default();
    // The byte that may start a range: the previous member, unless it ended a range or was a class.
    let mut previous: Option<u8> = None;
    let mut first = true;
    loop {
        let c = *p.get(i)?;
        if c == b']' && !first {
            i += 1;
            break;
        }
        first = false;
        if c == b'\\' {
            let escaped = *p.get(i + 1)?;
            set.add(escaped);
            previous = Some(escaped);
            i += 2;
            continue;
        }
        if c == b'-'
            && let Some(low) = previous
            && let Some(&high) = p.get(i + 1)
            && high != b']'
        {
            let (high, width) = if high == b'\\' { (*p.get(i + 2)?, 3) } else { (high, 2) };
            // Reversed ranges are empty; their first byte was already added as a member.
            if low <= high {
                set.add_range(low, high);
            }
            previous = None;
            i += width;
            continue;
        }
        if c == b'[' && p.get(i + 1) == Some(&b':') {
            let name_start = i + 2;
            let close = name_start + p.get(name_start..)?.iter().position(|&b| b == b']')?;
            if close > name_start && p[close - 1] == b':' {
                set.add_set(ByteSet::class(&p[name_start..close - 1])?);
                previous = None;
                i = close + 1;
                continue;
            }
            // No `:]`: the `[` is an ordinary member.
        }
        set.add(c);
        previous = Some(c);
        i += 1;
    }
    if negated {
        set.complement();
    }
    set.remove(b'/');
    Some((set, i))
}

fn set_bit(bits: &mut [u64], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}

fn get_bit(bits: &[u64], i: usize) -> bool {
    bits[i / 64] & (1 << (i % 64)) != 0
}

/// Adds the states reachable without input (all forward, so one pass in order suffices).
fn close(tokens: &[Token], bits: &mut [u64]) {
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Star | Token::StarStar if get_bit(bits, i) => set_bit(bits, i + 1),
            Token::SkipDirs if get_bit(bits, i) => {
                set_bit(bits, i + 1);
                set_bit(bits, i + 3);
            }
            _ => {}
        }
    }
}

/// Runs the automaton whose state `i` means "about to match token `i`" over `text`.
fn run(tokens: &[Token], text: &[u8], current: &mut [u64], next: &mut [u64]) -> bool {
    current.fill(0);
    set_bit(current, 0);
    close(tokens, current);
    let (mut current, mut next) = (current, next);
    for &c in text {
        next.fill(0);
        for (w, &word) in current.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Some(token) = tokens.get(i) else { continue };
                match token {
                    Token::Byte(b) if c == *b => set_bit(next, i + 1),
                    Token::Any if c != b'/' => set_bit(next, i + 1),
                    Token::Class(set) if set.contains(c) => set_bit(next, i + 1),
                    Token::Star if c != b'/' => set_bit(next, i),
                    Token::StarStar => set_bit(next, i),
                    Token::DirSlash if c == b'/' => set_bit(next, i + 1),
                    _ => {}
                }
            }
        }
        close(tokens, next);
        if next.iter().all(|&w| w == 0) {
            return false;
        }
        std::mem::swap(&mut current, &mut next);
    }
    get_bit(current, tokens.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wm(pattern: &str, text: &str) -> bool {
        wildmatch(pattern.as_bytes(), text.as_bytes())
    }

    fn rule(line: &str) -> Rule {
        Rule::parse(1, line.as_bytes()).expect("a rule")
    }

    #[test]
    fn blank_lines_and_comments_are_not_rules() {
        for line in ["", " ", "   ", "\r", "#", "# comment", "#!x"] {
            assert!(Rule::parse(1, line.as_bytes()).is_none(), "{line:?}");
        }
        assert_eq!(rule("\\#x").pattern, b"\\#x");
        assert!(rule("\\#x").matches("#x", false));
        assert!(rule(" #x").matches(" #x", false));
    }

    #[test]
    fn trailing_spaces_are_trimmed_unless_escaped() {
        assert_eq!(rule("foo   ").pattern, b"foo");
        assert_eq!(rule("foo\\ ").pattern, b"foo\\ ");
        assert_eq!(rule("foo\\  ").pattern, b"foo\\ ");
        assert_eq!(rule("foo\\\\  ").pattern, b"foo\\\\");
        assert_eq!(rule("c \\ ").pattern, b"c \\ ");
        assert_eq!(rule("tab\t").pattern, b"tab\t");
        assert!(rule("foo\\ ").matches("foo ", false));
        assert!(!rule("foo\\ ").matches("foo", false));
        assert!(rule("\\ ").matches(" ", false));
        assert!(rule("a \r").matches("a", false));
    }

    #[test]
    fn negation_anchoring_and_directories() {
        let r = rule("!foo/");
        assert!(r.negated && r.dir_only && !r.anchored);
        assert!(r.matches("a/foo", true) && !r.matches("a/foo", false));
        let r = rule("\\!important!.txt");
        assert!(!r.negated && r.matches("!important!.txt", false));
        let r = rule("/foo");
        assert!(r.anchored && r.matches("foo", false) && !r.matches("a/foo", false));
        let r = rule("a/b");
        assert!(r.anchored && r.matches("a/b", false) && !r.matches("x/a/b", false));
        let r = rule("foo");
        assert!(!r.anchored && r.matches("foo", false) && r.matches("x/y/foo", true));
        for never in ["!", "/", "!/", "//", "foo//", "foo\\/", "//foo", "foo\\", "[", "[a", "[]", "[!]", "[[:bogus:]]"]
        {
            let r = rule(never);
            assert!(!r.can_match(), "{never:?}");
        }
    }

    #[test]
    fn stars() {
        assert!(wm("*", "abc") && !wm("*", "a/b"));
        assert!(wm("a*c", "ac") && wm("a*c", "abbc") && !wm("a*c", "a/c"));
        assert!(wm("**", "a/b/c") && wm("**", ""));
        assert!(wm("**/foo", "foo") && wm("**/foo", "a/b/foo") && !wm("**/foo", "afoo"));
        assert!(wm("a/**", "a/b") && wm("a/**", "a/b/c") && !wm("a/**", "a"));
        assert!(wm("a/**/b", "a/b") && wm("a/**/b", "a/x/b") && wm("a/**/b", "a/x/y/b") && !wm("a/**/b", "ab"));
        assert!(wm("a/***/b", "a/x/y/b"));
        assert!(!wm("a**b", "a/b") && wm("a**b", "axxb"));
        assert!(!wm("a/**b", "a/x/b") && wm("a/**b", "a/xb"));
        assert!(wm("a/**\\/b", "a/x/b") && wm("a/**\\/b", "a/x/y/b") && !wm("a/**\\/b", "a/b"));
        assert!(wm("**/**", "a/b"));
        // Without the literal-prefix quirk, `a**/b` is `a*/b`.
        assert!(wm("a**/b", "ax/b") && !wm("a**/b", "ab") && !wm("a**/b", "a/x/b"));
    }

    #[test]
    fn literal_prefix_quirk_in_anchored_patterns() {
        let r = rule("a**/foo");
        assert!(r.matches("afoo", false) && r.matches("a/x/foo", false) && r.matches("ab/x/foo", false));
        assert!(!rule("a?**/foo").matches("ab/x/foo", false));
        assert!(rule("a/b**").matches("a/bc/d", false));
        assert!(!rule("a/b*").matches("a/bc/d", false));
    }

    #[test]
    fn brackets() {
        assert!(wm("[abc]", "b") && !wm("[abc]", "d"));
        assert!(wm("[a-c]", "b") && !wm("[a-c]", "d"));
        assert!(wm("[!a-c]", "d") && !wm("[!a-c]", "a") && wm("[^a-c]", "d"));
        assert!(wm("[]]", "]") && wm("[]a]", "a") && wm("[!]]", "a") && !wm("[!]]", "]"));
        assert!(wm("[a-]", "-") && wm("[-a]", "-"));
        assert!(wm("[z-a]", "z") && !wm("[z-a]", "m"));
        assert!(wm("[a-c-e]", "-") && wm("[a-c-e]", "e") && !wm("[a-c-e]", "d"));
        assert!(wm("[]-a]", "^") && !wm("[]-a]", "\\"));
        assert!(wm("[\\]]", "]") && wm("[a\\-c]", "-") && !wm("[a\\-c]", "b"));
        assert!(wm("[a-\\c]", "b") && wm("[\\a-c]", "b"));
        assert!(wm("[!/]", "a") && !wm("[!/]", "/") && !wm("a[/]b", "a/b") && !wm("a?b", "a/b"));
        assert!(!wm("[a", "a") && !wm("[", "[") && !wm("[]", "]") && !wm("[\\]", "\\"));
    }

    #[test]
    fn classes() {
        assert!(wm("[[:alpha:]]", "a") && wm("[[:alpha:]]", "Z") && !wm("[[:alpha:]]", "1"));
        assert!(wm("[[:digit:]-z]", "-") && wm("[[:digit:]-z]", "5") && !wm("[[:digit:]-z]", "y"));
        assert!(wm("[x[:digit:]]", "x") && wm("[[:alpha:][:digit:]]", "7"));
        assert!(wm("[[:space:]]", "\r") && !wm("[[:space:]]", "\x0b"));
        assert!(wm("[[:punct:]]", "!") && wm("[[:xdigit:]]", "F") && !wm("[[:xdigit:]]", "g"));
        assert!(!wm("[[:bogus:]]", "a") && !wm("[[:ALPHA:]]", "a") && !wm("[[::]]", ":"));
        assert!(!wm("[[:alpha:]", "a") && !wm("[a[:bogus:]]", "a"));
        // `[:` without `:]`: a literal `[`.
        assert!(wm("[[:alpha]", "[") && wm("[[:alpha]", "h") && wm("[[:]", ":") && wm("[[:]]", "[]"));
        assert!(wm("[:alpha:]", "l") && !wm("[:alpha:]", "b"));
        assert!(wm("[a-[:alpha:]]", "l]"));
    }

    #[test]
    fn bytes_not_characters() {
        assert!(!wm("?", "é") && wm("??", "é") && !wm("[é]", "é"));
        assert!(wildmatch(b"\xff*", b"\xff\xfe") && wildmatch(b"[\x80-\xff]", b"\x90"));
    }

    #[test]
    fn escapes() {
        assert!(wm("\\*", "*") && !wm("\\*", "a") && wm("\\[a]", "[a]") && wm("a\\/b", "a/b"));
        assert!(!wm("a\\", "a") && !wm("a\\", "a\\") && wm("a\\\\", "a\\"));
    }

    #[test]
    fn hostile_patterns_are_polynomial() {
        let pattern = "*a".repeat(40) + "*b";
        let text = "a".repeat(200);
        assert!(!wm(&pattern, &text));
        let pattern = "**/".repeat(80) + "x";
        let text = "a/".repeat(200) + "y";
        assert!(!wm(&pattern, &text));
        let long = "?".repeat(1000);
        assert!(wm(&long, &"z".repeat(1000)));
    }

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
