//! The code bundle benchmark: `flyte bundle` cold and warm, beside `git ls-files | tar | pigz -1`.
//!
//! Run: `cargo bench --bench bundle` (needs git and pigz: `apt-get install -y pigz`).
//! The tree: about 2,200 Python files, 51 MB, plus a 200 MiB `data/` folder that `.gitignore` leaves
//! out, generated deterministically (`FLYTE_BENCH_TREE=DIR` keeps it in DIR between runs).
//! Cold = no cache of ours (an empty FLYTE_CACHE_DIR); warm = the same tree again, unchanged. The page
//! cache is warm for every command: each is run once before it is measured. Peak memory is the child's
//! maximum resident set (from wait4), for the pipeline the largest of its processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PYTHON_FILES: usize = 2_200;
const PYTHON_BYTES: usize = 51_000_000;
const DATA_BYTES: usize = 200 * 1024 * 1024;
const RUNS: usize = 5;

fn main() {
    let kept = std::env::var_os("FLYTE_BENCH_TREE").map(PathBuf::from);
    let temp = tempfile::tempdir().expect("a temporary folder");
    let tree = kept.clone().unwrap_or_else(|| temp.path().join("tree"));
    if !tree.join("flyte.toml").exists() {
        let started = Instant::now();
        generate(&tree);
        eprintln!("generated {} in {:.1} s", tree.display(), started.elapsed().as_secs_f64());
    }
    git_commit(&tree);
    let flyte = env!("CARGO_BIN_EXE_flyte");
    let cache = temp.path().join("cache");
    let bundle = |cache: &Path| {
        let mut command = Command::new(flyte);
        command.args(["-q", "bundle", "web"]).current_dir(&tree).env("FLYTE_CACHE_DIR", cache);
        command
    };
    let pipeline = || {
        let mut command = Command::new("bash");
        command
            .args(["-o", "pipefail", "-c", "git ls-files -z | tar --null -T - -cf - | pigz -1 > /dev/null"])
            .current_dir(&tree);
        command
    };
    if !Command::new("pigz").arg("--version").output().is_ok_and(|o| o.status.success()) {
        eprintln!("pigz is missing: apt-get install -y pigz");
        std::process::exit(1);
    }
    // Warm the page cache for both.
    measure(&mut pipeline());
    measure(&mut bundle(&temp.path().join("warm-up")));

    let cold: Vec<(Duration, u64)> = (0..RUNS)
        .map(|run| {
            let dir = cache.join(format!("cold-{run}"));
            measure(&mut bundle(&dir))
        })
        .collect();
    let warm_dir = cache.join("warm");
    measure(&mut bundle(&warm_dir));
    let warm: Vec<(Duration, u64)> = (0..RUNS).map(|_| measure(&mut bundle(&warm_dir))).collect();
    let piped: Vec<(Duration, u64)> = (0..RUNS).map(|_| measure(&mut pipeline())).collect();

    let (files, bytes) = tree_size(&tree);
    println!(
        "tree: {files} files kept by .gitignore, {:.1} MB; plus a {} MiB data/ folder it leaves out",
        bytes as f64 / 1e6,
        DATA_BYTES >> 20
    );
    println!("{:<40} {:>12} {:>12} {:>14}", "command", "median", "min", "peak memory");
    report("flyte bundle, cold (no cache)", &cold);
    report("flyte bundle, warm (unchanged)", &warm);
    report("git ls-files | tar | pigz -1", &piped);
    let ratio = median(&cold).as_secs_f64() / median(&piped).as_secs_f64();
    println!(
        "cold / pipeline = {ratio:.2} (target: at most 1.00); warm target: under 30 ms; peak target: under 100 MB"
    );
}

/// Runs a command to its end; its wall time and peak resident memory in bytes.
#[allow(clippy::zombie_processes, reason = "the child is reaped by wait4, which also reports its peak memory")]
fn measure(command: &mut Command) -> (Duration, u64) {
    let started = Instant::now();
    let child = command.stdout(std::process::Stdio::null()).spawn().expect("the command starts");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in for the child we spawned and have not waited for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    assert_eq!(waited, pid, "wait4 failed");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{command:?} failed with status {status}");
    (elapsed, usage.ru_maxrss as u64 * 1024)
}

