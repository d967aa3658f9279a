//! Images: the resolved image spec becomes BuildKit LLB ([`llb`]), a BuildKit reached through the Docker
//! Engine or a buildkitd solves it ([`engine`]), and the result is pushed to an OCI registry
//! ([`registry`]), skipping whatever the registry already has.

pub mod build;
pub mod buildkitd;
pub mod config;
pub mod dockerignore;
pub mod engine;
pub mod inputs;
pub mod job;
pub mod layers;
pub mod llb;
pub mod registry;
