//! Load, validate and plan large generated manifests, in TOML and in KDL.
//!
//! `cargo bench --bench manifest` writes, into a temporary folder, a small Python source tree (the
//! project's root_dir) and manifests with 100, 1,000 and 10,000 environments, then times each stage of
//! the front half of the pipeline:
//!
//! - parse: read the file and parse it into the spanned tree;
//! - resolve: lay one domain's overlay over the base, decode and validate;
//! - plan: build the deployment plan (walks root_dir, hashes every step);
//! - total: the three together, as `flyte plan` runs them.
//!
//! The manifests are the same project in both formats: five shared images; a third of the
//! environments apps (command, port, scaling, health check, timeouts, inputs: a value, another app's
//! endpoint, a task's output), the rest task environments with typed tasks; each depending on zero to
//! three earlier ones (recent ones, or a few hubs for fan-in); env vars, resources, secrets, code
//! globs and python paths on some; overlays for staging and production touching a tenth of the
//! environments each (env vars, resources, replicas), production disabling one environment and the two
//! that depend on it. Production is the domain resolved.
//!
//! Each is reported as the median and the minimum over several iterations, with the time per
//! environment and the ratio to the next smaller size (10.0 is linear growth for a tenfold size).
//! The target is a total under 100 ms at 10,000 environments. Beside the total, the process's CPU time
//! over it (all threads, from getrusage) and the system's share of that: on a noisy virtual machine the
//! CPU time moves far less than the wall time, and the system time is mostly the kernel zeroing pages
//! touched for the first time, which follows how much fresh memory a stage takes.
//!
//! Environment variables: `FLYTE_BENCH_SIZES` (comma-separated, default "100,1000,10000"),
//! `FLYTE_BENCH_ITERS` (the most iterations per case, default by size), `FLYTE_BENCH_BUDGET_S` (seconds
//! after which a case stops iterating, once it has run three times; default 10), `FLYTE_BENCH_FORMATS`
//! ("toml" or "kdl"; default both), `FLYTE_BENCH_DIR` (write the generated projects there and keep
//! them, for profiling; default a temporary folder).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use flyte::manifest::{self, Format};

/// The domain the bench resolves: it has an overlay and the disabled environments.
const DOMAIN: &str = "production";
const TARGET: Duration = Duration::from_millis(100);
const STAGES: [&str; 5] = ["parse", "resolve", "plan", "total", "explain"];

