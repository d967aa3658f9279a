//! The command line as users meet it: help, exit codes, the reference manifest, the schema, init,
//! config origins, output formats.

use std::collections::BTreeSet;

use flyte::manifest::decode::{Shape, StructInfo};
use flyte::manifest::raw::RawManifest;
use flyte::manifest::tree::{Node, Value};

use crate::common::{flyte, repo_root, snapshot};

#[test]
fn help_matches_its_snapshot() {
    let root = repo_root();
    for (args, name) in [(vec!["--help"], "help"), (vec!["plan", "--help"], "help-plan")] {
        let run = flyte(&root, &args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        snapshot(&root.join(format!("tests/snapshots/{name}.txt")), &run.stdout);
    }
}

#[test]
fn usage_errors_exit_64() {
    let run = flyte(&repo_root(), &["plan", "--no-such-flag"]);
    assert_eq!(run.code, 64, "{}", run.stderr);
    assert!(run.stderr.contains("--no-such-flag"));
    assert_eq!(flyte(&repo_root(), &[]).code, 64);
}

#[test]
fn schema_file_is_current() {
    let run = flyte(&repo_root(), &["schema"]);
    assert_eq!(run.code, 0);
    snapshot(&repo_root().join("schema/flyte.schema.json"), &run.stdout);
}

#[test]
fn reference_manifest_validates_and_plans_every_domain() {
    let root = repo_root();
    let run = flyte(&root, &["-f", "flyte.toml.example", "validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "the reference manifest warns: {}", run.stderr);
    for domain in ["development", "staging", "production"] {
        let run = flyte(&root, &["-f", "flyte.toml.example", "plan", "--domain", domain]);
        assert_eq!(run.code, 0, "{domain}: {}", run.stderr);
        assert!(run.stdout.contains(&format!("domain {domain}")));
    }
}

/// Every field the schema knows is shown in the reference manifest, somewhere.
#[test]
fn reference_manifest_documents_every_field() {
    fn fields(info: &StructInfo, out: &mut BTreeSet<&'static str>, seen: &mut BTreeSet<&'static str>) {
        if !seen.insert(info.name) {
            return;
        }
        for field in info.fields {
            out.insert(field.name);
            shape_fields((field.shape)(), out, seen);
        }
    }
    fn shape_fields(shape: Shape, out: &mut BTreeSet<&'static str>, seen: &mut BTreeSet<&'static str>) {
        match shape {
            Shape::Struct(info) => fields(info, out, seen),
            Shape::List(item) | Shape::Map(item) | Shape::BoolOr(item) | Shape::Patch(item) => {
                shape_fields(item(), out, seen)
            }
            _ => {}
        }
    }
    fn keys(node: &Node, out: &mut BTreeSet<String>) {
        match &node.value {
            Value::Table(table) => {
                for entry in table.entries.iter() {
                    out.insert(entry.key.to_string());
                    keys(&entry.value, out);
                }
            }
            Value::List(items) => items.iter().for_each(|i| keys(i, out)),
            _ => {}
        }
    }
    let mut wanted = BTreeSet::new();
    fields(&RawManifest::INFO, &mut wanted, &mut BTreeSet::new());
    let source = flyte::manifest::read(&repo_root().join("flyte.toml.example")).unwrap();
    let parsed = flyte::manifest::parse(source).unwrap();
    let mut present = BTreeSet::new();
    keys(&parsed.tree, &mut present);
    let missing: Vec<&str> = wanted.iter().copied().filter(|f| !present.contains(*f)).collect();
    assert!(missing.is_empty(), "flyte.toml.example does not show: {missing:?}");
}

#[test]
fn missing_manifest_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = flyte(dir.path(), &["validate"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no flyte.toml or flyte.kdl"), "{}", run.stderr);
    assert!(run.stderr.contains("flyte init"), "{}", run.stderr);
    let run = flyte(dir.path(), &["-f", "nope.toml", "plan"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("cannot read nope.toml"), "{}", run.stderr);
}

#[test]
fn init_writes_a_valid_manifest_in_either_format_and_keeps_an_existing_one() {
    for kdl in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("My_Service");
        std::fs::create_dir(&project).unwrap();
        let args: &[&str] = if kdl { &["init", "--kdl"] } else { &["init"] };
        let run = flyte(&project, args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let file = if kdl { "flyte.kdl" } else { "flyte.toml" };
        let text = std::fs::read_to_string(project.join(file)).unwrap();
        assert!(text.contains("my-service"), "the folder name becomes a DNS label: {text}");
        let run = flyte(&project, &["validate"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let run = flyte(&project, &["plan", "--domain", "production"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let run = flyte(&project, args);
        assert_eq!(run.code, 1, "init must not overwrite");
        assert!(run.stderr.contains("already exists") && run.stderr.contains("--force"), "{}", run.stderr);
        assert_eq!(std::fs::read_to_string(project.join(file)).unwrap(), text);
    }
}

#[test]
fn both_formats_in_one_folder_use_toml_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(flyte(dir.path(), &["init"]).code, 0);
    assert_eq!(flyte(dir.path(), &["init", "--kdl"]).code, 0);
    let run = flyte(dir.path(), &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("using") && run.stderr.contains("flyte.toml"), "{}", run.stderr);
    assert!(run.stdout.contains("flyte.toml is valid"), "{}", run.stdout);
    let quiet = flyte(dir.path(), &["--quiet", "validate"]);
    assert_eq!(quiet.code, 0);
    assert!(
        quiet.stderr.is_empty() && quiet.stdout.is_empty(),
        "--quiet prints nothing on success: {}{}",
        quiet.stdout,
        quiet.stderr
    );
}

#[test]
fn the_manifest_is_found_from_a_subfolder() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(flyte(dir.path(), &["init"]).code, 0);
    let sub = dir.path().join("a/b");
    std::fs::create_dir_all(&sub).unwrap();
    let run = flyte(&sub, &["plan"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn config_says_where_each_value_came_from() {
    let root = repo_root();
    let run = flyte(&root, &["-f", "flyte.toml.example", "config", "--domain", "production"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let line = |path: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{path} = ")))
            .unwrap_or_else(|| panic!("no {path} in:\n{}", run.stdout))
            .to_string()
    };
    assert!(line("environments.api.scaling.max_replicas").contains("(overlay production)"));
    assert!(line("environments.api.scaling.max_replicas").contains("= 8"));
    assert!(line("environments.api.scaling.metric").contains("flyte.toml.example:"));
    assert!(!line("environments.api.scaling.metric").contains("overlay"));
    assert!(line("environments.api.env.LOG_LEVEL").contains("\"warning\""));
    assert!(line("environments.api.env.FLYTE_DOMAIN").contains("set by flyte"));
    assert!(line("environments.dashboard.requires_auth").contains("default"));
    let json = flyte(&root, &["-f", "flyte.toml.example", "-o", "json", "config", "--domain", "production"]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("config -o json is JSON");
    assert_eq!(value["domain"], "production");
}

#[test]
fn diagnostics_are_json_with_lines_when_asked_and_plain_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("flyte.toml"),
        "[project]\nname = \"x\"\n\n[environments.a]\nkind = \"app\"\nimage = \"nope\"\ncommand = [\"run\"]\n",
    )
    .unwrap();
    let run = flyte(dir.path(), &["-o", "json", "validate"]);
    assert_eq!(run.code, 1);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON diagnostics");
    assert_eq!(value["errors"], 1);
    assert_eq!(value["diagnostics"][0]["code"], "unknown-reference");
    assert_eq!(value["diagnostics"][0]["line"], 6);
    let text = flyte(dir.path(), &["validate"]);
    assert_eq!(text.code, 1);
    assert!(!text.stderr.contains('\u{1b}'), "NO_COLOR output has no escape codes");
    assert!(text.stderr.contains("flyte.toml:6"), "{}", text.stderr);
}

#[test]
fn an_unknown_domain_is_refused_with_the_declared_ones() {
    let run = flyte(&repo_root(), &["-f", "flyte.toml.example", "plan", "--domain", "prod"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no domain \"prod\""), "{}", run.stderr);
    assert!(run.stderr.contains("production"), "{}", run.stderr);
}

#[test]
fn plan_json_has_a_schema_version_levels_and_full_digests() {
    let run = flyte(&repo_root(), &["-f", "flyte.toml.example", "-o", "json", "plan", "--domain", "production"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(plan["schema_version"], 1);
    let steps = plan["steps"].as_array().unwrap();
    let position = |id: &str| steps.iter().position(|s| s["id"] == id).unwrap_or_else(|| panic!("no step {id}"));
    assert!(position("deploy:trainer") < position("deploy:api"));
    assert!(position("deploy:api") < position("deploy:dashboard"));
    for step in steps {
        assert_eq!(step["digest"].as_str().unwrap().len(), 64);
        assert!(step["digest"].as_str().unwrap().starts_with(step["version"].as_str().unwrap()));
    }
    let levels = plan["levels"].as_array().unwrap();
    assert_eq!(levels.iter().map(|l| l.as_array().unwrap().len()).sum::<usize>(), steps.len());
}
