//! The images benchmark: the no-op `flyte build --push` of five example-shaped images beside `docker build`
//! of the same images, both fully cached; and the push of a 200 MB incompressible layer by flyte's registry
//! client beside `docker push`, `skopeo copy` and a raw upload of the same bytes, to one loopback registry.
//!
//! Run: `scripts/bench-images` (installs what is missing, then starts the engine, the registry, the base
//! images and the wheel index of `scripts/test-services.sh`, or reuses a running engine and registry).
//! With those services up and their `FLYTE_TEST_*` variables exported: `cargo bench --bench images`.
//!
//! No-op: the images (fast-copy with a pip step, a full build with a source folder copied contents-only,
//! the Dockerfile pattern, a python-path full build, a plain busybox fast-copy image) are built and pushed
//! once; then every `flyte -o json build --push` run (process start to exit) finds each image's content
//! tag in the registry and builds nothing. Baseline: Debian's `docker build` (BuildKit) of an equivalent
//! Dockerfile per image, fully cached, summed over the five images of a round.
//! Push: every run of every tool gets fresh bytes (a newly seeded generator, written and synced to disk
//! outside the timing), so no tool can skip or mount a blob. The layer is an uncompressed tar, as flyte
//! pushes layers to a loopback registry; docker and skopeo gzip it on the way, as they do by default.
//! Baseline: the raw upload, a POST and one PUT streamed from the file on a plain socket, nothing else.
//! `FLYTE_BENCH_KEEP=1` keeps the temporary folder (the project, flyte's cache, the docker contexts) for a
//! look afterwards; the engine's images go regardless.
//! Targets (the issue's; printed, not enforced): the whole no-op under 50 ms, flyte's push within 1.5× of
//! the raw upload.

use std::io::{BufWriter, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flyte::image::llb::recipe::BOOTSTRAP;
use flyte::image::registry::{ImageToPush, LayerBlob, Registry, RegistrySettings};
use serde_json::Value;
use sha2::{Digest, Sha256};

const NOOP_RUNS: usize = 15;
const PUSH_RUNS: usize = 3;
const LAYER_BYTES: u64 = 200_000_000;
const DOCKER: &str = "/usr/bin/docker";
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// The services `scripts/test-services.sh` starts (or reuses), as its variables name them.
struct Services {
    docker_host: String,
    registry: String,
    base_busybox: String,
    base_python: String,
    wheels_url: String,
}

impl Services {
    fn from_env() -> Services {
        let names = [
            "FLYTE_TEST_DOCKER_HOST",
            "FLYTE_TEST_REGISTRY",
            "FLYTE_TEST_BASE_BUSYBOX",
            "FLYTE_TEST_BASE_PYTHON",
            "FLYTE_TEST_WHEELS_URL",
        ];
        let values: Vec<String> = names.iter().map(|name| std::env::var(name).unwrap_or_default()).collect();
        let missing: Vec<&str> =
            names.iter().zip(&values).filter(|(_, value)| value.is_empty()).map(|(name, _)| *name).collect();
        if !missing.is_empty() {
            eprintln!(
                "the images benchmark needs a Docker Engine, a registry, base images and a wheel index; {} unset.\n\
                 Run scripts/bench-images, which starts them (or reuses running ones), or export the variables \
                 scripts/test-services.sh sets.",
                missing.join(", ")
            );
            std::process::exit(1);
        }
        for tool in [DOCKER, "skopeo"] {
            if !Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success()) {
                eprintln!("{tool} is missing: apt-get install -y docker.io skopeo (scripts/bench-images does)");
                std::process::exit(1);
            }
        }
        let [docker_host, registry, base_busybox, base_python, wheels_url] =
            <[String; 5]>::try_from(values).expect("five values");
        Services { docker_host, registry, base_busybox, base_python, wheels_url }
    }
}

/// Debian's docker client on the services' engine, with an empty config folder (no credential helpers).
struct Docker {
    host: String,
    config: PathBuf,
}

