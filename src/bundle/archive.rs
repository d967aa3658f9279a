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

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, mpsc};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use sha2::{Digest, Sha256};

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

// ---------------------------------------------------------------------------------------------------------
// Entries: validation, implied folders, order.

enum Item<'a> {
    File { executable: bool, source: &'a Path },
    Symlink { target: &'a str },
    Dir,
}

/// Checks every path, adds the folders that hold entries, and sorts by path bytes (a folder's path is a
/// prefix of its contents' paths, so it sorts before them).
fn plan(entries: &[Entry]) -> io::Result<BTreeMap<&str, Item<'_>>> {
    let mut items: BTreeMap<&str, Item<'_>> = BTreeMap::new();
    for entry in entries {
        let path = entry.path.as_str();
        check_path(path)?;
        for (at, _) in path.match_indices('/') {
            let parent = &path[..at];
            match items.get(parent) {
                None => {
                    items.insert(parent, Item::Dir);
                }
                Some(Item::Dir) => {}
                Some(_) => return Err(invalid(format!("archive path {parent:?} is both a folder and a file"))),
            }
        }
        let item = match &entry.kind {
            EntryKind::File { executable } => Item::File { executable: *executable, source: &entry.source },
            EntryKind::Symlink { target } => {
                if target.is_empty() || target.contains('\0') {
                    return Err(invalid(format!("symlink {path:?} has an empty target or one holding NUL")));
                }
                Item::Symlink { target }
            }
            EntryKind::Dir => Item::Dir,
        };
        match (items.get(path), &item) {
            (None, _) => {
                items.insert(path, item);
            }
            (Some(Item::Dir), Item::Dir) => {}
            (Some(Item::Dir), _) | (Some(_), Item::Dir) => {
                return Err(invalid(format!("archive path {path:?} is both a folder and a file")));
            }
            (Some(_), _) => return Err(invalid(format!("archive path {path:?} is listed twice"))),
        }
    }
    Ok(items)
}

fn check_path(path: &str) -> io::Result<()> {
    let bad = path.is_empty()
        || path.contains('\0')
        || path.split('/').any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(invalid(format!(
            "archive path {path:?} must be relative and '/'-separated, without empty, '.' or '..' parts"
        )));
    }
    Ok(())
}

