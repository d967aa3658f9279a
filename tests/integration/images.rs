//! `flyte build` against the real engine and registry that `scripts/test` starts: images built from
//! LLB, pushed, pulled back and run; a second build that does nothing; a one-file change that pushes
//! only the code layer; a pip step fed by a local wheel index; the Dockerfile pattern; a refused push.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::Run;
use crate::services::{Services, services};

struct Project {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
    docker_host: String,
}

impl Project {
    fn new(services: &Services, files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Project { dir, cache: tempfile::tempdir().unwrap(), docker_host: services.docker_host.clone() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn flyte(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_flyte"))
            .args(args)
            .current_dir(self.path())
            .env("DOCKER_HOST", &self.docker_host)
            .env_remove("BUILDKIT_HOST")
            .env_remove("FLYTE_REGISTRY")
            .env("FLYTE_CACHE_DIR", self.cache.path())
            .env("DOCKER_CONFIG", self.cache.path().join("docker-config"))
            .env("NO_COLOR", "1")
            .output()
            .expect("the flyte binary runs");
        Run::from_output(output)
    }

    /// `flyte -o json build ARGS`, which must succeed; the images it reports.
    fn build(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["-o", "json", "build"];
        all.extend_from_slice(args);
        let run = self.flyte(&all);
        assert_eq!(run.code, 0, "flyte build {args:?} failed\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
        serde_json::from_str::<Vec<Value>>(&run.stdout).expect("flyte build -o json prints a list")
    }

    /// Runs Debian's docker client against the test engine.
    fn docker(&self, args: &[&str]) -> Run {
        let output = Command::new("/usr/bin/docker")
            .args(args)
            .env("DOCKER_HOST", &self.docker_host)
            .output()
            .expect("Debian's docker client runs");
        Run::from_output(output)
    }

    /// Drops the local copy, pulls `reference` back from the registry and runs it with `args`.
    fn pull_and_run(&self, reference: &str, args: &[&str]) -> String {
        let _ = self.docker(&["rmi", "-f", reference]);
        let pull = self.docker(&["pull", "-q", reference]);
        assert_eq!(pull.code, 0, "docker pull {reference}: {}", pull.stderr);
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        let run = self.docker(&all);
        assert_eq!(run.code, 0, "docker run {all:?}: {}{}", run.stdout, run.stderr);
        run.stdout
    }
}

/// A registry path of the test's own, so tests running at once never share a repository.
fn unique(services: &Services, name: &str) -> String {
    let nonce = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    format!("{}/tests-{name}-{nonce}", services.registry)
}

fn image<'a>(built: &'a [Value], step: &str) -> &'a Value {
    built.iter().find(|b| b["step"] == step).unwrap_or_else(|| panic!("no image step {step} in {built:?}"))
}

fn uploaded_blobs(image: &Value) -> Vec<String> {
    image["pushed"]["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|blob| blob["outcome"]["how"] == "uploaded")
        .map(|blob| blob["media_type"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn busybox_manifest(services: &Services, registry: &str) -> String {
    format!(
        r#"[project]
name = "shapes"
registry = "{registry}"

[images.tools]
base = "{base}"
env = {{ GREETING = "hello from the image" }}

[[images.tools.sources]]
src = "deps"
dst = "/opt/deps"
copy_contents_only = true

[environments.fast]
kind = "task"
image = "tools"
code = {{ include = ["main.sh"] }}

[environments.fast.tasks.run]
entrypoint = "main:run"

[environments.baked]
kind = "app"
image = "tools"
version = "v1"
command = ["/bin/sh", "/app/main.sh"]
code = {{ copy_style = "full", include = ["main.sh"] }}
"#,
        base = services.base_busybox
    )
}

#[test]
fn fast_copy_and_full_build_images_are_pushed_pulled_back_and_run() {
    let Some(services) = services() else { return };
    let registry = unique(&services, "shapes");
    let manifest = busybox_manifest(&services, &registry);
    let project = Project::new(
        &services,
        &[
            ("flyte.toml", &manifest),
            ("main.sh", "echo \"main: $GREETING\"; cat /opt/deps/dep.txt\n"),
            ("deps/dep.txt", "a dependency file\n"),
        ],
    );

    let built = project.build(&["--push", "--image-refs", "refs.json"]);
    assert_eq!(built.len(), 2, "{built:?}");
    let full = image(&built, "image:tools+baked");
    let fast = image(&built, "image:tools");
    for built in [full, fast] {
        assert_eq!(built["outcome"], "built", "{built}");
        assert!(built["reference"].as_str().unwrap().starts_with(&registry));
        assert!(built["base"].as_str().unwrap().contains("@sha256:"), "the base is pinned: {built}");
    }
    let refs: Value =
        serde_json::from_str(&std::fs::read_to_string(project.path().join("refs.json")).unwrap()).unwrap();
    assert_eq!(refs["images"].as_array().unwrap().len(), 2);

    // The full build runs its command with the code, the source folder and the image's env in place.
    let full_ref = full["reference"].as_str().unwrap();
    let output = project.pull_and_run(full_ref, &[full_ref]);
    assert_eq!(output, "main: hello from the image\na dependency file\n");

    // The fast-copy image unpacks the bundle named at start, then runs the command.
    let bundle = project.flyte(&["bundle", "fast", "--out", "fast.tar.gz"]);
    assert_eq!(bundle.code, 0, "{}", bundle.stderr);
    let fast_ref = fast["reference"].as_str().unwrap();
    let mount = format!("{}:/bundle.tar.gz:ro", project.path().join("fast.tar.gz").display());
    let output = project.pull_and_run(
        fast_ref,
        &["-v", &mount, "-e", "FLYTE_CODE_BUNDLE=/bundle.tar.gz", fast_ref, "/bin/sh", "/app/main.sh"],
    );
    assert_eq!(output, "main: hello from the image\na dependency file\n");

    // …or fetches it from a URL first (busybox's wget here).
    let served = serve_once(std::fs::read(project.path().join("fast.tar.gz")).unwrap());
    let url = format!("FLYTE_CODE_BUNDLE=http://{served}/fast.tar.gz");
    let run = project.docker(&["run", "--rm", "--network", "host", "-e", &url, fast_ref, "/bin/sh", "/app/main.sh"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "main: hello from the image\na dependency file\n");

    // The configs flyte wrote: the bootstrap as the fast image's entrypoint, the app's command in the
    // full build, the image's env over the base's, and labels naming the content.
    let config = |reference: &str| -> Value {
        let inspect = project.docker(&["image", "inspect", reference, "--format", "{{json .Config}}"]);
        serde_json::from_str(&inspect.stdout).unwrap_or_else(|e| panic!("{e}: {}", inspect.stdout))
    };
    let fast_config = config(fast_ref);
    assert_eq!(fast_config["Entrypoint"], serde_json::json!(["/usr/local/bin/flyte-bootstrap"]));
    let tag = fast_ref.rsplit(':').next().unwrap();
    assert_eq!(fast_config["Labels"]["org.flyte.version"], tag);
    assert!(fast_config["Labels"]["org.opencontainers.image.base.digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(fast_config["Env"].as_array().unwrap().iter().any(|e| e == "GREETING=hello from the image"));
    let full_config = config(full_ref);
    assert_eq!(full_config["Cmd"], serde_json::json!(["/bin/sh", "/app/main.sh"]));
    assert_eq!(full_config["WorkingDir"], "/app");
    assert!(full_config["Env"].as_array().unwrap().iter().any(|e| e == "PYTHONPATH=/app"));

    // Nothing changed: nothing is solved or pushed.
    let again = project.build(&["--push"]);
    for image in &again {
        assert_eq!(image["outcome"], "exists", "{image}");
    }
    assert_eq!(image(&again, "image:tools+baked")["digest"], full["digest"]);

    // One source file changed: the fast-copy image does not hold it; the full build pushes its code
    // layer and config only.
    std::fs::write(project.path().join("main.sh"), "echo changed\n").unwrap();
    let changed = project.build(&["--push"]);
    assert_eq!(image(&changed, "image:tools")["outcome"], "exists");
    let rebuilt = image(&changed, "image:tools+baked");
    assert_eq!(rebuilt["outcome"], "built");
    let uploaded = uploaded_blobs(rebuilt);
    assert_eq!(uploaded.len(), 2, "only the code layer and the config are uploaded: {rebuilt}");
    let rebuilt_ref = rebuilt["reference"].as_str().unwrap();
    assert_eq!(project.pull_and_run(rebuilt_ref, &[rebuilt_ref]), "changed\n");
}

#[test]
fn without_push_the_image_goes_into_the_engine_and_runs() {
    let Some(services) = services() else { return };
    let manifest = busybox_manifest(&services, &unique(&services, "local"));
    let project = Project::new(
        &services,
        &[("flyte.toml", &manifest), ("main.sh", "echo local build\n"), ("deps/dep.txt", "dep\n")],
    );
    let built = project.build(&["baked"]);
    assert_eq!(built.len(), 1, "only the image that environment uses: {built:?}");
    let reference = built[0]["reference"].as_str().unwrap();
    let run = project.docker(&["run", "--rm", reference]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "local build\n");
    let again = project.build(&["baked"]);
    assert_eq!(again[0]["outcome"], "exists");
    let _ = project.docker(&["rmi", "-f", reference]);
}

#[test]
fn a_pip_step_installs_from_a_local_wheel_index() {
    let Some(services) = services() else { return };
    let manifest = format!(
        r#"[project]
name = "pip-step"
registry = "{registry}"

[images.py]
base = "{base}"
pip = ["flyte_test_greeting"]
env = {{ PIP_NO_INDEX = "1", PIP_FIND_LINKS = "{wheels}" }}

[environments.greeter]
kind = "app"
image = "py"
version = "v1"
command = ["python3", "main.py"]
code = {{ copy_style = "full", include = ["main.py"] }}
"#,
        registry = unique(&services, "pip"),
        base = services.base_python,
        wheels = services.wheels_url
    );
    let project = Project::new(
        &services,
        &[("flyte.toml", &manifest), ("main.py", "from flyte_test_greeting import greet\nprint(greet('flyte'))\n")],
    );
    let built = project.build(&["--push"]);
    let reference = built[0]["reference"].as_str().unwrap();
    assert_eq!(project.pull_and_run(reference, &[reference]), "hello flyte\n");
}

#[test]
fn a_refused_push_is_a_clear_error_before_any_build() {
    let Some(services) = services() else { return };
    let refusing = RefusingRegistry::start();
    let manifest = busybox_manifest(&services, &format!("{}/team", refusing.address));
    let project =
        Project::new(&services, &[("flyte.toml", &manifest), ("main.sh", "echo\n"), ("deps/dep.txt", "dep\n")]);
    let run = project.flyte(&["build", "--push", "baked"]);
    assert_eq!(run.code, 4, "a registry failure exits 4\n{}", run.stderr);
    assert!(run.stderr.contains(&refusing.address), "the error names the registry: {}", run.stderr);
    assert!(run.stderr.contains("help:"), "{}", run.stderr);
    assert!(!run.stderr.contains("done "), "nothing was built before the refusal: {}", run.stderr);
}

/// Serves `body` to the first HTTP request on a loopback port; gives the address.
fn serve_once(body: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    address
}

/// A registry that refuses everything with 401, as one that needs a login does.
struct RefusingRegistry {
    address: String,
    _thread: std::thread::JoinHandle<()>,
}

impl RefusingRegistry {
    fn start() -> RefusingRegistry {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut buffer = [0u8; 8192];
                let _ = stream.read(&mut buffer);
                let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
                let reply = format!(
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        RefusingRegistry { address, _thread: thread }
    }
}

#[test]
fn the_dockerfile_pattern_builds_with_build_args_target_and_dockerignore() {
    let Some(services) = services() else { return };
    let manifest = format!(
        r#"[project]
name = "dockerfile"
registry = "{registry}"

[images.custom]
dockerfile = "docker/Dockerfile"
build_args = {{ BASE = "{base}", FLAVOUR = "from-the-manifest" }}
target = "final"

[environments.job]
kind = "app"
image = "custom"
version = "v1"
command = ["/bin/sh", "-c", "cat /flavour; ls /ctx; echo $FROM_DOCKERFILE; sh /app/run.sh"]
code = {{ copy_style = "full", include = ["run.sh"] }}
"#,
        registry = unique(&services, "dockerfile"),
        base = services.base_busybox
    );
    let dockerfile = "ARG BASE\nFROM $BASE AS unused\nRUN exit 1\n\nFROM $BASE AS final\nARG FLAVOUR\n\
                      COPY . /ctx\nRUN echo \"$FLAVOUR\" > /flavour\nENV FROM_DOCKERFILE=yes\n";
    let project = Project::new(
        &services,
        &[
            ("flyte.toml", &manifest),
            ("docker/Dockerfile", dockerfile),
            ("docker/.dockerignore", "secret.txt\n.dockerignore\nDockerfile\n"),
            ("docker/secret.txt", "never sent\n"),
            ("docker/kept.txt", "sent\n"),
            ("run.sh", "echo code in place\n"),
        ],
    );
    let built = project.build(&["--push"]);
    let reference = built[0]["reference"].as_str().unwrap();
    let output = project.pull_and_run(reference, &[reference]);
    assert_eq!(output, "from-the-manifest\nkept.txt\nyes\ncode in place\n");
    assert_eq!(project.build(&["--push"])[0]["outcome"], "exists");
}

/// The registry half of the buildkitd path (no buildkitd exists here to run the whole): inputs pushed as
/// small images and named by digest, once; and an image BuildKit pushed to a staging tag finished with
/// flyte's config over the same layers, none sent again.
#[tokio::test]
async fn on_a_buildkitd_inputs_travel_through_the_registry_and_flyte_finishes_the_image() {
    use flyte::bundle::{FileEntry, FileSet};
    use flyte::image::config::Settings;
    use flyte::image::registry::{ImageToPush, LayerBlob, Registry, RegistrySettings};
    use flyte::image::{buildkitd, inputs};
    let Some(services) = services() else { return };
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("requirements.txt"), "flyte_test_greeting\n").unwrap();
    let files = FileSet { files: vec![FileEntry::read(root.path(), "requirements.txt").unwrap()] };
    let input = inputs::prepare("requirements", root.path(), &files, cache.path()).unwrap();
    let registry = Registry::new(RegistrySettings::default()).unwrap();
    let repository = unique(&services, "buildkitd");

    let names = buildkitd::push_inputs(&registry, &repository, std::slice::from_ref(&input)).await.unwrap();
    let pulled_by = &names[&input.reference];
    assert!(pulled_by.starts_with(&format!("{repository}-inputs@sha256:")), "{pulled_by}");
    assert_eq!(
        registry.fetch_blob(pulled_by, &input.layer_digest).await.unwrap(),
        std::fs::read(&input.layer).unwrap()
    );
    let again = buildkitd::push_inputs(&registry, &repository, std::slice::from_ref(&input)).await.unwrap();
    assert_eq!(&again[&input.reference], pulled_by, "an input already in the registry is named, not pushed");

    // What BuildKit's image exporter would have pushed: one layer and a bare config.
    let layer = root.path().join("layer.tar");
    std::fs::write(&layer, vec![7u8; 4096]).unwrap();
    let digest = flyte::image::llb::digest_of(&std::fs::read(&layer).unwrap());
    let bare = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]},
                                  "rootfs": {"type": "layers", "diff_ids": [digest]}});
    let staged = ImageToPush {
        config: serde_json::to_vec(&bare).unwrap(),
        layers: vec![LayerBlob {
            path: layer,
            digest: digest.clone(),
            size: 4096,
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            mount_from: Vec::new(),
        }],
    };
    let staging = format!("{repository}:abc-buildkit");
    registry.push_image(&staging, &staged).await.unwrap();
    let settings = Settings {
        entrypoint: Some(vec!["/usr/local/bin/flyte-bootstrap".into()]),
        labels: [("org.flyte.version".to_string(), "abc".to_string())].into(),
        ..Settings::default()
    };
    let final_reference = format!("{repository}:abc");
    let report = buildkitd::finish(&registry, &staging, &final_reference, &Value::Null, &settings).await.unwrap();
    assert_eq!(report.uploaded().blobs, 1, "only the new config is uploaded: {report:?}");
    let manifest = registry.fetch_manifest(&final_reference).await.unwrap();
    let document: Value = serde_json::from_slice(&manifest.bytes).unwrap();
    assert_eq!(document["layers"][0]["digest"], digest);
    let config_digest = document["config"]["digest"].as_str().unwrap();
    let config: Value =
        serde_json::from_slice(&registry.fetch_blob(&final_reference, config_digest).await.unwrap()).unwrap();
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/usr/local/bin/flyte-bootstrap"]));
    assert_eq!(config["config"]["Labels"]["org.flyte.version"], "abc");
    assert_eq!(config["rootfs"]["diff_ids"][0], digest);
}

/// Ctrl-C stops `flyte build` and the step BuildKit was running for it.
#[test]
fn ctrl_c_cancels_the_build_and_its_running_step() {
    use crate::engine::process_with_argument;
    let Some(services) = services() else { return };
    let marker = format!("flyte-cancel-{}", std::process::id());
    let manifest = format!(
        r#"[project]
name = "cancel"
registry = "{registry}"

[images.slow]
dockerfile = "Dockerfile"
build_args = {{ BASE = "{base}" }}

[environments.job]
kind = "task"
image = "slow"
"#,
        registry = unique(&services, "cancel"),
        base = services.base_busybox
    );
    // The trailing echo keeps the shell (and its command line, with the marker) alive during the sleep.
    let dockerfile = format!("ARG BASE\nFROM $BASE\nRUN echo {marker} && sleep 300 && echo done\n");
    let project = Project::new(&services, &[("flyte.toml", &manifest), ("Dockerfile", &dockerfile)]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_flyte"))
        .args(["build", "--push"])
        .current_dir(project.path())
        .env("DOCKER_HOST", &project.docker_host)
        .env("FLYTE_CACHE_DIR", project.cache.path())
        .env("DOCKER_CONFIG", project.cache.path().join("docker-config"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !process_with_argument(&marker) {
        assert!(std::time::Instant::now() < deadline, "the slow step never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: a plain signal to the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_ne!(status.code(), Some(0), "an interrupted build does not succeed");
    let gone = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while process_with_argument(&marker) {
        assert!(std::time::Instant::now() < gone, "the step still runs after flyte was interrupted");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