fn median(samples: &[(Duration, u64)]) -> Duration {
    let mut times: Vec<Duration> = samples.iter().map(|s| s.0).collect();
    times.sort();
    times[times.len() / 2]
}

fn report(name: &str, samples: &[(Duration, u64)]) {
    let min = samples.iter().map(|s| s.0).min().unwrap_or_default();
    let peak = samples.iter().map(|s| s.1).max().unwrap_or_default();
    println!(
        "{name:<40} {:>9.1} ms {:>9.1} ms {:>11.1} MB",
        median(samples).as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3,
        peak as f64 / 1e6
    );
}

/// A deterministic pseudo-random generator (xorshift), so every run builds the same tree.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: [&str; 24] = [
    "data", "model", "value", "result", "config", "items", "batch", "index", "score", "path", "name", "count", "train",
    "predict", "loader", "record", "window", "frame", "token", "weight", "epoch", "metric", "cache", "client",
];

/// Python-like source of about `bytes` bytes: functions, loops, strings, comments.
fn python_source(rng: &mut Rng, bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 256);
    out.push_str("\"\"\"Generated module for the bundle benchmark.\"\"\"\nimport json\nimport os\n\n");
    while out.len() < bytes {
        let (a, b, c) = (WORDS[rng.below(24)], WORDS[rng.below(24)], WORDS[rng.below(24)]);
        let n = rng.below(1000);
        out.push_str(&format!(
            "\ndef {a}_{b}_{n}({c}, {b}=None):\n    # Combine the {c} with the {b} and return the {a}.\n    {a} = []\n    for {b}_{n} in range({n}):\n        {a}.append(({c}, {b}_{n}, \"{a}-{b}-{n}\"))\n    return json.dumps({{\"{a}\": {a}, \"{c}\": {n}}})\n"
        ));
    }
    out
}

fn generate(tree: &Path) {
    let mut rng = Rng(0x5eed_f1ce);
    let average = PYTHON_BYTES / PYTHON_FILES;
    for index in 0..PYTHON_FILES {
        let package = format!("src/pkg{}/sub{}", index % 40, index % 7);
        let dir = tree.join(&package);
        std::fs::create_dir_all(&dir).unwrap();
        let size = average / 2 + rng.below(average);
        std::fs::write(dir.join(format!("module_{index}.py")), python_source(&mut rng, size)).unwrap();
    }
    let data = tree.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut block = vec![0u8; 1 << 20];
    for part in 0..DATA_BYTES >> 20 {
        for chunk in block.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
        }
        std::fs::write(data.join(format!("part-{part:04}.bin")), &block).unwrap();
    }
    std::fs::write(tree.join(".gitignore"), "data/\n").unwrap();
    std::fs::write(
        tree.join("flyte.toml"),
        "[project]\nname = \"bench\"\n\n[images.base]\npython = \"3.12\"\n\n[environments.web]\nkind = \"app\"\nimage = \"base\"\ncommand = [\"python\", \"-m\", \"pkg0\"]\n",
    )
    .unwrap();
}

/// The pipeline lists files with `git ls-files`, so the tree is a repository with everything committed.
fn git_commit(tree: &Path) {
    if tree.join(".git").exists() {
        return;
    }
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(args)
            .current_dir(tree)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "bench")
            .env("GIT_AUTHOR_EMAIL", "bench@localhost")
            .env("GIT_COMMITTER_NAME", "bench")
            .env("GIT_COMMITTER_EMAIL", "bench@localhost")
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?} failed");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "tree"]);
}

fn tree_size(tree: &Path) -> (usize, u64) {
    let output = Command::new("git").args(["ls-files", "-z"]).current_dir(tree).output().expect("git runs");
    let files: Vec<&[u8]> = output.stdout.split(|&b| b == 0).filter(|p| !p.is_empty()).collect();
    let bytes = files
        .iter()
        .filter_map(|p| std::fs::metadata(tree.join(String::from_utf8_lossy(p).as_ref())).ok())
        .map(|m| m.len())
        .sum();
    (files.len(), bytes)
}
