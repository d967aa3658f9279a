//! Bundle archives: byte-identical tar.gz, whatever the thread count or the source folder, and readable by
//! GNU tar, gzip and Python's tarfile (what the Flyte runtime and users unpack them with).
//!
//! Needs `tar` (GNU), `gzip` and `python3` on the PATH.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use flyte::bundle::archive::{self, Entry, EntryKind, MTIME, Options, Written};

/// What a bundle holds, independent of where it sits on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Spec {
    File { content: Vec<u8>, executable: bool },
    Symlink(String),
    Dir,
}

/// A 206-byte folder name: two of them make a path over 255 bytes.
fn long_segment(letter: char) -> String {
    std::iter::repeat_n(letter, 150).collect::<String>() + "_folder_name_that_goes_on_and_on_until_it_is_long_enough"
}

/// Pseudo-random bytes (a fixed LCG), so a file does not compress into one small member.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

fn bundle_spec() -> BTreeMap<String, Spec> {
    let file = |content: &[u8], executable| Spec::File { content: content.to_vec(), executable };
    let mut spec = BTreeMap::new();
    spec.insert("README.md".to_string(), file(b"# demo\n", false));
    spec.insert("bin/run.sh".to_string(), file(b"#!/bin/sh\necho run\n", true));
    spec.insert("pkg/__init__.py".to_string(), file(b"", false));
    spec.insert("pkg/mod.py".to_string(), file(b"def f():\n    return 1\n", false));
    spec.insert("pkg/alias.py".to_string(), Spec::Symlink("mod.py".to_string()));
    spec.insert("pkg/na\u{ef}ve_\u{fc}.py".to_string(), file("# \u{e9}t\u{e9}\n".as_bytes(), false));
    // Over 1 MiB of tar: several gzip members.
    spec.insert("pkg/data/blob.bin".to_string(), file(&noise(1024 * 1024 + 300_077, 7), false));
    spec.insert("empty".to_string(), Spec::Dir);
    // Exactly 100 bytes: fills the ustar name field without a NUL.
    let hundred = format!("edge/{}.py", "e".repeat(92));
    assert_eq!(hundred.len(), 100);
    spec.insert(hundred, file(b"# 100\n", false));
    // Over 100 bytes, and over 255 bytes (beyond the ustar prefix + name split too).
    let over_100 = format!("deep/{}/{}.py", "a".repeat(60), "b".repeat(60));
    let over_255 = format!("deep/{}/{}/tool.sh", long_segment('x'), long_segment('y'));
    assert!(over_100.len() > 100 && over_255.len() > 255, "{} {}", over_100.len(), over_255.len());
    spec.insert(over_100.clone(), file(b"# long\n", false));
    spec.insert(over_255.clone(), file(b"#!/bin/sh\n", true));
    // A link target over 100 bytes.
    spec.insert("links/far".to_string(), Spec::Symlink(format!("../{over_255}")));
    spec.insert("links/near".to_string(), Spec::Symlink(format!("../{over_100}")));
    spec
}

/// Writes `spec` under `root` (in the given order) and lists its entries (in that order).
fn materialize(spec: &BTreeMap<String, Spec>, root: &Path, reverse: bool) -> Vec<Entry> {
    let mut items: Vec<(&String, &Spec)> = spec.iter().collect();
    if reverse {
        items.reverse();
    }
    let mut entries = Vec::new();
    for (path, item) in items {
        let on_disk = root.join(path);
        fs::create_dir_all(on_disk.parent().unwrap()).unwrap();
        match item {
            Spec::File { content, executable } => {
                fs::write(&on_disk, content).unwrap();
                entries.push(Entry::file(path.clone(), on_disk, *executable));
            }
            Spec::Symlink(target) => {
                symlink(target, &on_disk).unwrap();
                entries.push(Entry::symlink(path.clone(), target.clone()));
            }
            Spec::Dir => {
                fs::create_dir_all(&on_disk).unwrap();
                entries.push(Entry::dir(path.clone()));
            }
        }
    }
    entries
}