fn main() {
    let sizes: Vec<usize> = std::env::var("FLYTE_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().replace('_', "").parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1_000, 10_000]);
    let max_iters: Option<usize> = std::env::var("FLYTE_BENCH_ITERS").ok().and_then(|s| s.parse().ok());
    let budget = Duration::from_secs_f64(
        std::env::var("FLYTE_BENCH_BUDGET_S").ok().and_then(|s| s.parse().ok()).unwrap_or(10.0),
    );

    let temp = tempfile::tempdir().expect("a temporary folder");
    let dir = std::env::var_os("FLYTE_BENCH_DIR").map_or_else(|| temp.path().to_path_buf(), std::path::PathBuf::from);

    println!("flyte manifest bench: load + resolve (domain \"{DOMAIN}\") + plan, release build");
    println!(
        "stages: parse = read + parse; resolve = overlay + decode + validate; plan = plan::build; total = all three"
    );
    println!(
        "explain = plan::build with every deployment's spec as JSON too, as `--explain` and `-o json` make it (not in total)"
    );
    println!(
        "median and min over the iterations; per env = median / environments; ×prev = median / median at the previous size\n"
    );

    let mut results: Vec<CaseResult> = Vec::new();
    let formats: Vec<Format> = match std::env::var("FLYTE_BENCH_FORMATS").as_deref() {
        Ok("toml") => vec![Format::Toml],
        Ok("kdl") => vec![Format::Kdl],
        _ => vec![Format::Toml, Format::Kdl],
    };
    for format in formats {
        for &size in &sizes {
            let spec = Spec::generate(size);
            let (name, text) = match format {
                Format::Toml => ("flyte.toml", spec.to_toml()),
                Format::Kdl => ("flyte.kdl", spec.to_kdl()),
            };
            let case_dir = dir.join(format!("{}-{size}", format_name(format)));
            write_source_tree(&case_dir.join("app"));
            let path = case_dir.join(name);
            std::fs::write(&path, &text).expect("write the manifest");
            let iters = max_iters.unwrap_or(match size {
                0..=500 => 50,
                501..=5_000 => 20,
                _ => 10,
            });
            results.push(run_case(format, size, &path, text.len(), &spec, iters, budget));
        }
    }
    print_table(&results);
}

// ---------------------------------------------------------------------------------------------
// Measuring

struct CaseResult {
    format: Format,
    environments: usize,
    bytes: usize,
    iterations: usize,
    /// Per stage (parse, resolve, plan, total, explain): every iteration's time.
    samples: [Vec<Duration>; 5],
    /// Every iteration's CPU time over the total (user and system, all threads) and system time.
    cpu: Vec<(Duration, Duration)>,
    steps: usize,
}

impl CaseResult {
    fn median(&self, stage: usize) -> Duration {
        let mut sorted = self.samples[stage].clone();
        sorted.sort();
        let n = sorted.len();
        if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2 }
    }

    fn min(&self, stage: usize) -> Duration {
        self.samples[stage].iter().copied().min().unwrap_or_default()
    }

    /// The median CPU time over the total and the median system time.
    fn cpu_medians(&self) -> (Duration, Duration) {
        let median = |mut times: Vec<Duration>| {
            times.sort();
            times.get(times.len() / 2).copied().unwrap_or_default()
        };
        (median(self.cpu.iter().map(|c| c.0).collect()), median(self.cpu.iter().map(|c| c.1).collect()))
    }
}

/// The process's CPU time so far, all threads: (user + system, system).
fn cpu_time() -> (Duration, Duration) {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0;
    assert!(ok, "getrusage: {}", std::io::Error::last_os_error());
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (time(usage.ru_utime) + time(usage.ru_stime), time(usage.ru_stime))
}

fn run_case(
    format: Format,
    size: usize,
    path: &Path,
    bytes: usize,
    spec: &Spec,
    max_iters: usize,
    budget: Duration,
) -> CaseResult {
    let mut samples: [Vec<Duration>; 5] = Default::default();
    let mut cpu = Vec::new();
    let mut steps = 0;
    let started = Instant::now();
    // One untimed run first: warms the file cache and checks that the manifest is valid.
    let mut warm_up = true;
    loop {
        let cpu0 = cpu_time();
        let t0 = Instant::now();
        let source = manifest::read(path).unwrap_or_else(|r| panic!("read {}: {:?}", path.display(), r.diagnostics));
        let parsed = manifest::parse(source).unwrap_or_else(|report| fail("parse", format, size, &report.diagnostics));
        let t1 = Instant::now();
        let resolved = parsed.resolve(DOMAIN);
        let t2 = Instant::now();
        let Some(manifest) = resolved.manifest.as_ref() else { fail("resolve", format, size, &resolved.diagnostics) };
        let plan = flyte::plan::build(manifest, flyte::plan::Explain::No)
            .unwrap_or_else(|e| panic!("plan for {size} environments: {e}"));
        let t3 = Instant::now();
        let cpu3 = cpu_time();
        let explained = flyte::plan::build(manifest, flyte::plan::Explain::Yes)
            .unwrap_or_else(|e| panic!("explained plan for {size} environments: {e}"));
        let t4 = Instant::now();
        assert_eq!(explained.steps.len(), plan.steps.len(), "explaining a plan changes no step");
        if warm_up {
            let errors: Vec<_> = resolved.diagnostics.iter().filter(|d| d.is_error()).collect();
            assert!(errors.is_empty(), "the generated manifest has errors");
            assert_eq!(
                manifest.environments.len(),
                size - spec.disabled.len(),
                "the disabled environments are left out in {DOMAIN}"
            );
            steps = plan.steps.len();
            warm_up = false;
        } else {
            for (stage, time) in [t1 - t0, t2 - t1, t3 - t2, t3 - t0, t4 - t3].into_iter().enumerate() {
                samples[stage].push(time);
            }
            cpu.push((cpu3.0.saturating_sub(cpu0.0), cpu3.1.saturating_sub(cpu0.1)));
        }
        // Dropped outside the timed region.
        drop((explained, plan, resolved, parsed));
        let done = samples[0].len();
        if done >= max_iters || (done >= 3 && started.elapsed() > budget) {
            break;
        }
    }
    CaseResult { format, environments: size, bytes, iterations: samples[0].len(), samples, cpu, steps }
}

