//! The broken-manifest corpus, and generated inputs too odd or too large to keep as files.
//!
//! Each file in `tests/broken` declares on its first line what validating it must report:
//!
//! ```text
//! # expect: unknown-field line=7 help~="did you mean `depends_on`?"
//! // expect: dependency-cycle line=14 message~="a → b → c → a"
//! ```
//!
//! that is, a diagnostic code and its 1-based line, then any number of `message~="…"` and `help~="…"`
//! texts that the same diagnostic's message or help must contain (`\"` and `\\` escape). Validation must
//! exit 1 with valid JSON on stdout, and neither the JSON nor the text run may panic or die of a signal.
//! Files the fixtures point at (root_dir = "files/…") live in `tests/broken/files`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{Run, flyte, repo_root};

#[derive(Debug)]
struct Expectation {
    code: String,
    line: u64,
    message: Vec<String>,
    help: Vec<String>,
}

/// Reads `# expect: CODE line=N [message~="…"] [help~="…"]` (or `// expect: …`).
fn parse_expectation(first_line: &str) -> Result<Expectation, String> {
    let rest = first_line
        .strip_prefix("# expect:")
        .or_else(|| first_line.strip_prefix("// expect:"))
        .ok_or_else(|| format!("the first line must start with `# expect:` or `// expect:`, found {first_line:?}"))?;
    let mut chars = rest.trim().chars().peekable();
    let mut words: Vec<(String, Option<String>)> = Vec::new();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        if first == '"' {
            return Err(format!("a quoted text needs a key before it: {first_line:?}"));
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '"') {
            word.push(c);
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some('\\') => text.push(chars.next().ok_or("a `\\` ends the line")?),
                    Some('"') => break,
                    Some(c) => text.push(c),
                    None => return Err(format!("unclosed quote in {first_line:?}")),
                }
            }
            words.push((word, Some(text)));
        } else {
            words.push((word, None));
        }
    }
    let mut words = words.into_iter();
    let code = match words.next() {
        Some((code, None)) if !code.contains('=') => code,
        _ => return Err(format!("the expectation must start with a diagnostic code: {first_line:?}")),
    };
    let mut expectation = Expectation { code, line: 0, message: Vec::new(), help: Vec::new() };
    for (word, text) in words {
        match (word.as_str(), text) {
            (line, None) if line.starts_with("line=") => {
                expectation.line =
                    line["line=".len()..].parse().map_err(|_| format!("`{line}` is not line=<number>"))?;
            }
            ("message~=", Some(text)) => expectation.message.push(text),
            ("help~=", Some(text)) => expectation.help.push(text),
            (other, _) => return Err(format!("unknown expectation `{other}` in {first_line:?}")),
        }
    }
    if expectation.line == 0 {
        return Err(format!("the expectation needs line=<1-based line>: {first_line:?}"));
    }
    Ok(expectation)
}

fn broken_dir() -> PathBuf {
    repo_root().join("tests/broken")
}

/// Every fixture: the files directly in tests/broken, sorted.
fn fixtures() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(broken_dir())
        .expect("tests/broken is readable")
        .map(|entry| entry.expect("a readable entry").path())
        .filter(|path| path.is_file())
        .collect();
    found.sort();
    found
}

/// What every run must satisfy, whatever the input: no panic, no signal.
fn check_survived(what: &str, run: &Run) -> Vec<String> {
    let mut problems = Vec::new();
    if run.code == -1 {
        problems.push(format!("{what}: killed by a signal (stack overflow?)\nstderr: {}", run.stderr));
    }
    if run.stderr.contains("panicked") {
        problems.push(format!("{what}: panicked\nstderr: {}", run.stderr));
    }
    problems
}

