//! The example projects under `examples/`: each folder is a small real project whose `flyte.toml` and
//! `flyte.kdl` describe the same deployment.
//!
//! Examples are found by listing `examples/`, so a new folder is covered without touching this file.
//! Every example must validate cleanly in both formats; its text plan for each declared domain is kept
//! as `examples/<case>/plan.<domain>.txt` (FLYTE_UPDATE_SNAPSHOTS=1 rewrites them); the KDL manifest
//! must give exactly the plan of the TOML one; and versions must depend on content only: not on the
//! checkout folder, and not on files a step does not ship.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{flyte, repo_root, snapshot};

const MANIFESTS: [&str; 2] = ["flyte.toml", "flyte.kdl"];

/// Every folder of `examples/`, sorted by name.
fn examples() -> Vec<PathBuf> {
    let root = repo_root().join("examples");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .map(|entry| entry.expect("a readable examples folder").path())
        .filter(|path| path.is_dir())
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no examples under {}", root.display());
    found
}

fn name(example: &Path) -> String {
    example.file_name().unwrap().to_string_lossy().into_owned()
}

/// Runs `flyte -f MANIFEST ARGS` in the example's folder; it must succeed without a word on stderr.
fn run_ok(dir: &Path, manifest: &str, args: &[&str]) -> String {
    let mut all = vec!["-f", manifest];
    all.extend_from_slice(args);
    let run = flyte(dir, &all);
    assert!(
        run.code == 0 && run.stderr.is_empty(),
        "`flyte {}` in {} exited {} (want 0, and no warnings)\n--- stdout\n{}\n--- stderr\n{}",
        all.join(" "),
        dir.display(),
        run.code,
        run.stdout,
        run.stderr
    );
    run.stdout
}

/// The domains the example's manifest declares, as flyte resolves them.
fn domains(dir: &Path) -> Vec<String> {
    let config: Value = serde_json::from_str(&run_ok(dir, "flyte.toml", &["config", "-o", "json"]))
        .expect("config -o json prints JSON");
    let settings = config["settings"].as_array().expect("config lists its settings");
    let declared = settings.iter().find(|s| s["path"] == "project.domains").expect("project.domains is resolved");
    let domains: Vec<String> = declared["value"]
        .as_array()
        .expect("domains are a list")
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert!(!domains.is_empty(), "{} declares no domains", dir.display());
    domains
}

fn json_plan(dir: &Path, manifest: &str, domain: &str) -> Value {
    let text = run_ok(dir, manifest, &["plan", "--domain", domain, "-o", "json"]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("plan -o json of {} is not JSON: {e}\n{text}", dir.display()))
}

/// Step id → version, for one plan.
fn versions(plan: &Value) -> BTreeMap<String, String> {
    plan["steps"]
        .as_array()
        .expect("a plan has steps")
        .iter()
        .map(|step| (step["id"].as_str().unwrap().to_string(), step["version"].as_str().unwrap().to_string()))
        .collect()
}

/// The steps of a plan as comparable lines: id, version, digest and what each needs.
fn step_lines(plan: &Value) -> Vec<String> {
    plan["steps"]
        .as_array()
        .expect("a plan has steps")
        .iter()
        .map(|step| format!("{} {} {} needs {}", step["id"], step["version"], step["digest"], step["needs"]))
        .collect()
}

/// Local leftovers of running an example's Python (never shipped by flyte either), not worth copying.
const LOCAL_ONLY: [&str; 2] = [".venv", "__pycache__"];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            if !LOCAL_ONLY.contains(&entry.file_name().to_string_lossy().as_ref()) {
                copy_dir(&entry.path(), &target);
            }
        } else if kind.is_file() {
            // fs::copy keeps the permission bits, which enter the file digests.
            std::fs::copy(entry.path(), &target).unwrap();
        } else if kind.is_symlink() {
            copy_symlink(&entry.path(), &target);
        }
    }
}

#[cfg(unix)]
fn copy_symlink(link: &Path, target: &Path) {
    std::os::unix::fs::symlink(std::fs::read_link(link).unwrap(), target).unwrap();
}

