//! `.gitignore` semantics (`flyte::bundle::ignore`) against the real git, on generated trees.
//!
//! Each tree is made in a temporary folder from a seeded generator: nested folders, odd file names and
//! `.gitignore` files drawn from tricky patterns. The walk with an `IgnoreStack` (not descending into
//! ignored folders) must keep exactly the files `git ls-files --others --exclude-standard` lists, and give
//! every path (folders too, and paths below ignored folders) the file and line `git check-ignore
//! --no-index --verbose --non-matching` reports. Git runs with no user or system configuration and no
//! global excludes file. `.flyteignore` layering is tested directly, since git does not know it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use flyte::bundle::ignore::{FLYTEIGNORE_PRECEDENCE, GITIGNORE_PRECEDENCE, IgnoreFile, IgnoreStack};

/// splitmix64: small, deterministic, good enough to draw trees.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

/// Folder names. No two differ only by case, none starts with `:` (pathspec magic for check-ignore).
const DIRS: &[&str] = &[
    "a", "b", "build", "src", "foo", "sub", "x y", "doc", ".hidden", "d[1]", "#d", "!d", "lib", "foo.d", "ab", "é",
    "bar", "c\\d",
];

const FILES: &[&str] = &[
    "a",
    "b",
    "foo",
    "foo.py",
    "x.pyc",
    "bar.log",
    "README.md",
    "#h",
    "!bang",
    "sp ",
    " lead",
    "é.txt",
    "[x]",
    "a*b",
    "q?",
    "Z9",
    "back\\slash",
    "cr\r",
    "tab\t",
    "ab",
    "abc",
    "foo.txt",
    "keep.log",
    "x",
    "-",
    "^",
    "]",
    "a]",
    "main.py",
    "data.csv",
    ".env",
    "ba",
    "[]",
    "sp  ",
    "a b",
    "build",
    "v\u{b}",
];

/// Whole patterns that exercise one rule each.
const TRICKY: &[&str] = &[
    "*.pyc",
    "*.log",
    "!keep.log",
    "build/",
    "/build",
    "build",
    "foo",
    "foo/",
    "/foo",
    "!foo",
    "!foo/",
    "**/foo",
    "foo/**",
    "a/**/b",
    "**/b/*.txt",
    "sub/",
    "!sub/",
    "*/",
    "!*/",
    "*",
    "!*.py",
    "/*",
    "!/src",
    "src/**/*.py",
    "\\#h",
    "#h",
    "\\!bang",
    "!\\!bang",
    "!!bang",
    "sp\\ ",
    "sp ",
    "sp\\ \\ ",
    "\\ lead",
    " lead",
    "[x]",
    "\\[x\\]",
    "a\\*b",
    "a*b",
    "q\\?",
    "q?",
    "[[:upper:]]*",
    "[!a-z]*",
    "[]a]",
    "[^.]*",
    "x y/",
    "x\\ y/",
    "d\\[1\\]/",
    "d[[]1]/",
    "*.[tc][xs][tv]",
    "**",
    "**/",
    "/**",
    "a/**",
    "a**",
    "**a",
    "a**/b",
    "a**/",
    "**/*.log",
    "doc/*",
    "!doc/README.md",
    "foo.*",
    "*.d/",
    "é*",
    "*\\\\slash",
    "back\\\\*",
    "cr\r",
    "tab\t",
    "[[:space:]]*",
    "lib/*/",
    "sub/**/",
    "b/a",
    "/a/b",
    ".*",
    "!.env",
    "[[:alpha:]]",
    "?",
    "??",
    "ab*",
    "*b",
    "a?c",
    "[a-c]b*",
    "foo.d/*",
    "src/",
    "!src/foo.py",
    "**/**",
    "a/**\\/b",
    "*/*/",
    "!*/*/",
    "[z-a]*",
    "[[:bogus:]]",
    "[a",
    "\\",
    "[[:alpha]",
    "a\\",
    "!",
    "/",
    "d[!x]a",
    "d?b/x",
    "m[^q]d/ab",
    "k/*[[:space:]]y",
    "[a-b-d]*",
    "[!a-a-c]*",
    "**\\/x",
    "d/**\\/x",
    "m/**\\/ab",
    "[[:space:]]",
    "*[[:space:]]*",
    "[[:cntrl:]]*",
    "[[:punct:]]",
    "[[:xdigit:]]",
    "[--0]",
    "[]-a]",
    "[\\]]",
    "[a-\\c]*",
    "[[:digit:]-z]",
];