/// Parses the JSON report and checks its shape; the diagnostics on success.
fn json_diagnostics(what: &str, run: &Run) -> Result<Vec<Value>, String> {
    let report: Value =
        serde_json::from_str(&run.stdout).map_err(|e| format!("{what}: stdout is not JSON ({e}):\n{}", run.stdout))?;
    let diagnostics =
        report["diagnostics"].as_array().ok_or_else(|| format!("{what}: no `diagnostics` list in {report}"))?;
    let errors = report["errors"].as_u64().ok_or_else(|| format!("{what}: no `errors` count in {report}"))?;
    let counted = diagnostics.iter().filter(|d| d["severity"] == "error").count() as u64;
    if errors == 0 || errors != counted {
        return Err(format!("{what}: `errors` is {errors} but {counted} error diagnostics are listed: {report}"));
    }
    for diagnostic in diagnostics {
        for key in ["severity", "code", "message", "file", "line", "column", "label", "help", "related"] {
            if diagnostic.get(key).is_none() {
                return Err(format!("{what}: a diagnostic lacks `{key}`: {diagnostic}"));
            }
        }
    }
    Ok(diagnostics.clone())
}

/// The line a diagnostic reports. `not-utf8` has no source text to point into, so its JSON line is
/// null and the line is the one its message names ("… at line N, …").
fn line_of(diagnostic: &Value) -> Option<u64> {
    diagnostic["line"].as_u64().or_else(|| {
        let message = diagnostic["message"].as_str()?;
        let after = &message[message.find(" at line ")? + " at line ".len()..];
        after.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    })
}

