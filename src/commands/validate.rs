use std::path::Path;

use crate::error::{Error, Exit};
use crate::manifest::{self, Report};
use crate::output::Output;

pub fn run(path: &Path, out: &Output) -> Result<Exit, Error> {
    let parsed = super::parse(path)?;
    let diagnostics = manifest::validate_all(&parsed);
    if diagnostics.iter().any(|d| d.is_error()) {
        return Err(Error::Manifest(Report { source: Some(parsed.source), diagnostics }));
    }
    out.warnings(Some(&parsed.source), &diagnostics);
    let domains = parsed.declared_domains();
    match out.format {
        crate::cli::Format::Text if !out.quiet => {
            out.result(&format!("{} is valid for {}", path.display(), domains.join(", ")))
        }
        crate::cli::Format::Json => out.result(
            &crate::output::diagnostics_json(Some(&parsed.source), &diagnostics.iter().collect::<Vec<_>>()).to_string(),
        ),
        _ => {}
    }
    super::leave(parsed);
    Ok(Exit::Success)
}
