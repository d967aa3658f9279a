//! A guard that runs before either parser: both recurse, so input nested too deeply could overflow the
//! stack. The scan counts open brackets outside strings and comments, which over-counts only in odd
//! cases and never under-counts, and stops at the first bracket past the limit.

use super::diagnostic::Diagnostic;
use super::tree::Span;

/// Deeper than any manifest needs (the schema itself nests 8 levels) and far below what overflows.
pub const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Toml,
    Kdl,
}

/// Reports the first bracket that opens past [`MAX_DEPTH`].
pub fn check(text: &str, syntax: Syntax) -> Result<(), Diagnostic> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match (syntax, bytes[i]) {
            (Syntax::Toml, b'#') => i = skip_line(bytes, i),
            (Syntax::Kdl, b'/') if bytes.get(i + 1) == Some(&b'/') => i = skip_line(bytes, i),
            (Syntax::Kdl, b'/') if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i),
            (Syntax::Kdl, b'#') if matches!(bytes.get(i + 1), Some(b'"' | b'#')) => i = skip_raw_string(bytes, i),
            (_, b'"') => i = skip_quoted(bytes, i, b'"', true),
            (Syntax::Toml, b'\'') => i = skip_quoted(bytes, i, b'\'', false),
            (Syntax::Toml, b'[' | b'{') | (Syntax::Kdl, b'{') => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Diagnostic::error(
                        "too-deep",
                        format!("the manifest nests deeper than {MAX_DEPTH} levels"),
                    )
                    .at(Span::new(i, i + 1), format!("level {depth} opens here"))
                    .help("no manifest field nests this deep; look for an unclosed or repeated bracket"));
                }
                i += 1;
            }
            (Syntax::Toml, b']' | b'}') | (Syntax::Kdl, b'}') => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

fn skip_line(bytes: &[u8], from: usize) -> usize {
    bytes[from..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| from + p + 1)
}

/// Skips a string starting at `from`: single or triple quoted, with backslash escapes when `escapes`.
fn skip_quoted(bytes: &[u8], from: usize, quote: u8, escapes: bool) -> usize {
    let triple = bytes.get(from + 1) == Some(&quote) && bytes.get(from + 2) == Some(&quote);
    let mut i = from + if triple { 3 } else { 1 };
    while i < bytes.len() {
        let b = bytes[i];
        if escapes && b == b'\\' {
            i += 2;
            continue;
        }
        if b == quote && (!triple || (bytes.get(i + 1) == Some(&quote) && bytes.get(i + 2) == Some(&quote))) {
            return i + if triple { 3 } else { 1 };
        }
        if b == b'\n' && !triple {
            return i;
        }
        i += 1;
    }
    bytes.len()
}

/// Skips a KDL raw string `#"…"#` (any number of `#`).
fn skip_raw_string(bytes: &[u8], from: usize) -> usize {
    let hashes = bytes[from..].iter().take_while(|&&b| b == b'#').count();
    let mut i = from + hashes;
    if bytes.get(i) != Some(&b'"') {
        return i;
    }
    i += 1;
    while i < bytes.len() {
        if bytes[i] == b'"' && bytes[i + 1..].iter().take(hashes).filter(|&&b| b == b'#').count() == hashes {
            return i + 1 + hashes;
        }
        i += 1;
    }
    bytes.len()
}

/// Skips a KDL block comment, which may nest.
fn skip_block_comment(bytes: &[u8], from: usize) -> usize {
    let mut depth = 0usize;
    let mut i = from;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_inside_strings_and_comments_do_not_count() {
        let text = format!("a = \"{}\" # {}\nb = '{}'\n", "[".repeat(100), "{".repeat(100), "[".repeat(100));
        assert!(check(&text, Syntax::Toml).is_ok());
        let kdl = format!(
            "a \"{}\" // {}\n/* {} */ b #\"{}\"#\n",
            "{".repeat(100),
            "{".repeat(100),
            "{".repeat(100),
            "{".repeat(100)
        );
        assert!(check(&kdl, Syntax::Kdl).is_ok());
    }

    #[test]
    fn deep_nesting_is_refused_at_the_first_bracket_past_the_limit() {
        let text = format!("a = {}", "[".repeat(10_000));
        let error = check(&text, Syntax::Toml).unwrap_err();
        assert_eq!(error.span, Some(Span::new(4 + MAX_DEPTH, 5 + MAX_DEPTH)));
        let kdl = "a {\n".repeat(MAX_DEPTH + 1);
        assert!(check(&kdl, Syntax::Kdl).is_err());
        assert!(check(&"a {\n".repeat(MAX_DEPTH), Syntax::Kdl).is_ok());
    }
}
