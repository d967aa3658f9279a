use crate::bundle::{cache, cache_dir};
use crate::cli::CacheCommand;
use crate::error::{Error, Exit};
use crate::output::Output;
use crate::plan::render::size;

pub fn run(command: &CacheCommand, out: &Output) -> Result<Exit, Error> {
    let dir = cache_dir();
    match command {
        CacheCommand::Dir => out.result(&dir.display().to_string()),
        CacheCommand::Clean => {
            let freed = cache::clean(&dir).map_err(|e| {
                Error::input(format!("cannot remove {}: {e}", dir.display()), "check the folder's permissions")
            })?;
            out.status(&format!("removed {} ({} freed)", dir.display(), size(freed)));
        }
    }
    Ok(Exit::Success)
}
