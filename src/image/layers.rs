//! The layers of an image the engine built: its `docker save` stream → the config bytes and one file
//! per layer in the cache, named by the layer's uncompressed digest (its diff id), so a layer that an
//! earlier build already wrote is recognised and not written again.
//!
//! Layers go to loopback registries as plain tar (no bandwidth to save; compression would dominate the
//! push) and elsewhere as gzip. Either way the layer file is made once per diff id and kept.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

pub const MEDIA_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A layer file ready to push.
#[derive(Clone, Debug)]
pub struct Layer {
    /// sha256 of the uncompressed tar, `sha256:…`.
    pub diff_id: String,
    /// sha256 of the file's bytes, `sha256:…`.
    pub digest: String,
    pub size: u64,
    pub media_type: &'static str,
    pub path: PathBuf,
}

/// What `docker save` gave: the image config's exact bytes and the layers in config order.
pub struct Saved {
    pub config: Vec<u8>,
    pub layers: Vec<Layer>,
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("cannot read the image the engine exported: {0}")]
    Read(io::Error),
    #[error("cannot write a layer into the cache at {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("the image the engine exported is not what flyte expects: {0}")]
    Format(String),
}

/// Splits a `docker save` tar stream. `skip` holds diff ids the caller does not need files for (layers
/// the registry already has under a known digest); they are read past, not written.
pub fn split_save(
    mut stream: impl Read,
    cache: &Path,
    compress: bool,
    skip: &dyn Fn(&str) -> bool,
) -> Result<Saved, LayerError> {
    let mut manifest: Option<Vec<u8>> = None;
    let mut jsons: HashMap<String, Vec<u8>> = HashMap::new();
    // Layer path in the tar → its diff id (every layer, written or skipped).
    let mut layer_ids: HashMap<String, String> = HashMap::new();
    let mut files: HashMap<String, Layer> = HashMap::new();
    let mut header = [0u8; 512];
    let mut long_name: Option<String> = None;
    loop {
        if !read_block(&mut stream, &mut header)? {
            break;
        }
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let size = octal_size(&header[124..136])?;
        let kind = header[156];
        let name = long_name.take().unwrap_or_else(|| header_name(&header));
        match kind {
            b'x' => {
                let data = read_exact_vec(&mut stream, size)?;
                long_name = pax_path(&data);
                skip_padding(&mut stream, size)?;
            }
            b'0' | 0 if name.ends_with("/layer.tar") || name.ends_with(".tar") => {
                let layer = store_layer(&mut (&mut stream).take(size), size, cache, compress, skip)?;
                skip_padding(&mut stream, size)?;
                layer_ids.insert(name.clone(), layer.diff_id.clone());
                files.insert(layer.diff_id.clone(), layer);
            }
            b'0' | 0 if name == "manifest.json" => {
                manifest = Some(read_exact_vec(&mut stream, size)?);
                skip_padding(&mut stream, size)?;
            }
            b'0' | 0 if name.ends_with(".json") && !name.contains('/') => {
                jsons.insert(name, read_exact_vec(&mut stream, size)?);
                skip_padding(&mut stream, size)?;
            }
            _ => {
                io::copy(&mut (&mut stream).take(size), &mut io::sink()).map_err(LayerError::Read)?;
                skip_padding(&mut stream, size)?;
            }
        }
    }
    let manifest = manifest.ok_or_else(|| LayerError::Format("no manifest.json in the saved image".into()))?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&manifest).map_err(|e| LayerError::Format(format!("manifest.json: {e}")))?;
    let entry = manifest.get(0).ok_or_else(|| LayerError::Format("manifest.json lists no image".into()))?;
    let config_name = entry["Config"].as_str().unwrap_or_default();
    let config = jsons
        .remove(config_name)
        .ok_or_else(|| LayerError::Format(format!("the config {config_name} is missing from the saved image")))?;
    let config_value: serde_json::Value =
        serde_json::from_slice(&config).map_err(|e| LayerError::Format(format!("config: {e}")))?;
    let diff_ids: Vec<String> = config_value["rootfs"]["diff_ids"]
        .as_array()
        .map(|ids| ids.iter().filter_map(|id| id.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let listed: Vec<&str> =
        entry["Layers"].as_array().map(|l| l.iter().filter_map(|p| p.as_str()).collect()).unwrap_or_default();
    if listed.len() != diff_ids.len() {
        return Err(LayerError::Format(format!("{} layers listed, {} in the config", listed.len(), diff_ids.len())));
    }
    let mut layers = Vec::new();
    for (path, diff_id) in listed.iter().zip(&diff_ids) {
        match layer_ids.get(*path) {
            Some(found) if found == diff_id => {}
            Some(found) => {
                return Err(LayerError::Format(format!("layer {path} has digest {found}, the config says {diff_id}")));
            }
            None => return Err(LayerError::Format(format!("layer {path} is missing from the saved image"))),
        }
        // A skipped layer has no file; the caller knows where the registry keeps it.
        if let Some(layer) = files.get(diff_id) {
            layers.push(layer.clone());
        } else {
            layers.push(Layer {
                diff_id: diff_id.clone(),
                digest: String::new(),
                size: 0,
                media_type: MEDIA_TAR,
                path: PathBuf::new(),
            });
        }
    }
    Ok(Saved { config, layers })
}

/// The cached layer file for `diff_id`, if a complete one is there.
fn cached(folder: &Path, diff_id: &str, compress: bool) -> Option<Layer> {
    let hex = diff_id.trim_start_matches("sha256:");
    let (suffix, media_type) = if compress { ("tar.gz", MEDIA_TAR_GZIP) } else { ("tar", MEDIA_TAR) };
    let path = folder.join(format!("{hex}.{suffix}"));
    let size = std::fs::metadata(&path).ok()?.len();
    let digest = if compress {
        std::fs::read_to_string(folder.join(format!("{hex}.tar.gz.digest"))).ok()?.trim().to_string()
    } else {
        diff_id.to_string()
    };
    Some(Layer { diff_id: diff_id.to_string(), digest, size, media_type, path })
}

/// Reads one layer into a temporary file, hashing it. The engine's save stream holds layers in no
/// useful order (folders sorted by a legacy id), so which layer it is shows only once it is hashed:
/// then a layer the caller skips or the cache holds is dropped, and a new one is kept (compressed
/// first when asked).
fn store_layer(
    data: &mut impl Read,
    size: u64,
    cache: &Path,
    compress: bool,
    skip: &dyn Fn(&str) -> bool,
) -> Result<Layer, LayerError> {
    let folder = cache.join("layers");
    std::fs::create_dir_all(&folder).map_err(|source| LayerError::Write { path: folder.clone(), source })?;
    let write_error = |source| LayerError::Write { path: folder.clone(), source };
    let temp = tempfile::NamedTempFile::new_in(&folder).map_err(write_error)?;
    let mut diff = Sha256::new();
    {
        let mut sink = HashingWriter { inner: BufWriter::with_capacity(1 << 20, temp.as_file()), hash: &mut diff };
        let copied = io::copy(data, &mut sink).map_err(LayerError::Read)?;
        if copied != size {
            return Err(LayerError::Format("the saved image ends inside a layer".into()));
        }
        sink.flush().map_err(write_error)?;
    }
    let diff_id = format!("sha256:{}", hex::encode(diff.finalize()));
    let media_type = if compress { MEDIA_TAR_GZIP } else { MEDIA_TAR };
    if skip(&diff_id) {
        return Ok(Layer { diff_id, digest: String::new(), size: 0, media_type, path: PathBuf::new() });
    }
    if let Some(layer) = cached(&folder, &diff_id, compress) {
        return Ok(layer);
    }
    let hex = diff_id.trim_start_matches("sha256:").to_string();
    if !compress {
        let path = folder.join(format!("{hex}.tar"));
        temp.persist(&path).map_err(|e| LayerError::Write { path: path.clone(), source: e.error })?;
        return Ok(Layer { diff_id: diff_id.clone(), digest: diff_id, size, media_type, path });
    }
    let packed = tempfile::NamedTempFile::new_in(&folder).map_err(write_error)?;
    let mut file_hash = Sha256::new();
    let mut written = 0u64;
    {
        let sink = HashingWriter { inner: BufWriter::with_capacity(1 << 20, packed.as_file()), hash: &mut file_hash };
        let sink = CountingWriter { inner: sink, count: &mut written };
        let mut encoder = GzEncoder::new(sink, Compression::new(2));
        io::copy(&mut File::open(temp.path()).map_err(write_error)?, &mut encoder).map_err(write_error)?;
        encoder.finish().map_err(write_error)?.flush().map_err(write_error)?;
    }
    let digest = format!("sha256:{}", hex::encode(file_hash.finalize()));
    // Written before the layer: a compressed layer file counts only with its digest beside it.
    let note = folder.join(format!("{hex}.tar.gz.digest"));
    crate::bundle::cache::write_atomic(&note, digest.as_bytes())
        .map_err(|source| LayerError::Write { path: note.clone(), source })?;
    let path = folder.join(format!("{hex}.tar.gz"));
    packed.persist(&path).map_err(|e| LayerError::Write { path: path.clone(), source: e.error })?;
    Ok(Layer { diff_id, digest, size: written, media_type, path })
}

struct HashingWriter<'a, W: Write> {
    inner: W,
    hash: &'a mut Sha256,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct CountingWriter<'a, W: Write> {
    inner: W,
    count: &'a mut u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        *self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a whole 512-byte block; false at a clean end of stream.
fn read_block(stream: &mut impl Read, block: &mut [u8; 512]) -> Result<bool, LayerError> {
    let mut filled = 0;
    while filled < block.len() {
        let n = stream.read(&mut block[filled..]).map_err(LayerError::Read)?;
        if n == 0 {
            return if filled == 0 { Ok(false) } else { Err(LayerError::Format("a tar header is cut short".into())) };
        }
        filled += n;
    }
    Ok(true)
}

fn read_exact_vec(stream: &mut impl Read, size: u64) -> Result<Vec<u8>, LayerError> {
    if size > 64 << 20 {
        return Err(LayerError::Format(format!("a metadata file of {size} bytes in the saved image")));
    }
    let mut data = vec![0u8; size as usize];
    stream.read_exact(&mut data).map_err(LayerError::Read)?;
    Ok(data)
}

fn skip_padding(stream: &mut impl Read, size: u64) -> Result<(), LayerError> {
    let padding = (512 - size % 512) % 512;
    io::copy(&mut stream.take(padding), &mut io::sink()).map_err(LayerError::Read)?;
    Ok(())
}

fn header_name(header: &[u8; 512]) -> String {
    let field = |range: std::ops::Range<usize>| {
        let bytes = &header[range];
        let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    let name = field(0..100);
    let prefix = if &header[257..262] == b"ustar" { field(345..500) } else { String::new() };
    if prefix.is_empty() { name } else { format!("{prefix}/{name}") }
}

/// A size field: octal text, or base-256 when the high bit is set (sizes over 8 GiB).
fn octal_size(field: &[u8]) -> Result<u64, LayerError> {
    if field[0] & 0x80 != 0 {
        return Ok(field[1..].iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)));
    }
    let text: String = field.iter().take_while(|b| **b != 0 && **b != b' ').map(|b| *b as char).collect();
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).map_err(|_| LayerError::Format(format!("a bad tar size field {text:?}")))
}

