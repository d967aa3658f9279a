//! A fast reader for the TOML that manifests are written in, straight into the spanned [`Node`] tree.
//!
//! The `toml` crate builds its own spanned document first, then the front end copies it into the tree:
//! on a large manifest that is two thirds of loading it. The manifest needs only what this module reads:
//! `[table.headers]` and `[[arrays.of.tables]]` of bare or plain quoted keys, `key = value` lines with
//! one key, basic strings with the usual escapes, literal strings, decimal integers and floats,
//! booleans, arrays (over several lines, with comments and a trailing comma) and one-line inline
//! tables, comments and blank lines.
//!
//! Anything else (dotted keys, multi-line strings, dates, other number forms, a table reopened or
//! defined after its sub-tables, spaces inside a header, escaped keys) and every mistake make [`parse`]
//! return `None`; the front end then reads the text with the `toml` crate as before, errors and all.
//! Either way the tree is the same, spans included: a test compares the two readers on every manifest in
//! the repository and on thousands of mutations of them.

use foldhash::{HashMap, HashMapExt};

use compact_str::CompactString;

use super::tree::{Entry, Node, Span, Table, Value};
use std::sync::Arc;

/// The most keys in a header and the deepest a value (arrays, inline tables) may nest here. Manifests
/// nest 8 levels at most; twice this stays under the front end's own limit, so everything nested too
/// deeply is left to the `toml` crate and reported there.
const MAX_DEPTH: usize = 16;

/// Inline tables larger than this go to the `toml` crate: their duplicate check is a scan.
const MAX_INLINE_KEYS: usize = 64;

/// Tables with more entries than this keep an index of their keys. An environment's table has a dozen
/// or two: scanning short keys is faster than a map per table (10,000 maps were a tenth of the reading).
const INDEX_FROM: usize = 32;

/// Text given to each thread when a large manifest is read in parts.
const BYTES_PER_PART: usize = 256 * 1024;

/// Reads `text` when it is in the subset; `None` otherwise (the caller then uses the `toml` crate). A
/// large text is read in parts on the machine's cores (see [`parse_in_parts`]).
pub fn parse(text: &str) -> Option<Node> {
    let parts = crate::parts::threads_for(text.len(), BYTES_PER_PART);
    if parts > 1
        && let Some(tree) = parse_in_parts(text, parts, parts)
    {
        return Some(tree);
    }
    let mut reader = Reader::new(text, 0, text.len(), text);
    reader.document()?;
    Some(reader.finish())
}

/// Reads `text` in up to `parts` consecutive parts side by side, each starting at a header line, then
/// joins them as reading on would have: each later part's tables are laid into the tables read before
/// it, with the reader's own rules (a table defined twice, a header through a value, an array of
/// tables mixed with a table: all declined). A part must read to its very end, so a cut that falls
/// inside an array spanning lines fails that part. `None` when any part fails or no cut is found:
/// the caller then reads the text in one pass, which gives the same tree or declines the same text
/// (a test holds the two equal on every manifest in the repository, cut at every header line).
///
/// The parts are read on `threads` threads; with one, one after another here: the same cuts and joins
/// without starting threads, as the fuzz targets check them.
pub fn parse_in_parts(text: &str, parts: usize, threads: usize) -> Option<Node> {
    parse_cut(text, crate::parts::cuts(text.len(), parts, |from| header_line_from(text, from)), threads)
}

/// [`parse_in_parts`] with the parts cut at `cuts` (increasing positions inside the text).
fn parse_cut(text: &str, cuts: Vec<usize>, threads: usize) -> Option<Node> {
    if cuts.is_empty() {
        return None;
    }
    let read = crate::parts::map_ranges(text.len(), &cuts, threads, |start, end| {
        // The first part takes in the later ones' tables: it has room for the whole text's.
        let room = if start == 0 { text } else { &text[start..end] };
        let mut reader = Reader::new(text, start, end, room);
        reader.document()?;
        Some(reader)
    });
    let mut read = read.into_iter();
    let mut whole = read.next()??;
    for later in read {
        whole.absorb(later?)?;
    }
    Some(whole.finish())
}

/// The start of the first line at or after `from` that begins with `[`: where a header may start a part.
fn header_line_from(text: &str, from: usize) -> Option<usize> {
    crate::parts::line_from(text, from, |b| b == b'[')
}

