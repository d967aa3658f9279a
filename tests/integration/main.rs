//! The one integration test binary. Each module covers one area; `common` runs the built binary.

mod archive;
mod broken;
mod bundle;
mod cli;
mod common;
mod examples;
mod gitignore;
