//! Test inputs for the fast readers: the repository's manifests and deterministic mutations of them.
//!
//! A mutation deletes, inserts or doubles one character; such texts mostly hit the corners where a
//! reader of a subset could go wrong, so both fast readers are held to their crates on them.

use std::path::Path;

/// The text of every file with `extension` under `examples/` and `tests/broken/`.
pub fn repository_texts(extension: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut texts = Vec::new();
    for dir in ["examples", "tests/broken"] {
        for entry in walkdir::WalkDir::new(root.join(dir)).into_iter().filter_map(Result::ok) {
            if entry.path().extension().is_some_and(|e| e == extension)
                && let Ok(text) = std::fs::read_to_string(entry.path())
            {
                texts.push(text);
            }
        }
    }
    texts
}

/// Each text, then `per_text` mutations of it, each a character deleted, one of `inserts` inserted,
/// or a character doubled, at a place chosen by a fixed xorshift sequence: the same every run.
pub fn mutations(texts: &[String], inserts: &[char], per_text: usize) -> Vec<String> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = Vec::new();
    for text in texts {
        let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        out.push(text.clone());
        for _ in 0..per_text {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = boundaries[(seed as usize) % boundaries.len().max(1)];
            let next = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
            let insert = inserts[(seed >> 32) as usize % inserts.len()];
            out.push(match seed % 3 {
                0 => format!("{}{}", &text[..at], &text[next..]),
                1 => format!("{}{insert}{}", &text[..at], &text[at..]),
                _ => format!("{}{}", &text[..next], &text[at..]),
            });
        }
    }
    out
}
