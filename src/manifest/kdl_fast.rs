//! The KDL document the mapper reads, and a fast reader for the KDL that manifests are written in.
//!
//! The kdl crate keeps every space and comment for re-formatting and recovers from errors as it goes,
//! which makes it slow: about half a millisecond per environment, seconds for a large manifest, and
//! its nodes are large. The mapper needs names, values and spans only, so [`Document`] holds just
//! those, and [`parse`] reads the common subset of KDL straight into it: node names, arguments,
//! properties (`key="value"`), child blocks, quoted strings with the usual escapes, bare identifiers,
//! decimal numbers, `#true` and `#false`, `//` and `/* */` comments, and nodes ended by newlines, `;`
//! or `}`.
//!
//! Anything else (slashdash, type annotations, raw and multi-line strings, line continuations, other
//! numbers and keywords, spaces and newlines beyond ASCII) and every mistake make [`parse`] return
//! `None`; the kdl crate then reads the text as before, errors and all, and its document is copied
//! into a [`Document`]. Either way the mapper sees the same names, values and spans.

use super::tree::Span;
use compact_str::CompactString;
use kdl::{KdlDocument, KdlValue};

/// The front end's own limit: a text that nests no deeper passes its nesting check, so that check (a
/// pass over the whole text) runs only when this reader declines, before the kdl crate.
const MAX_DEPTH: usize = super::nesting::MAX_DEPTH;

/// Text given to each thread when a large manifest is read in parts.
const BYTES_PER_PART: usize = 256 * 1024;

/// The nodes of a document or of a child block.
#[derive(Debug, Default, PartialEq)]
pub struct Document {
    nodes: Vec<Node>,
}

impl Document {
    /// The mapper takes documents apart ([`Self::into_nodes`]); tests read them in place.
    #[cfg(test)]
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn into_nodes(self) -> Vec<Node> {
        self.nodes
    }
}

/// A node: its name, arguments and properties, child block, and the text from its name to the
/// spaces after its last entry or child block.
#[derive(Debug, PartialEq)]
pub struct Node {
    name: Ident,
    entries: Vec<Entry>,
    children: Option<Document>,
    span: Span,
}

impl Node {
    pub fn name(&self) -> &Ident {
        &self.name
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The mapper takes documents apart ([`Self::into_parts`]); tests read them in place.
    #[cfg(test)]
    pub fn children(&self) -> Option<&Document> {
        self.children.as_ref()
    }

    pub fn span(&self) -> Span {
        self.span
    }

    /// The name, the entries, the child nodes (none without a block) and the span, taken apart.
    pub fn into_parts(self) -> (Ident, Vec<Entry>, Vec<Node>, Span) {
        (self.name, self.entries, self.children.map_or_else(Vec::new, Document::into_nodes), self.span)
    }
}

/// An argument (no name) or a property; its span covers the name, if any, and the value.
#[derive(Debug, PartialEq)]
pub struct Entry {
    name: Option<Ident>,
    value: Scalar,
    span: Span,
}

/// A value as the mapper reads it: the kdl crate's values, with short strings kept inline.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    String(CompactString),
    Integer(i128),
    Float(f64),
    Bool(bool),
    Null,
}

impl From<&KdlValue> for Scalar {
    fn from(value: &KdlValue) -> Self {
        match value {
            KdlValue::String(text) => Scalar::String(text.as_str().into()),
            KdlValue::Integer(number) => Scalar::Integer(*number),
            KdlValue::Float(number) => Scalar::Float(*number),
            KdlValue::Bool(flag) => Scalar::Bool(*flag),
            KdlValue::Null => Scalar::Null,
        }
    }
}

impl Entry {
    pub fn name(&self) -> Option<&Ident> {
        self.name.as_ref()
    }

    pub fn value(&self) -> &Scalar {
        &self.value
    }

    pub fn span(&self) -> Span {
        self.span
    }

    pub fn into_parts(self) -> (Option<Ident>, Scalar, Span) {
        (self.name, self.value, self.span)
    }
}

/// A node name or a property key, as text; quotes are part of its span.
#[derive(Debug, PartialEq)]
pub struct Ident {
    value: CompactString,
    span: Span,
}

impl Ident {
    pub fn value(&self) -> &str {
        &self.value
    }

    pub fn span(&self) -> Span {
        self.span
    }

