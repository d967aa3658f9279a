use super::basename;
use super::wildmatch::Glob;

/// One rule (pattern line) of an ignore file.
#[derive(Clone, Debug)]
pub struct Rule {
    /// 1-based line number in its file.
    pub line: usize,
    /// The line as written, without its line ending (lossy UTF-8, for messages).
    pub text: String,
    /// The line started with `!`: a match re-includes the path.
    pub negated: bool,
    /// The pattern ended with `/`: it matches directories only.
    pub dir_only: bool,
    /// The pattern had a `/` at its start or middle: it matches the path relative to the file's folder,
    /// otherwise the last path component.
    pub anchored: bool,
    /// The glob after removing `!`, the leading and trailing `/` and trailing spaces.
    pub pattern: Vec<u8>,
    matcher: Matcher,
}

impl Rule {
    /// Parses one line (without its `\n`; a final `\r` is dropped). `None` for blank lines and comments.
    pub fn parse(line: usize, raw: &[u8]) -> Option<Rule> {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() || raw[0] == b'#' {
            return None;
        }
        let trimmed = trim_trailing_spaces(raw);
        if trimmed.is_empty() {
            return None;
        }
        let (negated, rest) = match trimmed.strip_prefix(b"!") {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let (dir_only, rest) = match rest.strip_suffix(b"/") {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let anchored = rest.contains(&b'/');
        let pattern = if anchored { rest.strip_prefix(b"/").unwrap_or(rest) } else { rest };
        Some(Rule {
            line,
            text: String::from_utf8_lossy(raw).into_owned(),
            negated,
            dir_only,
            anchored,
            pattern: pattern.to_vec(),
            matcher: Matcher::compile(pattern, anchored),
        })
    }

    /// Whether the pattern matches `relative` (relative to the rule's folder, no trailing `/`). Says
    /// nothing about negation: a negated rule that matches re-includes the path.
    pub fn matches(&self, relative: &str, is_dir: bool) -> bool {
        let relative = relative.as_bytes();
        self.matches_parts(relative, basename(relative), is_dir)
    }

    /// Whether the rule can ever match anything (false for `!`, `/`, malformed brackets, ...).
    pub fn can_match(&self) -> bool {
        !matches!(self.matcher, Matcher::Never)
    }

    pub(super) fn matches_parts(&self, relative: &[u8], base: &[u8], is_dir: bool) -> bool {
        if self.dir_only && !is_dir {
            return false;
        }
        self.matcher.matches(if self.anchored { relative } else { base })
    }
}

/// Drops trailing spaces that are not escaped with a backslash.
fn trim_trailing_spaces(line: &[u8]) -> &[u8] {
    let mut end = 0;
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b' ' => i += 1,
            b'\\' => {
                i = (i + 2).min(line.len());
                end = i;
            }
            _ => {
                i += 1;
                end = i;
            }
        }
    }
    &line[..end]
}

/// `pattern` without its escapes when it has no wildcard; `None` otherwise (or when it ends in a lone `\`).
fn unescape_literal(pattern: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'*' | b'?' | b'[' => return None,
            b'\\' => {
                out.push(*pattern.get(i + 1)?);
                i += 2;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

#[derive(Clone, Debug)]
enum Matcher {
    /// Empty or malformed: matches nothing.
    Never,
    /// No wildcard: the target equals these bytes.
    Exact(Vec<u8>),
    /// `*` then no wildcard, unanchored: the basename ends with these bytes.
    Suffix(Vec<u8>),
    Glob(Glob),
}

impl Matcher {
    fn compile(pattern: &[u8], anchored: bool) -> Matcher {
        // Paths never start or end with `/`, so neither can a pattern that matches one.
        if pattern.is_empty() || pattern.starts_with(b"/") || pattern.ends_with(b"/") {
            return Matcher::Never;
        }
        if let Some(literal) = unescape_literal(pattern) {
            return Matcher::Exact(literal);
        }
        if !anchored
            && let Some(rest) = pattern.strip_prefix(b"*")
            && let Some(literal) = unescape_literal(rest)
        {
            return Matcher::Suffix(literal);
        }
        // git compares an anchored pattern's literal start before globbing the rest, so a `**` right
        // after that start is at the start of what wildmatch sees.
        let quirk = if anchored {
            pattern
                .iter()
                .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
                .filter(|&i| i > 0 && pattern[i] == b'*')
        } else {
            None
        };
        match Glob::compile(pattern, quirk) {
            Some(glob) => Matcher::Glob(glob),
            None => Matcher::Never,
        }
    }

    fn matches(&self, target: &[u8]) -> bool {
        match self {
            Matcher::Never => false,
            Matcher::Exact(literal) => target == literal.as_slice(),
            Matcher::Suffix(suffix) => target.ends_with(suffix),
            Matcher::Glob(glob) => glob.matches(target),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(line: &str) -> Rule {
        Rule::parse(1, line.as_bytes()).expect("a rule")
    }

    #[test]
    fn blank_lines_and_comments_are_not_rules() {
        for line in ["", " ", "   ", "\r", "#", "# comment", "#!x"] {
            assert!(Rule::parse(1, line.as_bytes()).is_none(), "{line:?}");
        }
        assert_eq!(rule("\\#x").pattern, b"\\#x");
        assert!(rule("\\#x").matches("#x", false));
        assert!(rule(" #x").matches(" #x", false));
    }

    #[test]
    fn trailing_spaces_are_trimmed_unless_escaped() {
        assert_eq!(rule("foo   ").pattern, b"foo");
        assert_eq!(rule("foo\\ ").pattern, b"foo\\ ");
        assert_eq!(rule("foo\\  ").pattern, b"foo\\ ");
        assert_eq!(rule("foo\\\\  ").pattern, b"foo\\\\");
        assert_eq!(rule("c \\ ").pattern, b"c \\ ");
        assert_eq!(rule("tab\t").pattern, b"tab\t");
        assert!(rule("foo\\ ").matches("foo ", false));
        assert!(!rule("foo\\ ").matches("foo", false));
        assert!(rule("\\ ").matches(" ", false));
        assert!(rule("a \r").matches("a", false));
    }

    #[test]
    fn negation_anchoring_and_directories() {
        let r = rule("!foo/");
        assert!(r.negated && r.dir_only && !r.anchored);
        assert!(r.matches("a/foo", true) && !r.matches("a/foo", false));
        let r = rule("\\!important!.txt");
        assert!(!r.negated && r.matches("!important!.txt", false));
        let r = rule("/foo");
        assert!(r.anchored && r.matches("foo", false) && !r.matches("a/foo", false));
        let r = rule("a/b");
        assert!(r.anchored && r.matches("a/b", false) && !r.matches("x/a/b", false));
        let r = rule("foo");
        assert!(!r.anchored && r.matches("foo", false) && r.matches("x/y/foo", true));
        for never in ["!", "/", "!/", "//", "foo//", "foo\\/", "//foo", "foo\\", "[", "[a", "[]", "[!]", "[[:bogus:]]"]
        {
            let r = rule(never);
            assert!(!r.can_match(), "{never:?}");
        }
    }

    #[test]
    fn literal_prefix_quirk_in_anchored_patterns() {
        let r = rule("a**/foo");
        assert!(r.matches("afoo", false) && r.matches("a/x/foo", false) && r.matches("ab/x/foo", false));
        assert!(!rule("a?**/foo").matches("ab/x/foo", false));
        assert!(rule("a/b**").matches("a/bc/d", false));
        assert!(!rule("a/b*").matches("a/bc/d", false));
    }
}
