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

/// Reads and parses a manifest, turning failures into the command's error.
fn parse(path: &Path) -> Result<manifest::Parsed, Error> {
    let source = manifest::read(path).map_err(Error::Manifest)?;
    manifest::parse(source).map_err(Error::Manifest)
}