fn fail(stage: &str, format: Format, size: usize, diagnostics: &[flyte::manifest::diagnostic::Diagnostic]) -> ! {
    for diagnostic in diagnostics.iter().take(20) {
        eprintln!("{:?} {}: {} at {:?}", diagnostic.severity, diagnostic.code, diagnostic.message, diagnostic.span);
    }
    panic!("{stage} failed for the generated {} manifest with {size} environments", format_name(format));
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Toml => "toml",
        Format::Kdl => "kdl",
    }
}

fn print_table(results: &[CaseResult]) {
    println!(
        "{:<6} {:>7} {:>10} {:>6} {:<8} {:>11} {:>11} {:>11} {:>7}",
        "format", "envs", "size", "iters", "stage", "median", "min", "per env", "×prev"
    );
    println!("{}", "-".repeat(86));
    for (index, result) in results.iter().enumerate() {
        let previous = index.checked_sub(1).map(|i| &results[i]).filter(|p| p.format == result.format);
        for (stage, name) in STAGES.iter().enumerate() {
            let median = result.median(stage);
            let per_env = median / result.environments as u32;
            let ratio = previous.map_or_else(
                || "-".to_string(),
                |p| format!("{:.1}", median.as_secs_f64() / p.median(stage).as_secs_f64()),
            );
            let (format, envs, size, iters) = if stage == 0 {
                (
                    format_name(result.format).to_string(),
                    result.environments.to_string(),
                    kib(result.bytes),
                    result.iterations.to_string(),
                )
            } else {
                Default::default()
            };
            println!(
                "{format:<6} {envs:>7} {size:>10} {iters:>6} {name:<8} {:>11} {:>11} {:>11} {ratio:>7}",
                ms(median),
                ms(result.min(stage)),
                us(per_env)
            );
        }
        let (cpu, system) = result.cpu_medians();
        println!("{:<6} {:>7} {:>10} {:>6} cpu      {:>11} (system {})", "", "", "", "", ms(cpu), ms(system));
        println!("{:<6} {:>7} {:>10} {:>6} plan has {} steps", "", "", "", "", result.steps);
    }
    println!();
    for result in results.iter().filter(|r| r.environments == 10_000) {
        let total = result.median(3);
        let verdict = if total < TARGET { "met" } else { "NOT met" };
        println!(
            "target ({} at 10,000 environments, total < {} ms): median {} → {verdict}",
            format_name(result.format),
            TARGET.as_millis(),
            ms(total)
        );
        let thousand = results.iter().find(|r| r.format == result.format && r.environments == 1_000);
        if let Some(thousand) = thousand {
            let ratio = total.as_secs_f64() / thousand.median(3).as_secs_f64();
            println!(
                "linearity ({}): total(10,000) / total(1,000) = {ratio:.1} (10.0 is linear)",
                format_name(result.format)
            );
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

fn kib(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

// ---------------------------------------------------------------------------------------------
// The generated project

/// A small Python project: the root_dir every environment ships code from.
fn write_source_tree(root: &Path) {
    let files: [(&str, &str); 8] = [
        (
            "main.py",
            "from fastapi import FastAPI\n\napp = FastAPI()\n\n\n@app.get(\"/health\")\ndef health():\n    return {\"ok\": True}\n",
        ),
        ("pipeline/__init__.py", ""),
        (
            "pipeline/etl.py",
            "def run(date: str, limit: int) -> str:\n    return f\"s3://bucket/{date}/{limit}.parquet\"\n",
        ),
        (
            "pipeline/train.py",
            "def train(data: str, epochs: int) -> tuple[str, float]:\n    return data + \".model\", 0.93\n",
        ),
        (
            "pipeline/test_etl.py",
            "from pipeline.etl import run\n\n\ndef test_run():\n    assert run(\"2024-01-01\", 1)\n",
        ),
        ("lib/__init__.py", ""),
        (
            "lib/util.py",
            "import logging\n\nlog = logging.getLogger(__name__)\n\n\ndef retry(f, times=3):\n    for _ in range(times - 1):\n        try:\n            return f()\n        except Exception:\n            log.exception(\"retrying\")\n    return f()\n",
        ),
        ("requirements.txt", "fastapi>=0.110\nuvicorn[standard]>=0.29\npandas>=2.2\n"),
    ];
    for (path, text) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().expect("a parent")).expect("source folder");
        std::fs::write(full, text).expect("source file");
    }
}

/// Deterministic pseudo-random numbers (xorshift64*), so every run generates the same manifests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    App,
    Task,
}

enum InputSpec {
    Value(&'static str, i64),
    Endpoint(&'static str, usize),
    TaskOutput(&'static str, usize, &'static str, &'static str),
}

struct Env {
    name: String,
    kind: Kind,
    image: &'static str,
    depends_on: Vec<usize>,
    gpu: bool,
    /// Ships only part of root_dir.
    selective_code: bool,
    python_path: bool,
    /// Baked into its own image, with a pinned version.
    full_build: bool,
    secret: bool,
    inputs: Vec<InputSpec>,
    /// Task environments: "etl" or "train" style tasks.
    trains: bool,
}

/// The manifest's content, rendered to either format.
struct Spec {
    envs: Vec<Env>,
    /// Disabled in production: one environment and everything that depends on it.
    disabled: Vec<usize>,
    staging: Vec<usize>,
    production: Vec<usize>,
}

impl Spec {
    fn generate(n: usize) -> Spec {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64);
        // The environment disabled in production, and the only two that depend on it (directly or
        // through the first): no other environment may refer to any of them.
        let root = n / 2;
        let reserved = [root, root + 1, root + 2];
        let usable = |i: usize| !reserved.contains(&i);
        let mut envs: Vec<Env> = Vec::with_capacity(n);
        for i in 0..n {
            let kind = if i % 3 == 0 { Kind::App } else { Kind::Task };
            let mut depends_on: Vec<usize> = Vec::new();
            if i == root + 1 {
                depends_on.push(root);
            } else if i == root + 2 {
                depends_on.push(root + 1);
            } else if i > 0 {
                for _ in 0..rng.below(4) {
                    // Fan-in to a few hubs, otherwise one of the recent environments.
                    let candidate = if rng.below(3) == 0 { rng.below(i.min(8)) } else { i - 1 - rng.below(i.min(64)) };
                    if usable(candidate) && !depends_on.contains(&candidate) {
                        depends_on.push(candidate);
                    }
                }
            }
            let gpu = kind == Kind::Task && i % 25 == 4;
            let image = if gpu {
                "gpu"
            } else {
                match (kind, i % 4) {
                    (Kind::App, 0 | 1) => "web",
                    (Kind::App, _) => "base",
                    (Kind::Task, 0) => "ml",
                    (Kind::Task, 1) => "worker",
                    (Kind::Task, _) => "base",
                }
            };
            let mut inputs = Vec::new();
            if kind == Kind::App && !reserved.contains(&i) {
                inputs.push(InputSpec::Value("batch_size", 16 + (i % 5) as i64 * 16));
                // An earlier app's endpoint, and an earlier task's output.
                let earlier_app = (i.saturating_sub(30)..i).rev().find(|&j| j % 3 == 0 && usable(j));
                if let Some(app) = earlier_app.filter(|_| rng.below(2) == 0) {
                    inputs.push(InputSpec::Endpoint("upstream", app));
                }
                let earlier_task = (i.saturating_sub(30)..i).rev().find(|&j| j % 3 != 0 && usable(j));
                if let Some(task) = earlier_task.filter(|_| rng.below(3) == 0) {
                    let trains = envs[task].trains;
                    let (task_name, output) = if trains { ("train", "model") } else { ("run", "result") };
                    inputs.push(InputSpec::TaskOutput("latest", task, task_name, output));
                }
            }
            envs.push(Env {
                name: format!("{}-{i:05}", if kind == Kind::App { "svc" } else { "job" }),
                kind,
                image,
                depends_on,
                gpu,
                selective_code: i % 5 == 2,
                python_path: i % 10 == 1,
                full_build: i % 97 == 50,
                secret: i % 7 == 3,
                inputs,
                trains: kind == Kind::Task && i % 2 == 0,
            });
        }
        let disabled = if n >= 3 { reserved.to_vec() } else { Vec::new() };
        let staging = (0..n).filter(|i| i % 10 == 7).collect();
        let production = (0..n).filter(|i| i % 10 == 3 && !disabled.contains(i)).collect();
        Spec { envs, disabled, staging, production }
    }

    fn to_toml(&self) -> String {
        let mut out = String::with_capacity(self.envs.len() * 900);
        out.push_str(
            r#"#:schema https://flyte.dev/schema/flyte.schema.json
# Generated for the bench: a large project of apps and task environments.

[project]
name = "bench"
domains = ["development", "staging", "production"]
root_dir = "app"
registry = "ghcr.io/acme"

[images.base]
python = "3.12"
pip = ["fastapi>=0.110", "uvicorn[standard]>=0.29", "pydantic>=2"]
env = { PYTHONUNBUFFERED = "1" }

[images.web]
base = "python:3.12-slim"
pip = ["fastapi>=0.110", "uvicorn[standard]>=0.29"]
sources = [{ src = "lib", dst = "/opt/lib" }]
workdir = "/srv"

[images.worker]
python = "3.12"
requirements = "requirements.txt"
apt = ["curl", "ca-certificates"]

[images.ml]
python = "3.11"
apt = ["libgomp1"]
pip = ["torch==2.3.0", "scikit-learn>=1.4", "pandas>=2.2"]

[images.gpu]
base = "nvidia/cuda:12.4.1-runtime-ubuntu22.04"
pip = ["torch==2.3.0"]
platforms = ["linux/amd64"]
"#,
        );
        for env in &self.envs {
            let name = &env.name;
            let w = &mut out;
            let _ = writeln!(w, "\n[environments.{name}]");
            let _ = writeln!(w, "kind = \"{}\"", if env.kind == Kind::App { "app" } else { "task" });
            let _ = writeln!(
                w,
                "description = \"Generated {} {name}\"",
                if env.kind == Kind::App { "service" } else { "batch job" }
            );
            let _ = writeln!(w, "image = \"{}\"", env.image);
            if env.full_build {
                let _ = writeln!(w, "version = \"v1.4.2\"");
            }
            if !env.depends_on.is_empty() {
                let _ = writeln!(
                    w,
                    "depends_on = [{}]",
                    self.names(&env.depends_on).iter().map(|d| format!("\"{d}\"")).collect::<Vec<_>>().join(", ")
                );
            }
            let _ = writeln!(w, "env = {{ LOG_LEVEL = \"info\", SERVICE_NAME = \"{name}\", REGION = \"eu-west-1\" }}");
            if env.gpu {
                let _ = writeln!(
                    w,
                    "resources = {{ requests = {{ cpu = \"4\", memory = \"16Gi\", gpu = 1 }}, limits = {{ cpu = \"8\", memory = \"32Gi\", gpu = 1 }}, accelerator = \"nvidia-l4\" }}"
                );
            } else {
                let _ = writeln!(
                    w,
                    "resources = {{ requests = {{ cpu = \"500m\", memory = \"1Gi\" }}, limits = {{ cpu = 2, memory = \"2Gi\" }} }}"
                );
            }
            let mut code = Vec::new();
            if env.full_build {
                code.push("copy_style = \"full\"".to_string());
            }
            if env.selective_code {
                code.push("include = [\"pipeline/**\", \"lib/**\", \"main.py\"]".to_string());
                code.push("exclude = [\"**/test_*.py\"]".to_string());
            }
            if env.python_path {
                code.push("python_path = [\"lib\"]".to_string());
            }
            if !code.is_empty() {
                let _ = writeln!(w, "code = {{ {} }}", code.join(", "));
            }
            if env.secret {
                let _ = writeln!(
                    w,
                    "secrets = [{{ name = \"db-password\", key = \"password\", as_env = \"DB_PASSWORD\" }}]"
                );
            }
            match env.kind {
                Kind::App => {
                    let _ = writeln!(
                        w,
                        "command = [\"uvicorn\", \"main:app\", \"--host\", \"0.0.0.0\", \"--port\", \"8080\"]"
                    );
                    let _ = writeln!(w, "port = 8080");
                    let _ = writeln!(
                        w,
                        "scaling = {{ min_replicas = 0, max_replicas = 2, scale_down_after = \"10m\", metric = \"concurrency\", target = 20 }}"
                    );
                    let _ = writeln!(w, "health_check = \"/health\"");
                    let _ = writeln!(w, "timeouts = {{ startup = \"2m\", request = \"30s\" }}");
                    for input in &env.inputs {
                        match input {
                            InputSpec::Value(key, value) => {
                                let _ = writeln!(
                                    w,
                                    "\n[environments.{name}.inputs.{key}]\nvalue = {value}\nas_env = \"BATCH_SIZE\""
                                );
                            }
                            InputSpec::Endpoint(key, app) => {
                                let _ = writeln!(
                                    w,
                                    "\n[environments.{name}.inputs.{key}]\nendpoint = \"{}\"\nas_env = \"UPSTREAM_URL\"",
                                    self.envs[*app].name
                                );
                            }
                            InputSpec::TaskOutput(key, task, task_name, output) => {
                                let _ = writeln!(
                                    w,
                                    "\n[environments.{name}.inputs.{key}]\ntask = \"{}.{task_name}\"\noutput = \"{output}\"",
                                    self.envs[*task].name
                                );
                            }
                        }
                    }
                }
                Kind::Task if env.trains => {
                    let _ = writeln!(
                        w,
                        "\n[environments.{name}.tasks.train]\nentrypoint = \"pipeline.train:train\"\ndescription = \"Train a model\"\ninputs = {{ data = \"file\", epochs = \"int\" }}\noutputs = {{ model = \"file\", accuracy = \"float\" }}\nretries = 2\ntimeout = \"2h\"\ncache = {{ version = \"3\" }}"
                    );
                    let _ = writeln!(
                        w,
                        "\n[environments.{name}.tasks.evaluate]\nentrypoint = \"pipeline.train:evaluate\"\ninputs = {{ model = \"file\" }}\noutputs = {{ report = \"json\" }}"
                    );
                }
                Kind::Task => {
                    let _ = writeln!(
                        w,
                        "\n[environments.{name}.tasks.run]\nentrypoint = \"pipeline.etl:run\"\ninputs = {{ date = \"str\", limit = \"int\" }}\noutputs = {{ result = \"file\" }}\nretries = 3\ntimeout = \"1h\"\ncache = true"
                    );
                }
            }
        }
        out.push_str("\n# Domain overlays\n\n[domains.staging.project]\nregistry = \"ghcr.io/acme-staging\"\n");
        for &i in &self.staging {
            let env = &self.envs[i];
            let _ = writeln!(out, "\n[domains.staging.environments.{}]", env.name);
            let _ = writeln!(out, "env = {{ LOG_LEVEL = \"debug\", FEATURE_FLAGS = \"beta\" }}");
            if env.kind == Kind::App {
                let _ = writeln!(out, "scaling = {{ max_replicas = 3 }}");
            }
        }
        for &i in &self.production {
            let env = &self.envs[i];
            let _ = writeln!(out, "\n[domains.production.environments.{}]", env.name);
            let _ = writeln!(out, "env = {{ LOG_LEVEL = \"warning\" }}");
            if !env.gpu {
                let _ = writeln!(
                    out,
                    "resources = {{ requests = {{ cpu = \"1\", memory = \"2Gi\" }}, limits = {{ cpu = \"4\", memory = \"8Gi\" }} }}"
                );
            }
            if env.kind == Kind::App {
                let _ = writeln!(out, "scaling = {{ min_replicas = 2, max_replicas = 6 }}");
            }
        }
        for &i in &self.disabled {
            let _ = writeln!(out, "\n[domains.production.environments.{}]\nenabled = false", self.envs[i].name);
        }
        out
    }

    fn to_kdl(&self) -> String {
        let mut out = String::with_capacity(self.envs.len() * 800);
        out.push_str(
            r#"// Generated for the bench: a large project of apps and task environments.

project {
    name "bench"
    domains "development" "staging" "production"
    root_dir "app"
    registry "ghcr.io/acme"
}

image "base" {
    python "3.12"
    pip "fastapi>=0.110" "uvicorn[standard]>=0.29" "pydantic>=2"
    env PYTHONUNBUFFERED="1"
}

image "web" {
    base "python:3.12-slim"
    pip "fastapi>=0.110" "uvicorn[standard]>=0.29"
    source src="lib" dst="/opt/lib"
    workdir "/srv"
}

image "worker" {
    python "3.12"
    requirements "requirements.txt"
    apt "curl" "ca-certificates"
}

image "ml" {
    python "3.11"
    apt "libgomp1"
    pip "torch==2.3.0" "scikit-learn>=1.4" "pandas>=2.2"
}

image "gpu" {
    base "nvidia/cuda:12.4.1-runtime-ubuntu22.04"
    pip "torch==2.3.0"
    platforms "linux/amd64"
}
"#,
        );
        for env in &self.envs {
            let name = &env.name;
            let w = &mut out;
            let _ = writeln!(w, "\nenvironment \"{name}\" {{");
            let _ = writeln!(w, "    kind \"{}\"", if env.kind == Kind::App { "app" } else { "task" });
            let _ = writeln!(
                w,
                "    description \"Generated {} {name}\"",
                if env.kind == Kind::App { "service" } else { "batch job" }
            );
            let _ = writeln!(w, "    image \"{}\"", env.image);
            if env.full_build {
                let _ = writeln!(w, "    version \"v1.4.2\"");
            }
            if !env.depends_on.is_empty() {
                let _ = writeln!(
                    w,
                    "    depends_on {}",
                    self.names(&env.depends_on).iter().map(|d| format!("\"{d}\"")).collect::<Vec<_>>().join(" ")
                );
            }
            let _ = writeln!(w, "    env LOG_LEVEL=\"info\" SERVICE_NAME=\"{name}\" REGION=\"eu-west-1\"");
            if env.gpu {
                let _ = writeln!(
                    w,
                    "    resources {{\n        requests cpu=\"4\" memory=\"16Gi\" gpu=1\n        limits cpu=\"8\" memory=\"32Gi\" gpu=1\n        accelerator \"nvidia-l4\"\n    }}"
                );
            } else {
                let _ = writeln!(
                    w,
                    "    resources {{\n        requests cpu=\"500m\" memory=\"1Gi\"\n        limits cpu=2 memory=\"2Gi\"\n    }}"
                );
            }
            let mut code = Vec::new();
            if env.full_build {
                code.push("copy_style \"full\"");
            }
            if env.selective_code {
                code.push("include \"pipeline/**\" \"lib/**\" \"main.py\"");
                code.push("exclude \"**/test_*.py\"");
            }
            if env.python_path {
                code.push("python_path \"lib\"");
            }
            if !code.is_empty() {
                let _ = writeln!(
                    w,
                    "    code {{\n{}\n    }}",
                    code.iter().map(|c| format!("        {c}")).collect::<Vec<_>>().join("\n")
                );
            }
            if env.secret {
                let _ = writeln!(w, "    secret name=\"db-password\" key=\"password\" as_env=\"DB_PASSWORD\"");
            }
            match env.kind {
                Kind::App => {
                    let _ =
                        writeln!(w, "    command \"uvicorn\" \"main:app\" \"--host\" \"0.0.0.0\" \"--port\" \"8080\"");
                    let _ = writeln!(w, "    port 8080");
                    let _ = writeln!(
                        w,
                        "    scaling min_replicas=0 max_replicas=2 scale_down_after=\"10m\" metric=\"concurrency\" target=20"
                    );
                    let _ = writeln!(w, "    health_check \"/health\"");
                    let _ = writeln!(w, "    timeouts startup=\"2m\" request=\"30s\"");
                    for input in &env.inputs {
                        match input {
                            InputSpec::Value(key, value) => {
                                let _ = writeln!(w, "    input \"{key}\" value={value} as_env=\"BATCH_SIZE\"");
                            }
                            InputSpec::Endpoint(key, app) => {
                                let _ = writeln!(
                                    w,
                                    "    input \"{key}\" endpoint=\"{}\" as_env=\"UPSTREAM_URL\"",
                                    self.envs[*app].name
                                );
                            }
                            InputSpec::TaskOutput(key, task, task_name, output) => {
                                let _ = writeln!(
                                    w,
                                    "    input \"{key}\" task=\"{}.{task_name}\" output=\"{output}\"",
                                    self.envs[*task].name
                                );
                            }
                        }
                    }
                }
                Kind::Task if env.trains => {
                    let _ = writeln!(
                        w,
                        "    task \"train\" {{\n        entrypoint \"pipeline.train:train\"\n        description \"Train a model\"\n        inputs data=\"file\" epochs=\"int\"\n        outputs model=\"file\" accuracy=\"float\"\n        retries 2\n        timeout \"2h\"\n        cache version=\"3\"\n    }}"
                    );
                    let _ = writeln!(
                        w,
                        "    task \"evaluate\" {{\n        entrypoint \"pipeline.train:evaluate\"\n        inputs model=\"file\"\n        outputs report=\"json\"\n    }}"
                    );
                }
                Kind::Task => {
                    let _ = writeln!(
                        w,
                        "    task \"run\" {{\n        entrypoint \"pipeline.etl:run\"\n        inputs date=\"str\" limit=\"int\"\n        outputs result=\"file\"\n        retries 3\n        timeout \"1h\"\n        cache #true\n    }}"
                    );
                }
            }
            let _ = writeln!(w, "}}");
        }
        out.push_str("\n// Domain overlays\n\ndomain \"staging\" {\n    project {\n        registry \"ghcr.io/acme-staging\"\n    }\n");
        for &i in &self.staging {
            let env = &self.envs[i];
            let _ = writeln!(out, "    environment \"{}\" {{", env.name);
            let _ = writeln!(out, "        env LOG_LEVEL=\"debug\" FEATURE_FLAGS=\"beta\"");
            if env.kind == Kind::App {
                let _ = writeln!(out, "        scaling max_replicas=3");
            }
            let _ = writeln!(out, "    }}");
        }
        out.push_str("}\n\ndomain \"production\" {\n");
        for &i in &self.production {
            let env = &self.envs[i];
            let _ = writeln!(out, "    environment \"{}\" {{", env.name);
            let _ = writeln!(out, "        env LOG_LEVEL=\"warning\"");
            if !env.gpu {
                let _ = writeln!(
                    out,
                    "        resources {{\n            requests cpu=\"1\" memory=\"2Gi\"\n            limits cpu=\"4\" memory=\"8Gi\"\n        }}"
                );
            }
            if env.kind == Kind::App {
                let _ = writeln!(out, "        scaling min_replicas=2 max_replicas=6");
            }
            let _ = writeln!(out, "    }}");
        }
        for &i in &self.disabled {
            let _ = writeln!(out, "    environment \"{}\" {{\n        enabled #false\n    }}", self.envs[i].name);
        }
        out.push_str("}\n");
        out
    }

    fn names(&self, indices: &[usize]) -> Vec<&str> {
        indices.iter().map(|&i| self.envs[i].name.as_str()).collect()
    }
}
