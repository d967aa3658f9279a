//! The persistent caches: file digests by stat (so an unchanged tree is recognised without reading
//! files), and built bundles by content digest (so an unchanged bundle is not built again).
//!
//! Location: `$FLYTE_CACHE_DIR`, else `$XDG_CACHE_HOME/flyte`, else `~/.cache/flyte`. `flyte cache clean`
//! empties it. Everything in it can be rebuilt: a missing, stale or corrupt cache costs time, never
//! correctness.
//!
//! The racy case git knows: a file changed again within the same mtime tick as its hashing keeps its
//! size and mtime, so stat alone cannot tell. A digest is therefore trusted only when the file's mtime
//! and ctime are older than the moment hashing began by more than [`RACY_WINDOW_NS`]; a younger file is
//! read again next time, until it is old enough.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Coarser than any file system's timestamp granularity that matters here (FAT has 2 s).
pub const RACY_WINDOW_NS: i128 = 2_000_000_000;
const FORMAT: u32 = 1;

/// The cache folder, from the environment.
pub fn dir() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    non_empty("FLYTE_CACHE_DIR")
        .or_else(|| non_empty("XDG_CACHE_HOME").map(|d| d.join("flyte")))
        .or_else(|| non_empty("HOME").map(|h| h.join(".cache").join("flyte")))
}

/// What stat says about a file, the key under which its digest is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub inode: u64,
    pub mode: u32,
}

impl Stamp {
    #[cfg(unix)]
    pub fn of(meta: &Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            inode: meta.ino(),
            mode: meta.mode(),
        }
    }

    #[cfg(not(unix))]
    pub fn of(meta: &Metadata) -> Stamp {
        let ns = |t: std::io::Result<SystemTime>| {
            t.ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as i128)
        };
        Stamp { size: meta.len(), mtime_ns: ns(meta.modified()), ctime_ns: ns(meta.created()), inode: 0, mode: 0 }
    }
}

pub fn now_ns() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Known {
    stamp: Stamp,
    /// When hashing of this content began.
    hashed_at_ns: i128,
    #[serde(with = "hex_digest")]
    digest: [u8; 32],
}

#[derive(Default, Deserialize)]
struct Stored {
    format: u32,
    entries: HashMap<String, Known>,
}

/// What [`Stored`] reads, written from a borrow.
#[derive(Serialize)]
struct StoredRef<'a> {
    format: u32,
    entries: &'a HashMap<String, Known>,
}

/// File digests of one tree, by relative path.
pub struct StatCache {
    file: Option<PathBuf>,
    entries: HashMap<String, Known>,
    dirty: bool,
}

impl StatCache {
    /// An empty cache that is never saved (no cache folder, or caching turned off).
    pub fn disabled() -> StatCache {
        StatCache { file: None, entries: HashMap::new(), dirty: false }
    }

    /// The cache of the tree at `root` (an absolute path), from `cache_dir`; empty when absent or unreadable.
    pub fn load(cache_dir: &Path, root: &Path) -> StatCache {
        let key = hex::encode(Sha256::digest(root.to_string_lossy().as_bytes()));
        let file = cache_dir.join("stat").join(format!("{}.json", &key[..32]));
        let entries = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Stored>(&bytes).ok())
            .filter(|stored| stored.format == FORMAT)
            .map(|stored| stored.entries)
            .unwrap_or_default();
        StatCache { file: Some(file), entries, dirty: false }
    }

    /// The digest of `path`, when its stamp is unchanged and old enough to trust.
    pub fn get(&self, path: &str, stamp: &Stamp) -> Option<[u8; 32]> {
        let known = self.entries.get(path)?;
        let settled = stamp.mtime_ns.max(stamp.ctime_ns) + RACY_WINDOW_NS < known.hashed_at_ns;
        (known.stamp == *stamp && settled).then_some(known.digest)
    }

    pub fn put(&mut self, path: &str, stamp: Stamp, hashed_at_ns: i128, digest: [u8; 32]) {
        self.entries.insert(path.to_string(), Known { stamp, hashed_at_ns, digest });
        self.dirty = true;
    }

    /// Forgets paths that are not in `keep` (deleted files), so the cache does not grow forever.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|path, _| keep(path));
        self.dirty |= self.entries.len() != before;
    }

    /// Writes the cache if it changed; atomically, so a crash leaves the old one or the new one.
    pub fn save(&mut self) -> std::io::Result<()> {
        let (Some(file), true) = (&self.file, self.dirty) else { return Ok(()) };
        let bytes =
            serde_json::to_vec(&StoredRef { format: FORMAT, entries: &self.entries }).map_err(std::io::Error::other)?;
        write_atomic(file, &bytes)?;
        self.dirty = false;
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let mut temp = tempfile::NamedTempFile::new_in(parent)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Where a built bundle with this content digest is kept.
pub fn bundle_path(cache_dir: &Path, digest_hex: &str) -> PathBuf {
    cache_dir.join("bundles").join(format!("{digest_hex}.tar.gz"))
}

/// Removes the whole cache; returns the bytes freed.
pub fn clean(cache_dir: &Path) -> std::io::Result<u64> {
    if !cache_dir.exists() {
        return Ok(0);
    }
    let freed = walkdir::WalkDir::new(cache_dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    std::fs::remove_dir_all(cache_dir)?;
    Ok(freed)
}

mod hex_digest {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(digest: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(digest))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(text, &mut digest).map_err(serde::de::Error::custom)?;
        Ok(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(mtime_ns: i128) -> Stamp {
        Stamp { size: 3, mtime_ns, ctime_ns: mtime_ns, inode: 7, mode: 0o100644 }
    }

    #[test]
    fn a_digest_is_trusted_only_when_the_stamp_matches_and_the_file_is_older_than_the_window() {
        let mut cache = StatCache::disabled();
        let hashed_at = 100 * RACY_WINDOW_NS;
        cache.put("a", stamp(hashed_at - 3 * RACY_WINDOW_NS), hashed_at, [1; 32]);
        cache.put("racy", stamp(hashed_at - RACY_WINDOW_NS / 2), hashed_at, [2; 32]);
        assert_eq!(cache.get("a", &stamp(hashed_at - 3 * RACY_WINDOW_NS)), Some([1; 32]));
        assert_eq!(cache.get("a", &stamp(hashed_at - 3 * RACY_WINDOW_NS + 1)), None, "mtime changed");
        assert_eq!(cache.get("racy", &stamp(hashed_at - RACY_WINDOW_NS / 2)), None, "modified in the racy window");
        assert_eq!(cache.get("missing", &stamp(0)), None);
    }

    #[test]
    fn a_cache_survives_a_save_and_a_corrupt_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new("/some/tree");
        let mut cache = StatCache::load(dir.path(), root);
        cache.put("a", stamp(1), 10 * RACY_WINDOW_NS, [9; 32]);
        cache.save().unwrap();
        let loaded = StatCache::load(dir.path(), root);
        assert_eq!(loaded.get("a", &stamp(1)), Some([9; 32]));
        let file = std::fs::read_dir(dir.path().join("stat")).unwrap().next().unwrap().unwrap().path();
        std::fs::write(&file, b"{not json").unwrap();
        assert_eq!(StatCache::load(dir.path(), root).get("a", &stamp(1)), None);
    }
}
