use crate::error::{Error, Exit};
use crate::manifest::schema;
use crate::output::Output;

pub fn run(out: &Output) -> Result<Exit, Error> {
    out.result(&schema::render());
    Ok(Exit::Success)
}