#[cfg(not(unix))]
fn copy_symlink(link: &Path, _target: &Path) {
    panic!("{}: symbolic links in examples are copied on unix only", link.display());
}

/// A fresh copy of an example in its own temporary folder, `depth` folders down.
fn copy_example(example: &Path, depth: usize) -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().expect("a temporary folder");
    let mut dir = temp.path().to_path_buf();
    for level in 0..depth {
        dir.push(format!("checkout-{level}"));
    }
    dir.push(name(example));
    copy_dir(example, &dir);
    (temp, dir)
}

#[test]
fn every_example_has_both_manifests_and_a_readme() {
    for example in examples() {
        for file in MANIFESTS.iter().chain(["README.md"].iter()) {
            assert!(example.join(file).is_file(), "examples/{} has no {file}", name(&example));
        }
    }
}

#[test]
fn every_example_validates_cleanly_in_both_formats() {
    for example in examples() {
        for manifest in MANIFESTS {
            let out = run_ok(&example, manifest, &["validate"]);
            assert!(out.starts_with(&format!("{manifest} is valid for ")), "examples/{}: {out}", name(&example));
        }
    }
}

#[test]
fn example_plans_match_their_snapshots_and_kdl_plans_the_same() {
    for example in examples() {
        let declared = domains(&example);
        for domain in &declared {
            let toml = run_ok(&example, "flyte.toml", &["plan", "--domain", domain]);
            snapshot(&example.join(format!("plan.{domain}.txt")), &toml);
            let kdl = run_ok(&example, "flyte.kdl", &["plan", "--domain", domain]);
            assert_eq!(kdl, toml, "examples/{}: the KDL plan for {domain} differs from the TOML one", name(&example));
        }
        // A snapshot for a domain the example no longer declares would never be checked again.
        for entry in std::fs::read_dir(&example).unwrap() {
            let file = entry.unwrap().file_name().to_string_lossy().into_owned();
            if let Some(domain) = file.strip_prefix("plan.").and_then(|f| f.strip_suffix(".txt")) {
                assert!(
                    declared.iter().any(|d| d == domain),
                    "examples/{}/{file} is stale: no domain {domain}",
                    name(&example)
                );
            }
        }
    }
}

#[test]
fn toml_and_kdl_give_identical_json_plans() {
    for example in examples() {
        for domain in domains(&example) {
            let toml = json_plan(&example, "flyte.toml", &domain);
            let kdl = json_plan(&example, "flyte.kdl", &domain);
            // Steps first (ids, versions, digests, needs), for a readable failure; then everything.
            assert_eq!(
                step_lines(&kdl),
                step_lines(&toml),
                "examples/{} ({domain}): the KDL steps differ",
                name(&example)
            );
            assert_eq!(kdl, toml, "examples/{} ({domain}): the KDL plan differs", name(&example));
        }
    }
}

#[test]
fn plan_versions_do_not_depend_on_the_checkout_folder() {
    for example in examples() {
        let (_first_temp, first) = copy_example(&example, 1);
        let (_second_temp, second) = copy_example(&example, 3);
        for domain in domains(&example) {
            let here = json_plan(&example, "flyte.toml", &domain);
            let a = json_plan(&first, "flyte.toml", &domain);
            let b = json_plan(&second, "flyte.toml", &domain);
            assert_eq!(
                step_lines(&a),
                step_lines(&b),
                "examples/{} ({domain}): versions differ between two checkouts",
                name(&example)
            );
            assert_eq!(a, b, "examples/{} ({domain}): plans differ between two checkouts", name(&example));
            assert_eq!(a, here, "examples/{} ({domain}): a copy plans differently from the repository", name(&example));
            assert_eq!(
                json_plan(&second, "flyte.kdl", &domain),
                b,
                "examples/{} ({domain}): KDL in a copy",
                name(&example)
            );
        }
    }
}

