//! flyte: declarative build-and-deploy for Flyte apps and task environments, from one manifest.
//!
//! The pipeline: [`manifest`] (parse, overlay, validate) → [`plan`] (DAG, versions) → [`output`].
//! The library never prints; `src/main.rs` and [`commands`] are the edge.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod bundle;
pub mod cli;
pub mod commands;
pub mod error;
pub mod image;
pub mod manifest;
pub mod output;
pub mod parts;
pub mod plan;

pub use error::{Error, Exit};

/// mimalloc for every binary that links the crate (flyte, its tests and benches): loading a large
/// manifest makes and frees millions of small strings and tables, and glibc's allocator spent a third of
/// that time consolidating and unlinking chunks. Its v2 line (see Cargo.toml): it reuses freed memory
/// for what is allocated next far better than v3 in this pipeline of passes that each free the last.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