/// A table made by a header or on the way to one, while the document is read. Header tables are
/// reached again by later headers, so they live in an arena; their entries are written in place, and
/// only the header tables among them are filled in when the tree is assembled at the end.
struct ArenaTable {
    /// Made by a header of its own, rather than on the way to a longer one: it cannot be defined again.
    defined: bool,
    entries: Vec<Entry>,
    /// The entries, moved into the table's own allocation once the headers have left the table (see
    /// [`Reader::document`]); moved back should a later header reach it again.
    closed: Option<Arc<[Entry]>>,
    /// What each entry is, by position: a header table's value is a placeholder until assembly.
    slots: Vec<Slot>,
    /// Key → position in `entries`, once the table is large (short keys are copied without an allocation).
    index: HashMap<CompactString, usize>,
    span: Span,
}

#[derive(Clone, Copy, PartialEq)]
enum Slot {
    /// A value from a `key = value` line, already in place.
    Value,
    /// A table made by a header (its own or a longer one's): its position in the arena.
    Table(usize),
    /// An array of tables: its position in the reader's `lists`.
    TableList(usize),
}

impl ArenaTable {
    fn new(span: Span, defined: bool) -> Self {
        ArenaTable { defined, entries: Vec::new(), closed: None, slots: Vec::new(), index: HashMap::new(), span }
    }

    fn find(&self, key: &str) -> Option<usize> {
        let entries = self.closed.as_deref().unwrap_or(&self.entries);
        if entries.len() > INDEX_FROM {
            self.index.get(key).copied()
        } else {
            entries.iter().position(|e| e.key == key)
        }
    }

    /// Moves the entries into the table's own allocation: the table is complete, unless a later header
    /// reaches it again.
    fn close(&mut self) {
        if self.closed.is_none() {
            self.closed = Some(std::mem::take(&mut self.entries).into());
        }
    }

    /// The entries as a vector again, to add to.
    fn reopen(&mut self) {
        if let Some(closed) = self.closed.take() {
            self.entries = closed.to_vec();
        }
    }

    /// The entries, taken.
    fn take_entries(&mut self) -> Vec<Entry> {
        self.reopen();
        std::mem::take(&mut self.entries)
    }

    fn push(&mut self, key: &str, key_span: Span, value: Node, slot: Slot) {
        self.push_entry(Entry { key: CompactString::from(key), key_span, value }, slot);
    }

    fn push_entry(&mut self, entry: Entry, slot: Slot) {
        self.reopen();
        let at = self.entries.len();
        if at == INDEX_FROM {
            self.index = self.entries.iter().enumerate().map(|(i, e)| (e.key.clone(), i)).collect();
        }
        if at >= INDEX_FROM {
            self.index.insert(entry.key.clone(), at);
        }
        self.entries.push(entry);
        self.slots.push(slot);
    }
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    tables: Vec<ArenaTable>,
    /// Arrays of tables: the list's span (its first header) and each element's arena position.
    lists: Vec<(Span, Vec<usize>)>,
    /// The items of the arrays and the entries of the inline tables being read, innermost last: each is
    /// moved into a vector of its own length once it is complete. Pushed one by one, its vector would
    /// grow by doubling, and the tree of a large manifest was two fifths unused capacity.
    items: Vec<Node>,
    entries: Vec<Entry>,
    /// The arena positions of the tables the last header went through and made, in order, and those of
    /// the header before it.
    chain: Vec<usize>,
    left: Vec<usize>,
}

impl<'a> Reader<'a> {
    /// A reader of `text[start..end]`, at the top level; spans count from the start of `text`. Its arena
    /// starts with room for as many tables as `room` has `[`: a header has one (its path may make a few
    /// tables, and arrays have them too, so this is an estimate). Grown from nothing by doubling, the
    /// arena of a large manifest was copied time and again into fresh memory, whose every page the
    /// kernel zeroes; room that is never written is never touched.
    fn new(text: &'a str, start: usize, end: usize, room: &str) -> Self {
        let text = &text[..end];
        let mut tables = Vec::with_capacity(room.bytes().filter(|&b| b == b'[').count() + 1);
        tables.push(ArenaTable::new(Span::default(), true));
        Reader {
            text,
            bytes: text.as_bytes(),
            at: start,
            tables,
            lists: Vec::new(),
            items: Vec::new(),
            entries: Vec::new(),
            chain: Vec::new(),
            left: Vec::new(),
        }
    }

