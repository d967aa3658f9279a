use std::path::Path;

use super::pattern::{Glob, clean};
use super::{ContextEntry, DockerIgnore, DockerIgnoreError, EntryKind, context_entries};

/// Asserts, for each (path, excluded) pair, what `rules` decide.
fn check(rules: &str, cases: &[(&str, bool)]) {
    let ignore = DockerIgnore::parse(rules).unwrap_or_else(|error| panic!("{rules:?} parses: {error}"));
    for (path, excluded) in cases {
        assert_eq!(ignore.excludes(path), *excluded, "rules {rules:?}, path {path:?}");
    }
}

fn refused(rules: &str) -> &'static str {
    match DockerIgnore::parse(rules) {
        Err(DockerIgnoreError::Syntax { reason, .. }) => reason,
        other => panic!("{rules:?} should be refused, got {other:?}"),
    }
}

#[test]
fn clean_follows_go() {
    for (path, cleaned) in [
        ("", "."),
        (".", "."),
        ("./", "."),
        ("a/", "a"),
        ("./a/./b/", "a/b"),
        ("a//b", "a/b"),
        ("a/../b", "b"),
        ("a/b/../../..", ".."),
        ("../a", "../a"),
        ("/", "/"),
        ("/..", "/"),
        ("/../a/", "/a"),
        ("//a", "/a"),
    ] {
        assert_eq!(clean(path), cleaned, "clean({path:?})");
    }
}

#[test]
fn exceptions_and_the_last_match() {
    check("*.md\n!keep.md", &[("a.md", true), ("keep.md", false), ("sub/a.md", false), ("a.txt", false)]);
    check(
        "*.md\n!README*.md\nREADME-secret.md",
        &[("README.md", false), ("README-secret.md", true), ("CHANGES.md", true)],
    );
    check("*.md\nREADME-secret.md\n!README*.md", &[("README.md", false), ("README-secret.md", false)]);
    // An exception only brings back; a later plain line leaves out again.
    check("!a\n", &[("a", false)]);
    check("a\n!a\na", &[("a", true), ("a/b", true)]);
}

#[test]
fn double_star() {
    let pyc = &[("a.pyc", true), ("x/y/a.pyc", true), ("a.py", false), ("x.pyc/inner.txt", true), ("pyc", false)];
    check("**/*.pyc", pyc);
    check(
        "**/foo",
        &[("foo", true), ("a/foo", true), ("a/b/foo", true), ("a/foo/x", true), ("afoo", false), ("foox", false)],
    );
    check("a/**/b", &[("a/b", true), ("a/x/b", true), ("a/x/y/b", true), ("a/xb", false), ("b", false)]);
    // A trailing `**` needs something after the folder: the folder itself stays (empty).
    check("a/**", &[("a", false), ("a/x", true), ("a/x/y", true), ("ab", false)]);
    check("**", &[("a", true), ("a/b/c", true)]);
    check("foo**", &[("foo", true), ("foobar/x", true), ("afoo", false)]);
    // Docker tests a leading `**` with nothing else as a suffix, so it matches inside a name.
    check("**.pyc", &[("a.pyc", true), ("x/ab.pyc", true), ("a.py", false)]);
    check("**foo", &[("foo", true), ("xfoo", true), ("a/xfoo", true)]);
    // With another wildcard it is `(anything/)?`, which does not.
    check("**foo*", &[("foo1", true), ("a/foo1", true), ("xfoo1", false)]);
    check("a**b", &[("ab", true), ("a/x/b", true), ("ax/b", true), ("axb", false)]);
    check("**/*/c", &[("b/c", true), ("a/b/c", true), ("c", false)]);
}