/// Bytes for character-level random patterns.
const ALPHABET: &[&[u8]] = &[
    b"a",
    b"b",
    b"x",
    b"*",
    b"**",
    b"?",
    b"[",
    b"]",
    b"!",
    b"^",
    b"-",
    b"\\",
    b"/",
    b":",
    b" ",
    b"#",
    b".",
    b"\xc3\xa9",
    b"\xc3",
    b"[:alpha:]",
    b"[:space:]",
    b"[!",
    b"[]",
    b"\\ ",
    b"\\\\",
    b"**/",
    b"/**",
    b"\t",
    b"\r",
    b"d",
    b"1",
    b"[a-c]",
    b"[[:digit:]]",
    b"]",
    b"**\\/",
    b"\xff",
];

fn name_glob(rng: &mut Rng, name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let special = matches!(c, '*' | '?' | '[' | ']' | '\\' | '!' | '#' | ' ');
        match rng.below(14) {
            0 => out.push('?'),
            1 => out.push('*'),
            2 => {
                let _ = write!(out, "[{c}]");
            }
            3 if c.is_ascii_lowercase() => out.push_str("[a-z]"),
            4 if c.is_ascii_alphabetic() => out.push_str("[[:alpha:]]"),
            5 => out.push_str("[!/]"),
            _ if special || (i == 0 && c == '!') => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

fn segment(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => "**".into(),
        1 => "*".into(),
        2..=4 => {
            let name = rng_name(rng);
            name_glob(rng, name)
        }
        5 => {
            let name = rng_name(rng);
            format!("{}*", name.chars().next().unwrap_or('a'))
        }
        _ => escape_literal(rng_name(rng)),
    }
}

fn rng_name(rng: &mut Rng) -> &'static str {
    if rng.chance(50) { DIRS[rng.below(DIRS.len())] } else { FILES[rng.below(FILES.len())] }
}

fn escape_literal(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if matches!(c, '*' | '?' | '[' | '\\') || (out.is_empty() && matches!(c, '!' | '#')) {
            out.push('\\');
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        out.pop();
        out.push_str("\\ ");
    }
    out
}

/// One pattern line (without its line ending).
fn pattern(rng: &mut Rng) -> Vec<u8> {
    let mut line = match rng.below(10) {
        0..=3 => TRICKY[rng.below(TRICKY.len())].as_bytes().to_vec(),
        4..=7 => {
            let mut p = String::new();
            if rng.chance(20) {
                p.push('!');
            }
            if rng.chance(25) {
                p.push('/');
            }
            let segments = 1 + rng.below(3);
            for i in 0..segments {
                if i > 0 {
                    p.push('/');
                }
                p.push_str(&segment(rng));
            }
            if rng.chance(25) {
                p.push('/');
            }
            p.into_bytes()
        }
        _ => {
            let mut p = Vec::new();
            if rng.chance(20) {
                p.push(b'!');
            }
            for _ in 0..1 + rng.below(6) {
                p.extend_from_slice(ALPHABET[rng.below(ALPHABET.len())]);
            }
            p
        }
    };
    if rng.chance(10) {
        line.extend_from_slice(rng.pick(&[" ", "  ", "\\ ", " \\ ", "\t"]).as_bytes());
    }
    if rng.chance(3) {
        line.push(0xff);
    }
    line
}

fn ignore_file(rng: &mut Rng) -> Vec<u8> {
    let mut text = Vec::new();
    if rng.chance(3) {
        text.extend_from_slice(b"\xEF\xBB\xBF");
    }
    let crlf = rng.chance(15);
    for _ in 0..1 + rng.below(7) {
        match rng.below(12) {
            0 => text.extend_from_slice(rng.pick(&["# comment", "#", "", "   ", "\\"]).as_bytes()),
            _ => text.extend(pattern(rng)),
        }
        text.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
    }
    if rng.chance(30) {
        text.pop();
        if crlf {
            text.pop();
        }
    }
    text
}

/// A generated tree: folders, files and ignore files, as paths relative to its root.
#[derive(Default)]
struct Tree {
    dirs: Vec<String>,
    files: Vec<String>,
    ignores: Vec<(String, Vec<u8>)>,
}

impl Tree {
    fn nested(rng: &mut Rng) -> Tree {
        let mut tree = Tree::default();
        tree.fill(rng, "", 0);
        tree
    }