    pub fn into_value(self) -> CompactString {
        self.value
    }
}

/// The parts of the kdl crate's document that the mapper reads. Type annotations are left out: no
/// manifest field takes one.
impl From<&KdlDocument> for Document {
    fn from(document: &KdlDocument) -> Self {
        let ident = |i: &kdl::KdlIdentifier| Ident { value: i.value().into(), span: from_miette(i.span()) };
        let nodes = document
            .nodes()
            .iter()
            .map(|node| Node {
                name: ident(node.name()),
                entries: node
                    .entries()
                    .iter()
                    .map(|e| Entry { name: e.name().map(ident), value: e.value().into(), span: from_miette(e.span()) })
                    .collect(),
                children: node.children().map(Document::from),
                span: from_miette(node.span()),
            })
            .collect();
        Document { nodes }
    }
}

/// The document, or `None` when the text is outside the subset, not valid KDL, or nested deeper than
/// the front end allows. A large text is read in parts on the machine's cores (see [`parse_in_parts`]).
pub fn parse(text: &str) -> Option<Document> {
    match parse_each(text, |node| node)? {
        Read::Parts(nodes) | Read::Whole(Document { nodes }) => Some(Document { nodes }),
    }
}

/// What [`parse_each`] read.
pub enum Read<R> {
    /// The text was read in parts, and each top-level node taken by the function, in order.
    Parts(Vec<R>),
    /// The text was read in one pass: the document.
    Whole(Document),
}

/// [`parse`], with `each` taking every top-level node as soon as its part of a large text is read, on
/// the part's thread, while the part's nodes are at hand (and freed by the thread that made them). A
/// text read in one pass comes back as its document.
pub fn parse_each<R: Send>(text: &str, each: impl Fn(Node) -> R + Sync) -> Option<Read<R>> {
    let parts = crate::parts::threads_for(text.len(), BYTES_PER_PART);
    parse_each_in(text, parts, parts, each)
}

/// [`parse_each`] in up to `parts` parts on `threads` threads (one pass when `parts` is 1, or when a
/// part fails).
pub(super) fn parse_each_in<R: Send>(
    text: &str,
    parts: usize,
    threads: usize,
    each: impl Fn(Node) -> R + Sync,
) -> Option<Read<R>> {
    let cuts = || crate::parts::cuts(text.len(), parts, |from| node_line_from(text, from));
    if parts > 1
        && let Some(taken) = parse_cut_each(text, cuts(), threads, &each)
    {
        return Some(Read::Parts(taken));
    }
    let nodes = Reader::new(text, 0, text.len()).nodes(0)?;
    Some(Read::Whole(Document { nodes }))
}

/// Reads `text` in up to `parts` consecutive parts side by side, each starting at a line that begins
/// with a node name, and joins their top-level nodes in order. All the reader takes that spans lines
/// is bracketed (child blocks, `/* */` comments), so a part that reads to its very end ends between
/// top-level nodes and the join is what one pass gives; a cut inside a block or a comment fails its
/// part. `None` when any part fails or no cut is found: the caller then reads the text in one pass (a
/// test holds the two equal on every KDL manifest in the repository, cut at every such line).
///
/// The parts are read on `threads` threads; with one, one after another here: the same cuts and joins
/// without starting threads, as the fuzz targets check them.
pub fn parse_in_parts(text: &str, parts: usize, threads: usize) -> Option<Document> {
    parse_cut(text, crate::parts::cuts(text.len(), parts, |from| node_line_from(text, from)), threads)
}

/// [`parse_in_parts`] with the parts cut at `cuts` (increasing positions inside the text).
fn parse_cut(text: &str, cuts: Vec<usize>, threads: usize) -> Option<Document> {
    parse_cut_each(text, cuts, threads, &|node| node).map(|nodes| Document { nodes })
}

/// [`parse_cut`], each part's top-level nodes taken by `each` on the part's thread.
fn parse_cut_each<R: Send>(
    text: &str,
    cuts: Vec<usize>,
    threads: usize,
    each: &(impl Fn(Node) -> R + Sync),
) -> Option<Vec<R>> {
    if cuts.is_empty() {
        return None;
    }
    let parts = crate::parts::map_ranges(text.len(), &cuts, threads, |start, end| {
        Some(Reader::new(text, start, end).nodes(0)?.into_iter().map(each).collect::<Vec<R>>())
    });
    let mut taken = Vec::new();
    for part in parts {
        taken.extend(part?);
    }
    Some(taken)
}