fn archive_bytes(entries: &[Entry], threads: usize) -> (Vec<u8>, Written) {
    let mut out = Vec::new();
    let written = archive::write(entries, &mut out, &Options { threads, ..Options::default() }).unwrap();
    (out, written)
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    let output = Command::new(program)
        .args(args)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program} (the archive tests need it on the PATH): {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn str_path(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The spec that an unpacked folder holds, with every parent folder as a `Dir`; checks modes and mtimes
/// on the way.
fn read_back(root: &Path) -> BTreeMap<String, Spec> {
    let mut found = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.unwrap();
        let path = entry.path().strip_prefix(root).unwrap().to_str().unwrap().to_string();
        let meta = fs::symlink_metadata(entry.path()).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        let item = if meta.file_type().is_symlink() {
            Spec::Symlink(fs::read_link(entry.path()).unwrap().to_str().unwrap().to_string())
        } else if meta.is_dir() {
            assert_eq!(mode, 0o755, "{path}");
            Spec::Dir
        } else {
            assert!(mode == 0o644 || mode == 0o755, "{path}: mode {mode:o}");
            Spec::File { content: fs::read(entry.path()).unwrap(), executable: mode == 0o755 }
        };
        if !meta.file_type().is_symlink() {
            let mtime = meta.modified().unwrap().duration_since(SystemTime::UNIX_EPOCH).unwrap();
            assert_eq!(mtime, Duration::from_secs(MTIME), "{path}");
        }
        found.insert(path, item);
    }
    found
}

/// `spec` with every parent folder added, as an unpacked archive shows it.
fn with_parents(spec: &BTreeMap<String, Spec>) -> BTreeMap<String, Spec> {
    let mut all = spec.clone();
    for path in spec.keys() {
        for (at, _) in path.match_indices('/') {
            all.entry(path[..at].to_string()).or_insert(Spec::Dir);
        }
    }
    all
}

const PY_EXTRACT: &str = r#"
import sys, tarfile
with tarfile.open(sys.argv[1], "r:gz") as archive:
    if hasattr(tarfile, "tar_filter"):
        archive.extractall(sys.argv[2], filter="tar")
    else:
        archive.extractall(sys.argv[2])
"#;

/// One line per member: name, type, mode, uid, gid, uname, gname, mtime, linkname, PAX keys.
const PY_LIST: &str = r#"
import sys, tarfile
with tarfile.open(sys.argv[1], "r:gz") as archive:
    for m in archive.getmembers():
        keys = ",".join(sorted(m.pax_headers))
        print("|".join(map(str, [m.name, m.type.decode(), oct(m.mode), m.uid, m.gid, m.uname, m.gname, m.mtime, m.linkname, keys])))
"#;

/// The number of gzip members, each read to its end.
const PY_MEMBERS: &str = r#"
import sys, zlib
data = open(sys.argv[1], "rb").read()
count = 0
while data:
    member = zlib.decompressobj(31)
    member.decompress(data)
    assert member.eof, "truncated member"
    data = member.unused_data
    count += 1
print(count)
"#;

#[test]
fn same_bytes_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let entries = materialize(&bundle_spec(), dir.path(), false);
    let (one, written) = archive_bytes(&entries, 1);
    assert!(written.members >= 2, "{written:?}");
    for threads in [2, 8, 0] {
        let (other, other_written) = archive_bytes(&entries, threads);
        assert!(one == other, "{threads} threads give different bytes");
        assert_eq!(written, other_written);
    }
}

#[test]
fn same_bytes_from_two_source_folders() {
    let spec = bundle_spec();
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let first_entries = materialize(&spec, first.path(), false);
    // Written in the other order, listed in the other order, with other times, permission bits and owners.
    let second_entries = materialize(&spec, second.path(), true);
    for entry in &second_entries {
        if let EntryKind::File { executable } = entry.kind {
            let file = fs::File::options().write(true).open(&entry.source).unwrap();
            file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)).unwrap();
            fs::set_permissions(&entry.source, fs::Permissions::from_mode(if executable { 0o700 } else { 0o600 }))
                .unwrap();
            // Works as root; elsewhere the owner already differs from nothing, and the test goes on.
            let _ = std::os::unix::fs::chown(&entry.source, Some(4321), Some(4321));
        }
    }
    let (a, a_written) = archive_bytes(&first_entries, 2);
    let (b, b_written) = archive_bytes(&second_entries, 2);
    assert!(a == b, "the source folder changed the archive");
    assert_eq!(a_written, b_written);
}

