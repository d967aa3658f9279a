/// git's wildmatch with pathname semantics (`WM_PATHNAME`): `*`, `?` and `[...]` never match `/`, `**`
/// between slashes matches any number of folders. `false` for a malformed pattern.
pub fn wildmatch(pattern: &[u8], text: &[u8]) -> bool {
    match Glob::compile(pattern, None) {
        Some(glob) => glob.matches(text),
        None => false,
    }
}

/// 256-bit byte set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn add(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }
    fn remove(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] &= !(1 << (b & 63));
    }
    fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }
    fn add_range(&mut self, lo: u8, hi: u8) {
        for b in lo..=hi {
            self.add(b);
        }
    }
    fn add_set(&mut self, other: ByteSet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
    }
    fn complement(&mut self) {
        for word in &mut self.0 {
            *word = !*word;
        }
    }
    /// A POSIX class by name, ASCII only as in git; `None` for an unknown name.
    fn class(name: &[u8]) -> Option<ByteSet> {
        let test: fn(u8) -> bool = match name {
            b"alnum" => |b| b.is_ascii_alphanumeric(),
            b"alpha" => |b| b.is_ascii_alphabetic(),
            b"blank" => |b| b == b' ' || b == b'\t',
            b"cntrl" => |b| b < 0x20 || b == 0x7f,
            b"digit" => |b| b.is_ascii_digit(),
            b"graph" => |b| (0x21..=0x7e).contains(&b),
            b"lower" => |b| b.is_ascii_lowercase(),
            b"print" => |b| (0x20..=0x7e).contains(&b),
            b"punct" => |b| b.is_ascii_punctuation(),
            b"space" => |b| matches!(b, b'\t' | b'\n' | b'\r' | b' '),
            b"upper" => |b| b.is_ascii_uppercase(),
            b"xdigit" => |b| b.is_ascii_hexdigit(),
            _ => return None,
        };
        let mut set = ByteSet::default();
        (0..=255u8).filter(|&b| test(b)).for_each(|b| set.add(b));
        Some(set)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Byte(u8),
    /// `?`: one byte but `/`.
    Any,
    /// `[...]`, `/` already removed.
    Class(ByteSet),
    /// `*`: any run of bytes but `/`.
    Star,
    /// `**` (at the end, or before `\/`): any run of bytes.
    StarStar,
    /// Starts `**/` (nothing, or any run of bytes ending with `/`), compiled as `SkipDirs StarStar DirSlash`:
    /// consumes nothing and goes on either to the `StarStar` or past the `DirSlash`.
    SkipDirs,
    /// The `/` ending `**/` (not a `Byte`, so it never joins the literal prefix or suffix).
    DirSlash,
}

/// A compiled pattern: literal bytes required at the start and end, and an automaton for the middle.
#[derive(Clone, Debug)]
pub(super) struct Glob {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    middle: Vec<Token>,
}

impl Glob {
    /// `None` for a malformed pattern. `star_start` is a position whose `*` run counts as being at the
    /// start of the pattern (git's literal-prefix quirk).
    pub(super) fn compile(p: &[u8], star_start: Option<usize>) -> Option<Glob> {
        let mut tokens = Vec::with_capacity(p.len());
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                b'*' => {
                    let mut j = i;
                    while j < p.len() && p[j] == b'*' {
                        j += 1;
                    }
                    let at_start = i == 0 || p[i - 1] == b'/' || star_start == Some(i);
                    let at_end = j == p.len() || p[j] == b'/' || (p[j] == b'\\' && p.get(j + 1) == Some(&b'/'));
                    if j - i >= 2 && at_start && at_end {
                        if p.get(j) == Some(&b'/') {
                            tokens.extend([Token::SkipDirs, Token::StarStar, Token::DirSlash]);
                            j += 1;
                        } else {
                            tokens.push(Token::StarStar);
                        }
                    } else if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                    i = j;
                }
                b'?' => {
                    tokens.push(Token::Any);
                    i += 1;
                }
                b'[' => {
                    let (set, next) = parse_bracket(p, i + 1)?;
                    tokens.push(Token::Class(set));
                    i = next;
                }
                b'\\' => {
                    tokens.push(Token::Byte(*p.get(i + 1)?));
                    i += 2;
                }
                b => {
                    tokens.push(Token::Byte(b));
                    i += 1;
                }
            }
        }
        let bytes = |tokens: &[Token]| {
            tokens.iter().map_while(|t| if let Token::Byte(b) = t { Some(*b) } else { None }).count()
        };
        let lead = bytes(&tokens);
        let trail = tokens[lead..].iter().rev().take_while(|t| matches!(t, Token::Byte(_))).count();
        let literal = |tokens: &[Token]| {
            tokens.iter().filter_map(|t| if let Token::Byte(b) = t { Some(*b) } else { None }).collect()
        };
        let suffix = literal(&tokens[tokens.len() - trail..]);
        let prefix = literal(&tokens[..lead]);
        let middle = tokens[lead..tokens.len() - trail].to_vec();
        Some(Glob { prefix, suffix, middle })
    }

    pub(super) fn matches(&self, text: &[u8]) -> bool {
        if text.len() < self.prefix.len() + self.suffix.len()
            || !text.starts_with(&self.prefix)
            || !text.ends_with(&self.suffix)
        {
            return false;
        }
        let middle = &text[self.prefix.len()..text.len() - self.suffix.len()];
        let states = self.middle.len() + 1;
        let words = states.div_ceil(64);
        if words <= 4 {
            let (mut current, mut next) = ([0u64; 4], [0u64; 4]);
            run(&self.middle, middle, &mut current[..words], &mut next[..words])
        } else {
            let mut buffer = vec![0u64; 2 * words];
            let (current, next) = buffer.split_at_mut(words);
            run(&self.middle, middle, current, next)
        }
    }
}

