//! An image's resolved spec → its LLB graph, layers ordered for cache hits: the base, system packages,
//! Python dependencies (uv lock, requirements, pip), source folders, the working directory, then
//! either the bootstrap (fast-copy: the code arrives as a bundle at start) or the code itself (full
//! build). Local files reach BuildKit as small input images that [`crate::image::inputs`] loads into
//! the engine; the recipe only names them.

use crate::image::config::EnvList;
use crate::image::llb::{Copy, Graph, Run, State};
use crate::manifest::model::Image;

/// Where the fast-copy bootstrap lives in every fast-copy image.
pub const BOOTSTRAP_PATH: &str = "/usr/local/bin/flyte-bootstrap";
/// The virtual environment a uv project's locked dependencies go into.
pub const UV_VENV: &str = "/opt/flyte-venv";
/// The PATH build steps run with when the base image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The fast-copy entrypoint: fetch and unpack the bundle named by FLYTE_CODE_BUNDLE (a path or an
/// http(s) URL) into FLYTE_CODE_DIR, then exec the command. POSIX sh, no pipes (no pipefail in dash),
/// any of python3, wget or curl for downloads.
pub const BOOTSTRAP: &str = r#"#!/bin/sh
# flyte fast-copy bootstrap: unpack the code bundle, then run the command.
set -eu
if [ -n "${FLYTE_CODE_BUNDLE:-}" ]; then
    dir="${FLYTE_CODE_DIR:-/app}"
    mkdir -p "$dir"
    case "$FLYTE_CODE_BUNDLE" in
    http://*|https://*)
        # Beside the code, not in /tmp: a minimal image may have no /tmp.
        archive="$dir/.flyte-bundle.tar.gz"
        if command -v python3 >/dev/null 2>&1; then
            python3 -c 'import sys, shutil, urllib.request; shutil.copyfileobj(urllib.request.urlopen(sys.argv[1]), open(sys.argv[2], "wb"))' "$FLYTE_CODE_BUNDLE" "$archive"
        elif command -v wget >/dev/null 2>&1; then
            wget -q -O "$archive" "$FLYTE_CODE_BUNDLE"
        elif command -v curl >/dev/null 2>&1; then
            curl -fsSL -o "$archive" "$FLYTE_CODE_BUNDLE"
        else
            echo "flyte-bootstrap: no python3, wget or curl to fetch $FLYTE_CODE_BUNDLE" >&2
            exit 1
        fi
        tar -xzf "$archive" -C "$dir"
        rm -f "$archive"
        ;;
    *)
        tar -xzf "$FLYTE_CODE_BUNDLE" -C "$dir"
        ;;
    esac
fi
if [ "$#" -eq 0 ]; then
    echo "flyte-bootstrap: the code is in place; no command was given" >&2
    exit 0
fi
exec "$@"
"#;

/// The input images holding local files, each with its files at `/`.
#[derive(Clone, Debug, Default)]
pub struct InputImages {
    /// Each input image holds its files at their paths relative to root_dir.
    pub requirements: Option<String>,
    /// The pyproject.toml and the lock beside it.
    pub uv_project: Option<String>,
    /// One per source folder, in manifest order.
    pub sources: Vec<String>,
    /// The code of a full build.
    pub code: Option<String>,
}

impl InputImages {
    /// Swaps each name for the one `names` gives (the registry's, when inputs travel that way).
    pub fn rename(&mut self, names: &std::collections::HashMap<String, String>) {
        let swap = |name: &mut String| {
            if let Some(new) = names.get(name.as_str()) {
                *name = new.clone();
            }
        };
        self.requirements.iter_mut().chain(self.uv_project.iter_mut()).chain(self.code.iter_mut()).for_each(swap);
        self.sources.iter_mut().for_each(swap);
    }
}

/// What shape of image to make.
pub enum Shape<'a> {
    /// Dependencies and the bootstrap; the code comes as a bundle at start.
    Fast,
    /// Code baked in at `dst`.
    Full { dst: &'a str },
}

/// The base image's settings that build steps inherit (they do not get the image's ENV by themselves).
#[derive(Clone, Debug, Default)]
pub struct BaseConfig {
    pub env: Vec<String>,
}

