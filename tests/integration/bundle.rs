//! Code bundles through the real binary: what goes in, what is left out and why, byte-identical
//! archives from any folder, digests that follow content and not time, the cache, and refusals.

use std::path::Path;

use crate::common::{Run, flyte_with};

/// A small project tree with a manifest, ignore files at two levels, a link and files to leave out.
fn project(dir: &Path) {
    let write = |path: &str, text: &str| {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    };
    write(
        "flyte.toml",
        "[project]\nname = \"b\"\n\n[images.base]\npython = \"3.12\"\n\n[environments.web]\nkind = \"app\"\nimage = \"base\"\ncommand = [\"python\", \"-m\", \"app\"]\ncode = { exclude = [\"docs\"] }\n",
    );
    write("app/__init__.py", "");
    write("app/main.py", "print('hello')\n");
    write("app/__pycache__/main.cpython-311.pyc", "compiled");
    write("app/data/cache.bin", "data");
    write("app/.gitignore", "data/\n*.tmp\n");
    write("app/scratch.tmp", "scratch");
    write("docs/index.md", "# docs\n");
    write(".gitignore", "*.log\n!keep.log\n");
    write("run.log", "log");
    write("keep.log", "keep");
    write(".flyteignore", "secrets.txt\n");
    write("secrets.txt", "not for the bundle");
    std::os::unix::fs::symlink("app/main.py", dir.join("main.py")).unwrap();
}

fn bundle(dir: &Path, cache: &Path, args: &[&str]) -> Run {
    let mut all = vec!["bundle"];
    all.extend_from_slice(args);
    flyte_with(dir, &all, &[("FLYTE_CACHE_DIR", cache)])
}

fn digest(run: &Run) -> String {
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let line = run.stdout.lines().next().unwrap();
    line.split("digest ").nth(1).unwrap().split(' ').next().unwrap().to_string()
}