#[test]
fn unpacks_with_gnu_tar() {
    let spec = bundle_spec();
    let dir = tempfile::tempdir().unwrap();
    let entries = materialize(&spec, &dir.path().join("src"), false);
    let (bytes, _) = archive_bytes(&entries, 2);
    let file = dir.path().join("bundle.tar.gz");
    fs::write(&file, bytes).unwrap();
    let out = dir.path().join("gnu");
    fs::create_dir(&out).unwrap();
    let extract = run("tar", &["-xzf", str_path(&file), "-C", str_path(&out)]);
    assert!(extract.stderr.is_empty(), "{}", String::from_utf8_lossy(&extract.stderr));
    assert_eq!(read_back(&out), with_parents(&spec));
    // Other spellings: the long option, and no option at all (GNU tar detects gzip when reading a file).
    for args in [&["-x", "--gzip", "-f"][..], &["-xf"][..]] {
        let other = tempfile::tempdir_in(dir.path()).unwrap();
        let mut all = args.to_vec();
        all.extend([str_path(&file), "-C", str_path(other.path())]);
        run("tar", &all);
        assert_eq!(read_back(other.path()), with_parents(&spec), "tar {args:?}");
    }

    // Owners are root, names empty, times fixed.
    let listing = run("tar", &["--numeric-owner", "--full-time", "-tvzf", str_path(&file)]);
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert_eq!(listing.lines().count(), with_parents(&spec).len(), "{listing}");
    for line in listing.lines() {
        assert!(line.contains(" 0/0 ") && line.contains("1980-01-01 00:00:00"), "{line}");
    }
}

#[test]
fn unpacks_with_python_tarfile() {
    let spec = bundle_spec();
    let dir = tempfile::tempdir().unwrap();
    let entries = materialize(&spec, &dir.path().join("src"), false);
    let (bytes, _) = archive_bytes(&entries, 2);
    let file = dir.path().join("bundle.tar.gz");
    fs::write(&file, bytes).unwrap();
    let out = dir.path().join("py");
    run("python3", &["-c", PY_EXTRACT, str_path(&file), str_path(&out)]);
    assert_eq!(read_back(&out), with_parents(&spec));

    let listing = run("python3", &["-c", PY_LIST, str_path(&file)]);
    let listing = String::from_utf8(listing.stdout).unwrap();
    let mut names = Vec::new();
    for line in listing.lines() {
        let fields: Vec<&str> = line.split('|').collect();
        let [name, kind, mode, uid, gid, uname, gname, mtime, linkname, pax] = fields[..] else { panic!("{line}") };
        assert_eq!((uid, gid, uname, gname), ("0", "0", "", ""), "{line}");
        assert_eq!(mtime, MTIME.to_string(), "{line}");
        let expected_pax = match (name.len() > 100, linkname.len() > 100) {
            (false, false) => "",
            (true, false) => "path",
            (false, true) => "linkpath",
            (true, true) => "linkpath,path",
        };
        assert_eq!(pax, expected_pax, "{line}");
        match spec.get(name) {
            Some(Spec::File { executable, .. }) => {
                assert_eq!((kind, mode), ("0", if *executable { "0o755" } else { "0o644" }), "{line}")
            }
            Some(Spec::Symlink(target)) => assert_eq!((kind, linkname), ("2", target.as_str()), "{line}"),
            Some(Spec::Dir) | None => assert_eq!((kind, mode), ("5", "0o755"), "{line}"),
        }
        names.push(name.to_string());
    }
    // Sorted by path bytes, each folder before its contents.
    let expected: Vec<String> = with_parents(&spec).into_keys().collect();
    assert_eq!(names, expected);
}

