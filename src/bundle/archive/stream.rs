use std::io::{self, Read};
use std::path::Path;

use super::tar::{header, pax_header_name, pax_record};
use super::{BLOCK, NAME_LEN, naming};

// ---------------------------------------------------------------------------------------------------------
// The tar stream, cut into chunks.

/// Receives full tar chunks in order, and gives back an empty buffer for the next one.
pub(super) trait ChunkSink {
    fn chunk(&mut self, chunk: Vec<u8>) -> io::Result<Vec<u8>>;
}

pub(super) struct TarStream<'s> {
    sink: &'s mut dyn ChunkSink,
    chunk: Vec<u8>,
    chunk_size: usize,
    total: u64,
}

impl<'s> TarStream<'s> {
    pub(super) fn new(sink: &'s mut dyn ChunkSink, chunk_size: usize) -> TarStream<'s> {
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
    pub(super) fn entry(&mut self, name: &str, mode: u32, size: u64, kind: u8, link: &str) -> io::Result<()> {
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
    pub(super) fn content(&mut self, reader: &mut dyn Read, size: u64, source: &Path) -> io::Result<()> {
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
    pub(super) fn finish(mut self) -> io::Result<u64> {
        self.bytes(&[0; 2 * BLOCK])?;
        if !self.chunk.is_empty() {
            let last = std::mem::take(&mut self.chunk);
            self.sink.chunk(last)?;
        }
        Ok(self.total)
    }
}
#[cfg(test)]
mod tests {
    use super::super::tests::{archive, fixture, gunzip};
    use super::super::{CHUNK_SIZE, Entry, Options, write_with};
    use super::*;
    use std::io::Cursor;

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
}