#[test]
fn folders_and_parents() {
    for rules in ["dir", "dir/", "/dir", "./dir", "dir/.", "x/../dir"] {
        check(
            rules,
            &[("dir", true), ("dir/a", true), ("dir/a/b", true), ("dirx", false), ("a/dir", false), ("di", false)],
        );
    }
    check("/abs", &[("abs", true), ("abs/x", true), ("a/abs", false)]);
    check("a/b", &[("a", false), ("a/b", true), ("a/b/c", true), ("a/bc", false)]);
    check("*/temp*", &[("somedir/temporary.txt", true), ("somedir/temp", true), ("temp", false), ("a/b/temp", false)]);
    check("*/*/temp*", &[("somedir/subdir/temporary.txt", true), ("somedir/temp", false)]);
    // A parent that matches makes every path below it match, whatever the pattern's depth.
    check("*/b", &[("a/b/c/d", true), ("a/c", false)]);
    // The context itself is never left out.
    check("*\n.\n/", &[(".", false), ("", false), ("./", false), ("x", true)]);
    // Paths are cleaned before matching.
    check("a/b", &[("./a/b", true), ("/a/b", true), ("a//b/", true), ("a/x/../b", true)]);
}

#[test]
fn parent_left_out_child_brought_back() {
    check(
        "build\n!build/keep.txt",
        &[("build", true), ("build/other", true), ("build/keep.txt", false), ("build/keep.txt/x", false)],
    );
    check("build\n!build/**/*.txt", &[("build/a/b.txt", false), ("build/b.txt", false), ("build/a.py", true)]);
    // Everything out, a few things in: the usual allow-list.
    check("*\n!src\n!Dockerfile", &[("src", false), ("src/a/b.py", false), ("Dockerfile", false), ("docs/x", true)]);
    check(
        "node_modules\n!node_modules/keep\nnode_modules/keep/drop",
        &[("node_modules/keep/x", false), ("node_modules/keep/drop", true)],
    );
}

#[test]
fn single_character_classes_and_escapes() {
    check("temp?", &[("tempa", true), ("temp", false), ("tempab", false), ("temp/a", false)]);
    check("file[a-c].txt", &[("filea.txt", true), ("filec.txt", true), ("filed.txt", false)]);
    check("file[^a-c].txt", &[("filea.txt", false), ("filed.txt", true)]);
    // `!` is not negation in a class: it is a member.
    check("x[!a]", &[("x!", true), ("xa", true), ("xb", false)]);
    check("[ab][0-9]", &[("a1", true), ("b9", true), ("c1", false), ("a", false)]);
    check("x[\\]]", &[("x]", true), ("x\\", false)]);
    check("x[\\-a]", &[("x-", true), ("xa", true), ("xb", false)]);
    // Docker's classes can match `/`.
    check("a[^x]b", &[("a/b", true), ("a-b", true), ("axb", false)]);
    check("\\*.txt", &[("*.txt", true), ("a.txt", false)]);
    check("foo\\?", &[("foo?", true), ("fooa", false)]);
    check("\\[x]", &[("[x]", true), ("x", false)]);
    check("a]b", &[("a]b", true)]);
    // Characters special to regular expressions are literal.
    check("a.b+(c)|{d}$", &[("a.b+(c)|{d}$", true), ("axb+(c)|{d}$", false)]);
    // `^`: literal without wildcards, an anchor (so never matching mid-pattern) with them.
    check("a^b", &[("a^b", true)]);
    check("a^b*", &[("a^b", false), ("a^bc", false)]);
    check("\\^b*", &[("^bc", true)]);
}

#[test]
fn lines_comments_and_whitespace() {
    check("# comment\n\n   \n  foo  \n", &[("foo", true), ("# comment", false)]);
    // A comment starts in column 1 only; escaped `#` is a pattern too.
    check(" #x\n\\#y", &[("#x", true), ("#y", true)]);
    check("! foo\nfoo\n!  foo", &[("foo", false)]);
    check("\u{feff}foo\r\nbar\r\n", &[("foo", true), ("bar", true)]);
    // A BOM counts only at the very start.
    check("a\n\u{feff}b", &[("b", false), ("\u{feff}b", true)]);
}

#[test]
fn refuses_what_docker_refuses() {
    assert!(refused("!").contains("pattern after"));
    assert!(refused("! ").contains("pattern after"));
    assert!(refused("!/").contains("pattern after"));
    assert!(refused("!//.").contains("pattern after"));
    assert!(refused("a\n[abc").contains("not closed"));
    assert!(refused("[a-").contains("not closed"));
    assert!(refused("[z-a]").contains("backwards"));
    assert!(refused("[]a]").contains("\\ before"));
    assert!(refused("[-a]").contains("\\ before"));
    assert!(refused("foo\\").contains("cannot end"));
    match DockerIgnore::parse("ok\n\n[x") {
        Err(error) => assert_eq!(error.to_string(), ".dockerignore line 3: a [ class is not closed: [x"),
        Ok(_) => panic!("refused"),
    }
}