    fn fill(&mut self, rng: &mut Rng, dir: &str, depth: usize) {
        let join = |name: &str| if dir.is_empty() { name.to_owned() } else { format!("{dir}/{name}") };
        let chance = if depth == 0 { 85 } else { 45 };
        if rng.chance(chance) {
            self.ignores.push((join(".gitignore"), ignore_file(rng)));
        }
        let mut names = BTreeSet::new();
        for _ in 0..1 + rng.below(5) {
            names.insert(FILES[rng.below(FILES.len())]);
        }
        let mut dirs = BTreeSet::new();
        if depth < 3 {
            for _ in 0..rng.below(if depth == 0 { 5 } else { 3 }) {
                let name = DIRS[rng.below(DIRS.len())];
                if !names.contains(name) {
                    dirs.insert(name);
                }
            }
        }
        for name in names {
            self.files.push(join(name));
        }
        for name in dirs {
            let path = join(name);
            self.dirs.push(path.clone());
            self.fill(rng, &path, depth + 1);
        }
    }

    /// A tree from a list of files (folders implied) and ignore files.
    fn of(files: &[&str], ignores: &[(&str, &str)]) -> Tree {
        let mut tree = Tree::default();
        for file in files {
            let mut parent = *file;
            while let Some((up, _)) = parent.rsplit_once('/') {
                if !tree.dirs.iter().any(|d| d == up) {
                    tree.dirs.push(up.to_owned());
                }
                parent = up;
            }
            tree.files.push((*file).to_owned());
        }
        for (path, text) in ignores {
            tree.ignores.push(((*path).to_owned(), text.as_bytes().to_vec()));
        }
        tree
    }

    /// Writes the tree into `root/prefix`.
    fn create(&self, root: &Path, prefix: &str) {
        let root = root.join(prefix);
        std::fs::create_dir_all(&root).unwrap();
        for dir in &self.dirs {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        for file in &self.files {
            std::fs::write(root.join(file), file.as_bytes()).unwrap();
        }
        for (path, text) in &self.ignores {
            std::fs::write(root.join(path), text).unwrap();
        }
    }

    fn describe(&self, prefix: &str) -> String {
        let mut out = format!("tree {prefix}/ ignore files:\n");
        for (path, text) in &self.ignores {
            let _ = writeln!(out, "  {prefix}/{path}:");
            for (i, line) in text.split(|&b| b == b'\n').enumerate() {
                let _ = writeln!(out, "    {:>2}: {}", i + 1, line.escape_ascii());
            }
        }
        let _ = writeln!(out, "  files: {:?}", self.files);
        out
    }
}

/// The deciding file and line of a path, if any rule matched it (or the folder above that excluded it).
type Found = Option<(String, usize)>;

/// What the walk with an `IgnoreStack` decided.
#[derive(Default)]
struct Walk {
    /// Files not ignored.
    kept: BTreeSet<String>,
    /// Every path (files and folders, below ignored folders too).
    decisions: BTreeMap<String, Found>,
}

fn walk(root: &Path) -> Walk {
    let mut stack = IgnoreStack::new();
    stack.load_dir(root, "").unwrap();
    let mut out = Walk::default();
    visit(root, "", &mut stack, None, &mut out);
    out
}

/// The walker contract on a real folder: `pop_to` the parent, `decide`, and only for a kept folder load
/// its ignore files and go on. Below an ignored folder everything takes the folder's decision (git does
/// not look there; check-ignore reports the folder's rule).
fn visit(root: &Path, dir: &str, stack: &mut IgnoreStack, inherited: Option<&(String, usize)>, out: &mut Walk) {
    let mut entries: Vec<(String, bool)> = std::fs::read_dir(root.join(dir))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), e.file_type().unwrap().is_dir())
        })
        .filter(|(name, _)| !(dir.is_empty() && name == ".git"))
        .collect();
    entries.sort();
    for (name, is_dir) in entries {
        let path = if dir.is_empty() { name } else { format!("{dir}/{name}") };
        stack.pop_to(dir);
        let (decision, ignored) = match inherited {
            Some(found) => (Some(found.clone()), true),
            None => match stack.decide(&path, is_dir) {
                Some(d) => (Some((d.file.file.clone(), d.rule.line)), d.ignored),
                None => (None, false),
            },
        };
        out.decisions.insert(path.clone(), decision.clone());
        if is_dir {
            if ignored {
                visit(root, &path, stack, decision.as_ref(), out);
            } else {
                stack.load_dir(root, &path).unwrap();
                visit(root, &path, stack, None, out);
            }
        } else if !ignored {
            out.kept.insert(path);
        }
    }
}

