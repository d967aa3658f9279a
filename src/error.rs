//! The one error type of the command line and the exit codes it maps to (the README's table).

use crate::bundle::BundleError;
use crate::manifest::Report;
use crate::plan::PlanError;

/// Exit codes, the same for every command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// The manifest or other input is invalid.
    Invalid = 1,
    /// Changes are present (only with `--detailed-exitcode`).
    Changes = 2,
    Build = 3,
    Registry = 4,
    Cluster = 5,
    Readiness = 6,
    LockHeld = 7,
    Usage = 64,
    Internal = 70,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Manifest diagnostics, rendered with their source.
    #[error("the manifest has errors")]
    Manifest(Report),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    #[error(transparent)]
    Image(#[from] crate::image::build::BuildError),
    #[error("{message}")]
    Input { message: String, help: Option<String> },
    #[error("{0}")]
    Usage(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Manifest(_) | Error::Input { .. } => Exit::Invalid,
            Error::Plan(PlanError::Files(_) | PlanError::Context { .. }) => Exit::Invalid,
            Error::Plan(PlanError::Cycle(_)) | Error::Internal(_) => Exit::Internal,
            Error::Usage(_) => Exit::Usage,
            Error::Bundle(BundleError::Build(_)) => Exit::Build,
            Error::Bundle(_) => Exit::Invalid,
            Error::Image(error) if error.is_registry() => Exit::Registry,
            Error::Image(crate::image::build::BuildError::Job(_)) => Exit::Invalid,
            Error::Image(_) => Exit::Build,
        }
    }

    pub fn input(message: impl Into<String>, help: impl Into<String>) -> Error {
        Error::Input { message: message.into(), help: Some(help.into()) }
    }
}
