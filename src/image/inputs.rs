//! Local files an image needs (a requirements file, a uv project's pyproject and lock, source folders,
//! the code of a full build, a Dockerfile's context) reach BuildKit as one-layer images in the engine's
//! store, named by their content: `flyte.local/input/<kind>:<digest>`. BuildKit reads them as
//! `docker-image://` sources (the engine looks in its own store first). An input already in the store is
//! not sent again, so a build sends only the inputs that changed. The layer is the same deterministic
//! tar.gz a code bundle is ([`crate::bundle::build`]), kept in the cache by content digest.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use crate::bundle::FileSet;
use crate::bundle::build::{self as bundle_build, Bundle};

/// The registry part of input image names: not a real host, so a missing input never reaches a network.
pub const INPUT_REGISTRY: &str = "flyte.local";

/// An input image, prepared on disk and named.
#[derive(Clone, Debug)]
pub struct Input {
    /// `flyte.local/input/<kind>:<first 32 hex digits of the content digest>`.
    pub reference: String,
    pub kind: String,
    /// A `docker load` archive holding it.
    pub load_archive: PathBuf,
    pub files: usize,
    pub bytes: u64,
    /// The layer (the bundle's tar.gz), its `sha256:…` and size, and the image config over it: what a
    /// registry gets when inputs travel that way (to a buildkitd, which has no image store).
    pub layer: PathBuf,
    pub layer_digest: String,
    pub layer_size: u64,
    pub config: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Bundle(#[from] bundle_build::BuildError),
    #[error("cannot write the build input {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// Prepares the input image of `files` (paths relative to `root`) in the cache.
pub fn prepare(kind: &str, root: &Path, files: &FileSet, cache: &Path) -> Result<Input, InputError> {
    let bundle = bundle_build::build(root, files, cache)?;
    let reference = format!("{INPUT_REGISTRY}/input/{kind}:{}", &bundle.digest[..32]);
    let load_archive = cache.join("inputs").join(format!("{kind}-{}.tar", bundle.digest));
    let write_error = |source| InputError::Write { path: load_archive.clone(), source };
    let config = input_config(&bundle).map_err(write_error)?;
    if !load_archive.exists() {
        write_load_archive(&bundle, &config, &reference, &load_archive).map_err(write_error)?;
    }
    Ok(Input {
        reference,
        kind: kind.to_string(),
        load_archive,
        files: bundle.files,
        bytes: bundle.bytes,
        layer: bundle.archive.clone(),
        layer_digest: format!("sha256:{}", bundle.archive_sha256),
        layer_size: bundle.archive_bytes,
        config,
    })
}

/// The config of an input image: its one layer's uncompressed digest, kept beside the archive once
/// computed (it takes reading the whole archive).
fn input_config(bundle: &Bundle) -> io::Result<Vec<u8>> {
    let sidecar = bundle.archive.with_extension("diffid");
    let diff_id = match std::fs::read_to_string(&sidecar) {
        Ok(text) if text.starts_with("sha256:") && text.trim().len() == 71 => text.trim().to_string(),
        _ => {
            let mut hasher = Sha256::new();
            io::copy(&mut MultiGzDecoder::new(File::open(&bundle.archive)?), &mut hasher)?;
            let diff_id = format!("sha256:{}", hex::encode(hasher.finalize()));
            crate::bundle::cache::write_atomic(&sidecar, diff_id.as_bytes())?;
            diff_id
        }
    };
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    });
    serde_json::to_vec(&config).map_err(io::Error::other)
}

/// A `docker load` archive: `manifest.json`, the config and the layer (the bundle's tar.gz: the
/// engine unpacks compressed layers), written to a temporary file and renamed into place.
fn write_load_archive(bundle: &Bundle, config: &[u8], reference: &str, target: &Path) -> io::Result<()> {
    let config_name = format!("{}.json", hex::encode(Sha256::digest(config)));
    let manifest = serde_json::json!([{ "Config": config_name, "RepoTags": [reference], "Layers": ["layer.tar.gz"] }]);
    let manifest = serde_json::to_vec(&manifest).map_err(io::Error::other)?;

    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let temp = tempfile::NamedTempFile::new_in(parent)?;
    {
        let mut out = BufWriter::with_capacity(1 << 20, temp.as_file());
        let layer_size = std::fs::metadata(&bundle.archive)?.len();
        tar_file(&mut out, &config_name, config.len() as u64, &mut &config[..])?;
        tar_file(&mut out, "layer.tar.gz", layer_size, &mut File::open(&bundle.archive)?)?;
        tar_file(&mut out, "manifest.json", manifest.len() as u64, &mut &manifest[..])?;
        out.write_all(&[0u8; 1024])?;
        out.flush()?;
    }
    temp.persist(target).map_err(|e| e.error)?;
    Ok(())
}

/// One regular-file entry of a plain ustar stream (short names only, which is all this archive has).
pub(crate) fn tar_file(out: &mut impl Write, name: &str, size: u64, data: &mut impl Read) -> io::Result<()> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..107].copy_from_slice(b"0000644");
    header[108..115].copy_from_slice(b"0000000");
    header[116..123].copy_from_slice(b"0000000");
    header[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    header[136..147].copy_from_slice(format!("{:011o}", crate::bundle::archive::MTIME).as_bytes());
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let checksum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..155].copy_from_slice(format!("{checksum:06o}\0").as_bytes());
    out.write_all(&header)?;
    let copied = io::copy(&mut data.take(size), out)?;
    if copied != size {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{name} is shorter than {size} bytes")));
    }
    out.write_all(&vec![0u8; ((512 - size % 512) % 512) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::FileEntry;

    #[test]
    fn an_input_is_named_by_its_content_and_loads_as_a_docker_archive() {
        let root = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("requirements.txt"), "flask\n").unwrap();
        let files = FileSet { files: vec![FileEntry::read(root.path(), "requirements.txt").unwrap()] };
        let first = prepare("requirements", root.path(), &files, cache.path()).unwrap();
        assert!(first.reference.starts_with("flyte.local/input/requirements:"));
        let again = prepare("requirements", root.path(), &files, cache.path()).unwrap();
        assert_eq!(first.reference, again.reference);

        // GNU tar reads the archive and finds the three members docker load needs.
        let listing = std::process::Command::new("tar").arg("-tf").arg(&first.load_archive).output().unwrap();
        let listing = String::from_utf8(listing.stdout).unwrap();
        assert!(listing.contains("manifest.json") && listing.contains("layer.tar.gz"), "{listing}");

        std::fs::write(root.path().join("requirements.txt"), "flask==3\n").unwrap();
        let files = FileSet { files: vec![FileEntry::read(root.path(), "requirements.txt").unwrap()] };
        let changed = prepare("requirements", root.path(), &files, cache.path()).unwrap();
        assert_ne!(first.reference, changed.reference);
    }
}
