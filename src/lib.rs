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
pub mod plan;

pub use error::{Error, Exit};