/// Builds the graph for `image` on the resolved `base` reference and returns the result state.
pub fn image_graph(
    graph: &mut Graph,
    image: &Image,
    base_reference: &str,
    base: &BaseConfig,
    inputs: &InputImages,
    shape: &Shape,
) -> State {
    let env = build_env(image, base);
    let mut state = graph.image(base_reference, &format!("base {base_reference}"));

    if !image.apt.is_empty() {
        let script = format!(
            "apt-get update && apt-get install -y --no-install-recommends {} && rm -rf /var/lib/apt/lists/*",
            image.apt.iter().map(|p| shell_quote(p)).collect::<Vec<_>>().join(" ")
        );
        let mut step_env = env.clone();
        step_env.push("DEBIAN_FRONTEND=noninteractive".into());
        let run = run(vec!["/bin/sh".into(), "-c".into(), script], step_env, Vec::new());
        state = graph.exec(&state, run, &format!("apt-get install {}", image.apt.join(" ")));
    }

    let uv = image.uv_project.as_ref().zip(inputs.uv_project.as_ref());
    if let Some((uv_project, uv_image)) = uv {
        let source = graph.image(uv_image, "uv project files");
        // The input image keeps the files' paths relative to root_dir.
        let folder = uv_project.pyproject.rsplit_once('/').map_or("", |(folder, _)| folder);
        let script = format!(
            "python3 -m pip install --no-cache-dir uv && \
             UV_PROJECT_ENVIRONMENT={UV_VENV} uv sync --locked --no-install-project --no-dev --project {}",
            shell_quote(&format!("/flyte/uv/{folder}"))
        );
        let run = run(
            vec!["/bin/sh".into(), "-c".into(), script],
            env.clone(),
            vec![(source, "/".into(), "/flyte/uv".into())],
        );
        state = graph.exec(&state, run, "uv sync --locked (dependencies of the uv project)");
    }
    let pip_prefix: Vec<String> = if uv.is_some() {
        ["uv", "pip", "install", "--python", &format!("{UV_VENV}/bin/python")].map(String::from).to_vec()
    } else {
        ["python3", "-m", "pip", "install", "--no-cache-dir"].map(String::from).to_vec()
    };
    if let (Some(requirements), Some(requirements_image)) = (&image.requirements, &inputs.requirements) {
        let source = graph.image(requirements_image, "requirements file");
        let mut args = pip_prefix.clone();
        args.extend(["-r".to_string(), format!("/flyte/requirements/{requirements}")]);
        let run = run(args, env.clone(), vec![(source, "/".into(), "/flyte/requirements".into())]);
        state = graph.exec(&state, run, &format!("pip install -r {requirements}"));
    }
    if !image.pip.is_empty() {
        let mut args = pip_prefix.clone();
        args.extend(image.pip.iter().map(|p| p.to_string()));
        state = graph.exec(&state, run(args, env.clone(), Vec::new()), &format!("pip install {}", image.pip.join(" ")));
    }

    for (folder, source_image) in image.sources.iter().zip(&inputs.sources) {
        let source = graph.image(source_image, &format!("source folder {}", folder.src));
        let dest = if folder.copy_contents_only {
            folder.dst.to_string()
        } else {
            let name = folder.src.trim_end_matches('/').rsplit('/').next().unwrap_or(&folder.src);
            format!("{}/{name}", folder.dst.trim_end_matches('/'))
        };
        let copy = Copy { src: "/", dest: &dest, contents_only: true };
        state = graph.copy(&state, &source, copy, &format!("copy {} to {dest}", folder.src));
    }
    if let Some(workdir) = &image.workdir {
        state = graph.mkdir(&state, workdir, &format!("workdir {workdir}"));
    }

    match shape {
        Shape::Fast => {
            state = graph.mkdir(&state, "/usr/local/bin", "folder for the bootstrap");
            graph.mkfile(&state, BOOTSTRAP_PATH, 0o755, BOOTSTRAP.as_bytes().to_vec(), "fast-copy bootstrap")
        }
        Shape::Full { dst } => match &inputs.code {
            Some(code_image) => {
                let code = graph.image(code_image, "code");
                let copy = Copy { src: "/", dest: dst, contents_only: true };
                graph.copy(&state, &code, copy, &format!("copy the code to {dst}"))
            }
            None => state,
        },
    }
}

/// A build step: as root, from `/`, on the host network (dockerd's bridge has no NAT here, and
/// package indexes must be reachable), with the base image's and the image's environment.
fn run(args: Vec<String>, env: Vec<String>, mounts: Vec<(State, String, String)>) -> Run<'static> {
    Run { args, env, cwd: "/", user: "", host_network: true, mounts, caches: Vec::new() }
}

/// The environment of build steps: the base image's, then the image's own (as Dockerfile ENV lines
/// before RUN lines would), with a PATH always present and pip kept quiet and allowed to install into
/// a distribution's Python.
pub fn build_env(image: &Image, base: &BaseConfig) -> Vec<String> {
    let mut env = EnvList::default();
    env.set("PATH", DEFAULT_PATH);
    base.env.iter().for_each(|entry| env.set_entry(entry));
    env.set("PIP_BREAK_SYSTEM_PACKAGES", "1");
    env.set("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    env.set("PIP_ROOT_USER_ACTION", "ignore");
    for (key, value) in &image.env {
        env.set(key, value);
    }
    env.entries()
}

/// Quotes a word for /bin/sh unless it is plainly safe.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | '+' | ','));
    if safe { word.to_string() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}