/// Parses a bracket expression whose `[` is just before `start`: the set (without `/`) and the position
/// after its `]`; `None` when unterminated or naming an unknown class.
fn parse_bracket(p: &[u8], start: usize) -> Option<(ByteSet, usize)> {
    let mut i = start;
    let negated = matches!(p.get(i), Some(b'!' | b'^'));
    if negated {
        i += 1;
    }
    let mut set = ByteSet::default();
    // The byte that may start a range: the previous member, unless it ended a range or was a class.
    let mut previous: Option<u8> = None;
    let mut first = true;
    loop {
        let c = *p.get(i)?;
        if c == b']' && !first {
            i += 1;
            break;
        }
        first = false;
        if c == b'\\' {
            let escaped = *p.get(i + 1)?;
            set.add(escaped);
            previous = Some(escaped);
            i += 2;
            continue;
        }
        if c == b'-'
            && let Some(low) = previous
            && let Some(&high) = p.get(i + 1)
            && high != b']'
        {
            let (high, width) = if high == b'\\' { (*p.get(i + 2)?, 3) } else { (high, 2) };
            // Reversed ranges are empty; their first byte was already added as a member.
            if low <= high {
                set.add_range(low, high);
            }
            previous = None;
            i += width;
            continue;
        }
        if c == b'[' && p.get(i + 1) == Some(&b':') {
            let name_start = i + 2;
            let close = name_start + p.get(name_start..)?.iter().position(|&b| b == b']')?;
            if close > name_start && p[close - 1] == b':' {
                set.add_set(ByteSet::class(&p[name_start..close - 1])?);
                previous = None;
                i = close + 1;
                continue;
            }
            // No `:]`: the `[` is an ordinary member.
        }
        set.add(c);
        previous = Some(c);
        i += 1;
    }
    if negated {
        set.complement();
    }
    set.remove(b'/');
    Some((set, i))
}

fn set_bit(bits: &mut [u64], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}

fn get_bit(bits: &[u64], i: usize) -> bool {
    bits[i / 64] & (1 << (i % 64)) != 0
}

/// Adds the states reachable without input (all forward, so one pass in order suffices).
fn close(tokens: &[Token], bits: &mut [u64]) {
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Star | Token::StarStar if get_bit(bits, i) => set_bit(bits, i + 1),
            Token::SkipDirs if get_bit(bits, i) => {
                set_bit(bits, i + 1);
                set_bit(bits, i + 3);
            }
            _ => {}
        }
    }
}