/// The `path` record of a PAX extended header.
fn pax_path(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.lines().find_map(|line| {
        let (_, record) = line.split_once(' ')?;
        record.strip_prefix("path=").map(String::from)
    })
}

/// A `docker load` archive of `config` and `layers`, named `reference`: how an image flyte finished
/// (its own config over the layers BuildKit made) goes into the engine's store without a registry.
pub fn write_load_archive(target: &Path, config: &[u8], layers: &[Layer], reference: &str) -> io::Result<()> {
    use crate::image::inputs::tar_file;
    let config_name = format!("{}.json", hex::encode(Sha256::digest(config)));
    let names: Vec<String> = (0..layers.len()).map(|i| format!("layer-{i}.tar")).collect();
    let manifest = serde_json::json!([{ "Config": config_name, "RepoTags": [reference], "Layers": names }]);
    let manifest = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let temp = tempfile::NamedTempFile::new_in(parent)?;
    {
        let mut out = BufWriter::with_capacity(1 << 20, temp.as_file());
        tar_file(&mut out, &config_name, config.len() as u64, &mut &config[..])?;
        for (layer, name) in layers.iter().zip(&names) {
            tar_file(&mut out, name, layer.size, &mut File::open(&layer.path)?)?;
        }
        tar_file(&mut out, "manifest.json", manifest.len() as u64, &mut &manifest[..])?;
        out.write_all(&[0u8; 1024])?;
        out.flush()?;
    }
    temp.persist(target).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_entry(out: &mut Vec<u8>, name: &str, data: &[u8]) {
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name.as_bytes());
        header[100..107].copy_from_slice(b"0000644");
        let size = format!("{:011o}", data.len());
        header[124..135].copy_from_slice(size.as_bytes());
        header[156] = b'0';
        header[257..262].copy_from_slice(b"ustar");
        out.extend_from_slice(&header);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }

    fn saved_image(layer: &[u8]) -> (Vec<u8>, String) {
        let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(layer)));
        let config = format!(r#"{{"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#);
        let mut tar = Vec::new();
        tar_entry(&mut tar, "abc.json", config.as_bytes());
        tar_entry(&mut tar, "l1/layer.tar", layer);
        tar_entry(&mut tar, "manifest.json", br#"[{"Config":"abc.json","Layers":["l1/layer.tar"]}]"#);
        tar.extend_from_slice(&[0u8; 1024]);
        (tar, diff_id)
    }

    #[test]
    fn splits_a_saved_image_into_config_and_layer_files() {
        let cache = tempfile::tempdir().unwrap();
        let (tar, diff_id) = saved_image(b"pretend this is a layer tar");
        let saved = split_save(&tar[..], cache.path(), false, &|_| false).unwrap();
        assert!(String::from_utf8(saved.config).unwrap().contains(&diff_id));
        assert_eq!(saved.layers.len(), 1);
        assert_eq!(saved.layers[0].diff_id, diff_id);
        assert_eq!(saved.layers[0].digest, diff_id, "an uncompressed layer's digest is its diff id");
        assert_eq!(std::fs::read(&saved.layers[0].path).unwrap(), b"pretend this is a layer tar");

        let gz = split_save(&tar[..], cache.path(), true, &|_| false).unwrap();
        assert_ne!(gz.layers[0].digest, diff_id);
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(File::open(&gz.layers[0].path).unwrap()).read_to_end(&mut decoded).unwrap();
        assert_eq!(decoded, b"pretend this is a layer tar");
    }

    #[test]
    fn a_cached_layer_is_checked_not_rewritten() {
        let cache = tempfile::tempdir().unwrap();
        let (tar, diff_id) = saved_image(b"cached layer");
        let first = split_save(&tar[..], cache.path(), true, &|_| false).unwrap();
        let before = std::fs::metadata(&first.layers[0].path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let second = split_save(&tar[..], cache.path(), true, &|_| false).unwrap();
        assert_eq!(second.layers[0].digest, first.layers[0].digest);
        assert_eq!(second.layers[0].diff_id, diff_id);
        assert_eq!(std::fs::metadata(&second.layers[0].path).unwrap().modified().unwrap(), before);
    }

    #[test]
    fn skipped_layers_get_no_file() {
        let cache = tempfile::tempdir().unwrap();
        let (tar, diff_id) = saved_image(b"base layer");
        let saved = split_save(&tar[..], cache.path(), false, &|id| id == diff_id).unwrap();
        assert!(saved.layers[0].digest.is_empty());
        assert_eq!(std::fs::read_dir(cache.path().join("layers")).unwrap().count(), 0);
    }

    #[test]
    fn a_truncated_stream_is_an_error() {
        let cache = tempfile::tempdir().unwrap();
        let (tar, _) = saved_image(b"some layer bytes that will be cut");
        let cut = &tar[..700];
        assert!(split_save(cut, cache.path(), false, &|_| false).is_err());
    }
}