fn summary(diagnostics: &[Value]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("  {} line {} | {} | help: {}", d["code"], d["line"], d["message"], d["help"]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks one fixture; every problem found, each naming the fixture.
fn check_fixture(path: &Path) -> Vec<String> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let bytes = std::fs::read(path).expect("a readable fixture");
    let first_line =
        String::from_utf8_lossy(bytes.split(|&b| b == b'\n').next().unwrap_or_default()).trim_end().to_string();
    let expectation = match parse_expectation(&first_line) {
        Ok(expectation) => expectation,
        Err(error) => return vec![format!("{name}: {error}")],
    };
    let dir = broken_dir();
    let mut problems = Vec::new();

    let run = flyte(&dir, &["-o", "json", "-f", &name, "validate"]);
    problems.extend(check_survived(&format!("{name} (-o json)"), &run));
    if run.code != 1 {
        problems.push(format!(
            "{name}: exit code {} instead of 1\nstdout: {}\nstderr: {}",
            run.code, run.stdout, run.stderr
        ));
    }
    match json_diagnostics(&name, &run) {
        Err(error) => problems.push(error),
        Ok(diagnostics) => {
            let matching = diagnostics.iter().find(|d| {
                let text = |key: &str| d[key].as_str().unwrap_or_default().to_string();
                d["code"] == expectation.code.as_str()
                    && line_of(d) == Some(expectation.line)
                    && expectation.message.iter().all(|m| text("message").contains(m.as_str()))
                    && expectation.help.iter().all(|h| text("help").contains(h.as_str()))
            });
            if matching.is_none() {
                problems.push(format!("{name}: expected {expectation:?}, got:\n{}", summary(&diagnostics)));
            }
        }
    }

    let text = flyte(&dir, &["-f", &name, "validate"]);
    problems.extend(check_survived(&format!("{name} (text)"), &text));
    if text.code != 1 {
        problems.push(format!("{name} (text): exit code {} instead of 1\nstderr: {}", text.code, text.stderr));
    }
    if !text.stderr.contains(&format!("flyte::{}", expectation.code)) {
        problems.push(format!(
            "{name} (text): the report does not name flyte::{}\nstderr: {}",
            expectation.code, text.stderr
        ));
    }
    problems
}

#[test]
fn every_broken_manifest_reports_its_declared_diagnostic() {
    let fixtures = fixtures();
    let count = |ext: &str| fixtures.iter().filter(|p| p.extension().is_some_and(|e| e == ext)).count();
    assert!(fixtures.len() >= 45, "only {} fixtures in tests/broken", fixtures.len());
    assert!(count("kdl") >= 10, "only {} KDL fixtures in tests/broken", count("kdl"));
    let problems: Vec<String> = fixtures.iter().flat_map(|path| check_fixture(path)).collect();
    assert!(
        problems.is_empty(),
        "{} problem(s) in {} fixtures:\n\n{}",
        problems.len(),
        fixtures.len(),
        problems.join("\n\n")
    );
}

#[test]
fn the_expectation_line_is_read_as_documented() {
    let e =
        parse_expectation(r#"# expect: unknown-field line=7 help~="did you mean `a`?" message~="say \"hi\"""#).unwrap();
    assert_eq!((e.code.as_str(), e.line), ("unknown-field", 7));
    assert_eq!(e.help, ["did you mean `a`?"]);
    assert_eq!(e.message, [r#"say "hi""#]);
    assert!(parse_expectation("// expect: kdl-syntax line=3").is_ok());
    assert!(parse_expectation("# expect: kdl-syntax").is_err());
    assert!(parse_expectation("# expects: x line=1").is_err());
    assert!(parse_expectation(r#"# expect: x line=1 help~="open"#).is_err());
}

// Generated cases: written to a temporary folder at run time.

/// Writes `bytes` as `file_name` in a fresh folder and validates it in both output modes; the JSON
/// diagnostics (after checking exit code 1, no panic, no signal).
fn validate_generated(file_name: &str, bytes: &[u8]) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join(file_name), bytes).expect("the generated manifest is written");
    let what = format!("generated {file_name}");
    let run = flyte(dir.path(), &["-o", "json", "-f", file_name, "validate"]);
    let mut problems = check_survived(&what, &run);
    let text = flyte(dir.path(), &["-f", file_name, "validate"]);
    problems.extend(check_survived(&format!("{what} (text)"), &text));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(run.code, 1, "{what}: exit code\nstdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert_eq!(text.code, 1, "{what} (text): exit code\nstderr: {}", text.stderr);
    json_diagnostics(&what, &run).unwrap_or_else(|error| panic!("{error}"))
}

/// Asserts that one of `diagnostics` has `code` (and `line`, when given).
fn assert_reports(what: &str, diagnostics: &[Value], code: &str, line: Option<u64>) {
    let found = diagnostics.iter().any(|d| d["code"] == code && line.is_none_or(|l| line_of(d) == Some(l)));
    assert!(found, "{what}: expected {code} at line {line:?}, got:\n{}", summary(diagnostics));
}

#[test]
fn generated_empty_file_is_refused() {
    for name in ["flyte.toml", "flyte.kdl"] {
        let diagnostics = validate_generated(name, b"");
        assert_reports(&format!("empty {name}"), &diagnostics, "empty", None);
    }
}

#[test]
fn generated_whitespace_only_file_is_refused() {
    for name in ["flyte.toml", "flyte.kdl"] {
        let diagnostics = validate_generated(name, b"  \n\t\n\r\n   \n");
        assert_reports(&format!("whitespace-only {name}"), &diagnostics, "empty", None);
    }
}

#[test]
fn generated_invalid_utf8_is_refused_with_its_line() {
    let mut bytes = b"[project]\nname = \"shop\"\ndescription = \"".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    bytes.extend_from_slice(b"\"\n");
    let diagnostics = validate_generated("flyte.toml", &bytes);
    assert_reports("invalid UTF-8", &diagnostics, "not-utf8", Some(3));
    let diagnostics = validate_generated("flyte.kdl", &[b"project {\n    name \"", &[0x80u8][..], b"\"\n}\n"].concat());
    assert_reports("invalid UTF-8 in KDL", &diagnostics, "not-utf8", Some(2));
}

#[test]
fn generated_ten_megabyte_file_is_refused() {
    let mut text = b"[project]\nname = \"shop\"\n".to_vec();
    while text.len() < 10 * 1024 * 1024 {
        text.extend_from_slice(b"# padding padding padding padding padding padding padding padding padding\n");
    }
    let diagnostics = validate_generated("flyte.toml", &text);
    assert_reports("10 MB file", &diagnostics, "too-large", None);
}

const DEEP: usize = 10_000;

#[test]
fn generated_deep_toml_arrays_are_refused() {
    let text = format!("[project]\nname = \"shop\"\nx = {}{}\n", "[".repeat(DEEP), "]".repeat(DEEP));
    let diagnostics = validate_generated("flyte.toml", text.as_bytes());
    assert_reports("10,000 nested arrays", &diagnostics, "too-deep", Some(3));
}

#[test]
fn generated_deep_toml_inline_tables_are_refused() {
    let text = format!("[project]\nname = \"shop\"\nx = {}1{}\n", "{ a = ".repeat(DEEP), " }".repeat(DEEP));
    let diagnostics = validate_generated("flyte.toml", text.as_bytes());
    assert_reports("10,000 nested inline tables", &diagnostics, "too-deep", Some(3));
}

#[test]
fn generated_deep_toml_dotted_key_is_refused() {
    let key = vec!["k"; DEEP].join(".");
    let text = format!("[project]\nname = \"shop\"\n\n{key} = 1\n");
    let diagnostics = validate_generated("flyte.toml", text.as_bytes());
    assert_reports("a 10,000-segment dotted key", &diagnostics, "too-deep", Some(4));
    let text = format!("[project]\nname = \"shop\"\n\n[{key}]\nx = 1\n");
    let diagnostics = validate_generated("flyte.toml", text.as_bytes());
    assert_reports("a 10,000-segment dotted table header", &diagnostics, "too-deep", Some(4));
}

#[test]
fn generated_deep_kdl_children_are_refused() {
    let text = format!("project {{\n    name \"shop\"\n}}\n{}{}", "node {\n".repeat(DEEP), "}\n".repeat(DEEP));
    let diagnostics = validate_generated("flyte.kdl", text.as_bytes());
    let max = flyte::manifest::nesting::MAX_DEPTH as u64;
    // Lines 1-3 hold the project; level N opens on line 3 + N.
    assert_reports("10,000 nested KDL children", &diagnostics, "too-deep", Some(3 + max + 1));
}

/// A valid KDL manifest whose deepest block is `depth` levels down: an app input's default value,
/// the one field that takes any nested value.
fn kdl_nested(depth: usize) -> String {
    // environment { input { value { … } } }: three levels before the nested ones.
    let inner = depth - 3;
    format!(
        "project {{\n    name \"shop\"\n}}\nimage \"base\"\nenvironment \"web\" {{\n    kind \"app\"\n    image \"base\"\n    command \"uvicorn\" \"main:app\"\n    input \"deep\" {{\n        value {{\n{}        leaf 1\n{}        }}\n    }}\n}}\n",
        "k {\n".repeat(inner),
        "}\n".repeat(inner)
    )
}

#[test]
fn generated_kdl_just_under_the_nesting_limit_is_valid() {
    let max = flyte::manifest::nesting::MAX_DEPTH;
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("flyte.kdl"), kdl_nested(max)).unwrap();
    let run = flyte(dir.path(), &["-o", "json", "-f", "flyte.kdl", "validate"]);
    let problems = check_survived("KDL nested MAX_DEPTH deep", &run);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        run.code, 0,
        "KDL nested exactly MAX_DEPTH ({max}) deep must validate\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
}

#[test]
fn generated_kdl_just_over_the_nesting_limit_is_refused() {
    let max = flyte::manifest::nesting::MAX_DEPTH;
    let diagnostics = validate_generated("flyte.kdl", kdl_nested(max + 1).as_bytes());
    // Levels 1-3 open on lines 5, 9 and 10; level N > 3 on line N + 7.
    assert_reports("KDL nested MAX_DEPTH + 1 deep", &diagnostics, "too-deep", Some(max as u64 + 1 + 7));
}
