use std::io::Write;

use crate::cli::InitArgs;
use crate::error::{Error, Exit};
use crate::manifest::{Format, starter::starter, units::dns_label_like};
use crate::output::Output;

pub fn run(args: &InitArgs, out: &Output) -> Result<Exit, Error> {
    let cwd = std::env::current_dir().map_err(|e| {
        Error::input(format!("cannot read the current folder: {e}"), "run flyte init from an existing folder")
    })?;
    let (file, format) = if args.kdl { ("flyte.kdl", Format::Kdl) } else { ("flyte.toml", Format::Toml) };
    let name = match &args.name {
        Some(name) => name.clone(),
        None => {
            let folder = cwd.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            Some(dns_label_like(&folder)).filter(|n| !n.is_empty()).unwrap_or_else(|| "my-project".to_string())
        }
    };
    let path = cwd.join(file);
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true)
    } else {
        options.create_new(true)
    };
    let mut handle = options.open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            Error::input(format!("{} already exists", path.display()), "keep it, or pass --force to replace it")
        }
        _ => Error::input(format!("cannot write {}: {e}", path.display()), "check the folder's permissions"),
    })?;
    handle.write_all(starter(&name, format).as_bytes()).map_err(|e| {
        Error::input(format!("cannot write {}: {e}", path.display()), "check the free space and permissions")
    })?;
    out.status(&format!("wrote {} for project {name}; next: flyte validate, flyte plan", path.display()));
    Ok(Exit::Success)
}