/// The same walk over paths that need not exist: `paths` holds files and folders (a folder before its
/// contents once sorted by components), `ignores` the `.gitignore` text of folders.
fn virtual_walk(ignores: &BTreeMap<String, Vec<u8>>, paths: &[(String, bool)]) -> BTreeMap<String, Found> {
    let mut paths = paths.to_vec();
    paths.sort_by(|a, b| a.0.split('/').cmp(b.0.split('/')));
    let mut stack = IgnoreStack::new();
    if let Some(text) = ignores.get("") {
        stack.push(IgnoreFile::parse("", ".gitignore", text));
    }
    let mut excluded: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut decisions = BTreeMap::new();
    for (path, is_dir) in paths {
        let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent);
        stack.pop_to(parent);
        let (decision, ignored) = match excluded.get(parent) {
            Some(found) => (Some(found.clone()), true),
            None => match stack.decide(&path, is_dir) {
                Some(d) => (Some((d.file.file.clone(), d.rule.line)), d.ignored),
                None => (None, false),
            },
        };
        if is_dir {
            if let (true, Some(found)) = (ignored, &decision) {
                excluded.insert(path.clone(), found.clone());
            } else if let Some(text) = ignores.get(&path) {
                stack.push(IgnoreFile::parse(&path, &format!("{path}/.gitignore"), text));
            }
        }
        decisions.insert(path, decision);
    }
    decisions
}

/// A scratch git work tree with no user, system or global configuration. On tmpfs when there is one:
/// the trees are many small files.
struct Repo {
    _temp: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let shm = Path::new("/dev/shm");
        let temp =
            if shm.is_dir() { tempfile::Builder::new().prefix("flyte-gitignore").tempdir_in(shm).ok() } else { None };
        let temp = temp.unwrap_or_else(|| tempfile::tempdir().unwrap());
        let root = temp.path().join("work");
        let home = temp.path().join("home");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let repo = Repo { _temp: temp, root, home };
        repo.git(&["init", "-q", "--template="], b"");
        repo
    }

    fn git(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let mut child = Command::new("git")
            .args(["-c", "core.excludesFile=/dev/null", "-c", "core.ignoreCase=false"])
            .args(args)
            .current_dir(&self.root)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CEILING_DIRECTORIES", self.root.parent().unwrap())
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env_remove("GIT_LITERAL_PATHSPECS")
            .env_remove("GIT_GLOB_PATHSPECS")
            .env_remove("GIT_NOGLOB_PATHSPECS")
            .env_remove("GIT_ICASE_PATHSPECS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("git runs");
        let mut input = child.stdin.take().unwrap();
        let stdin = stdin.to_vec();
        let writer = std::thread::spawn(move || input.write_all(&stdin));
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        // check-ignore exits 1 when nothing is ignored.
        assert!(
            output.status.code().is_some_and(|c| c <= 1),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// `git ls-files --others --exclude-standard`: the files git would add.
    fn others(&self) -> BTreeSet<String> {
        let listed = self.git(&["ls-files", "--others", "--exclude-standard", "-z"], b"");
        listed.split(|&b| b == 0).filter(|p| !p.is_empty()).map(utf8).collect()
    }

    /// `git check-ignore --no-index --verbose --non-matching` for each path.
    fn check_ignore<'a>(&self, paths: impl Iterator<Item = &'a String>) -> BTreeMap<String, Found> {
        let mut input = Vec::new();
        for path in paths {
            input.extend_from_slice(path.as_bytes());
            input.push(0);
        }
        let args = ["check-ignore", "--no-index", "--verbose", "--non-matching", "--stdin", "-z"];
        let output = self.git(&args, &input);
        let fields: Vec<&[u8]> = output.split(|&b| b == 0).collect();
        fields
            .chunks_exact(4)
            .map(|record| {
                let found = (!record[0].is_empty())
                    .then(|| (utf8(record[0]), utf8(record[1]).parse::<usize>().expect("a line number")));
                (utf8(record[3]), found)
            })
            .collect()
    }
}

fn git_available() -> bool {
    let found = Command::new("git").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "git is needed by the .gitignore tests (CI is set: not skipping)");
        eprintln!("git not found: skipping the comparison with git");
    }
    found
}

