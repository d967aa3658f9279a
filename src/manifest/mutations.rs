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

/// Holds a reader that reads a text in parts to reading it in one pass. Each text and `per_text`
/// mutations of it are cut at every line `cut_line` finds (the next cut at or after a position), at
/// pairs of neighbouring such lines, and with `skip_one` also at pairs one line apart, each part read
/// on a thread of its own. Whenever `in_parts` (text, cuts, threads) takes a cut text it must give what
/// `one_pass` gives; the first `repository` texts,
/// unmutated, must be taken at every cut. Returns how many cut texts were tried and taken.
pub fn check_parts<T: PartialEq + std::fmt::Debug>(
    texts: &[String],
    repository: usize,
    inserts: &[char],
    skip_one: bool,
    cut_line: impl Fn(&str, usize) -> Option<usize>,
    one_pass: impl Fn(&str) -> Option<T>,
    in_parts: impl Fn(&str, Vec<usize>, usize) -> Option<T>,
) -> (usize, usize) {
    const PER_TEXT: usize = 8;
    let (mut compared, mut taken) = (0usize, 0usize);
    for (index, text) in mutations(texts, inserts, PER_TEXT).iter().enumerate() {
        let original = index % (PER_TEXT + 1) == 0 && index / (PER_TEXT + 1) < repository;
        let whole = one_pass(text);
        let mut cuts = Vec::new();
        let mut from = 1;
        while let Some(at) = cut_line(text, from) {
            cuts.push(at);
            from = at + 1;
        }
        let mut tries: Vec<Vec<usize>> = cuts.iter().map(|&cut| vec![cut]).collect();
        tries.extend(cuts.windows(2).map(<[usize]>::to_vec));
        if skip_one {
            tries.extend(cuts.windows(3).map(|w| vec![w[0], w[2]]));
        }
        for cut in tries {
            compared += 1;
            match in_parts(text, cut.clone(), cut.len() + 1) {
                Some(parts) => {
                    taken += 1;
                    assert_eq!(Some(parts), whole, "cut at {cut:?}:\n{text}");
                }
                None => assert!(
                    !original || whole.is_none(),
                    "a manifest read in one pass was declined cut at {cut:?}:\n{text}"
                ),
            }
        }
    }
    (compared, taken)
}