#[test]
fn lists_what_goes_in_and_explains_what_is_left_out_with_the_rule() {
    let (tree, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    project(tree.path());
    let run = bundle(tree.path(), cache.path(), &["--list", "--explain"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let listed: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("  06") || l.starts_with("  link"))
        .map(|l| l.rsplit("  ").next().unwrap())
        .collect();
    assert_eq!(
        listed,
        [".flyteignore", ".gitignore", "app/.gitignore", "app/__init__.py", "app/main.py", "keep.log", "main.py"]
    );
    for (path, why) in [
        ("app/__pycache__/", "standard ignores:4: __pycache__/"),
        ("app/data/", "app/.gitignore:1: data/"),
        ("app/scratch.tmp", "app/.gitignore:2: *.tmp"),
        ("run.log", ".gitignore:1: *.log"),
        ("secrets.txt", ".flyteignore:1: secrets.txt"),
        ("docs/", "manifest exclude \"docs\""),
        ("flyte.toml", "standard ignores:19: /flyte.toml"),
    ] {
        let line = format!("  left out {path}  ({why})");
        assert!(run.stdout.lines().any(|l| l == line), "missing {line:?} in\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("app/data/cache.bin"), "a left-out folder is reported once, not file by file");
}

#[test]
fn the_archive_is_byte_identical_from_two_checkout_folders_and_unpacks_with_tar() {
    let (a, b, cache_a, cache_b) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let deep = b.path().join("some/deeper/checkout");
    std::fs::create_dir_all(&deep).unwrap();
    project(a.path());
    project(&deep);
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(deep.join("app/main.py"), "print('hello')\n").unwrap();
    let out_a = a.path().join("a.tar.gz");
    let out_b = b.path().join("b.tar.gz");
    assert_eq!(bundle(a.path(), cache_a.path(), &["web", "--out", out_a.to_str().unwrap()]).code, 0);
    assert_eq!(bundle(&deep, cache_b.path(), &["web", "--out", out_b.to_str().unwrap()]).code, 0);
    let (bytes_a, bytes_b) = (std::fs::read(&out_a).unwrap(), std::fs::read(&out_b).unwrap());
    assert!(bytes_a == bytes_b, "the same files in two folders gave different archives");
    let unpacked = tempfile::tempdir().unwrap();
    let tar =
        std::process::Command::new("tar").arg("-xzf").arg(&out_a).arg("-C").arg(unpacked.path()).status().unwrap();
    assert!(tar.success());
    assert_eq!(std::fs::read_to_string(unpacked.path().join("app/main.py")).unwrap(), "print('hello')\n");
    assert_eq!(std::fs::read_link(unpacked.path().join("main.py")).unwrap(), Path::new("app/main.py"));
    assert!(!unpacked.path().join("secrets.txt").exists());
}

#[test]
fn the_digest_follows_content_mode_and_path_but_not_time() {
    use std::os::unix::fs::PermissionsExt;
    let (tree, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    project(tree.path());
    let first = digest(&bundle(tree.path(), cache.path(), &[]));
    let again = bundle(tree.path(), cache.path(), &[]);
    assert_eq!(digest(&again), first);
    assert!(again.stdout.contains("unchanged, reused"), "{}", again.stdout);
    // A new modification time, the same bytes: the same bundle.
    std::fs::write(tree.path().join("app/main.py"), "print('hello')\n").unwrap();
    assert_eq!(digest(&bundle(tree.path(), cache.path(), &[])), first);
    // Content.
    std::fs::write(tree.path().join("app/main.py"), "print('hello!')\n").unwrap();
    let content = digest(&bundle(tree.path(), cache.path(), &[]));
    assert_ne!(content, first);
    // The executable bit.
    let main = tree.path().join("app/main.py");
    std::fs::set_permissions(&main, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mode = digest(&bundle(tree.path(), cache.path(), &[]));
    assert_ne!(mode, content);
    // Other permission bits do not count.
    std::fs::set_permissions(&main, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(digest(&bundle(tree.path(), cache.path(), &[])), mode);
    // The path.
    std::fs::rename(&main, tree.path().join("app/entry.py")).unwrap();
    std::fs::remove_file(tree.path().join("main.py")).unwrap();
    std::os::unix::fs::symlink("app/entry.py", tree.path().join("main.py")).unwrap();
    assert_ne!(digest(&bundle(tree.path(), cache.path(), &[])), mode);
}

#[test]
fn a_link_that_escapes_the_tree_is_refused() {
    let (tree, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    project(tree.path());
    std::os::unix::fs::symlink("../../outside.py", tree.path().join("app/escape.py")).unwrap();
    let run = bundle(tree.path(), cache.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("app/escape.py is a link to ../../outside.py, outside"), "{}", run.stderr);
    assert!(run.stderr.contains("help:"), "{}", run.stderr);
    // Left out by an ignore file, it is never looked at.
    std::fs::write(tree.path().join(".flyteignore"), "secrets.txt\napp/escape.py\n").unwrap();
    assert_eq!(bundle(tree.path(), cache.path(), &[]).code, 0);
}

#[test]
fn sockets_are_skipped_and_large_files_warned_about() {
    let (tree, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    project(tree.path());
    let _listener = std::os::unix::net::UnixListener::bind(tree.path().join("app/control.sock")).unwrap();
    std::fs::write(tree.path().join("app/weights.bin"), vec![7u8; 11 * 1024 * 1024]).unwrap();
    let run = bundle(tree.path(), cache.path(), &["--list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("app/control.sock is a socket; skipped"), "{}", run.stderr);
    assert!(run.stderr.contains("app/weights.bin is 11 MiB"), "{}", run.stderr);
    assert!(!run.stdout.contains("control.sock"));
}

#[test]
fn refusals_name_the_problem() {
    let (tree, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    project(tree.path());
    let run = bundle(tree.path(), cache.path(), &["wbe"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("no environment is named \"wbe\"") && run.stderr.contains("did you mean `web`?"),
        "{}",
        run.stderr
    );
    let manifest = std::fs::read_to_string(tree.path().join("flyte.toml")).unwrap();
    std::fs::write(
        tree.path().join("flyte.toml"),
        manifest.replace("code = { exclude = [\"docs\"] }", "version = \"v1\"\ncode = { copy_style = \"full\" }"),
    )
    .unwrap();
    let run = bundle(tree.path(), cache.path(), &["web"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("bakes its code into its image"), "{}", run.stderr);
}

#[test]
fn cache_clean_empties_the_cache_and_the_next_run_rebuilds() {
    let (tree, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    project(tree.path());
    let cache_dir = cache.path().join("flyte");
    assert_eq!(bundle(tree.path(), &cache_dir, &[]).code, 0);
    assert!(cache_dir.join("bundles").exists());
    let run = flyte_with(tree.path(), &["cache", "clean"], &[("FLYTE_CACHE_DIR", &cache_dir)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!cache_dir.exists());
    let rebuilt = bundle(tree.path(), &cache_dir, &[]);
    assert!(rebuilt.stdout.contains("built in"), "{}", rebuilt.stdout);
}

#[test]
fn the_plan_takes_the_bundle_digest_and_ignored_files_change_no_version() {
    let (tree, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    project(tree.path());
    let plan = |tree: &Path| {
        let run = flyte_with(tree, &["-o", "json", "plan"], &[("FLYTE_CACHE_DIR", cache.path())]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()
    };
    let before = plan(tree.path());
    let step = before["steps"].as_array().unwrap().iter().find(|s| s["id"] == "bundle:web").unwrap().clone();
    let bundled = bundle(tree.path(), cache.path(), &[]);
    let json = flyte_with(tree.path(), &["-o", "json", "bundle"], &[("FLYTE_CACHE_DIR", cache.path())]);
    let reports: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(step["inputs"][0]["digest"], reports["bundles"][0]["bundle"]["digest"], "plan and bundle disagree");
    assert!(reports["bundles"][0]["bundle"]["digest"].as_str().unwrap().starts_with(&digest(&bundled)));
    // Files that .gitignore, .flyteignore or the standard ignores leave out move nothing.
    std::fs::write(tree.path().join("run.log"), "another log line").unwrap();
    std::fs::write(tree.path().join("app/data/more.bin"), "more data").unwrap();
    std::fs::write(tree.path().join("secrets.txt"), "rotated").unwrap();
    std::fs::write(tree.path().join("app/__pycache__/x.pyc"), "bytecode").unwrap();
    let after = plan(tree.path());
    let versions = |plan: &serde_json::Value| {
        plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["id"].to_string(), s["version"].to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(versions(&before), versions(&after));
    // A shipped file moves the bundle and the deployment, not the image.
    std::fs::write(tree.path().join("app/main.py"), "print('changed')\n").unwrap();
    let changed = plan(tree.path());
    let moved: Vec<String> =
        versions(&before).into_iter().zip(versions(&changed)).filter(|(a, b)| a != b).map(|(a, _)| a.0).collect();
    assert_eq!(moved, ["\"bundle:web\"", "\"deploy:web\""]);
}