#[test]
fn gzip_reads_every_member() {
    let dir = tempfile::tempdir().unwrap();
    let entries = materialize(&bundle_spec(), &dir.path().join("src"), false);
    let (bytes, written) = archive_bytes(&entries, 2);
    assert_eq!(written.bytes, bytes.len() as u64);
    let file = dir.path().join("bundle.tar.gz");
    fs::write(&file, &bytes).unwrap();
    run("gzip", &["-t", str_path(&file)]);
    let members = run("python3", &["-c", PY_MEMBERS, str_path(&file)]);
    let members: u64 = String::from_utf8(members.stdout).unwrap().trim().parse().unwrap();
    assert_eq!(members, written.members);
    assert_eq!(written.tar_bytes.div_ceil(archive::CHUNK_SIZE as u64), members);
    assert!(members > 1);
    let tar = run("gzip", &["-dc", str_path(&file)]).stdout;
    assert_eq!(tar.len() as u64, written.tar_bytes);
    use sha2::Digest;
    assert_eq!(<[u8; 32]>::from(sha2::Sha256::digest(&bytes)), written.sha256);
}

#[test]
fn empty_entry_list_is_a_valid_archive() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, written) = archive_bytes(&[], 0);
    assert_eq!((written.tar_bytes, written.members), (1024, 1));
    let file = dir.path().join("empty.tar.gz");
    fs::write(&file, bytes).unwrap();
    run("gzip", &["-t", str_path(&file)]);
    let listing = run("tar", &["-tzf", str_path(&file)]);
    assert!(listing.stdout.is_empty() && listing.stderr.is_empty());
    let listing = run("python3", &["-c", PY_LIST, str_path(&file)]);
    assert!(listing.stdout.is_empty());
}

#[test]
fn a_file_that_changes_size_is_an_error() {
    // /proc files declare size 0 and then have content: to the archiver, a file that grew.
    let status = PathBuf::from("/proc/self/status");
    assert!(fs::metadata(&status).unwrap().len() == 0 && !fs::read(&status).unwrap().is_empty());
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.py"), "a = 1\n").unwrap();
    let entries = [Entry::file("a.py", dir.path().join("a.py"), false), Entry::file("status", &status, false)];
    for threads in [1, 2] {
        let mut out = Vec::new();
        let error = archive::write(&entries, &mut out, &Options { threads, ..Options::default() }).unwrap_err();
        assert_eq!(error.to_string(), "/proc/self/status: changed while archiving: grew past 0 bytes");
    }
}

#[test]
fn unreadable_sources_are_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.py");
    let error =
        archive::write(&[Entry::file("a.py", &missing, false)], &mut Vec::new(), &Options::default()).unwrap_err();
    assert!(error.to_string().starts_with(&format!("{}: ", missing.display())), "{error}");
    // A FIFO is refused before it is opened (opening it would wait for a writer).
    let fifo = dir.path().join("fifo");
    run("mkfifo", &[str_path(&fifo)]);
    let error = archive::write(&[Entry::file("a.py", &fifo, false)], &mut Vec::new(), &Options::default()).unwrap_err();
    assert_eq!(error.to_string(), format!("{}: not a regular file", fifo.display()));
}

/// The exact bytes of a small archive. This changes only when the format or the deflate implementation
/// does (a zlib-rs upgrade can), and then every bundle's bytes change with it.
#[test]
fn small_archive_bytes_are_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = BTreeMap::new();
    spec.insert("app/main.py".to_string(), Spec::File { content: b"print('hi')\n".to_vec(), executable: false });
    spec.insert("app/run".to_string(), Spec::File { content: b"#!/bin/sh\n".to_vec(), executable: true });
    spec.insert("app/link".to_string(), Spec::Symlink("main.py".to_string()));
    let entries = materialize(&spec, dir.path(), false);
    let (bytes, written) = archive_bytes(&entries, 1);
    assert_eq!((written.tar_bytes, written.bytes), (4096, bytes.len() as u64));
    assert_eq!(hex::encode(written.sha256), "44b34a00a5dc535d7cd51ba76ef3402a8a0bce9e7c0fc0914c68ae32fc38ae7d");
}