impl Docker {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(DOCKER);
        command
            .args(args)
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", &self.config)
            .env("DOCKER_BUILDKIT", "1");
        command
    }

    /// Runs `docker ARGS`, which must succeed; its stdout.
    fn run(&self, args: &[&str]) -> String {
        checked(&mut self.command(args))
    }
}

/// Runs a command to its end; it must succeed. Its stdout.
fn checked(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|error| panic!("{command:?} does not start: {error}"));
    assert_ok(command, &output);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn assert_ok(command: &Command, output: &Output) {
    assert!(
        output.status.success(),
        "{command:?} failed ({})\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Removes, also on a panic, what the run put into the engine: every tag holding the run's nonce (the
/// docker builds, the imported layers, flyte's Dockerfile stages) and flyte's input images, whose names
/// the load archives in the run's cache give (`inputs/<kind>-<digest>.tar` is
/// `flyte.local/input/<kind>:<first 32 hex digits>`). The registry's data stays with the services.
struct EngineCleanup<'a> {
    docker: &'a Docker,
    nonce: String,
    cache: PathBuf,
}

impl Drop for EngineCleanup<'_> {
    fn drop(&mut self) {
        let listed = self.docker.command(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]).output();
        let listed = listed.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        let mut names: Vec<String> =
            listed.lines().filter(|name| name.contains(&self.nonce)).map(String::from).collect();
        let inputs = std::fs::read_dir(self.cache.join("inputs")).into_iter().flatten().flatten();
        for entry in inputs {
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some((kind, digest)) = file.strip_suffix(".tar").and_then(|stem| stem.rsplit_once('-'))
                && digest.len() >= 32
            {
                names.push(format!("flyte.local/input/{kind}:{}", &digest[..32]));
            }
        }
        if !names.is_empty() {
            let mut args = vec!["rmi"];
            args.extend(names.iter().map(String::as_str));
            // Some inputs may never have been loaded; the rest go regardless.
            let _ = self.docker.command(&args).output();
        }
    }
}

fn main() {
    let services = Services::from_env();
    let nonce = format!("{:x}", SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos());
    let mut temp = tempfile::Builder::new().prefix("flyte-bench-images.").tempdir().expect("a temporary folder");
    if std::env::var_os("FLYTE_BENCH_KEEP").is_some() {
        temp.disable_cleanup(true);
        eprintln!("FLYTE_BENCH_KEEP: the project, its cache and the contexts stay in {}", temp.path().display());
    }
    let docker_config = temp.path().join("docker-config");
    std::fs::create_dir_all(&docker_config).unwrap();
    let docker = Docker { host: services.docker_host.clone(), config: docker_config };
    let cache = temp.path().join("flyte-cache");
    let _cleanup = EngineCleanup { docker: &docker, nonce: nonce.clone(), cache: cache.clone() };

    let noop = no_op(&services, &docker, temp.path(), &cache, &nonce);
    noop.print();
    let push = push(&services, &docker, temp.path(), &nonce);
    push.print(&services.registry);
}

// ---------------------------------------------------------------------------------------------------
// The no-op rebuild

/// An image of the benchmark: its name in the manifest, and the Dockerfile of the same image for docker.
struct DockerImage {
    name: &'static str,
    context: PathBuf,
    build_args: Vec<String>,
}

struct NoOp {
    images: usize,
    /// Whole `flyte build --push` runs, with the longest image's own time (`millis` in the JSON).
    flyte: Vec<(Duration, Duration)>,
    /// Per round, the sum of the `docker build` runs.
    docker: Vec<Duration>,
}

