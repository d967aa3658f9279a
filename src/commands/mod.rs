//! One thin file per subcommand: settings in, one library call, output out.

mod build;
mod bundle;
mod cache;
mod config;
mod init;
mod plan;
mod schema;
mod validate;

use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command};
use crate::error::{Error, Exit};
use crate::manifest;
use crate::output::Output;

/// Runs one command. Meant to be the last thing the process does: a command leaves its large values
/// (see [`leave`]) to the operating system instead of freeing them.
pub fn run(cli: Cli, out: &Output) -> Result<Exit, Error> {
    match &cli.command {
        Command::Init(args) => init::run(args, out),
        Command::Validate => validate::run(&locate(cli.file.as_deref(), out)?, out),
        Command::Plan(args) => plan::run(&locate(cli.file.as_deref(), out)?, args, out),
        Command::Config(args) => config::run(&locate(cli.file.as_deref(), out)?, args.domain.as_deref(), out),
        Command::Schema => schema::run(out),
        Command::Bundle(args) => bundle::run(&locate(cli.file.as_deref(), out)?, args, out),
        Command::Build(args) => build::run(&locate(cli.file.as_deref(), out)?, args, out),
        Command::Cache(command) => cache::run(command, out),
    }
}

/// The manifest named with -f, or the one found from the current folder upwards.
fn locate(file: Option<&Path>, out: &Output) -> Result<PathBuf, Error> {
    if let Some(file) = file {
        return Ok(file.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| {
        Error::input(format!("cannot read the current folder: {e}"), "run flyte from an existing folder")
    })?;
    match manifest::find(&cwd) {
        Ok((path, warning)) => {
            out.warnings(None, warning.as_slice());
            Ok(path)
        }
        Err(diagnostic) => Err(Error::Manifest(manifest::Report { source: None, diagnostics: vec![diagnostic] })),
    }
}

/// Leaves `value` unfreed: the process ends when the command returns and the operating system takes
/// its memory back at once, while freeing a 10,000-environment manifest's tree, model and plan object
/// by object took 40 ms, a sixth of `flyte plan`. Only for plain data: nothing whose drop writes,
/// removes or releases anything (files, folders, locks, connections).
fn leave<T>(value: T) {
    std::mem::forget(value);
}

/// Reads and parses a manifest, turning failures into the command's error.
fn parse(path: &Path) -> Result<manifest::Parsed, Error> {
    let source = manifest::read(path).map_err(Error::Manifest)?;
    manifest::parse(source).map_err(Error::Manifest)
}
