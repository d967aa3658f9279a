//! Running the real `flyte` binary and reading what it printed.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// A finished process's exit code (-1 when a signal ended it) and its output as text.
    pub fn from_output(output: std::process::Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs `flyte ARGS` in `dir` with colour off and a fixed terminal width.
pub fn flyte(dir: &Path, args: &[&str]) -> Run {
    flyte_with(dir, args, &[])
}

/// Like [`flyte`], with extra environment variables (a private FLYTE_CACHE_DIR, say).
pub fn flyte_with(dir: &Path, args: &[&str], vars: &[(&str, &Path)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_flyte"))
        .envs(vars.iter().map(|(k, v)| (*k, *v)))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the flyte binary runs");
    Run::from_output(output)
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compares `actual` with the snapshot file; with FLYTE_UPDATE_SNAPSHOTS=1 it rewrites the file instead.
pub fn snapshot(path: &Path, actual: &str) {
    if std::env::var_os("FLYTE_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|_| {
        panic!("missing snapshot {}: run with FLYTE_UPDATE_SNAPSHOTS=1 to write it", path.display())
    });
    if expected != actual {
        panic!(
            "snapshot {} differs (FLYTE_UPDATE_SNAPSHOTS=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }
}