fn no_op(services: &Services, docker: &Docker, temp: &Path, cache: &Path, nonce: &str) -> NoOp {
    let project = temp.join("project");
    write_project(&project, services, nonce);
    let contexts = docker_contexts(&project, &temp.join("docker"), services);
    let flyte_build = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flyte"));
        command
            .args(["-o", "json", "build", "--push"])
            .current_dir(&project)
            .env("DOCKER_HOST", &services.docker_host)
            .env_remove("BUILDKIT_HOST")
            .env_remove("FLYTE_REGISTRY")
            .env("FLYTE_CACHE_DIR", cache)
            .env("DOCKER_CONFIG", &docker.config)
            .env("NO_COLOR", "1");
        command
    };
    // Each run: the whole process, then the images it reports.
    let run = |expected: &[&str]| -> (Duration, Vec<Value>) {
        let mut command = flyte_build();
        let started = Instant::now();
        let output = command.output().expect("the flyte binary runs");
        let elapsed = started.elapsed();
        assert_ok(&command, &output);
        let images: Vec<Value> = serde_json::from_slice(&output.stdout).expect("flyte build -o json prints a list");
        for image in &images {
            let outcome = image["outcome"].as_str().unwrap_or_default();
            assert!(expected.contains(&outcome), "image {} is {outcome}, expected {expected:?}", image["step"]);
        }
        (elapsed, images)
    };

    eprintln!("building and pushing the images once (flyte), then the same with docker build");
    let started = Instant::now();
    let (_, warm) = run(&["built", "exists"]);
    eprintln!("  flyte build --push: {} images in {:.1} s", warm.len(), started.elapsed().as_secs_f64());
    let docker_round = || -> Duration {
        contexts
            .iter()
            .map(|image| {
                let tag = format!("flyte-bench-{nonce}/{}:1", image.name);
                let mut args = vec!["build", "-q", "--network", "host", "-t", &tag];
                for build_arg in &image.build_args {
                    args.extend(["--build-arg", build_arg]);
                }
                let context = image.context.to_str().expect("a UTF-8 path");
                args.push(context);
                let mut command = docker.command(&args);
                let started = Instant::now();
                let output = command.output().expect("docker runs");
                let elapsed = started.elapsed();
                assert_ok(&command, &output);
                elapsed
            })
            .sum()
    };
    let started = Instant::now();
    docker_round();
    eprintln!("  docker build: {} images in {:.1} s", contexts.len(), started.elapsed().as_secs_f64());
    // Once more each, unmeasured: both sides start their measured runs warm.
    run(&["exists"]);
    docker_round();

    eprintln!("timing {NOOP_RUNS} no-op runs of each");
    let flyte = (0..NOOP_RUNS)
        .map(|_| {
            let (elapsed, images) = run(&["exists"]);
            let longest = images.iter().filter_map(|image| image["millis"].as_u64()).max().unwrap_or(0);
            (elapsed, Duration::from_millis(longest))
        })
        .collect();
    let docker = (0..NOOP_RUNS).map(|_| docker_round()).collect();
    NoOp { images: warm.len(), flyte, docker }
}

impl NoOp {
    fn print(&self) {
        let whole: Vec<Duration> = self.flyte.iter().map(|s| s.0).collect();
        let longest: Vec<Duration> = self.flyte.iter().map(|s| s.1).collect();
        println!(
            "no-op rebuild of {} images, fully cached ({NOOP_RUNS} runs each; docker: the sum of one `docker build` \
             per image)",
            self.images
        );
        println!("{:<52} {:>10} {:>10}", "command", "median", "min");
        let row = |name: &str, samples: &[Duration]| {
            println!("{name:<52} {:>7.1} ms {:>7.1} ms", ms(median(samples)), ms(min(samples)));
        };
        row("flyte -o json build --push (whole process)", &whole);
        row("  of which the longest image (its own millis)", &longest);
        row(&format!("docker build -q --network host, {} images", self.images), &self.docker);
        let ratio = median(&self.docker).as_secs_f64() / median(&whole).as_secs_f64();
        println!("docker / flyte = {ratio:.1}; target: the whole flyte no-op under 50 ms");
        println!();
    }
}

