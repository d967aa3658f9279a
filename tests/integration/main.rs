//! The one integration test binary. Each module covers one area; `common` runs the built binary.

mod broken;
mod cli;
mod common;
mod examples;