/// Runs the automaton whose state `i` means "about to match token `i`" over `text`.
fn run(tokens: &[Token], text: &[u8], current: &mut [u64], next: &mut [u64]) -> bool {
    current.fill(0);
    set_bit(current, 0);
    close(tokens, current);
    let (mut current, mut next) = (current, next);
    for &c in text {
        next.fill(0);
        for (w, &word) in current.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Some(token) = tokens.get(i) else { continue };
                match token {
                    Token::Byte(b) if c == *b => set_bit(next, i + 1),
                    Token::Any if c != b'/' => set_bit(next, i + 1),
                    Token::Class(set) if set.contains(c) => set_bit(next, i + 1),
                    Token::Star if c != b'/' => set_bit(next, i),
                    Token::StarStar => set_bit(next, i),
                    Token::DirSlash if c == b'/' => set_bit(next, i + 1),
                    _ => {}
                }
            }
        }
        close(tokens, next);
        if next.iter().all(|&w| w == 0) {
            return false;
        }
        std::mem::swap(&mut current, &mut next);
    }
    get_bit(current, tokens.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wm(pattern: &str, text: &str) -> bool {
        wildmatch(pattern.as_bytes(), text.as_bytes())
    }

    #[test]
    fn stars() {
        assert!(wm("*", "abc") && !wm("*", "a/b"));
        assert!(wm("a*c", "ac") && wm("a*c", "abbc") && !wm("a*c", "a/c"));
        assert!(wm("**", "a/b/c") && wm("**", ""));
        assert!(wm("**/foo", "foo") && wm("**/foo", "a/b/foo") && !wm("**/foo", "afoo"));
        assert!(wm("a/**", "a/b") && wm("a/**", "a/b/c") && !wm("a/**", "a"));
        assert!(wm("a/**/b", "a/b") && wm("a/**/b", "a/x/b") && wm("a/**/b", "a/x/y/b") && !wm("a/**/b", "ab"));
        assert!(wm("a/***/b", "a/x/y/b"));
        assert!(!wm("a**b", "a/b") && wm("a**b", "axxb"));
        assert!(!wm("a/**b", "a/x/b") && wm("a/**b", "a/xb"));
        assert!(wm("a/**\\/b", "a/x/b") && wm("a/**\\/b", "a/x/y/b") && !wm("a/**\\/b", "a/b"));
        assert!(wm("**/**", "a/b"));
        // Without the literal-prefix quirk, `a**/b` is `a*/b`.
        assert!(wm("a**/b", "ax/b") && !wm("a**/b", "ab") && !wm("a**/b", "a/x/b"));
    }

    #[test]
    fn brackets() {
        assert!(wm("[abc]", "b") && !wm("[abc]", "d"));
        assert!(wm("[a-c]", "b") && !wm("[a-c]", "d"));
        assert!(wm("[!a-c]", "d") && !wm("[!a-c]", "a") && wm("[^a-c]", "d"));
        assert!(wm("[]]", "]") && wm("[]a]", "a") && wm("[!]]", "a") && !wm("[!]]", "]"));
        assert!(wm("[a-]", "-") && wm("[-a]", "-"));
        assert!(wm("[z-a]", "z") && !wm("[z-a]", "m"));
        assert!(wm("[a-c-e]", "-") && wm("[a-c-e]", "e") && !wm("[a-c-e]", "d"));
        assert!(wm("[]-a]", "^") && !wm("[]-a]", "\\"));
        assert!(wm("[\\]]", "]") && wm("[a\\-c]", "-") && !wm("[a\\-c]", "b"));
        assert!(wm("[a-\\c]", "b") && wm("[\\a-c]", "b"));
        assert!(wm("[!/]", "a") && !wm("[!/]", "/") && !wm("a[/]b", "a/b") && !wm("a?b", "a/b"));
        assert!(!wm("[a", "a") && !wm("[", "[") && !wm("[]", "]") && !wm("[\\]", "\\"));
    }

    #[test]
    fn classes() {
        assert!(wm("[[:alpha:]]", "a") && wm("[[:alpha:]]", "Z") && !wm("[[:alpha:]]", "1"));
        assert!(wm("[[:digit:]-z]", "-") && wm("[[:digit:]-z]", "5") && !wm("[[:digit:]-z]", "y"));
        assert!(wm("[x[:digit:]]", "x") && wm("[[:alpha:][:digit:]]", "7"));
        assert!(wm("[[:space:]]", "\r") && !wm("[[:space:]]", "\x0b"));
        assert!(wm("[[:punct:]]", "!") && wm("[[:xdigit:]]", "F") && !wm("[[:xdigit:]]", "g"));
        assert!(!wm("[[:bogus:]]", "a") && !wm("[[:ALPHA:]]", "a") && !wm("[[::]]", ":"));
        assert!(!wm("[[:alpha:]", "a") && !wm("[a[:bogus:]]", "a"));
        // `[:` without `:]`: a literal `[`.
        assert!(wm("[[:alpha]", "[") && wm("[[:alpha]", "h") && wm("[[:]", ":") && wm("[[:]]", "[]"));
        assert!(wm("[:alpha:]", "l") && !wm("[:alpha:]", "b"));
        assert!(wm("[a-[:alpha:]]", "l]"));
    }

    #[test]
    fn bytes_not_characters() {
        assert!(!wm("?", "é") && wm("??", "é") && !wm("[é]", "é"));
        assert!(wildmatch(b"\xff*", b"\xff\xfe") && wildmatch(b"[\x80-\xff]", b"\x90"));
    }

    #[test]
    fn escapes() {
        assert!(wm("\\*", "*") && !wm("\\*", "a") && wm("\\[a]", "[a]") && wm("a\\/b", "a/b"));
        assert!(!wm("a\\", "a") && !wm("a\\", "a\\") && wm("a\\\\", "a\\"));
    }

    #[test]
    fn hostile_patterns_are_polynomial() {
        let pattern = "*a".repeat(40) + "*b";
        let text = "a".repeat(200);
        assert!(!wm(&pattern, &text));
        let pattern = "**/".repeat(80) + "x";
        let text = "a/".repeat(200) + "y";
        assert!(!wm(&pattern, &text));
        let long = "?".repeat(1000);
        assert!(wm(&long, &"z".repeat(1000)));
    }
}