#[test]
fn decide_names_the_line() {
    let ignore = DockerIgnore::parse("# top\n*.log\n!keep.log\n").unwrap();
    let rule = ignore.decide("a.log").unwrap();
    assert_eq!((rule.line, rule.exception, rule.pattern.as_str()), (2, false, "*.log"));
    let rule = ignore.decide("keep.log").unwrap();
    assert_eq!((rule.line, rule.exception), (3, true));
    assert!(ignore.decide("a.txt").is_none());
    assert_eq!(ignore.rules().len(), 2);
}

#[test]
fn prefix_only_exceptions() {
    assert!(Glob::is_prefix_only("build/keep"));
    assert!(Glob::is_prefix_only("build/**"));
    assert!(Glob::is_prefix_only("build/*"));
    assert!(!Glob::is_prefix_only("**/keep"));
    assert!(!Glob::is_prefix_only("build/*.txt"));
    assert!(!Glob::is_prefix_only("a\\b"));
}

fn tree(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in files {
        let path = dir.path().join(file);
        if let Some(folder) = file.strip_suffix('/') {
            std::fs::create_dir_all(dir.path().join(folder)).unwrap();
        } else {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, file).unwrap();
        }
    }
    dir
}

fn listed(context: &Path, rules: &str) -> Vec<String> {
    let ignore = DockerIgnore::parse(rules).unwrap();
    let entries = context_entries(context, &ignore).unwrap();
    entries
        .into_iter()
        .map(|ContextEntry { path, kind }| if kind == EntryKind::Dir { format!("{path}/") } else { path })
        .collect()
}

#[test]
fn walk_skips_excluded_folders_and_keeps_brought_back_entries() {
    let context = tree(&[
        "Dockerfile",
        ".dockerignore",
        "app.py",
        "a-b",
        "a/x.py",
        "a/x.pyc",
        "build/keep.txt",
        "build/other.bin",
        "build/sub/keep.txt",
        "empty/",
        "node_modules/pkg/index.js",
    ]);
    let root = context.path();
    assert_eq!(
        listed(root, "node_modules\n**/*.pyc\nbuild\n!build/keep.txt\n"),
        [".dockerignore", "Dockerfile", "a/", "a/x.py", "a-b", "app.py", "build/", "build/keep.txt", "empty/"]
    );
    // With a wildcard exception every excluded folder is walked.
    assert_eq!(
        listed(root, "build\nnode_modules\n!**/keep.txt"),
        [
            ".dockerignore",
            "Dockerfile",
            "a/",
            "a/x.py",
            "a/x.pyc",
            "a-b",
            "app.py",
            "build/",
            "build/keep.txt",
            "build/sub/",
            "build/sub/keep.txt",
            "empty/"
        ]
    );
    // An excluded folder in which nothing comes back is not listed.
    assert_eq!(listed(root, "*\n!a/x.py\n!nothing/here"), ["a/", "a/x.py"]);
    // The Dockerfile and .dockerignore follow the rules like any file.
    assert_eq!(listed(root, "*\n!app.py\n"), ["app.py"]);
    // A trailing `**` leaves the folder, emptied.
    assert_eq!(listed(root, "*\n!build\nbuild/**"), ["build/"]);
    assert_eq!(listed(root, "").len(), 16);
}

#[test]
fn walk_lists_links_without_following_them() {
    let context = tree(&["target/file"]);
    std::os::unix::fs::symlink("target", context.path().join("link")).unwrap();
    let ignore = DockerIgnore::parse("target").unwrap();
    let entries = context_entries(context.path(), &ignore).unwrap();
    assert_eq!(entries, [ContextEntry { path: "link".into(), kind: EntryKind::Symlink }]);
}

#[test]
fn read_without_a_file_has_no_rules() {
    let context = tree(&["a"]);
    assert!(DockerIgnore::read(context.path()).unwrap().rules().is_empty());
    std::fs::write(context.path().join(".dockerignore"), "a\n").unwrap();
    assert!(DockerIgnore::read(context.path()).unwrap().excludes("a"));
}
