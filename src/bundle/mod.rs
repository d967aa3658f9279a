//! Code and file selection for versions: which files belong to a bundle, an image's sources or a build
//! context, and their digests.
//!
//! Takes a folder and include/exclude globs; gives the sorted list of files with their content digests,
//! and one digest over the list. The standard ignores (version control, caches, virtualenvs, build
//! output, the manifest itself) always apply. `.gitignore` and `.flyteignore` are not read yet: the code
//! bundle issue adds them.

pub mod select;

pub use select::{FileEntry, FileSet, Selection};
