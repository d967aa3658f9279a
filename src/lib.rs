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

/// How many threads to spread `items` over, giving each at least `per_thread`: 1 for anything
/// smaller than two such parts, so a small manifest never starts a thread. The core count is read
/// once (on Linux it is read from cgroup files, too slow to repeat per table).
pub fn threads_for(items: usize, per_thread: usize) -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let parts = items / per_thread.max(1);
    if parts < 2 {
        return 1;
    }
    parts.min(*CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from)))
}

/// mimalloc for every binary that links the crate (flyte, its tests and benches): loading a large
/// manifest makes and frees millions of small strings and tables, and glibc's allocator spent a third of
/// that time consolidating and unlinking chunks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
