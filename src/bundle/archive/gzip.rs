use std::collections::BTreeMap;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, PoisonError, mpsc};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use sha2::{Digest, Sha256};

use super::GZIP_HEADER;
use super::stream::ChunkSink;

// ---------------------------------------------------------------------------------------------------------
// gzip members.

/// The compressed stream as it is written: counts and hashes.
pub(super) struct Output<'o> {
    pub(super) out: &'o mut dyn Write,
    pub(super) hasher: Sha256,
    pub(super) bytes: u64,
    pub(super) members: u64,
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

pub(super) struct Deflater {
    compress: Compress,
}

impl Deflater {
    pub(super) fn new(level: Compression) -> Deflater {
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
pub(super) struct Inline<'a, 'o> {
    pub(super) deflate: Deflater,
    pub(super) member: Vec<u8>,
    pub(super) output: &'a mut Output<'o>,
}

impl ChunkSink for Inline<'_, '_> {
    fn chunk(&mut self, chunk: Vec<u8>) -> io::Result<Vec<u8>> {
        self.deflate.member(&chunk, &mut self.member)?;
        self.output.member(&self.member)?;
        Ok(chunk)
    }
}

pub(super) struct Job {
    seq: u64,
    chunk: Vec<u8>,
    member: Vec<u8>,
}

pub(super) struct Done {
    seq: u64,
    chunk: Vec<u8>,
    member: Vec<u8>,
    result: io::Result<()>,
}

pub(super) fn worker(jobs: &Mutex<mpsc::Receiver<Job>>, done: mpsc::Sender<Done>, level: Compression) {
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
pub(super) struct Parallel<'a, 'o> {
    pub(super) jobs: Option<mpsc::Sender<Job>>,
    pub(super) done: mpsc::Receiver<Done>,
    /// Members back from the workers, waiting for the ones before them.
    pub(super) pending: BTreeMap<u64, Done>,
    pub(super) next_seq: u64,
    pub(super) next_write: u64,
    pub(super) max_in_flight: u64,
    pub(super) chunk_size: usize,
    pub(super) free_chunks: Vec<Vec<u8>>,
    pub(super) free_members: Vec<Vec<u8>>,
    pub(super) output: &'a mut Output<'o>,
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

    pub(super) fn finish(&mut self) -> io::Result<()> {
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
    use super::super::tests::{archive, fixture, gunzip};
    use super::super::{CHUNK_SIZE, Options, open_source, write_with};
    use super::*;

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
