//! One `.dockerignore` pattern: Go's `filepath.Clean`, and the glob dialect Docker matches paths with.
//!
//! Docker (moby's pattern matcher) turns a pattern into a Go regular expression, or into a plain string
//! comparison when it can; the two disagree on a few corner cases, and we follow whichever one Docker
//! uses for the pattern at hand:
//! - `*` is any run of characters but `/`, `?` any one character but `/`;
//! - `**` is any number of whole folders (`**/` is the same), and at the end of a pattern anything at all;
//! - `[...]` is a character class (`^` negates it; `!` is a member like any other), which *can* match `/`;
//! - `\` makes the next character literal;
//! - a pattern that starts with `**` and has no other wildcard is a suffix test: `**.pyc` matches `a.pyc`
//!   and `ab.pyc` alike, and `**/foo` matches `foo` and anything ending in `/foo`;
//! - in a pattern with wildcards an unescaped `^` outside a class is a regular-expression anchor (it can
//!   only match at the very start), and `**` does not cross a newline; in one without, both are literal.
//!
//! Where Go's regular expressions would give `\d`, `\w`, `\s`, `\b`… a meaning of their own (or refuse an
//! escape such as `\q`), we take the letter literally, as `filepath.Match` documents; escape only
//! punctuation to be safe with both.

/// Go's `filepath.Clean` on a `/`-separated path: the shortest equivalent form, lexically.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                // `..` at the root is the root.
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// An unescaped `^` outside a class: an anchor in a regular-expression pattern, else a literal.
    Caret,
    /// `*`: any run without `/`.
    Star,
    /// `?`: one character but `/`.
    Question,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` (with its `/`) before more pattern: nothing, or anything that ends with `/`.
    AnyDirs,
    /// `**` at the end: anything.
    AnyTail,
}

/// How Docker compares a path with the pattern (moby's "match type").
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// No wildcards (a trailing `**` at most): literal, `^` included.
    Literal,
    /// Starts with `**`, no other wildcard: a suffix test on the rest of the pattern.
    Suffix(String),
    /// Everything else: Docker's regular expression.
    Regexp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    kind: Kind,
}

impl Glob {
    /// Compiles a cleaned pattern; the error says what Docker would refuse it for.
    pub fn new(pattern: &str) -> Result<Glob, &'static str> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut regexp = false;
        let mut leading_any_dirs = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if tokens.is_empty() {
                        leading_any_dirs = true;
                    }
                    if i == chars.len() {
                        // After literal text Docker tests this as a prefix, else as the expression's `.*`.
                        tokens.push(Token::AnyTail);
                    } else {
                        tokens.push(Token::AnyDirs);
                        regexp = true;
                    }
                }
                '*' => {
                    tokens.push(Token::Star);
                    regexp = true;
                }
                '?' => {
                    tokens.push(Token::Question);
                    regexp = true;
                }
                '\\' => {
                    let escaped = *chars.get(i).ok_or("a pattern cannot end with \\")?;
                    i += 1;
                    tokens.push(Token::Literal(escaped));
                    regexp = true;
                }
                '[' => {
                    let (class, next) = class(&chars, i)?;
                    tokens.push(class);
                    i = next;
                    regexp = true;
                }
                ']' => {
                    tokens.push(Token::Literal(']'));
                    regexp = true;
                }
                '^' => tokens.push(Token::Caret),
                _ => tokens.push(Token::Literal(c)),
            }
        }
        let kind = if leading_any_dirs && !chars[2..].iter().any(|c| matches!(c, '*' | '?' | '[' | ']' | '\\')) {
            Kind::Suffix(chars[2..].iter().collect())
        } else if regexp {
            Kind::Regexp
        } else {
            Kind::Literal
        };
        Ok(Glob { tokens, kind })
    }

    /// Whether the whole of `path` (cleaned, relative, `/`-separated) matches.
    pub fn matches(&self, path: &str) -> bool {
        if let Kind::Suffix(suffix) = &self.kind {
            return path.ends_with(suffix.as_str()) || suffix.strip_prefix('/') == Some(path);
        }
        let regexp = self.kind == Kind::Regexp;
        let path: Vec<char> = path.chars().collect();
        let n = path.len();
        // The positions in `path` that the tokens so far can have reached (a set, as a bitmap).
        let mut reached = vec![false; n + 1];
        reached[0] = true;
        for token in &self.tokens {
            let mut next = vec![false; n + 1];
            for start in (0..=n).filter(|&j| reached[j]) {
                match token {
                    Token::Caret if regexp => next[start] |= start == 0,
                    Token::Caret => step(&mut next, &path, start, |c| c == '^'),
                    Token::Literal(l) => step(&mut next, &path, start, |c| c == *l),
                    Token::Question => step(&mut next, &path, start, |c| c != '/'),
                    Token::Class { negated, ranges } => step(&mut next, &path, start, |c| {
                        ranges.iter().any(|&(low, high)| low <= c && c <= high) != *negated
                    }),
                    Token::Star => {
                        next[start] = true;
                        for (k, &c) in path.iter().enumerate().skip(start) {
                            if c == '/' {
                                break;
                            }
                            next[k + 1] = true;
                        }
                    }
                    Token::AnyDirs | Token::AnyTail => {
                        // Go's `.` stops at a newline; the literal (prefix) test does not.
                        let any_dirs = *token == Token::AnyDirs;
                        next[start] = true;
                        for (k, &c) in path.iter().enumerate().skip(start) {
                            if regexp && c == '\n' {
                                break;
                            }
                            if !any_dirs || c == '/' {
                                next[k + 1] = true;
                            }
                        }
                    }
                }
            }
            reached = next;
        }
        reached[n]
    }

    /// Whether the pattern has a wildcard anywhere but in a trailing `/**` or `/*`: BuildKit then cannot
    /// tell from the text alone which folders an exception may reach into.
    pub fn is_prefix_only(pattern: &str) -> bool {
        let trimmed = pattern.strip_suffix("/**").or_else(|| pattern.strip_suffix("/*")).unwrap_or(pattern);
        !trimmed.contains(['*', '[', ']', '?', '^', '\\'])
    }
}

fn step(next: &mut [bool], path: &[char], start: usize, accepts: impl Fn(char) -> bool) {
    if let Some(&c) = path.get(start)
        && accepts(c)
    {
        next[start + 1] = true;
    }
}

/// Reads a class whose `[` is just before `chars[i]`, with `filepath.Match`'s syntax (which Docker checks
/// every pattern against) and the regular expression's refusal of a backwards range.
fn class(chars: &[char], mut i: usize) -> Result<(Token, usize), &'static str> {
    const UNCLOSED: &str = "a [ class is not closed";
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        match chars.get(i) {
            None => return Err(UNCLOSED),
            Some(']') if !ranges.is_empty() => return Ok((Token::Class { negated, ranges }, i + 1)),
            _ => {}
        }
        let (low, after) = class_char(chars, i)?;
        i = after;
        let mut high = low;
        if chars.get(i) == Some(&'-') {
            (high, i) = class_char(chars, i + 1)?;
        }
        if high < low {
            return Err("a class range runs backwards");
        }
        ranges.push((low, high));
    }
}

fn class_char(chars: &[char], i: usize) -> Result<(char, usize), &'static str> {
    match chars.get(i) {
        None => Err("a [ class is not closed"),
        Some('-') | Some(']') => Err("a class needs \\ before a - or ] that is not a range or its end"),
        Some('\\') => chars.get(i + 1).map(|&c| (c, i + 2)).ok_or("a [ class is not closed"),
        Some(&c) => Ok((c, i + 1)),
    }
}