/// The start of the first line at or after `from` that begins with a node name (a letter, `_` or a
/// quote, with no space before it): where a part may start.
fn node_line_from(text: &str, from: usize) -> Option<usize> {
    crate::parts::line_from(text, from, |b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'"'))
}

fn span(start: usize, end: usize) -> Span {
    Span::new(start, end)
}

fn from_miette(span: miette::SourceSpan) -> Span {
    Span::new(span.offset(), span.offset() + span.len())
}

/// Reads from `pos`; every method returns `None` for what it does not know, which ends the fast path.
struct Reader<'t> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
}

impl<'t> Reader<'t> {
    /// A reader of `text[start..end]`; spans count from the start of `text`.
    fn new(text: &'t str, start: usize, end: usize) -> Self {
        let text = &text[..end];
        Reader { text, bytes: text.as_bytes(), pos: start }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    fn at_newline(&self) -> bool {
        self.peek() == Some(b'\n') || (self.peek() == Some(b'\r') && self.peek_at(1) == Some(b'\n'))
    }

    /// Nodes until the end of the text (depth 0) or until the `}` that closes a child block, which is
    /// left for the caller.
    fn nodes(&mut self, depth: usize) -> Option<Vec<Node>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut nodes = Vec::new();
        loop {
            self.line_space()?;
            match self.peek() {
                None if depth == 0 => return Some(nodes),
                Some(b'}') if depth > 0 => return Some(nodes),
                None | Some(b'}') => return None,
                Some(_) => nodes.push(self.node(depth)?),
            }
        }
    }