fn utf8(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("generated names are UTF-8")
}

/// The differences between our decisions and git's, one line each.
fn differences(
    ours_kept: Option<(&BTreeSet<String>, &BTreeSet<String>)>,
    ours: &BTreeMap<String, Found>,
    theirs: &BTreeMap<String, Found>,
) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some((kept, listed)) = ours_kept {
        for path in kept.symmetric_difference(listed) {
            let side = if kept.contains(path) { "kept by us, ignored by git" } else { "ignored by us, kept by git" };
            lines.push(format!("{path:?}: {side} (our decision: {:?})", ours.get(path)));
        }
    }
    for (path, decision) in ours {
        match theirs.get(path) {
            Some(found) if found == decision => {}
            found => lines.push(format!("{path:?}: we say {decision:?}, check-ignore says {found:?}")),
        }
    }
    lines
}

/// Builds `count` trees from `seed`, `batch` trees per repository (each in its own folder `tN`: a
/// tree's root is then a subfolder, which changes nothing for git), and compares each batch with git.
/// Returns (trees, files, paths compared, paths some rule decided).
fn compare_trees(seed: u64, count: usize, batch: usize) -> (usize, usize, usize, usize) {
    let mut rng = Rng(seed);
    let (mut files, mut paths, mut decided) = (0, 0, 0);
    let mut failures = Vec::new();
    for first in (0..count).step_by(batch) {
        let repo = Repo::new();
        let trees: Vec<Tree> = (first..count.min(first + batch)).map(|_| Tree::nested(&mut rng)).collect();
        for (i, tree) in trees.iter().enumerate() {
            tree.create(&repo.root, &format!("t{}", first + i));
            files += tree.files.len() + tree.ignores.len();
        }
        let ours = walk(&repo.root);
        paths += ours.decisions.len();
        decided += ours.decisions.values().filter(|d| d.is_some()).count();
        let theirs = repo.check_ignore(ours.decisions.keys());
        let listed = repo.others();
        let mut by_tree: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for line in differences(Some((&ours.kept, &listed)), &ours.decisions, &theirs) {
            let tree: usize = line[2..].split('/').next().and_then(|t| t.parse().ok()).unwrap_or(first);
            by_tree.entry(tree).or_default().push(line);
        }
        for (tree, lines) in by_tree {
            let described = trees.get(tree - first).map(|t| t.describe(&format!("t{tree}"))).unwrap_or_default();
            failures.push(format!("{described}  differences:\n    {}", lines.join("\n    ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} trees differ from git (seed {seed:#x}); the first ones:\n{}",
        failures.len(),
        failures.iter().take(3).cloned().collect::<Vec<_>>().join("\n")
    );
    (count, files, paths, decided)
}

#[test]
fn generated_trees_match_git() {
    if !git_available() {
        return;
    }
    let (trees, files, paths, decided) = compare_trees(0x5EED_0001, 600, 50);
    eprintln!("{trees} generated trees, {files} files, {paths} paths ({decided} matched by a rule) compared with git");
}

/// Names every zoo folder holds. Only the folders are created: check-ignore also judges paths that do
/// not exist (as files; it looks at the disk to tell a folder).
const ZOO_FILES: &[&str] = &[
    "a", "b", "ab", "x", "a]", "[]", "-", "^", "!", "\\", " ", "é", "#", "*", "?", "A", "1", "a b", "tab\t", ".x",
    "d/a", "d/b/x", "k/ab", "k/x y", "m/d/ab", "[x]", "!a", "v\u{b}", "f\u{c}", "c\r", "-0", "c-",
];

/// Many random patterns, each alone in a folder's `.gitignore`, against the same names: checks
/// pattern matching itself, with `check-ignore` on paths that need not exist.
#[test]
fn random_patterns_match_git() {
    if !git_available() {
        return;
    }
    let mut rng = Rng(0x5EED_0002);
    let repo = Repo::new();
    let mut ignores = BTreeMap::new();
    let mut paths = BTreeSet::new();
    let mut patterns = 0;
    for zoo in 0..2000 {
        let dir = format!("z{zoo}");
        let mut text = pattern(&mut rng);
        patterns += 1;
        if rng.chance(20) {
            text.push(b'\n');
            text.extend(pattern(&mut rng));
            patterns += 1;
        }
        std::fs::create_dir(repo.root.join(&dir)).unwrap();
        std::fs::write(repo.root.join(&dir).join(".gitignore"), &text).unwrap();
        ignores.insert(dir.clone(), text);
        paths.insert((dir.clone(), true));
        for name in ZOO_FILES {
            let path = format!("{dir}/{name}");
            let mut parent = path.as_str();
            while let Some((up, _)) = parent.rsplit_once('/') {
                if paths.insert((up.to_owned(), true)) && up != dir {
                    std::fs::create_dir_all(repo.root.join(up)).unwrap();
                }
                parent = up;
            }
            paths.insert((path, false));
        }
    }
    let paths: Vec<(String, bool)> = paths.into_iter().collect();
    let ours = virtual_walk(&ignores, &paths);
    let theirs = repo.check_ignore(ours.keys());
    let lines = differences(None, &ours, &theirs);
    let mut report = String::new();
    for line in lines.iter().take(40) {
        let zoo = line[1..].split('/').next().unwrap_or_default();
        let pattern = ignores.get(zoo).map(|t| t.escape_ascii().to_string()).unwrap_or_default();
        let _ = writeln!(report, "  pattern {pattern:?}: {line}");
    }
    assert!(lines.is_empty(), "{} paths differ from git:\n{report}", lines.len());
    let decided = ours.values().filter(|d| d.is_some()).count();
    eprintln!("{patterns} random patterns, {} paths ({decided} matched by a rule) compared with git", ours.len());
}

/// Trees whose expectations are written out: git-visible behaviour that is easy to get wrong.
#[test]
fn known_cases_match_git() {
    if !git_available() {
        return;
    }
    let cases = [
        // A parent folder excluded: no way back in, from any depth.
        Tree::of(&["build/keep.txt", "build/x"], &[(".gitignore", "build/\n!build/keep.txt\n")]),
        Tree::of(&["build/keep.txt"], &[(".gitignore", "build\n"), ("build/.gitignore", "!keep.txt\n")]),
        // Everything inside, not the folder: re-including works.
        Tree::of(&["build/keep.txt", "build/x"], &[(".gitignore", "build/*\n!build/keep.txt\n")]),
        Tree::of(&["build/sub/x", "build/y"], &[(".gitignore", "build/**\n!build/sub/\n")]),
        // Deeper files beat shallower ones; an ignored .gitignore is still read.
        Tree::of(&["a.log", "sub/a.log"], &[(".gitignore", "*.log\n.gitignore\n"), ("sub/.gitignore", "!*.log\n")]),
        // git's literal-prefix quirk.
        Tree::of(&["afoo", "a/x/foo", "ab/x/foo", "b/afoo"], &[(".gitignore", "a**/foo\n")]),
        // CRLF, byte order mark, trailing spaces.
        Tree::of(&["#c", "foo", "bar ", "bar"], &[(".gitignore", "\u{feff}#c\r\nfoo \r\nbar\\ \r\n")]),
    ];
    let repo = Repo::new();
    for (i, tree) in cases.iter().enumerate() {
        tree.create(&repo.root, &format!("k{i}"));
    }
    let ours = walk(&repo.root);
    let theirs = repo.check_ignore(ours.decisions.keys());
    let lines = differences(Some((&ours.kept, &repo.others())), &ours.decisions, &theirs);
    assert!(lines.is_empty(), "{}", lines.join("\n"));
}

/// git refuses to follow a `.gitignore` that is a symbolic link; so does `IgnoreFile::read`.
#[cfg(unix)]
#[test]
fn symlinked_gitignore_is_not_read() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/real"), "*.txt\n").unwrap();
    std::os::unix::fs::symlink("real", root.join("sub/.gitignore")).unwrap();
    std::fs::write(root.join("sub/a.txt"), "").unwrap();
    assert!(IgnoreFile::read(root, "sub", ".gitignore").unwrap().is_none());
    assert!(walk(root).kept.contains("sub/a.txt"));
    if git_available() {
        let repo = Repo::new();
        std::fs::create_dir(repo.root.join("sub")).unwrap();
        std::fs::write(repo.root.join("sub/real"), "*.txt\n").unwrap();
        std::os::unix::fs::symlink("real", repo.root.join("sub/.gitignore")).unwrap();
        std::fs::write(repo.root.join("sub/a.txt"), "").unwrap();
        assert!(repo.others().contains("sub/a.txt"));
    }
}

fn stack(files: &[(&str, &str)]) -> IgnoreStack {
    let mut stack = IgnoreStack::new();
    for (file, text) in files {
        let dir = file.rsplit_once('/').map_or("", |(dir, _)| dir);
        stack.push(IgnoreFile::parse(dir, file, text));
    }
    stack
}

#[test]
fn flyteignore_beats_gitignore() {
    let s = stack(&[(".gitignore", "*.txt\n"), (".flyteignore", "!keep.txt\n")]);
    assert!(s.is_ignored("a.txt", false));
    assert!(!s.is_ignored("keep.txt", false));
    assert!(!s.is_ignored("deep/er/keep.txt", false));
    // The order of pushing within a folder does not matter.
    let s = stack(&[(".flyteignore", "!keep.txt\n"), (".gitignore", "*.txt\n")]);
    assert!(!s.is_ignored("keep.txt", false));
}

#[test]
fn shallow_flyteignore_beats_deep_gitignore() {
    let s = stack(&[
        (".gitignore", "*.env\n"),
        (".flyteignore", "secret.txt\n"),
        ("a/b/.gitignore", "!secret.txt\n!*.env\n"),
    ]);
    let d = s.decide("a/b/secret.txt", false).unwrap();
    assert!(d.ignored);
    assert_eq!((d.file.file.as_str(), d.rule.line, d.file.precedence), (".flyteignore", 1, FLYTEIGNORE_PRECEDENCE));
    let d = s.decide("a/b/x.env", false).unwrap();
    assert!(!d.ignored);
    assert_eq!((d.file.file.as_str(), d.rule.line, d.file.precedence), ("a/b/.gitignore", 2, GITIGNORE_PRECEDENCE));
}

#[test]
fn deeper_flyteignore_beats_shallower_flyteignore() {
    let s = stack(&[(".gitignore", "*.csv\n"), (".flyteignore", "!*.csv\n"), ("data/.flyteignore", "big.csv\n")]);
    assert!(!s.is_ignored("data/small.csv", false));
    assert!(s.is_ignored("data/big.csv", false));
    assert!(!s.is_ignored("big.csv", false));
}

#[test]
fn flyteignore_can_reinclude_a_folder_but_not_below_an_excluded_one() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    for dir in ["build/sub", "dist"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for file in ["build/sub/a.py", "build/b.py", "dist/c.py", "d.py"] {
        std::fs::write(root.join(file), "").unwrap();
    }
    std::fs::write(root.join(".gitignore"), "build/\ndist/\n").unwrap();
    // Re-including the folder works; re-including a file of an excluded folder does not.
    std::fs::write(root.join(".flyteignore"), "!build/\n!dist/c.py\nbuild/sub/\n").unwrap();
    let ours = walk(root);
    let kept: Vec<&str> = ours.kept.iter().map(String::as_str).collect();
    assert_eq!(kept, [".flyteignore", ".gitignore", "build/b.py", "d.py"]);
    assert_eq!(ours.decisions["dist/c.py"], Some((".gitignore".to_owned(), 2)));
    assert_eq!(ours.decisions["build/sub/a.py"], Some((".flyteignore".to_owned(), 3)));
}

#[test]
fn walking_two_thousand_files_is_fast() {
    // About the bundle benchmark's size: 2,200 files with a few ignore files on the way.
    let mut stack = IgnoreStack::new();
    stack.push(IgnoreFile::parse(
        "",
        ".gitignore",
        "*.pyc\n__pycache__/\n/build/\n*.log\n!keep.log\n**/tmp/**\ndocs/_build/\n*.[oa]\n.env*\n[Dd]ata/*.csv\n",
    ));
    stack.push(IgnoreFile::parse("", ".flyteignore", "tests/\n*.ipynb\n!src/**/*.ipynb\n"));
    stack.push(IgnoreFile::parse("src", "src/.gitignore", "generated_*.py\n/local/\n"));
    let paths: Vec<String> = (0..2200).map(|i| format!("src/pkg{}/mod{}/file_{i}.py", i % 7, i % 13)).collect();
    let start = std::time::Instant::now();
    let ignored = paths.iter().filter(|p| stack.is_ignored(p, false)).count();
    let elapsed = start.elapsed();
    eprintln!("deciding 2,200 paths took {elapsed:?}");
    assert_eq!(ignored, 0);
    // Generous for debug builds on slow machines; release takes well under a millisecond.
    assert!(elapsed.as_millis() < 500, "deciding 2,200 paths took {elapsed:?}");
}
