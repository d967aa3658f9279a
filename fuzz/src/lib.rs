//! The one body of both fuzz targets: text → parse → resolve every declared domain → plan.
//!
//! Paths in a manifest are read relative to the current folder, and resolving and planning walk
//! root_dir. So the targets first move into a small sandbox folder with the files manifests usually
//! name (some resolve fully and reach the plan), and do not resolve manifests with a string holding
//! ".." (root_dir = "../.." would walk the host's disk: slow, and no more parsing or validation code).

use std::path::PathBuf;
use std::sync::Once;

use flyte::manifest::tree::{Node, Value};
use flyte::manifest::{self, Source};

/// Files that the seed manifests (tests/broken, examples) name, so that valid ones resolve.
const SANDBOX_FILES: &[(&str, &str)] = &[
    ("main.py", "print('hello')\n"),
    ("app.py", "app = None\n"),
    ("requirements.txt", "fastapi\n"),
    ("pyproject.toml", "[project]\nname = \"demo\"\nversion = \"0.1.0\"\n"),
    ("uv.lock", "version = 1\n"),
    ("Dockerfile", "FROM python:3.12-slim\n"),
    ("docker/Dockerfile", "FROM python:3.12-slim\n"),
    ("docker/requirements.txt", "fastapi\n"),
    ("src/pkg/__init__.py", ""),
    ("src/main.py", "print('hello')\n"),
    ("files/Dockerfile", "FROM python:3.12-slim\n"),
    ("files/requirements.txt", "fastapi\n"),
    ("files/app/main.py", "print('hello')\n"),
    ("files/sub/README.md", "sub\n"),
];

fn enter_sandbox() {
    static SANDBOX: Once = Once::new();
    SANDBOX.call_once(|| {
        // One fixed folder: parallel jobs write the same files, and runs do not pile folders up.
        let dir: PathBuf = std::env::temp_dir().join("flyte-fuzz-sandbox");
        for (path, text) in SANDBOX_FILES {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).expect("the sandbox folder is created");
            std::fs::write(&path, text).expect("a sandbox file is written");
        }
        std::env::set_current_dir(&dir).expect("the sandbox is entered");
    });
}

fn mentions_parent(node: &Node) -> bool {
    match &node.value {
        Value::Str(text) => text.contains(".."),
        Value::List(items) => items.iter().any(mentions_parent),
        Value::Table(table) => table.entries.iter().any(|e| e.key.contains("..") || mentions_parent(&e.value)),
        _ => false,
    }
}

/// The JSON report turns every span into a line and column: that must not panic either.
fn report_json(source: Option<&Source>, diagnostics: &[manifest::diagnostic::Diagnostic]) {
    let shown: Vec<_> = diagnostics.iter().collect();
    let _ = flyte::output::diagnostics_json(source, &shown);
}

/// Whenever the fast TOML reader takes a text, the toml crate takes it too and gives the same tree,
/// spans included (the unit test checks this on the repository's files; the fuzzer on everything).
/// Read in parts, as large manifests are, it gives the same tree or declines (the parts are read one
/// after another here: the same cuts and joins, without starting threads for every input).
fn fast_toml_agrees(text: &str) {
    use flyte::manifest::{nesting, toml_fast, toml_front};
    let fast = toml_fast::parse(text);
    for parts in [2, 3] {
        if let Some(in_parts) = toml_fast::parse_in_parts(text, parts, 1) {
            assert_eq!(Some(&in_parts), fast.as_ref(), "the TOML read in {parts} parts differs from one pass");
        }
    }
    let Some(fast) = fast else { return };
    assert!(nesting::check(text, nesting::Syntax::Toml).is_ok(), "the fast reader took text nested too deeply");
    let slow = toml_front::parse_with_crate(text, &mut Vec::new());
    assert_eq!(Some(fast), slow, "the fast TOML reader and the toml crate disagree");
}

/// The fast KDL reader takes nothing the nesting guard refuses (the guard runs only when it declines),
/// and read in parts, as large manifests are, it gives the same document or declines. (Its agreement
/// with the kdl crate is held by a unit test on the repository's files and mutations of them.)
fn fast_kdl_agrees(text: &str) {
    use flyte::manifest::{kdl_fast, nesting};
    let fast = kdl_fast::parse(text);
    for parts in [2, 3] {
        if let Some(in_parts) = kdl_fast::parse_in_parts(text, parts, 1) {
            assert_eq!(Some(&in_parts), fast.as_ref(), "the KDL read in {parts} parts differs from one pass");
        }
    }
    if fast.is_some() {
        assert!(nesting::check(text, nesting::Syntax::Kdl).is_ok(), "the fast reader took text nested too deeply");
    }
}

/// Loads `data` as the manifest `name` ("fuzz.toml" or "fuzz.kdl") the way the CLI does.
pub fn load(name: &str, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    enter_sandbox();
    if name.ends_with(".toml") {
        fast_toml_agrees(text);
    } else {
        fast_kdl_agrees(text);
    }
    let parsed = match manifest::parse(Source::new(name, text)) {
        Ok(parsed) => parsed,
        Err(report) => {
            report_json(report.source.as_ref(), &report.diagnostics);
            return;
        }
    };
    if mentions_parent(&parsed.tree) {
        return;
    }
    // Reading these must not panic either.
    let _ = parsed.default_domain();
    for domain in parsed.declared_domains() {
        let resolved = parsed.resolve(&domain);
        report_json(Some(&parsed.source), &resolved.diagnostics);
        if let Some(manifest) = &resolved.manifest {
            let _ = flyte::plan::build(manifest, flyte::plan::Explain::Yes);
        }
    }
}