    /// A node, its span running from its name to the spaces after its last entry or child block, then
    /// its terminator: a newline, `;` or `//` comment (consumed), or the `}` or end that follows it.
    fn node(&mut self, depth: usize) -> Option<Node> {
        let start = self.pos;
        let name = self.identifier()?;
        let mut entries = Vec::new();
        let mut children = None;
        loop {
            let before_space = self.pos;
            self.node_space()?;
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    let nodes = self.nodes(depth + 1)?;
                    self.pos += 1;
                    children = Some(Document { nodes });
                    self.node_space()?;
                    break;
                }
                None | Some(b';' | b'}') => break,
                Some(b'/') if self.peek_at(1) == Some(b'/') => break,
                _ if self.at_newline() => break,
                _ if self.pos > before_space => {
                    entries.push(self.entry()?);
                }
                _ => return None,
            }
        }
        let node = Node { name, entries, children, span: span(start, self.pos) };
        match self.peek() {
            None | Some(b'}') => {}
            Some(b';') => self.pos += 1,
            Some(b'/') if self.peek_at(1) == Some(b'/') => self.line_comment()?,
            _ if self.at_newline() => self.pos += if self.peek() == Some(b'\r') { 2 } else { 1 },
            _ => return None,
        }
        Some(node)
    }

    /// An argument (`"value"`, `8080`, `#true`) or a property (`key="value"`), spanned from its first
    /// character to its last.
    fn entry(&mut self) -> Option<Entry> {
        let start = self.pos;
        let (name, value) = match self.peek()? {
            b'"' | b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let text = self.string()?;
                if self.peek() == Some(b'=') {
                    let key = Ident { value: text, span: span(start, self.pos) };
                    self.pos += 1;
                    (Some(key), self.value()?)
                } else {
                    self.value_end()?;
                    (None, Scalar::String(text))
                }
            }
            _ => (None, self.value()?),
        };
        Some(Entry { name, value, span: span(start, self.pos) })
    }

    /// A node name.
    fn identifier(&mut self) -> Option<Ident> {
        let start = self.pos;
        let value = self.string()?;
        let identifier = Ident { value, span: span(start, self.pos) };
        self.value_end()?;
        Some(identifier)
    }

    /// A value, and that what follows may end it.
    fn value(&mut self) -> Option<Scalar> {
        let value = match self.peek()? {
            b'"' | b'a'..=b'z' | b'A'..=b'Z' | b'_' => Scalar::String(self.string()?),
            b'0'..=b'9' | b'-' => self.number()?,
            b'#' => {
                let rest = &self.bytes[self.pos + 1..];
                let (value, len) = if rest.starts_with(b"true") {
                    (true, 4)
                } else if rest.starts_with(b"false") {
                    (false, 5)
                } else {
                    return None;
                };
                self.pos += 1 + len;
                Scalar::Bool(value)
            }
            _ => return None,
        };
        self.value_end()?;
        Some(value)
    }

    /// What may follow a value: a space, a newline, `;`, `{`, `}`, a comment or the end.
    fn value_end(&self) -> Option<()> {
        match self.peek() {
            None | Some(b' ' | b'\t' | b'\n' | b';' | b'{' | b'}') => Some(()),
            Some(b'/') if matches!(self.peek_at(1), Some(b'/' | b'*')) => Some(()),
            Some(b'\r') if self.peek_at(1) == Some(b'\n') => Some(()),
            _ => None,
        }
    }

    /// A quoted string or a bare identifier such as `app`.
    fn string(&mut self) -> Option<CompactString> {
        match self.peek()? {
            b'"' => self.quoted(),
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = self.pos;
                while let Some(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.') = self.peek() {
                    self.pos += 1;
                }
                let word = &self.text[start..self.pos];
                // Keywords without their `#` are mistakes; the kdl crate says so.
                (!matches!(word, "true" | "false" | "null" | "inf" | "nan")).then(|| word.into())
            }
            _ => None,
        }
    }

    /// A single-line quoted string with the escapes `\" \\ \b \f \n \r \t \s \u{…}`.
    fn quoted(&mut self) -> Option<CompactString> {
        if self.peek_at(1) == Some(b'"') && self.peek_at(2) == Some(b'"') {
            return None; // a multi-line string
        }
        self.pos += 1;
        let mut out = CompactString::default();
        loop {
            let run = self.pos;
            while let Some(b) = self.peek() {
                if matches!(b, b'"' | b'\\' | 0x00..=0x08 | 0x0A..=0x1F | 0x7F | 0x80..) {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run..self.pos]);
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Some(out);
                }
                b'\\' => out.push(self.escape()?),
                0x80.. => {
                    let c = self.text[self.pos..].chars().next()?;
                    if !plain_char(c) {
                        return None;
                    }
                    out.push(c);
                    self.pos += c.len_utf8();
                }
                _ => return None, // a newline or control character
            }
        }
    }

    fn escape(&mut self) -> Option<char> {
        let c = match self.peek_at(1)? {
            b'"' => '"',
            b'\\' => '\\',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b's' => ' ',
            b'u' if self.peek_at(2) == Some(b'{') => {
                let digits_start = self.pos + 3;
                let len = self.bytes[digits_start..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
                if !(1..=6).contains(&len) || self.bytes.get(digits_start + len) != Some(&b'}') {
                    return None;
                }
                let c = char::from_u32(u32::from_str_radix(&self.text[digits_start..digits_start + len], 16).ok()?)?;
                self.pos = digits_start + len + 1;
                return Some(c);
            }
            _ => return None,
        };
        self.pos += 2;
        Some(c)
    }

    /// A decimal integer or float: `8080`, `-1`, `0.5`, `2.5e3`. No `+`, `_`, hex, octal or binary.
    fn number(&mut self) -> Option<Scalar> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let digits = |reader: &mut Self| {
            let from = reader.pos;
            while reader.peek().is_some_and(|b| b.is_ascii_digit()) {
                reader.pos += 1;
            }
            reader.pos - from
        };
        let whole = digits(self);
        if whole == 0 {
            return None;
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return None;
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return None;
            }
            float = true;
        }
        let text = &self.text[start..self.pos];
        if float {
            text.parse().ok().map(Scalar::Float)
        } else if whole <= 30 {
            text.parse().ok().map(Scalar::Integer)
        } else {
            None
        }
    }

    /// Spaces and `/* */` comments within a node. A `\` line continuation is left to the kdl crate.
    fn node_space(&mut self) -> Option<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.pos += 1,
                Some(b'/') if self.peek_at(1) == Some(b'*') => self.block_comment()?,
                Some(b'\\') => return None,
                _ => return Some(()),
            }
        }
    }

    /// Spaces, newlines and comments between nodes. A `/-` slashdash is left to the kdl crate.
    fn line_space(&mut self) -> Option<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n') => self.pos += 1,
                Some(b'\r') if self.peek_at(1) == Some(b'\n') => self.pos += 2,
                Some(b'/') if self.peek_at(1) == Some(b'/') => self.line_comment()?,
                Some(b'/') if self.peek_at(1) == Some(b'*') => self.block_comment()?,
                Some(b'/' | b'\\' | b'\r') => return None,
                _ => return Some(()),
            }
        }
    }

    /// A `//` comment and the newline that ends it (or the end of the text).
    fn line_comment(&mut self) -> Option<()> {
        loop {
            match self.peek() {
                None => return Some(()),
                Some(b'\n') => {
                    self.pos += 1;
                    return Some(());
                }
                Some(b'\r') if self.peek_at(1) == Some(b'\n') => {
                    self.pos += 2;
                    return Some(());
                }
                // Other newlines (\r, \v, \f, NEL, LS, PS) end a comment too: left to the kdl crate.
                Some(b'\r' | 0x0B | 0x0C) => return None,
                Some(0x80..) => {
                    let c = self.text[self.pos..].chars().next()?;
                    if matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') {
                        return None;
                    }
                    self.pos += c.len_utf8();
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// A `/* */` comment, which may nest.
    fn block_comment(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match (self.peek()?, self.peek_at(1)) {
                (b'/', Some(b'*')) => {
                    depth += 1;
                    self.pos += 2;
                }
                (b'*', Some(b'/')) => {
                    depth -= 1;
                    self.pos += 2;
                    if depth == 0 {
                        return Some(());
                    }
                }
                _ => self.pos += 1,
            }
        }
    }
}

/// A character a quoted string may hold as it is: not a newline, a control character or one KDL forbids.
fn plain_char(c: char) -> bool {
    !matches!(c, '\u{80}'..='\u{9F}' | '\u{200E}'..='\u{200F}' | '\u{2028}'..='\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names, values and spans, the parts the mapper reads, as text to compare.
    fn outline(document: &Document) -> String {
        let mut out = String::new();
        for node in document.nodes() {
            out.push_str(&format!("{}@{:?}/{:?}[", node.name().value(), node.name().span(), node.span()));
            for entry in node.entries() {
                let name = entry.name().map(|n| format!("{}@{:?}=", n.value(), n.span())).unwrap_or_default();
                out.push_str(&format!("{name}{:?}@{:?} ", entry.value(), entry.span()));
            }
            out.push(']');
            if let Some(children) = node.children() {
                out.push_str(&format!("{{{}}}", outline(children)));
            }
            out.push(';');
        }
        out
    }

    #[test]
    fn reads_the_common_subset_as_the_kdl_crate_does() {
        let cases = [
            "project {\n    name \"demo\"\n    domains \"development\" \"production\"\n}\n",
            "environment \"web\" {\n    kind \"app\"   \n    port 8080\n    scaling min_replicas=1 max_replicas=4 target=2.5\n}",
            "a \"x\"=1 y=\"z\" b-c d.e f_g key=val",
            "\"quoted name\" 1;b 2",
            "a{b 1}\na { }  \n",
            "a /* c */ 1 /* d */ // e\nb",
            "a 1\r\nb 2\r\n",
            "a #true #false 1.5e3 -2 0.25 1E-2 -0.0 99999999999999999999",
            "a\t1\t\n/* x /* y */ z */ b 1",
            "a \"\\u{1F600} é \\t\\s\\\"\\\\\" \"\"",
            "a x=1 x=2",
            "a { b { c { d 1; }; }; }",
            "// only a comment",
            "",
        ];
        for text in cases {
            let fast = parse(text).unwrap_or_else(|| panic!("the fast reader declined {text:?}"));
            let slow = Document::from(&KdlDocument::parse_v2(text).unwrap());
            assert_eq!(outline(&fast), outline(&slow), "{text:?}");
        }
    }

    #[test]
    fn leaves_the_rest_and_every_mistake_to_the_kdl_crate() {
        let cases = [
            "/- a 1",
            "a /-1 2",
            "(t)a 1",
            "a (t)1",
            "a #\"raw\"#",
            "a \"\"\"\n  text\n  \"\"\"",
            "a 1 \\\n  2",
            "a 0x1F 1_000 +1",
            "a #null #inf",
            "a true",
            "a -b",
            "a \"unclosed",
            "a \"bad \\q escape\"",
            "a {",
            "}",
            "a\u{a0}1",
            "a 1\rb 2",
            "\u{feff}a 1",
            "a \"x\"\"y\"",
            "a x = 1",
            "a { } b",
        ];
        for text in cases {
            assert!(parse(text).is_none(), "the fast reader took {text:?}");
        }
    }

    /// Whenever the fast reader accepts a text, the kdl crate accepts it too and gives the same
    /// document, spans included. Inputs: every KDL file in the repository, and deterministic
    /// mutations of each (a character deleted, inserted or doubled), which mostly hit the corners
    /// where a reader of a subset could go wrong.
    #[test]
    fn the_fast_reader_never_disagrees_with_the_kdl_crate() {
        let texts = super::super::mutations::repository_texts("kdl");
        assert!(texts.len() >= 20, "found only {} KDL files", texts.len());
        let inserts = ['"', '{', '}', ';', '\\', '/', '*', '#', '=', ' ', '\n', '-', '.', '0', 'e', '(', 'é'];
        let (mut checked, mut accepted) = (0usize, 0usize);
        let variants = super::super::mutations::mutations(&texts, &inserts, 50);
        for variant in variants {
            // As in the front end, the nesting guard runs first: the kdl crate recurses.
            if super::super::nesting::check(&variant, super::super::nesting::Syntax::Kdl).is_err() {
                continue;
            }
            checked += 1;
            let Some(fast) = parse(&variant) else { continue };
            accepted += 1;
            let full = KdlDocument::parse_v2(&variant)
                .unwrap_or_else(|e| panic!("the fast reader accepted what kdl refuses ({e:?}):\n{variant}"));
            assert_eq!(fast, Document::from(&full), "the readers disagree on:\n{variant}");
        }
        assert!(accepted > texts.len(), "the fast reader accepted only {accepted} of {checked} texts");
    }

    /// What the reader takes passes the nesting guard, which therefore runs only when it declines.
    #[test]
    fn takes_nothing_the_nesting_guard_refuses() {
        use super::super::nesting::{self, Syntax};
        let nested = |depth: usize| format!("{}a 1{}", "n {\n".repeat(depth), "\n}".repeat(depth));
        let deepest = nested(nesting::MAX_DEPTH);
        assert!(parse(&deepest).is_some());
        assert!(nesting::check(&deepest, Syntax::Kdl).is_ok());
        let too_deep = nested(nesting::MAX_DEPTH + 1);
        assert!(parse(&too_deep).is_none());
        assert!(nesting::check(&too_deep, Syntax::Kdl).is_err());
    }

    /// Read in parts, a text gives the document one pass gives, or is declined (and then read in one
    /// pass). Every repository manifest and mutations of it, cut at every line that starts with a node
    /// name and at pairs of them; the unmutated manifests must also be taken at every such cut.
    #[test]
    fn reading_in_parts_gives_what_one_pass_gives() {
        let mut texts = super::super::mutations::repository_texts("kdl");
        let repository = texts.len();
        // Cuts inside a child block and inside a comment, and nodes that end without a newline.
        texts.extend(
            ["a {\nb 1\nc 2\n}\nd 3\n", "a 1 /* x\ny */ 2\nb 3\n", "a 1; b 2\nc 3;\n\"d\" 4", "a {\n}\nb\n"]
                .map(String::from),
        );
        let inserts = ['{', '}', '\n', ';', '"', '/', '*', ' '];
        let one_pass = |text: &str| Reader::new(text, 0, text.len()).nodes(0).map(|nodes| Document { nodes });
        let (compared, taken) = super::super::mutations::check_parts(
            &texts,
            repository,
            &inserts,
            false,
            node_line_from,
            one_pass,
            parse_cut,
        );
        assert!(taken > 1000, "only {taken} of {compared} cut texts were read");
        // The public entry point, on a text large enough to be read in parts.
        let mut large = String::from("project {\n    name \"big\"\n}\n");
        for n in 0..20_000 {
            large.push_str(&format!("environment \"env-{n}\" {{\n    kind \"task\"\n    cpu \"{n}m\"\n}}\n"));
        }
        let in_parts = parse_in_parts(&large, 3, 3);
        assert_eq!(parse_in_parts(&large, 3, 1), in_parts);
        assert!(in_parts.is_some());
        assert_eq!(in_parts, one_pass(&large));
    }
}
