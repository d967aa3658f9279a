use std::path::Path;

use crate::cli::{Format, PlanArgs};
use crate::error::{Error, Exit};
use crate::output::Output;
use crate::{manifest, plan};

pub fn run(path: &Path, args: &PlanArgs, out: &Output) -> Result<Exit, Error> {
    let (source, manifest, warnings) = manifest::load(path, args.domain.domain.as_deref()).map_err(Error::Manifest)?;
    out.warnings(Some(&source), &warnings);
    let explain = args.explain || out.format == Format::Json;
    let plan = plan::build(&manifest, if explain { plan::Explain::Yes } else { plan::Explain::No })?;
    match out.format {
        Format::Text => out.result(&plan::render::text(&plan, args.explain)),
        Format::Json => out.result(&serde_json::to_string_pretty(&plan).map_err(|e| Error::Internal(e.to_string()))?),
    }
    super::leave((plan, manifest, source));
    Ok(Exit::Success)
}