fn write_items(tar: &mut TarStream<'_>, items: &BTreeMap<&str, Item<'_>>, open: &Opener<'_>) -> io::Result<()> {
    for (path, item) in items {
        match item {
            Item::Dir => tar.entry(&format!("{path}/"), 0o755, 0, b'5', "")?,
            Item::Symlink { target } => tar.entry(path, 0o777, 0, b'2', target)?,
            Item::File { executable, source } => {
                let (mut reader, size) = open(source).map_err(|error| naming(source, error))?;
                if size > MAX_SIZE {
                    let error = invalid(format!("{size} bytes is over the archive's 8 GiB limit per file"));
                    return Err(naming(source, error));
                }
                let mode = if *executable { 0o755 } else { 0o644 };
                tar.entry(path, mode, size, b'0', "")?;
                tar.content(&mut *reader, size, source)?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// The tar stream, cut into chunks.

/// Receives full tar chunks in order, and gives back an empty buffer for the next one.
trait ChunkSink {
    fn chunk(&mut self, chunk: Vec<u8>) -> io::Result<Vec<u8>>;
}

struct TarStream<'s> {
    sink: &'s mut dyn ChunkSink,
    chunk: Vec<u8>,
    chunk_size: usize,
    total: u64,
}

impl<'s> TarStream<'s> {
    fn new(sink: &'s mut dyn ChunkSink, chunk_size: usize) -> TarStream<'s> {
        TarStream { sink, chunk: Vec::with_capacity(chunk_size), chunk_size, total: 0 }
    }

    /// Hands the current chunk on once it is full.
    fn ship_if_full(&mut self) -> io::Result<()> {
        if self.chunk.len() == self.chunk_size {
            let full = std::mem::take(&mut self.chunk);
            self.chunk = self.sink.chunk(full)?;
            self.chunk.clear();
        }
        Ok(())
    }

    fn bytes(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let take = data.len().min(self.chunk_size - self.chunk.len());
            self.chunk.extend_from_slice(&data[..take]);
            self.total += take as u64;
            data = &data[take..];
            self.ship_if_full()?;
        }
        Ok(())
    }

    /// Zeros up to the next 512-byte boundary.
    fn pad(&mut self) -> io::Result<()> {
        let rest = (BLOCK - (self.total % BLOCK as u64) as usize) % BLOCK;
        self.bytes(&[0; BLOCK][..rest])
    }

    /// Writes one entry's header, preceded by a PAX header when its path or link target is too long.
    fn entry(&mut self, name: &str, mode: u32, size: u64, kind: u8, link: &str) -> io::Result<()> {
        if name.len() > NAME_LEN || link.len() > NAME_LEN {
            let mut records = Vec::new();
            if name.len() > NAME_LEN {
                pax_record(&mut records, "path", name);
            }
            if link.len() > NAME_LEN {
                pax_record(&mut records, "linkpath", link);
            }
            let pax_name = pax_header_name(name);
            self.bytes(&header(&pax_name, 0o644, records.len() as u64, b'x', ""))?;
            self.bytes(&records)?;
            self.pad()?;
        }
        self.bytes(&header(name, mode, size, kind, link))
    }

    /// Copies exactly `size` bytes of `reader` (straight into the chunk buffer), then checks that nothing
    /// follows. Errors reading, and a changed size, name `source`.
    fn content(&mut self, reader: &mut dyn Read, size: u64, source: &Path) -> io::Result<()> {
        let mut remaining = size;
        while remaining > 0 {
            let start = self.chunk.len();
            let want = (self.chunk_size - start).min(usize::try_from(remaining).unwrap_or(usize::MAX));
            self.chunk.resize(start + want, 0);
            let read = loop {
                match reader.read(&mut self.chunk[start..]) {
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let read = match read {
                Ok(read) => read,
                Err(error) => {
                    self.chunk.truncate(start);
                    return Err(naming(source, error));
                }
            };
            self.chunk.truncate(start + read);
            if read == 0 {
                let message = format!("changed while archiving: shrank from {size} bytes to {}", size - remaining);
                return Err(naming(source, io::Error::new(io::ErrorKind::UnexpectedEof, message)));
            }
            self.total += read as u64;
            remaining -= read as u64;
            self.ship_if_full()?;
        }
        let mut probe = [0u8; 1];
        loop {
            match reader.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => {
                    let message = format!("changed while archiving: grew past {size} bytes");
                    return Err(naming(source, io::Error::new(io::ErrorKind::InvalidData, message)));
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(naming(source, error)),
            }
        }
        self.pad()
    }

    /// Writes the end-of-archive marker and the last, partial chunk; gives the tar stream's size.
    fn finish(mut self) -> io::Result<u64> {
        self.bytes(&[0; 2 * BLOCK])?;
        if !self.chunk.is_empty() {
            let last = std::mem::take(&mut self.chunk);
            self.sink.chunk(last)?;
        }
        Ok(self.total)
    }
}

/// One ustar header block. `name` and `link` longer than 100 bytes are cut (at a character boundary); a
/// PAX header before it carries them whole.
fn header(name: &str, mode: u32, size: u64, kind: u8, link: &str) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    let name = truncate(name, NAME_LEN);
    block[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut block[100..108], u64::from(mode));
    octal(&mut block[108..116], 0); // uid
    octal(&mut block[116..124], 0); // gid
    octal(&mut block[124..136], size);
    octal(&mut block[136..148], MTIME);
    block[148..156].fill(b' '); // the checksum counts its own field as spaces
    block[156] = kind;
    let link = truncate(link, NAME_LEN);
    block[157..157 + link.len()].copy_from_slice(link.as_bytes());
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    // uname and gname (265..329) stay empty; the prefix (345..500) stays empty.
    octal(&mut block[329..337], 0); // devmajor
    octal(&mut block[337..345], 0); // devminor
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    // Six octal digits, NUL, space: the form GNU tar and Python write.
    let digits = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(digits.as_bytes());
    block
}

/// Zero-padded octal digits filling the field but its last byte, which is NUL.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let digits = format!("{value:0width$o}");
    debug_assert_eq!(digits.len(), width, "value {value} too large for a {width}-digit field");
    field[..width].copy_from_slice(digits.as_bytes());
    field[width] = 0;
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Appends `"<len> <key>=<value>\n"`, where len counts the whole record, its own digits included.
fn pax_record(records: &mut Vec<u8>, key: &str, value: &str) {
    let rest = key.len() + value.len() + 3; // space, '=', newline
    let mut len = rest + 1;
    while rest + len.to_string().len() != len {
        len = rest + len.to_string().len();
    }
    records.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
}

/// The name of a PAX header entry: `PaxHeaders/` and the entry's last part, within 100 bytes. Readers
/// that know PAX never use it; others unpack the header as a small file under `PaxHeaders/`.
fn pax_header_name(name: &str) -> String {
    let base = name.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let prefix = "PaxHeaders/";
    format!("{prefix}{}", truncate(base, NAME_LEN - prefix.len()))
}

// ---------------------------------------------------------------------------------------------------------
// gzip members.

/// The compressed stream as it is written: counts and hashes.
struct Output<'o> {
    out: &'o mut dyn Write,
    hasher: Sha256,
    bytes: u64,
    members: u64,
}

impl Output<'_> {
    fn member(&mut self, member: &[u8]) -> io::Result<()> {
        self.out.write_all(member)?;
        self.hasher.update(member);
        self.bytes += member.len() as u64;
        self.members += 1;
        Ok(())
    }
}

struct Deflater {
    compress: Compress,
}

impl Deflater {
    fn new(level: Compression) -> Deflater {
        Deflater { compress: Compress::new(level, false) }
    }

    /// Compresses `chunk` into `member` as one complete gzip member.
    fn member(&mut self, chunk: &[u8], member: &mut Vec<u8>) -> io::Result<()> {
        member.clear();
        member.extend_from_slice(&GZIP_HEADER);
        // zlib's compressBound, plus room for the trailer.
        let n = chunk.len();
        member.reserve(n + (n >> 12) + (n >> 14) + (n >> 25) + 13 + 8);
        self.compress.reset();
        let start = self.compress.total_in();
        loop {
            let consumed = (self.compress.total_in() - start) as usize;
            let status = self
                .compress
                .compress_vec(&chunk[consumed..], member, FlushCompress::Finish)
                .map_err(|error| io::Error::other(format!("deflate failed: {error}")))?;
            match status {
                Status::StreamEnd => break,
                Status::Ok | Status::BufError => member.reserve(64 * 1024),
            }
        }
        let mut crc = Crc::new();
        crc.update(chunk);
        member.extend_from_slice(&crc.sum().to_le_bytes());
        member.extend_from_slice(&(n as u32).to_le_bytes()); // ISIZE: the size modulo 2^32
        Ok(())
    }
}

/// One thread: compresses each chunk as it comes and writes it at once.
struct Inline<'a, 'o> {
    deflate: Deflater,
    member: Vec<u8>,
    output: &'a mut Output<'o>,
}

impl ChunkSink for Inline<'_, '_> {
    fn chunk(&mut self, chunk: Vec<u8>) -> io::Result<Vec<u8>> {
        self.deflate.member(&chunk, &mut self.member)?;
        self.output.member(&self.member)?;
        Ok(chunk)
    }
}

struct Job {
    seq: u64,
    chunk: Vec<u8>,
    member: Vec<u8>,
}

struct Done {
    seq: u64,
    chunk: Vec<u8>,
    member: Vec<u8>,
    result: io::Result<()>,
}

fn worker(jobs: &Mutex<mpsc::Receiver<Job>>, done: mpsc::Sender<Done>, level: Compression) {
    let mut deflate = Deflater::new(level);
    loop {
        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(Job { seq, chunk, mut member }) = job else { return };
        // A failure goes back with its chunk: the writer stops at it, and the thread keeps serving until then.
        let result = panic::catch_unwind(AssertUnwindSafe(|| deflate.member(&chunk, &mut member)))
            .unwrap_or_else(|_| Err(io::Error::other("a compression thread panicked")));
        if done.send(Done { seq, chunk, member, result }).is_err() {
            return;
        }
    }
}

/// Several threads: hands chunks to the workers, at most `max_in_flight` at a time, and writes the
/// members in order as they come back.
struct Parallel<'a, 'o> {
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Done>,
    /// Members back from the workers, waiting for the ones before them.
    pending: BTreeMap<u64, Done>,
    next_seq: u64,
    next_write: u64,
    max_in_flight: u64,
    chunk_size: usize,
    free_chunks: Vec<Vec<u8>>,
    free_members: Vec<Vec<u8>>,
    output: &'a mut Output<'o>,
}

impl Parallel<'_, '_> {
    /// Waits for one member, then writes every member that is next in order.
    fn wait(&mut self) -> io::Result<()> {
        let done = self.done.recv().map_err(|_| io::Error::other("the compression threads stopped"))?;
        self.pending.insert(done.seq, done);
        self.write_ready()
    }

    fn write_ready(&mut self) -> io::Result<()> {
        while let Some(done) = self.pending.remove(&self.next_write) {
            done.result?;
            self.output.member(&done.member)?;
            self.next_write += 1;
            self.free_chunks.push(done.chunk);
            self.free_members.push(done.member);
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.jobs = None;
        while self.next_write < self.next_seq {
            self.wait()?;
        }
        Ok(())
    }
}

impl ChunkSink for Parallel<'_, '_> {
    fn chunk(&mut self, chunk: Vec<u8>) -> io::Result<Vec<u8>> {
        while self.next_seq - self.next_write >= self.max_in_flight {
            self.wait()?;
        }
        let member = self.free_members.pop().unwrap_or_default();
        let jobs = self.jobs.as_ref().ok_or_else(|| io::Error::other("the archive is already finished"))?;
        jobs.send(Job { seq: self.next_seq, chunk, member })
            .map_err(|_| io::Error::other("the compression threads stopped"))?;
        self.next_seq += 1;
        while let Ok(done) = self.done.try_recv() {
            self.pending.insert(done.seq, done);
        }
        self.write_ready()?;
        Ok(self.free_chunks.pop().unwrap_or_else(|| Vec::with_capacity(self.chunk_size)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::MultiGzDecoder;
    use std::io::Cursor;

    fn fixture() -> (tempfile::TempDir, Vec<Entry>) {
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

    fn archive(entries: &[Entry], threads: usize, chunk_size: usize) -> (Vec<u8>, Written) {
        let mut out = Vec::new();
        let written = write_with(entries, &mut out, &Options { threads, level: 6 }, chunk_size, &open_source).unwrap();
        (out, written)
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut tar = Vec::new();
        MultiGzDecoder::new(bytes).read_to_end(&mut tar).unwrap();
        tar
    }

    /// The entries' (name, type flag) in the order of the tar stream, PAX headers included.
    fn names(tar: &[u8]) -> Vec<(String, u8)> {
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

    #[test]
    fn chunk_boundaries_fall_anywhere_in_headers_and_contents() {
        let (_dir, entries) = fixture();
        let few = &entries[..3];
        let (whole, _) = archive(few, 1, CHUNK_SIZE);
        let tar = gunzip(&whole);
        assert_eq!(tar.len() % BLOCK, 0);
        for chunk_size in [1, 7, 511, 512, 513, 1000] {
            let (small, written) = archive(few, 2, chunk_size);
            assert_eq!(gunzip(&small), tar, "chunk size {chunk_size}");
            assert_eq!(written.members, tar.len().div_ceil(chunk_size) as u64);
        }
    }

    #[test]
    fn gzip_members_have_the_fixed_header() {
        let (out, written) = archive(&[], 1, CHUNK_SIZE);
        assert_eq!(out[..10], GZIP_HEADER);
        assert_eq!(written.members, 1);
        assert_eq!(written.tar_bytes, 1024);
        assert_eq!(gunzip(&out), vec![0; 1024]);
        // Trailer: CRC32 of 1024 zeros, then ISIZE.
        let mut crc = Crc::new();
        crc.update(&[0; 1024]);
        assert_eq!(out[out.len() - 8..out.len() - 4], crc.sum().to_le_bytes());
        assert_eq!(out[out.len() - 4..], 1024u32.to_le_bytes());
    }

    #[test]
    fn parents_come_before_contents_in_byte_order() {
        let (_dir, entries) = fixture();
        let (out, _) = archive(&entries, 1, CHUNK_SIZE);
        let names: Vec<String> = names(&gunzip(&out)).into_iter().map(|(name, _)| name).collect();
        assert_eq!(&names[..4], ["empty/", "pkg/", "pkg/link", "pkg/sub0/"]);
        assert!(names.contains(&"pkg/sub2/mod_38.py".to_string()));
        // Byte order: "a-b" sorts between "a" and "a/b".
        let listed = [Entry::dir("a/b"), Entry::dir("a-b"), Entry::symlink("a0", "x")];
        let plan = plan(&listed).unwrap();
        assert_eq!(plan.keys().copied().collect::<Vec<_>>(), ["a", "a-b", "a/b", "a0"]);
    }

    #[test]
    fn header_fields_are_fixed() {
        let block = header("dir/file.py", 0o755, 1234, b'0', "");
        assert_eq!(&block[..11], b"dir/file.py");
        assert_eq!(&block[100..108], b"0000755\0");
        assert_eq!(&block[108..124], b"0000000\x000000000\0");
        assert_eq!(&block[124..136], b"00000002322\0");
        assert_eq!(&block[136..148], b"02263523000\0", "1980-01-01 00:00:00 UTC");
        assert_eq!(block[156], b'0');
        assert_eq!(&block[257..265], b"ustar\x0000");
        assert!(block[265..329].iter().all(|&b| b == 0), "user and group names are empty");
        assert_eq!(&block[329..345], b"0000000\x000000000\0");
        let stored = u32::from_str_radix(std::str::from_utf8(&block[148..154]).unwrap(), 8).unwrap();
        let mut copy = block;
        copy[148..156].fill(b' ');
        assert_eq!(stored, copy.iter().map(|&b| u32::from(b)).sum::<u32>());
        assert_eq!(&block[154..156], b"\0 ");
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        for value_len in 0..2000 {
            let mut records = Vec::new();
            let value = "v".repeat(value_len);
            pax_record(&mut records, "path", &value);
            let text = String::from_utf8(records).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), text.len(), "{text:?}");
        }
    }

    #[test]
    fn long_names_get_a_pax_header() {
        let long = format!("{}/file.py", "d".repeat(120));
        let target = "t".repeat(150);
        let entries = [Entry::symlink(long.clone(), target.clone()), Entry::symlink("short", "x")];
        let (out, _) = archive(&entries, 1, CHUNK_SIZE);
        let tar = gunzip(&out);
        let names = names(&tar);
        // The implied 121-byte folder "ddd…/" comes first, with its own PAX header.
        assert_eq!(names[0], ("PaxHeaders/".to_string() + &"d".repeat(89), b'x'));
        assert_eq!(names[1], ("d".repeat(100), b'5'));
        assert_eq!(names[2], ("PaxHeaders/file.py".to_string(), b'x'));
        assert_eq!(names[3], (long[..100].to_string(), b'2'));
        assert_eq!(names[4], ("short".to_string(), b'2'));
        let dir_record = String::from_utf8_lossy(&tar[BLOCK..BLOCK * 2]).into_owned();
        assert!(dir_record.starts_with(&format!("131 path={}/\n\0", "d".repeat(120))), "{dir_record:?}");
        let records = String::from_utf8_lossy(&tar[BLOCK * 4..BLOCK * 5]).into_owned();
        assert!(records.starts_with(&format!("138 path={long}\n")), "{records:?}");
        assert!(records.contains(&format!("164 linkpath={target}\n")), "{records:?}");
    }

    fn fake(content: &'static [u8], declared: u64) -> impl Fn(&Path) -> io::Result<(Box<dyn Read>, u64)> {
        move |_| Ok((Box::new(Cursor::new(content)) as Box<dyn Read>, declared))
    }

    #[test]
    fn a_file_that_changes_size_is_an_error_naming_it() {
        let entries = [Entry::file("a.py", "/src/a.py", false)];
        for threads in [1, 2] {
            let options = Options { threads, level: 1 };
            let shrank = write_with(&entries, &mut Vec::new(), &options, 4, &fake(b"0123456789", 20)).unwrap_err();
            assert_eq!(shrank.to_string(), "/src/a.py: changed while archiving: shrank from 20 bytes to 10");
            let grew = write_with(&entries, &mut Vec::new(), &options, 4, &fake(b"0123456789", 5)).unwrap_err();
            assert_eq!(grew.to_string(), "/src/a.py: changed while archiving: grew past 5 bytes");
            write_with(&entries, &mut Vec::new(), &options, 4, &fake(b"0123456789", 10)).unwrap();
        }
    }

    #[test]
    fn bad_entries_are_rejected() {
        let cases: [(&[Entry], &str); 8] = [
            (&[Entry::dir("/abs")], "must be relative"),
            (&[Entry::dir("a//b")], "must be relative"),
            (&[Entry::dir("a/../b")], "must be relative"),
            (&[Entry::dir("./a")], "must be relative"),
            (&[Entry::dir("a/")], "must be relative"),
            (&[Entry::symlink("a", "x"), Entry::symlink("a", "y")], "listed twice"),
            (&[Entry::symlink("a", "x"), Entry::symlink("a/b", "y")], "both a folder and a file"),
            (&[Entry::symlink("a/b", "y"), Entry::symlink("a", "x")], "both a folder and a file"),
        ];
        for (entries, message) in cases {
            let error = write(entries, &mut Vec::new(), &Options::default()).unwrap_err();
            assert!(error.to_string().contains(message), "{entries:?}: {error}");
        }
        let error = write(&[], &mut Vec::new(), &Options { threads: 1, level: 10 }).unwrap_err();
        assert!(error.to_string().contains("out of range"), "{error}");
        // A folder listed and implied is fine.
        write(&[Entry::dir("a"), Entry::symlink("a/b", "x"), Entry::dir("a")], &mut Vec::new(), &Options::default())
            .unwrap();
    }

    #[test]
    fn a_failing_sink_stops_the_workers() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (_dir, entries) = fixture();
        let error =
            write_with(&entries, &mut Broken, &Options { threads: 4, level: 1 }, 512, &open_source).unwrap_err();
        assert_eq!(error.to_string(), "disk full");
    }
}