/// The benchmark's project: the examples' shapes on the services' local bases. Every file holds the nonce,
/// so this run's inputs and tags are its own.
fn write_project(dir: &Path, services: &Services, nonce: &str) {
    let registry = format!("{}/bench-{nonce}", services.registry);
    let busybox = &services.base_busybox;
    let python = &services.base_python;
    let wheels = &services.wheels_url;
    let manifest = format!(
        r#"# The images benchmark's project ({nonce}): the examples' image shapes on local bases.
[project]
name = "bench-images"
registry = "{registry}"

# Fast-copy with a pip step (dynamic-environments, frontend-backend).
[images.web]
base = "{python}"
pip = ["flyte_test_greeting"]
env = {{ PIP_NO_INDEX = "1", PIP_FIND_LINKS = "{wheels}" }}

[environments.greeter]
kind = "task"
image = "web"
code = {{ include = ["greeter.py"] }}

[environments.greeter.tasks.greet]
entrypoint = "greeter:greet"

# A full build with a source folder copied contents-only (full-build).
[images.full]
base = "{busybox}"

[[images.full.sources]]
src = "deps"
dst = "/app"
copy_contents_only = true

[environments.collatz]
kind = "task"
image = "full"
version = "v1.0.0"
code = {{ copy_style = "full", include = ["main.sh"] }}

[environments.collatz.tasks.steps]
entrypoint = "main:steps"

# The Dockerfile pattern, its base a build argument (dockerfile).
[images.custom]
dockerfile = "docker/Dockerfile"
build_args = {{ BASE = "{busybox}" }}

[environments.docker-env]
kind = "task"
image = "custom"
code = {{ include = ["docker_env.py"] }}

[environments.docker-env.tasks.banner]
entrypoint = "docker_env:banner"

# A full build of two folders joined by python_path (python-path).
[images.base]
base = "{python}"

[environments.workflow-env]
kind = "app"
image = "base"
version = "v1"
command = ["python3", "-m", "workflow"]
code = {{ copy_style = "full", include = ["workflows/**/*.py", "src/**/*.py"], python_path = ["src", "workflows"] }}

# A plain busybox fast-copy image.
[images.tools]
base = "{busybox}"

[environments.hello]
kind = "task"
image = "tools"
code = {{ include = ["hello.sh"] }}

[environments.hello.tasks.run]
entrypoint = "hello:run"
"#
    );
    let dockerfile = format!(
        "# {nonce}\nARG BASE\nFROM ${{BASE}}\nCOPY kept.txt /ctx/kept.txt\nRUN echo built from the Dockerfile > /flavour\n\
         WORKDIR /app\n"
    );
    let files = [
        ("flyte.toml", manifest),
        (
            "greeter.py",
            format!("# {nonce}\nfrom flyte_test_greeting import greet\n\n\ndef run():\n    return greet('flyte')\n"),
        ),
        ("main.sh", format!("# {nonce}\nsh /app/collatz.sh 27\n")),
        (
            "deps/collatz.sh",
            format!("# {nonce}\nn=$1; while [ \"$n\" -ne 1 ]; do echo $n; n=$((n % 2 ? 3 * n + 1 : n / 2)); done\n"),
        ),
        ("deps/data/steps.txt", format!("{nonce}\n111\n")),
        ("docker/Dockerfile", dockerfile),
        ("docker/kept.txt", format!("{nonce}\n")),
        ("docker_env.py", format!("# {nonce}\ndef banner(text):\n    return open('/flavour').read() + text\n")),
        ("src/my_module.py", format!("# {nonce}\ndef say_hello(name):\n    return f'hello {{name}}'\n")),
        ("workflows/workflow.py", format!("# {nonce}\nfrom my_module import say_hello\n\nprint(say_hello('flyte'))\n")),
        ("hello.sh", format!("# {nonce}\necho hello\n")),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// One build context per image: a Dockerfile making what flyte's recipe makes (the same base by digest,
/// the same files, the same pip install on the host network, the bootstrap of fast-copy images).
fn docker_contexts(project: &Path, dir: &Path, services: &Services) -> Vec<DockerImage> {
    let busybox = &services.base_busybox;
    let python = &services.base_python;
    let wheels = &services.wheels_url;
    let bootstrap = "COPY flyte-bootstrap /usr/local/bin/flyte-bootstrap\n\
                     ENTRYPOINT [\"/usr/local/bin/flyte-bootstrap\"]\n";
    let custom = std::fs::read_to_string(project.join("docker/Dockerfile")).unwrap();
    let images: [(&str, String, &[&str], Vec<String>); 5] = [
        (
            "web",
            format!(
                "FROM {python}\nENV PIP_NO_INDEX=1 PIP_FIND_LINKS={wheels}\n\
                 RUN python3 -m pip install --no-cache-dir --no-index --find-links {wheels} --break-system-packages \
                 flyte_test_greeting\n{bootstrap}"
            ),
            &[],
            Vec::new(),
        ),
        (
            "full",
            format!("FROM {busybox}\nCOPY deps/ /app/\nCOPY main.sh /app/main.sh\nWORKDIR /app\nENV PYTHONPATH=/app\n"),
            &["deps", "main.sh"],
            Vec::new(),
        ),
        ("custom", format!("{custom}{bootstrap}"), &["docker/kept.txt"], vec![format!("BASE={busybox}")]),
        (
            "base",
            format!(
                "FROM {python}\nCOPY src/ /app/src/\nCOPY workflows/ /app/workflows/\nWORKDIR /app\n\
                 ENV PYTHONPATH=/app:/app/src:/app/workflows\nCMD [\"python3\", \"-m\", \"workflow\"]\n"
            ),
            &["src", "workflows"],
            Vec::new(),
        ),
        ("tools", format!("FROM {busybox}\n{bootstrap}"), &[], Vec::new()),
    ];
    images
        .into_iter()
        .map(|(name, dockerfile, files, build_args)| {
            let context = dir.join(name);
            std::fs::create_dir_all(&context).unwrap();
            std::fs::write(context.join("Dockerfile"), dockerfile).unwrap();
            write_bootstrap(&context.join("flyte-bootstrap"));
            for file in files {
                // The Dockerfile pattern's context is the Dockerfile's folder: its files go to the top.
                let target = context.join(file.strip_prefix("docker/").unwrap_or(file));
                copy_tree(&project.join(file), &target);
            }
            DockerImage { name, context, build_args }
        })
        .collect()
}

fn write_bootstrap(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, BOOTSTRAP).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------------
// The push

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    Raw,
    Flyte,
    DockerPush,
    Skopeo,
}

impl Tool {
    const ALL: [Tool; 4] = [Tool::Raw, Tool::Flyte, Tool::DockerPush, Tool::Skopeo];

    fn name(self) -> &'static str {
        match self {
            Tool::Raw => "raw upload (POST + one PUT, std socket)",
            Tool::Flyte => "flyte (Registry::push_image)",
            Tool::DockerPush => "docker push",
            Tool::Skopeo => "skopeo copy oci: → docker://",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Tool::Raw => "raw",
            Tool::Flyte => "flyte",
            Tool::DockerPush => "docker",
            Tool::Skopeo => "skopeo",
        }
    }
}

