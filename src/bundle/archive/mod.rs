//! Byte-identical tar.gz archives of a code bundle, compressed on every core.
//!
//! The same entries (paths, kinds, file contents) give the same bytes on any machine, with any thread
//! count, whatever the files' owners, times or permission bits on disk. The format:
//!
//! - **tar**: POSIX ustar headers, entries sorted by path (byte order), with a directory entry for every
//!   parent folder (implied or listed) before its contents: unpackers then create every folder with mode
//!   0755 and the fixed time, instead of making up parents with their own defaults (root's umask, the
//!   current time). Every entry has mtime [`MTIME`]
//!   (1980-01-01 00:00:00 UTC: a time 0 makes some tools warn), uid/gid 0, empty user and group
//!   names, device numbers 0. Modes: 0644 for files, 0755 for executable files and directories, 0777 for
//!   symlinks (what Linux reports; unpackers ignore it). No atime, ctime or pax timestamps.
//! - **long names**: a path over 100 bytes, or a symlink target over 100 bytes, gets a PAX extended
//!   header (`x`) holding only `path` and/or `linkpath` before its entry; the ustar fields then hold a
//!   truncated fallback. PAX is POSIX.1-2001: GNU tar, Python's tarfile (both in the tests), bsdtar and
//!   busybox tar (checked by hand) unpack the same tree from it.
//! - **end**: two zero blocks; the stream is not padded to a 10 KiB record (no reader needs it).
//! - **gzip**: the tar stream is cut into [`CHUNK_SIZE`] chunks (a constant, never tied to the thread
//!   count) and each chunk is deflated alone into its own gzip member (RFC 1952 §2.2 allows concatenated
//!   members; `gzip -d`, `tar -xzf` and Python's `gzip`/`tarfile` read them all). Each member header is
//!   the constant `1f 8b 08 00 00000000 00 ff`: no flags, no file name, mtime 0, no extra flags, OS 255
//!   (unknown). Members are compressed on worker threads and written in order.
//! - **deflate**: zlib-rs (pure Rust). Its output depends only on the input and the level: it picks
//!   SIMD code at run time only for match-length comparison and hash-table sliding, which compute the
//!   same values either way. A different zlib-rs version may compress differently, which Cargo.lock pins
//!   (a test pins the bytes of a small archive, so such a change is seen).
//! - **level**: [`DEFAULT_LEVEL`] 2. zlib-rs level 1 is its "quick" strategy (static Huffman codes only),
//!   about a third larger; level 2 is the classic fast strategy. On two cores, over 2,000 generated Python
//!   files (54.5 MB of tar) levels 1, 2, 3, 6 gave 16.8, 12.1, 11.2, 9.2 MB in 0.17, 0.20, 0.23, 0.55 s
//!   (0.26, 0.37, 0.46, 0.95 s on one thread); `tar | pigz -1 -p 2` gave 13.1 MB in 0.29 to 0.73 s. Level
//!   2 is smaller than pigz -1 and takes less wall and CPU time, with a margin on a busy machine.
//!
//! Memory stays bounded: at most two chunks per worker are in flight (each at most [`CHUNK_SIZE`] of tar
//! plus its compressed member), whatever the size of the tree.

mod gzip;
mod stream;
mod tar;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};

use flate2::Compression;
use sha2::{Digest, Sha256};

use gzip::{Deflater, Done, Inline, Job, Output, Parallel, worker};
use stream::TarStream;
use tar::{plan, write_items};

/// Size of the tar chunk that each gzip member holds. Part of the format: changing it changes every
/// archive's bytes.
pub const CHUNK_SIZE: usize = 1 << 20;
/// The modification time of every entry: 1980-01-01 00:00:00 UTC.
pub const MTIME: u64 = 315_532_800;
/// The default deflate level: smaller and faster than `tar | pigz -1` (measurements in the module notes).
pub const DEFAULT_LEVEL: u32 = 2;
/// Most worker threads used, whatever `Options::threads` asks.
pub const MAX_THREADS: usize = 64;