/// Appends a comment to one file of a copy of `example`; returns the step ids whose version changed,
/// checking every declared domain.
fn steps_changed_by_editing(example: &str, file: &str) -> BTreeSet<String> {
    let source = repo_root().join("examples").join(example);
    let (_temp, dir) = copy_example(&source, 1);
    let domains = domains(&dir);
    let before: Vec<BTreeMap<String, String>> =
        domains.iter().map(|d| versions(&json_plan(&dir, "flyte.toml", d))).collect();
    let path = dir.join(file);
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("examples/{example}/{file}: {e}"));
    text.push_str("\n# An edit: any change to the file's bytes.\n");
    std::fs::write(&path, text).unwrap();
    let mut changed: Option<BTreeSet<String>> = None;
    for (domain, before) in domains.iter().zip(&before) {
        let after = versions(&json_plan(&dir, "flyte.toml", domain));
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>(),
            "{example} ({domain}): editing {file} changed the steps"
        );
        let here: BTreeSet<String> =
            after.iter().filter(|(id, version)| before[*id] != **version).map(|(id, _)| id.clone()).collect();
        // The same file feeds the same steps in every domain.
        if let Some(first) = &changed {
            assert_eq!(&here, first, "{example}: editing {file} changes other steps in {domain}");
        }
        changed = Some(here);
    }
    changed.unwrap_or_default()
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn editing_a_python_file_changes_only_the_steps_that_ship_it() {
    // workflow.py is in workflow-env's bundle only: my-module-env and the shared image keep their versions.
    assert_eq!(
        steps_changed_by_editing("python-path", "workflows/workflow.py"),
        ids(&["bundle:workflow-env", "deploy:workflow-env"])
    );
    // my_module.py is in both bundles; the image still does not include it.
    assert_eq!(
        steps_changed_by_editing("python-path", "src/my_module.py"),
        ids(&["bundle:my-module-env", "bundle:workflow-env", "deploy:my-module-env", "deploy:workflow-env"])
    );
    assert_eq!(
        steps_changed_by_editing("package-structure", "lib/workflows/utils.py"),
        ids(&["bundle:workflows", "deploy:workflows"])
    );
    assert_eq!(steps_changed_by_editing("simple-file", "my_example.py"), ids(&["bundle:env", "deploy:env"]));
    // Beside src/Dockerfile.workdir, but outside its build context (docker/): the image is unchanged.
    assert_eq!(
        steps_changed_by_editing("dockerfile", "src/docker_env_in_dir.py"),
        ids(&["bundle:docker-env-in-dir", "deploy:docker-env-in-dir"])
    );
    // Each app ships its own folder.
    assert_eq!(
        steps_changed_by_editing("frontend-backend", "frontend/app.py"),
        ids(&["bundle:frontend", "deploy:frontend"])
    );
    // The predictor reads training's output, so it deploys after training, and with its version.
    assert_eq!(
        steps_changed_by_editing("app-inputs", "training/train.py"),
        ids(&["bundle:training", "deploy:training", "deploy:predictor"])
    );
    // A full build bakes the code in, and the image copies deps/: both kinds of file change the image.
    assert_eq!(steps_changed_by_editing("full-build", "main.py"), ids(&["image:full+collatz", "deploy:collatz"]));
    assert_eq!(steps_changed_by_editing("full-build", "deps/dep.py"), ids(&["image:full+collatz", "deploy:collatz"]));
}

#[test]
fn editing_the_readme_or_the_lock_file_changes_what_it_should() {
    // Bundles ship only the globs of `code.include`: the README is in none of them.
    assert_eq!(steps_changed_by_editing("pyproject-package", "README.md"), BTreeSet::new());
    // The lock file is an input of the image, and so of every deployment on it.
    assert_eq!(steps_changed_by_editing("pyproject-package", "uv.lock"), ids(&["image:deps", "deploy:pipeline"]));
}

/// The `config` line of `path`, e.g. `environments.pipeline.env.LOG_LEVEL = "warning"  # flyte.toml:64 (overlay production)`.
fn config_line<'a>(config: &'a str, path: &str) -> &'a str {
    config
        .lines()
        .find(|line| line.starts_with(&format!("{path} = ")))
        .unwrap_or_else(|| panic!("config has no line for {path}:\n{config}"))
}

