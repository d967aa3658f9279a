//! The command line: clap types only. Doc comments are the help text.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Build and deploy Flyte apps and task environments from one manifest.
#[derive(Debug, Parser)]
#[command(name = "flyte", version, about, max_term_width = 100)]
pub struct Cli {
    /// The manifest to use. Default: flyte.toml or flyte.kdl in this folder or the nearest parent.
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Output format, for results and diagnostics alike.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a starter manifest in the current folder.
    Init(InitArgs),
    /// Check the manifest for every domain and report every mistake.
    Validate,
    /// Show the deployment plan: bundles, images and deployments, in order, with their versions.
    Plan(PlanArgs),
    /// Print the resolved manifest for a domain, with where each value came from.
    Config(DomainArg),
    /// Print the manifest's JSON Schema.
    Schema,
    /// Build the code bundles of fast-copy environments, and show what goes in and what is left out.
    Bundle(BundleArgs),
    /// Build the images of the plan with BuildKit, and push them with --push; skips what exists.
    Build(BuildArgs),
    /// Manage flyte's cache of file digests and built bundles.
    #[command(subcommand)]
    Cache(CacheCommand),
}

#[derive(Debug, clap::Args)]
pub struct BundleArgs {
    /// The environment to bundle. Default: every fast-copy environment.
    pub environment: Option<String>,
    #[command(flatten)]
    pub domain: DomainArg,
    /// Also write the bundle to FILE (atomically). Needs ENVIRONMENT when several would be bundled.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// List every file that goes in, with its mode and size.
    #[arg(long)]
    pub list: bool,
    /// List every file and folder left out, with the rule (file and line) that left it out.
    #[arg(long)]
    pub explain: bool,
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Build only the images these environments use. Default: every image of the plan.
    #[arg(value_name = "ENV")]
    pub environments: Vec<String>,
    #[command(flatten)]
    pub domain: DomainArg,
    /// Push to the registry. Without it the images go into the Docker Engine's image store.
    #[arg(long)]
    pub push: bool,
    /// Build even when the registry (or engine) already has the image's content tag.
    #[arg(long)]
    pub force: bool,
    /// Write each image's LLB definition (protobuf) into DIR.
    #[arg(long, value_name = "DIR")]
    pub emit_llb: Option<PathBuf>,
    /// Print the steps of each image without building, pushing or resolving anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Write what was built or found (references with digests) to FILE, as JSON.
    #[arg(long, value_name = "FILE")]
    pub image_refs: Option<PathBuf>,
    /// Push to this registry instead of the manifest's (e.g. in CI).
    #[arg(long, env = "FLYTE_REGISTRY", value_name = "HOST[/PATH]")]
    pub registry: Option<String>,
    /// Images built at the same time.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub jobs: usize,
    /// Reach this registry over plain HTTP although it is not on loopback (repeat, or comma-separate).
    #[arg(
        long = "insecure-registry",
        env = "FLYTE_INSECURE_REGISTRIES",
        value_delimiter = ',',
        value_name = "HOST[:PORT]"
    )]
    pub insecure_registries: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Print where the cache lives.
    Dir,
    /// Remove everything in the cache; it is rebuilt as needed.
    Clean,
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Write flyte.kdl instead of flyte.toml.
    #[arg(long)]
    pub kdl: bool,
    /// The project name. Default: the folder's name, made a DNS label.
    #[arg(long)]
    pub name: Option<String>,
    /// Overwrite an existing manifest.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct DomainArg {
    /// The domain to resolve. Default: the project's default_domain.
    #[arg(short, long)]
    pub domain: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub domain: DomainArg,
    /// Show what went into every version.
    #[arg(long)]
    pub explain: bool,
}