/// The constant header of every gzip member: magic, deflate, no flags, mtime 0, no extra flags, OS 255.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
const BLOCK: usize = 512;
/// The largest size an ustar header holds (11 octal digits): 8 GiB - 1.
const MAX_SIZE: u64 = 0o777_7777_7777;
const NAME_LEN: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file, read from [`Entry::source`].
    File { executable: bool },
    /// A symbolic link to `target` (stored as written, not followed).
    Symlink { target: String },
    /// A folder; folders that hold entries are added without being listed.
    Dir,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the archive: relative, '/'-separated, no leading or trailing '/', no `.`, `..` or empty
    /// parts.
    pub path: String,
    pub kind: EntryKind,
    /// Where a file's content is read; ignored for symlinks and folders.
    pub source: PathBuf,
}

impl Entry {
    pub fn file(path: impl Into<String>, source: impl Into<PathBuf>, executable: bool) -> Entry {
        Entry { path: path.into(), kind: EntryKind::File { executable }, source: source.into() }
    }

    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Entry {
        Entry { path: path.into(), kind: EntryKind::Symlink { target: target.into() }, source: PathBuf::new() }
    }

    pub fn dir(path: impl Into<String>) -> Entry {
        Entry { path: path.into(), kind: EntryKind::Dir, source: PathBuf::new() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Compression threads; 0 uses every core. Never changes the output.
    pub threads: usize,
    /// Deflate level, 0 (stored) to 9.
    pub level: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options { threads: 0, level: DEFAULT_LEVEL }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// Compressed bytes written to `out`.
    pub bytes: u64,
    /// Size of the uncompressed tar stream.
    pub tar_bytes: u64,
    /// Number of gzip members (chunks).
    pub members: u64,
    /// sha256 of the compressed bytes.
    pub sha256: [u8; 32],
}

/// Writes `entries` as a tar.gz stream into `out`.
///
/// The entries are sorted here (their order in the slice does not matter); a path listed twice, or both a
/// folder and something else, is an error. File contents are read as they are written: a file whose size
/// changes while it is read is an error naming it. On any error, `out` holds an incomplete stream that
/// must be thrown away (the caller writes to a temporary file and renames it only on success).
pub fn write(entries: &[Entry], out: &mut dyn Write, options: &Options) -> io::Result<Written> {
    write_with(entries, out, options, CHUNK_SIZE, &open_source)
}

/// A file's content: a reader and the size it declares.
type Opener<'a> = dyn Fn(&Path) -> io::Result<(Box<dyn Read + 'a>, u64)> + 'a;

fn open_source(source: &Path) -> io::Result<(Box<dyn Read + 'static>, u64)> {
    // Checked before opening: opening a FIFO would block until someone writes to it.
    if !std::fs::metadata(source)?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let file = File::open(source)?;
    let size = file.metadata()?.len();
    Ok((Box::new(file), size))
}

fn write_with(
    entries: &[Entry],
    out: &mut dyn Write,
    options: &Options,
    chunk_size: usize,
    open: &Opener<'_>,
) -> io::Result<Written> {
    if options.level > 9 {
        return Err(invalid(format!("compression level {} is out of range 0 to 9", options.level)));
    }
    let items = plan(entries)?;
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(MAX_THREADS);
    let level = Compression::new(options.level);
    let mut output = Output { out, hasher: Sha256::new(), bytes: 0, members: 0 };

    let tar_bytes = if threads <= 1 {
        let mut sink = Inline { deflate: Deflater::new(level), member: Vec::new(), output: &mut output };
        let mut tar = TarStream::new(&mut sink, chunk_size);
        write_items(&mut tar, &items, open)?;
        tar.finish()?
    } else {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Mutex::new(job_rx);
        std::thread::scope(|scope| -> io::Result<u64> {
            let (done_tx, done_rx) = mpsc::channel::<Done>();
            for _ in 0..threads {
                let done_tx = done_tx.clone();
                let job_rx = &job_rx;
                scope.spawn(move || worker(job_rx, done_tx, level));
            }
            drop(done_tx);
            let mut sink = Parallel {
                jobs: Some(job_tx),
                done: done_rx,
                pending: BTreeMap::new(),
                next_seq: 0,
                next_write: 0,
                max_in_flight: 2 * threads as u64,
                chunk_size,
                free_chunks: Vec::new(),
                free_members: Vec::new(),
                output: &mut output,
            };
            let mut tar = TarStream::new(&mut sink, chunk_size);
            write_items(&mut tar, &items, open)?;
            let tar_bytes = tar.finish()?;
            sink.finish()?;
            Ok(tar_bytes)
            // On an early return the sink drops its job sender, the workers stop, and the scope joins them.
        })?
    };
    output.out.flush()?;
    Ok(Written { bytes: output.bytes, tar_bytes, members: output.members, sha256: output.hasher.finalize().into() })
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// An error reading a source file, with the file's path in front.
fn naming(source: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", source.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::MultiGzDecoder;

    pub(super) fn fixture() -> (tempfile::TempDir, Vec<Entry>) {
        let dir = tempfile::tempdir().unwrap();
        let mut entries = Vec::new();
        for i in 0..40 {
            let source = dir.path().join(format!("f{i}"));
            let body: String = (0..i * 30).map(|n| format!("line {n} of file {i}\n")).collect();
            std::fs::write(&source, body).unwrap();
            entries.push(Entry::file(format!("pkg/sub{}/mod_{i}.py", i % 3), source, i % 5 == 0));
        }
        entries.push(Entry::symlink("pkg/link", "sub0/mod_0.py"));
        entries.push(Entry::dir("empty"));
        (dir, entries)
    }

    pub(super) fn archive(entries: &[Entry], threads: usize, chunk_size: usize) -> (Vec<u8>, Written) {
        let mut out = Vec::new();
        let written = write_with(entries, &mut out, &Options { threads, level: 6 }, chunk_size, &open_source).unwrap();
        (out, written)
    }

    pub(super) fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut tar = Vec::new();
        MultiGzDecoder::new(bytes).read_to_end(&mut tar).unwrap();
        tar
    }

    /// The entries' (name, type flag) in the order of the tar stream, PAX headers included.
    pub(super) fn names(tar: &[u8]) -> Vec<(String, u8)> {
        let mut names = Vec::new();
        let mut at = 0;
        while at + BLOCK <= tar.len() && tar[at..at + BLOCK].iter().any(|&b| b != 0) {
            let block = &tar[at..at + BLOCK];
            let end = block[..100].iter().position(|&b| b == 0).unwrap_or(100);
            let name = String::from_utf8(block[..end].to_vec()).unwrap();
            let size = u64::from_str_radix(std::str::from_utf8(&block[124..135]).unwrap(), 8).unwrap() as usize;
            names.push((name, block[156]));
            at += BLOCK + size.div_ceil(BLOCK) * BLOCK;
        }
        names
    }

    #[test]
    fn small_chunks_give_many_members_identical_for_any_thread_count() {
        let (_dir, entries) = fixture();
        let (one, written) = archive(&entries, 1, 4096);
        assert!(written.members > 50, "{} members", written.members);
        assert_eq!(written.bytes, one.len() as u64);
        assert_eq!(written.sha256, <[u8; 32]>::from(Sha256::digest(&one)));
        for threads in [2, 3, 8] {
            let (other, other_written) = archive(&entries, threads, 4096);
            assert!(one == other, "{threads} threads give different bytes");
            assert_eq!(written, other_written);
        }
        // The tar inside does not depend on the chunk size.
        let (big, big_written) = archive(&entries, 2, CHUNK_SIZE);
        assert_eq!(big_written.members, 1);
        assert_eq!(gunzip(&one), gunzip(&big));
        assert_eq!(gunzip(&one).len() as u64, written.tar_bytes);
    }
}