#[test]
fn config_of_dynamic_environments_names_the_overlay_that_set_a_value() {
    let dir = repo_root().join("examples/dynamic-environments");
    for manifest in MANIFESTS {
        let production = run_ok(&dir, manifest, &["config", "--domain", "production"]);
        let level = config_line(&production, "environments.pipeline.env.LOG_LEVEL");
        assert!(level.contains("\"warning\""), "{manifest}: {level}");
        assert!(
            level.ends_with(" (overlay production)"),
            "{manifest}: LOG_LEVEL should come from the production overlay: {level}"
        );
        let registry = config_line(&production, "project.registry");
        assert!(
            registry.contains("ghcr.io/acme/flyte-examples") && registry.ends_with(" (overlay production)"),
            "{manifest}: {registry}"
        );
        let replicas = config_line(&production, "environments.dashboard.scaling.min_replicas");
        assert!(replicas.contains("= 2 ") && replicas.ends_with(" (overlay production)"), "{manifest}: {replicas}");
        // A value the overlay does not touch comes from its base line, with no overlay mark.
        let entrypoint = config_line(&production, "environments.pipeline.tasks.estimate_mean.entrypoint");
        assert!(
            entrypoint.contains(&format!("# {manifest}:")) && !entrypoint.contains("overlay"),
            "{manifest}: {entrypoint}"
        );
        // Disabled in production: the profiler is not resolved at all.
        assert!(!production.contains("environments.profiler."), "{manifest}: the profiler is disabled in production");

        let development = run_ok(&dir, manifest, &["config", "--domain", "development"]);
        let level = config_line(&development, "environments.pipeline.env.LOG_LEVEL");
        assert!(level.contains("\"debug\"") && !level.contains("overlay"), "{manifest}: {level}");
        assert!(development.contains("environments.profiler."), "{manifest}: the profiler is enabled in development");
    }
}

/// `flyte build --dry-run` of every example: the steps each image would be solved with, kept as
/// `examples/<case>/build.production.txt`, the same from both manifests; and `--emit-llb` writes one
/// definition per image that decodes, with every op named by the digest of its bytes and the result last.
#[test]
fn build_dry_runs_match_their_snapshots_and_emit_valid_llb() {
    use flyte::image::llb::pb::{Definition, Op};
    use prost::Message;
    for example in examples() {
        let llb = tempfile::tempdir().unwrap();
        let llb_dir = llb.path().to_str().unwrap();
        let toml =
            run_ok(&example, "flyte.toml", &["build", "--dry-run", "--domain", "production", "--emit-llb", llb_dir]);
        let kdl = run_ok(&example, "flyte.kdl", &["build", "--dry-run", "--domain", "production"]);
        assert_eq!(toml, kdl, "{}: the KDL manifest gives another build", name(&example));
        snapshot(&example.join("build.production.txt"), &toml);
        let images = toml.lines().filter(|line| line.starts_with("image ")).count();
        let files: Vec<PathBuf> = std::fs::read_dir(llb.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), images, "{}: one definition per image", name(&example));
        for file in files {
            let definition = Definition::decode(&*std::fs::read(&file).unwrap()).unwrap();
            assert!(definition.def.len() >= 2, "{}", file.display());
            for bytes in &definition.def {
                let digest = flyte::image::llb::digest_of(bytes);
                assert!(definition.metadata.contains_key(&digest), "{}: op {digest} has no metadata", file.display());
            }
            let last = Op::decode(&**definition.def.last().unwrap()).unwrap();
            assert!(last.op.is_none() && last.inputs.len() == 1, "{}: the last op names the result", file.display());
            let previous = flyte::image::llb::digest_of(&definition.def[definition.def.len() - 2]);
            assert_eq!(last.inputs[0].digest, previous, "{}: inputs come before the ops using them", file.display());
        }
    }
}