struct Push {
    layer_bytes: u64,
    samples: Vec<(Tool, Duration)>,
}

/// A layer tar on disk: one file of fresh random bytes.
struct Layer {
    path: PathBuf,
    digest: String,
    size: u64,
}

fn push(services: &Services, docker: &Docker, temp: &Path, nonce: &str) -> Push {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let work = temp.join("push");
    std::fs::create_dir_all(&work).unwrap();
    let mut samples = Vec::new();
    let mut layer_bytes = 0;
    eprintln!("pushing a {:.0} MB layer {PUSH_RUNS} times with each tool", LAYER_BYTES as f64 / 1e6);
    for run in 0..PUSH_RUNS {
        for tool in Tool::ALL {
            let layer = write_layer(&work.join("layer.tar"), fresh_seed(run, tool));
            layer_bytes = layer.size;
            let repository = format!("bench-{nonce}/{}-{run}", tool.slug());
            let reference = format!("{}/{repository}:1", services.registry);
            let elapsed = match tool {
                Tool::Raw => {
                    sync();
                    let started = Instant::now();
                    raw_upload(&services.registry, &repository, &layer);
                    started.elapsed()
                }
                Tool::Flyte => {
                    let settings = RegistrySettings {
                        docker_config: Some(docker.config.join("config.json")),
                        ..RegistrySettings::default()
                    };
                    let registry = Registry::new(settings).expect("the registry client");
                    let image = ImageToPush {
                        config: image_config(&layer.digest),
                        layers: vec![LayerBlob {
                            path: layer.path.clone(),
                            digest: layer.digest.clone(),
                            size: layer.size,
                            media_type: LAYER_MEDIA_TYPE.into(),
                            mount_from: vec![],
                        }],
                    };
                    sync();
                    let started = Instant::now();
                    let report = runtime.block_on(registry.push_image(&reference, &image)).expect("flyte's push");
                    let elapsed = started.elapsed();
                    assert_eq!(report.uploaded().blobs, 2, "the layer and the config are uploaded");
                    elapsed
                }
                Tool::DockerPush => {
                    let path = layer.path.to_str().expect("a UTF-8 path");
                    docker.run(&["import", path, &reference]);
                    sync();
                    let mut command = docker.command(&["push", &reference]);
                    let started = Instant::now();
                    let output = command.output().expect("docker runs");
                    let elapsed = started.elapsed();
                    assert_ok(&command, &output);
                    docker.run(&["rmi", &reference]);
                    elapsed
                }
                Tool::Skopeo => {
                    let layout = work.join("oci");
                    write_oci_layout(&layout, &layer);
                    sync();
                    let source = format!("oci:{}:1", layout.display());
                    let destination = format!("docker://{reference}");
                    let mut command = Command::new("skopeo");
                    command.args(["copy", "--dest-tls-verify=false", "--dest-no-creds", &source, &destination]);
                    let started = Instant::now();
                    let output = command.output().expect("skopeo runs");
                    let elapsed = started.elapsed();
                    assert_ok(&command, &output);
                    std::fs::remove_dir_all(&layout).unwrap();
                    elapsed
                }
            };
            std::fs::remove_file(&layer.path).unwrap();
            eprintln!("  run {} {:<8} {:>6.2} s", run + 1, tool.slug(), elapsed.as_secs_f64());
            samples.push((tool, elapsed));
        }
    }
    Push { layer_bytes, samples }
}

