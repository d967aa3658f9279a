//! The one integration test binary. Each module covers one area; `common` runs the built binary.

mod archive;
mod broken;
mod bundle;
mod cli;
mod common;
mod engine;
mod examples;
mod gitignore;
mod images;
mod registry;
mod services;