    /// The tree of what has been read.
    fn finish(mut self) -> Node {
        Node::new(self.build(0).into(), Span::default())
    }

    /// Joins what `later` read (the part of the text right after this one's) into this reader's tables,
    /// as if this reader had read on; `None` where reading on would have declined.
    fn absorb(&mut self, later: Reader) -> Option<()> {
        let (table_base, list_base) = (self.tables.len(), self.lists.len());
        let shift = |slot: &mut Slot| match slot {
            Slot::Value => {}
            Slot::Table(at) => *at += table_base,
            Slot::TableList(at) => *at += list_base,
        };
        for mut table in later.tables {
            table.slots.iter_mut().for_each(shift);
            self.tables.push(table);
        }
        for (span, mut members) in later.lists {
            members.iter_mut().for_each(|at| *at += table_base);
            self.lists.push((span, members));
        }
        self.merge(0, table_base)
    }

    /// Lays arena table `from` (read later) into `into`: new keys are appended in order, tables both
    /// reached on the way are joined, arrays of tables go on; anything else reading on would decline.
    fn merge(&mut self, into: usize, from: usize) -> Option<()> {
        let entries = self.tables[from].take_entries();
        let slots = std::mem::take(&mut self.tables[from].slots);
        for (entry, slot) in entries.into_iter().zip(slots) {
            let Some(at) = self.tables[into].find(&entry.key) else {
                self.tables[into].push_entry(entry, slot);
                continue;
            };
            match (self.tables[into].slots[at], slot) {
                (Slot::Table(known), Slot::Table(more)) if !self.tables[more].defined => self.merge(known, more)?,
                (Slot::TableList(known), Slot::TableList(more)) => {
                    let members = std::mem::take(&mut self.lists[more].1);
                    self.lists[known].1.extend(members);
                }
                _ => return None,
            }
        }
        Some(())
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Assembles the tree of arena table `index`: its entries as they are, with the header tables
    /// among them filled in.
    fn build(&mut self, index: usize) -> Table {
        // In an allocation of the table's length: the arena's vector grew as the document was read.
        self.tables[index].close();
        let mut entries = self.tables[index].closed.take().unwrap_or_default();
        let slots = std::mem::take(&mut self.tables[index].slots);
        // Only this reader holds the entries: changed in place, not copied.
        for (entry, slot) in Arc::make_mut(&mut entries).iter_mut().zip(slots) {
            match slot {
                Slot::Value => {}
                Slot::Table(child) => {
                    let span = self.tables[child].span;
                    entry.value = Node::new(self.build(child).into(), span);
                }
                Slot::TableList(list) => {
                    let (span, children) = std::mem::take(&mut self.lists[list]);
                    let mut items = Vec::with_capacity(children.len());
                    for child in children {
                        let span = self.tables[child].span;
                        items.push(Node::new(self.build(child).into(), span));
                    }
                    entry.value = Node::new(Value::List(items.into_boxed_slice()), span);
                }
            }
        }
        Table { entries }
    }

    /// The whole document: lines of key/value pairs and headers.
    fn document(&mut self) -> Option<()> {
        let mut current = 0;
        loop {
            self.spaces();
            match self.peek() {
                None => return Some(()),
                Some(b'\n') => self.at += 1,
                Some(b'\r') => self.newline()?,
                Some(b'#') => self.comment()?,
                Some(b'[') => {
                    std::mem::swap(&mut self.chain, &mut self.left);
                    current = self.header()?;
                    // The tables of the last header that this one leaves are, in a manifest written in
                    // the usual order, complete: closed now, on this part's thread and while they are at
                    // hand, rather than when the tree is assembled (on one thread, at the end). One that
                    // a later header adds to is reopened, and closed again then.
                    for at in 0..self.left.len() {
                        let closed = self.left[at];
                        if !self.chain.contains(&closed) {
                            self.tables[closed].close();
                        }
                    }
                    self.line_end()?;
                }
                Some(_) => {
                    let (key, key_span) = self.key()?;
                    self.spaces();
                    self.expect(b'=')?;
                    self.spaces();
                    let value = self.value(1)?;
                    let table = &mut self.tables[current];
                    if table.find(key).is_some() {
                        return None;
                    }
                    table.push(key, key_span, value, Slot::Value);
                    self.line_end()?;
                }
            }
        }
    }

    /// `[a.b.c]` or `[[a.b.c]]`: finds or makes the tables on the way and makes the last one. Returns
    /// the arena position of the table that the following lines fill.
    fn header(&mut self) -> Option<usize> {
        let start = self.at;
        self.at += 1;
        let array = self.peek() == Some(b'[');
        if array {
            self.at += 1;
        }
        let mut keys: Vec<(&'a str, Span)> = Vec::new();
        loop {
            keys.push(self.key()?);
            match self.peek()? {
                b'.' => self.at += 1,
                b']' => break,
                _ => return None,
            }
            if keys.len() >= MAX_DEPTH {
                return None;
            }
        }
        self.expect(b']')?;
        if array {
            self.expect(b']')?;
        }
        let span = Span::new(start, self.at);
        let (last, path) = keys.split_last()?;
        let mut table = 0;
        self.chain.clear();
        for &(key, key_span) in path {
            table = match self.tables[table].find(key) {
                Some(at) => match self.tables[table].slots[at] {
                    Slot::Table(child) => child,
                    _ => return None,
                },
                None => {
                    let child = self.tables.len();
                    self.tables.push(ArenaTable::new(key_span, false));
                    self.tables[table].push(key, key_span, placeholder(key_span), Slot::Table(child));
                    child
                }
            };
            self.chain.push(table);
        }
        let (key, key_span) = *last;
        let child = self.tables.len();
        let made = ArenaTable::new(span, true);
        match (self.tables[table].find(key), array) {
            (None, false) => {
                self.tables.push(made);
                self.tables[table].push(key, key_span, placeholder(span), Slot::Table(child));
            }
            (None, true) => {
                self.tables.push(made);
                self.lists.push((span, vec![child]));
                let list = self.lists.len() - 1;
                self.tables[table].push(key, key_span, placeholder(span), Slot::TableList(list));
            }
            (Some(at), true) => match self.tables[table].slots[at] {
                Slot::TableList(list) => {
                    self.lists[list].1.push(child);
                    self.tables.push(made);
                }
                _ => return None,
            },
            // A table defined twice is an error; one made on the way to a longer header and defined
            // later is valid TOML that the `toml` crate reorders: both are left to it.
            (Some(_), false) => return None,
        }
        self.chain.push(child);
        Some(child)
    }

    /// A bare key, or a quoted one without escapes: its text and span (quotes included).
    fn key(&mut self) -> Option<(&'a str, Span)> {
        let start = self.at;
        match self.peek()? {
            quote @ (b'"' | b'\'') => {
                self.at += 1;
                let inner = self.at;
                loop {
                    match self.peek()? {
                        b if b == quote => break,
                        b'\\' | b'\n' | b'\r' => return None,
                        b if is_control(b) => return None,
                        _ => self.at += 1,
                    }
                }
                let key = &self.text[inner..self.at];
                self.at += 1;
                Some((key, Span::new(start, self.at)))
            }
            _ => {
                while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                    self.at += 1;
                }
                (self.at > start).then(|| (&self.text[start..self.at], Span::new(start, self.at)))
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            return None;
        }
        let start = self.at;
        let value = match self.peek()? {
            b'"' => Value::Str(self.basic_string()?),
            b'\'' => Value::Str(self.literal_string()?),
            b'[' => Value::List(self.array(depth)?),
            b'{' => self.inline_table(depth)?.into(),
            b't' if self.bytes[self.at..].starts_with(b"true") => {
                self.at += 4;
                Value::Bool(true)
            }
            b'f' if self.bytes[self.at..].starts_with(b"false") => {
                self.at += 5;
                Value::Bool(false)
            }
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return None,
        };
        // A value ends at a space, a comment, a separator or the end of the line.
        if !matches!(self.peek(), None | Some(b' ' | b'\t' | b'\n' | b'\r' | b'#' | b',' | b']' | b'}')) {
            return None;
        }
        Some(Node::new(value, Span::new(start, self.at)))
    }

    /// A decimal integer or float: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, nothing else.
    fn number(&mut self) -> Option<Value> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let digits = self.digits();
        if digits == 0 || (digits > 1 && self.bytes[self.at - digits] == b'0') {
            return None;
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        let text = &self.text[start..self.at];
        if float {
            text.parse::<f64>().ok().filter(|f| f.is_finite()).map(Value::Float)
        } else {
            text.parse().ok().map(Value::Int)
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        self.at - start
    }

    /// `"…"` on one line, with TOML's escapes.
    fn basic_string(&mut self) -> Option<CompactString> {
        self.at += 1;
        if self.peek() == Some(b'"') && self.bytes.get(self.at + 1) == Some(&b'"') {
            return None;
        }
        let mut out = CompactString::default();
        let mut run = self.at;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => {
                    out.push_str(&self.text[run..self.at]);
                    self.at += 1;
                    out.push(self.escape()?);
                    run = self.at;
                }
                b'\t' => self.at += 1,
                b if is_control(b) => return None,
                _ => self.at += 1,
            }
        }
        out.push_str(&self.text[run..self.at]);
        self.at += 1;
        Some(out)
    }

    fn escape(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        Some(match c {
            b'b' => '\u{8}',
            b't' => '\t',
            b'n' => '\n',
            b'f' => '\u{c}',
            b'r' => '\r',
            b'"' => '"',
            b'\\' => '\\',
            b'u' => self.unicode(4)?,
            b'U' => self.unicode(8)?,
            _ => return None,
        })
    }

    fn unicode(&mut self, len: usize) -> Option<char> {
        let hex = self.text.get(self.at..self.at + len)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.at += len;
        char::from_u32(u32::from_str_radix(hex, 16).ok()?)
    }

    /// `'…'` on one line: no escapes.
    fn literal_string(&mut self) -> Option<CompactString> {
        self.at += 1;
        if self.peek() == Some(b'\'') && self.bytes.get(self.at + 1) == Some(&b'\'') {
            return None;
        }
        let start = self.at;
        loop {
            match self.peek()? {
                b'\'' => break,
                b'\t' => self.at += 1,
                b if is_control(b) => return None,
                _ => self.at += 1,
            }
        }
        let out = CompactString::from(&self.text[start..self.at]);
        self.at += 1;
        Some(out)
    }

    /// `[v, v, …]`, over lines, with comments and an optional trailing comma.
    fn array(&mut self, depth: usize) -> Option<Box<[Node]>> {
        let start = self.items.len();
        let read = self.array_items(depth);
        let items = self.items.drain(start..).collect();
        read.map(|()| items)
    }

    /// The items of an array, onto `self.items`.
    fn array_items(&mut self, depth: usize) -> Option<()> {
        self.at += 1;
        loop {
            self.blank()?;
            if self.peek()? == b']' {
                self.at += 1;
                return Some(());
            }
            let item = self.value(depth + 1)?;
            self.items.push(item);
            self.blank()?;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `{k = v, …}` on one line, no trailing comma, one key per pair.
    fn inline_table(&mut self, depth: usize) -> Option<Table> {
        let start = self.entries.len();
        let read = self.inline_entries(depth, start);
        let entries = self.entries.drain(start..).collect();
        read.map(|()| Table { entries })
    }

    /// The entries of an inline table, onto `self.entries` after `start`.
    fn inline_entries(&mut self, depth: usize, start: usize) -> Option<()> {
        self.at += 1;
        self.spaces();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            self.spaces();
            let (key, key_span) = self.key()?;
            self.spaces();
            self.expect(b'=')?;
            self.spaces();
            let value = self.value(depth + 1)?;
            let entries = &self.entries[start..];
            if entries.len() >= MAX_INLINE_KEYS || entries.iter().any(|e| e.key == key) {
                return None;
            }
            self.entries.push(Entry { key: key.into(), key_span, value });
            self.spaces();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    /// Spaces, newlines and comments, as inside an array.
    fn blank(&mut self) -> Option<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n') => self.at += 1,
                Some(b'\r') => self.newline()?,
                Some(b'#') => self.comment()?,
                _ => return Some(()),
            }
        }
    }

    /// `#` to the end of the line (not the newline); control characters other than tab are mistakes.
    fn comment(&mut self) -> Option<()> {
        while let Some(b) = self.peek() {
            match b {
                b'\n' | b'\r' => break,
                b'\t' => {}
                b if is_control(b) => return None,
                _ => {}
            }
            self.at += 1;
        }
        Some(())
    }

    /// `\r\n`; a lone carriage return is a mistake.
    fn newline(&mut self) -> Option<()> {
        if self.bytes.get(self.at + 1) != Some(&b'\n') {
            return None;
        }
        self.at += 2;
        Some(())
    }

    /// After a key/value pair or a header: spaces, an optional comment, then a newline or the end.
    fn line_end(&mut self) -> Option<()> {
        self.spaces();
        if self.peek() == Some(b'#') {
            self.comment()?;
        }
        match self.peek() {
            None => Some(()),
            Some(b'\n') => {
                self.at += 1;
                Some(())
            }
            Some(b'\r') => self.newline(),
            Some(_) => None,
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }
}

/// The value of a header table's entry until the tree is assembled.
fn placeholder(span: Span) -> Node {
    Node::new(Value::Bool(false), span)
}

/// A control character TOML allows in no string or comment (tab is handled before this).
fn is_control(byte: u8) -> bool {
    byte < 0x20 || byte == 0x7f
}

#[cfg(test)]
mod tests {
    use super::super::mutations;
    use super::super::nesting::{self, Syntax};
    use super::super::toml_front::parse_with_crate;
    use super::*;

    fn slow(text: &str) -> Option<Node> {
        parse_with_crate(text, &mut Vec::new())
    }

    #[test]
    fn reads_the_common_subset_as_the_toml_crate_does() {
        let cases = [
            "[project]\nname = \"demo\"\ndomains = [\"development\", \"production\"]\n",
            "# c\n\n[environments.web]   # c\nkind = 'app' # c\nport = 8080\n\tscaling = { min_replicas = 1, max_replicas = 4, target = 2.5 }\n",
            "[a.b.c]\nx = 1\n[a.b.d]\ny = 2\n[a.e]\nz = 3\n[f]\n",
            "[a]\nx = 1\n[a.b]\ny = 2\n",
            "[\"q k\".'l'.m]\n\"x y\" = 1\n'z' = 2\n",
            "[[s]]\nsrc = \"a\"\n[[s]]\nsrc = \"b\"\n[[t.u]]\nv = 1\n[t.w]\n",
            "a = [\n  1, # one\n  2,\n  # more\n]\nb = []\nc = [[1, 2], [\"x\"], [{ k = 'v' }]]\nd = {}\n",
            "a = 1\r\nb = \"x\"\r\n",
            "n = [0, -0, 42, -17, 9223372036854775807, -9223372036854775808]\nf = [0.5, -2.25, 1e3, 1E-2, 6.02e+23, -0.0]\n",
            "b = [true, false]\n",
            "s = \"\\u00e9\\U0001F600 \\t\\n\\\\\\\"\\b\\f\\r tab\there é\"\nl = 'C:\\path\\n \"x\"'\ne = \"\"\nm = ''\n",
            "x = 1 # end",
            "",
            "# only a comment\n",
            "a = {b = {c = {d = 1}}}\n",
        ];
        for text in cases {
            let fast = parse(text).unwrap_or_else(|| panic!("the fast reader declined {text:?}"));
            let slow = slow(text).unwrap_or_else(|| panic!("the toml crate refused {text:?}"));
            assert_eq!(fast, slow, "{text:?}");
        }
    }

    #[test]
    fn leaves_the_rest_and_every_mistake_to_the_toml_crate() {
        let cases = [
            "a.b = 1",
            "a = { b.c = 1 }",
            "s = \"\"\"\nx\"\"\"",
            "s = '''x'''",
            "d = 1979-05-27",
            "t = 07:32:00",
            "n = 1_000",
            "n = 0x1F",
            "n = +1",
            "n = 012",
            "f = inf",
            "f = 1.",
            "f = .5",
            "[ a ]",
            "[a.b]\n[a]",
            "[a]\n[a]",
            "a = 1\na = 2",
            "a = 1\n[a]",
            "[[a]]\n[a.b]",
            "[a]\n[[a]]",
            "a = { x = 1, }",
            "a = { x = 1,\n y = 2 }",
            "a = { x = 1, x = 2 }",
            "\"k\\n\" = 1",
            "s = \"\\e\"",
            "s = \"\\q\"",
            "s = \"unclosed",
            "s = \"a\nb\"",
            "a = 1 b = 2",
            "a = 1\rb = 2",
            "a = tru",
            "a = truex",
            "\u{feff}a = 1",
            "a = 1\n# \u{1}",
            "a = 99999999999999999999",
            "= 1",
            "a =",
        ];
        for text in cases {
            assert!(parse(text).is_none(), "the fast reader took {text:?}");
        }
        // Deep nesting is left to the front end's guard and the crate: the reader runs unguarded.
        let deep_array = format!("a = {}1{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let long_header = format!("[{}]", vec!["k"; MAX_DEPTH + 1].join("."));
        let deep_inline = format!("a = {}{}", "{ b = ".repeat(MAX_DEPTH + 1), "1 }".repeat(MAX_DEPTH + 1));
        for text in [deep_array, long_header, deep_inline] {
            assert!(parse(&text).is_none(), "the fast reader took {text:?}");
        }
        assert!(parse(&format!("a = {}1{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1))).is_some());
    }

    /// Read in parts, a text gives the tree one pass gives, or is declined (and then read in one pass).
    /// Every repository manifest and mutations of it, cut at every line that starts with `[`, and at
    /// pairs of them; the unmutated manifests must also be taken at every such cut.
    #[test]
    fn reading_in_parts_gives_what_one_pass_gives() {
        let mut texts = mutations::repository_texts("toml");
        let repository = texts.len();
        // Each way a later part meets an earlier one, taken or declined as one pass does.
        texts.extend(
            [
                "[a.b]\nx = 1\n[a]\ny = 2\n",
                "[a]\nx = 1\n[a]\ny = 2\n",
                "[a]\nx = 1\n[a.x]\n",
                "[[a]]\nx = 1\n[a.b]\n",
                "[a]\n[[a]]\n",
                "[[a]]\n[a]\n",
                "[[a]]\nx = 1\n[[a]]\nx = 2\n[b]\n[[a]]\nx = 3\n",
                "[a]\nx = 1\n[a.b]\ny = 2\n[a.c.d]\n[a.c.e]\n",
                "[a.b.c]\n[a.b.d]\n[a.e]\n[a]\n",
                "[x]\na = [\n[1],\n[2]]\n[y]\n",
            ]
            .map(String::from),
        );
        let inserts = ['[', ']', '\n', '=', '"', '.', ' '];
        // An unmutated repository manifest has no array spanning lines that start with `[`.
        let (compared, taken) =
            mutations::check_parts(&texts, repository, &inserts, true, header_line_from, parse, parse_cut);
        assert!(taken > 1000, "only {taken} of {compared} cut texts were read");
        // The public entry point, on a text large enough to be read in parts.
        let mut large = String::from("[project]\nname = \"big\"\n");
        for n in 0..20_000 {
            large.push_str(&format!("[environments.env-{n}]\nkind = \"task\"\nimage = \"base\"\n"));
            large.push_str(&format!("[environments.env-{n}.resources.requests]\ncpu = \"{n}m\"\n"));
        }
        large.push_str("[[list]]\na = 1\n[[list]]\na = 2\n");
        assert_eq!(parse_in_parts(&large, 3, 3), slow(&large));
        assert!(parse_in_parts(&large, 3, 3).is_some());
        assert_eq!(parse_in_parts(&large, 3, 1), parse_in_parts(&large, 3, 3));
    }

    /// Whenever the fast reader accepts a text, the `toml` crate accepts it too and gives the same tree,
    /// spans included. Inputs: every TOML file in the repository, and deterministic mutations of each (a
    /// character deleted, inserted or doubled), which mostly hit the corners where a reader of a subset
    /// could go wrong.
    #[test]
    fn the_fast_reader_never_disagrees_with_the_toml_crate() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut texts = mutations::repository_texts("toml");
        texts.push(std::fs::read_to_string(root.join("flyte.toml.example")).expect("flyte.toml.example"));
        assert!(texts.len() >= 20, "found only {} TOML files", texts.len());
        let inserts = ['"', '\'', '[', ']', '{', '}', '=', ',', '.', '#', '\\', ' ', '\n', '-', '0', 'e', '\r', 'é'];
        let (mut checked, mut accepted) = (0usize, 0usize);
        let variants = mutations::mutations(&texts, &inserts, 60);
        for variant in variants {
            // As in the front end, the nesting guard runs first: the toml crate recurses.
            if nesting::check(&variant, Syntax::Toml).is_err() {
                continue;
            }
            checked += 1;
            let Some(fast) = parse(&variant) else { continue };
            accepted += 1;
            let slow = slow(&variant)
                .unwrap_or_else(|| panic!("the fast reader accepted what the toml crate refuses:\n{variant}"));
            assert_eq!(fast, slow, "the readers disagree on:\n{variant}");
        }
        assert!(accepted > texts.len(), "the fast reader accepted only {accepted} of {checked} texts");
    }
}