impl Push {
    fn print(&self, registry: &str) {
        println!(
            "push of one {:.1} MB incompressible layer (an uncompressed tar) to the registry at {registry} \
             ({PUSH_RUNS} runs each, fresh bytes every run)",
            self.layer_bytes as f64 / 1e6
        );
        println!("{:<42} {:>9} {:>9} {:>10} {:>12}", "tool", "median", "min", "MB/s", "median / raw");
        let times = |tool: Tool| -> Vec<Duration> {
            self.samples.iter().filter(|(t, _)| *t == tool).map(|(_, elapsed)| *elapsed).collect()
        };
        let raw = median(&times(Tool::Raw)).as_secs_f64();
        for tool in Tool::ALL {
            let samples = times(tool);
            let median = median(&samples).as_secs_f64();
            println!(
                "{:<42} {:>7.2} s {:>7.2} s {:>10.0} {:>12.2}",
                tool.name(),
                median,
                min(&samples).as_secs_f64(),
                self.layer_bytes as f64 / 1e6 / median,
                median / raw
            );
        }
        let flyte = median(&times(Tool::Flyte)).as_secs_f64();
        println!(
            "flyte / raw = {:.2} (target: at most 1.50); docker and skopeo gzip the layer on the way",
            flyte / raw
        );
    }
}

/// A seed no earlier run of this benchmark used: the clock, the run and the tool.
fn fresh_seed(run: usize, tool: Tool) -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    nanos ^ ((run as u64) << 56) ^ ((tool as u64) << 60)
}

/// Writes a tar holding one file of `LAYER_BYTES` random bytes, synced to disk; its sha256 and size.
fn write_layer(path: &Path, seed: u64) -> Layer {
    let file = std::fs::File::create(path).unwrap();
    let mut out = BufWriter::with_capacity(1 << 20, &file);
    let mut hasher = Sha256::new();
    let mut put = |bytes: &[u8]| {
        hasher.update(bytes);
        out.write_all(bytes).unwrap();
    };
    put(&tar_header("data.bin", LAYER_BYTES));
    let mut random = SplitMix(seed);
    let mut block = vec![0u8; 1 << 20];
    let mut left = LAYER_BYTES as usize;
    while left > 0 {
        let part = &mut block[..left.min(1 << 20)];
        for chunk in part.chunks_mut(8) {
            chunk.copy_from_slice(&random.next().to_le_bytes()[..chunk.len()]);
        }
        put(part);
        left -= part.len();
    }
    let padding = (512 - LAYER_BYTES as usize % 512) % 512;
    put(&vec![0u8; padding + 1024]);
    out.into_inner().expect("the layer is written").sync_all().unwrap();
    let size = file.metadata().unwrap().len();
    Layer { path: path.to_path_buf(), digest: format!("sha256:{}", hex::encode(hasher.finalize())), size }
}

