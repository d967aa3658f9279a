use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use super::stream::TarStream;
use super::{BLOCK, Entry, EntryKind, MAX_SIZE, MTIME, NAME_LEN, Opener, invalid, naming};

// ---------------------------------------------------------------------------------------------------------
// Entries: validation, implied folders, order.

pub(super) enum Item<'a> {
    File { executable: bool, source: &'a Path },
    Symlink { target: &'a str },
    Dir,
}

/// Checks every path, adds the folders that hold entries, and sorts by path bytes (a folder's path is a
/// prefix of its contents' paths, so it sorts before them).
pub(super) fn plan(entries: &[Entry]) -> io::Result<BTreeMap<&str, Item<'_>>> {
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

pub(super) fn write_items(
    tar: &mut TarStream<'_>,
    items: &BTreeMap<&str, Item<'_>>,
    open: &Opener<'_>,
) -> io::Result<()> {
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

/// One ustar header block. `name` and `link` longer than 100 bytes are cut (at a character boundary); a
/// PAX header before it carries them whole.
pub(super) fn header(name: &str, mode: u32, size: u64, kind: u8, link: &str) -> [u8; BLOCK] {
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
pub(super) fn pax_record(records: &mut Vec<u8>, key: &str, value: &str) {
    let rest = key.len() + value.len() + 3; // space, '=', newline
    let mut len = rest + 1;
    while rest + len.to_string().len() != len {
        len = rest + len.to_string().len();
    }
    records.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
}

/// The name of a PAX header entry: `PaxHeaders/` and the entry's last part, within 100 bytes. Readers
/// that know PAX never use it; others unpack the header as a small file under `PaxHeaders/`.
pub(super) fn pax_header_name(name: &str) -> String {
    let base = name.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let prefix = "PaxHeaders/";
    format!("{prefix}{}", truncate(base, NAME_LEN - prefix.len()))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{archive, fixture, gunzip, names};
    use super::super::{CHUNK_SIZE, Options, write};
    use super::*;

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
}