/// A ustar header for a regular file owned by root, mode 0644, time 0.
fn tar_header(name: &str, size: u64) -> [u8; 512] {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut header[100..108], 0o644);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], size);
    octal(&mut header[136..148], 0);
    header[148..156].fill(b' ');
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    let sum: u64 = header.iter().map(|&b| b as u64).sum();
    octal(&mut header[148..155], sum);
    header
}

/// Zero-padded octal filling all of `field` but its last byte, which is NUL.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    field[..width].copy_from_slice(text.as_bytes());
    field[width] = 0;
}

/// A fast generator whose output gzip cannot shrink.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A minimal OCI image config with the layer as its one diff id (the layer is uncompressed).
fn image_config(layer_digest: &str) -> Vec<u8> {
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
    });
    serde_json::to_vec(&config).unwrap()
}

/// An OCI image layout holding the layer (hard-linked) under the tag `1`, for skopeo to read.
fn write_oci_layout(dir: &Path, layer: &Layer) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let blob = |digest: &str| blobs.join(digest.trim_start_matches("sha256:"));
    std::fs::hard_link(&layer.path, blob(&layer.digest)).unwrap();
    let config = image_config(&layer.digest);
    let config_digest = sha256(&config);
    std::fs::write(blob(&config_digest), &config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len() },
        "layers": [{ "mediaType": LAYER_MEDIA_TYPE, "digest": layer.digest, "size": layer.size }],
    }))
    .unwrap();
    let manifest_digest = sha256(&manifest);
    std::fs::write(blob(&manifest_digest), &manifest).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": "1" },
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The floor: a POST for an upload session, then one PUT with the file as its body (std's copy from a
/// file to a socket, sendfile on Linux). No auth, no retries, no HEAD, no config or manifest.
fn raw_upload(registry: &str, repository: &str, layer: &Layer) {
    let mut stream = TcpStream::connect(registry).expect("the registry answers");
    stream.set_nodelay(true).unwrap();
    write!(stream, "POST /v2/{repository}/blobs/uploads/ HTTP/1.1\r\nHost: {registry}\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let (status, head) = read_response(&mut stream);
    assert_eq!(status, 202, "starting the upload: {head}");
    let location = header(&head, "location").expect("a Location header");
    // An absolute Location keeps only its path and query: the connection is to the registry already.
    let location = match location.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |slash| &rest[slash..]).to_string(),
        None => location,
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    write!(
        stream,
        "PUT {location}{separator}digest={} HTTP/1.1\r\nHost: {registry}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\n\r\n",
        layer.digest, layer.size
    )
    .unwrap();
    let mut file = std::fs::File::open(&layer.path).unwrap();
    std::io::copy(&mut file, &mut stream).unwrap();
    let (status, head) = read_response(&mut stream);
    assert_eq!(status, 201, "finishing the upload: {head}");
}

/// Reads one response: its status and head; the body (Content-Length bytes) is read and dropped.
fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let read = stream.read(&mut chunk).unwrap();
        assert!(read > 0, "the registry closed the connection");
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let length: usize = header(&head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buffer.len() < end + length {
        let read = stream.read(&mut chunk).unwrap();
        assert!(read > 0, "the registry closed the connection");
        buffer.extend_from_slice(&chunk[..read]);
    }
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, head)
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim().to_string())
}

/// Flushes dirty pages (the layer just written, the engine's import), so writeback does not run during
/// a timed push.
fn sync() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

// ---------------------------------------------------------------------------------------------------
// Figures

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn min(samples: &[Duration]) -> Duration {
    samples.iter().copied().min().unwrap_or_default()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
