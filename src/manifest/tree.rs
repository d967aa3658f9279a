//! The one spanned tree both front ends produce.
//!
//! TOML and KDL are parsed by their own crates, then mapped into this tree. Every node keeps the byte
//! range of the text it came from and whether a domain overlay supplied it, so a value can be traced
//! back to its origin long after the overlay merge.

use std::ops::Range;
use std::sync::Arc;

use compact_str::CompactString;

/// A byte range in the manifest text. Kept in 32 bits: a manifest is at most 8 MiB, and every value of
/// a large one carries a span or two, in the tree, the raw types and the diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// Offsets past 4 GiB (never in a manifest, which is refused past 8 MiB) are held at the limit.
    pub fn new(start: usize, end: usize) -> Self {
        let clamp = |offset: usize| u32::try_from(offset).unwrap_or(u32::MAX);
        Span { start: clamp(start), end: clamp(end.max(start)) }
    }

    pub fn start(&self) -> usize {
        self.start as usize
    }

    pub fn end(&self) -> usize {
        self.end as usize
    }
}

impl From<Range<usize>> for Span {
    fn from(range: Range<usize>) -> Self {
        Span::new(range.start, range.end)
    }
}

/// A value in the tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Keys and most values are short: up to 24 bytes are kept inline, without an allocation.
    Str(CompactString),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A TOML date or time, kept as its text: no manifest field takes one, so it only appears in errors.
    Datetime(String),
    List(Vec<Node>),
    /// Shared: a domain's resolved tree copies only the tables its overlay changes (copy on write), so
    /// the base tree of thousands of environments is not copied once per domain.
    Table(Arc<Table>),
}

impl From<Table> for Value {
    fn from(table: Table) -> Self {
        Value::Table(Arc::new(table))
    }
}

impl Value {
    /// The name of the value's type, as messages print it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
            Value::Datetime(_) => "a date-time",
            Value::List(_) => "a list",
            Value::Table(_) => "a table",
        }
    }
}

/// A value with the text it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
    /// True when a domain overlay supplied this value rather than the base manifest.
    pub overlay: bool,
}

impl Node {
    pub fn new(value: Value, span: Span) -> Self {
        Node { value, span, overlay: false }
    }

    pub fn as_table(&self) -> Option<&Table> {
        match &self.value {
            Value::Table(table) => Some(table),
            _ => None,
        }
    }

    /// Marks this node and everything under it as supplied by an overlay.
    pub fn mark_overlay(&mut self) {
        self.overlay = true;
        match &mut self.value {
            Value::List(items) => items.iter_mut().for_each(Node::mark_overlay),
            Value::Table(table) => Arc::make_mut(table).entries.iter_mut().for_each(|e| e.value.mark_overlay()),
            _ => {}
        }
    }
}

/// One key and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: CompactString,
    pub key_span: Span,
    pub value: Node,
}

/// A table in source order. Keys are unique: both front ends refuse duplicates before a table is built.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub entries: Vec<Entry>,
}

impl Table {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.key == key)
    }

    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        let index = self.entries.iter().position(|e| e.key == key)?;
        Some(self.entries.remove(index))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.key.as_str())
    }

    /// The table with no room to spare, see [`fitted`].
    pub fn fitted(self) -> Self {
        Table { entries: fitted(self.entries) }
    }
}

/// `items` in a vector of their own length. A vector filled one push at a time doubles as it grows: in
/// the tree of a large manifest, two fifths of the tables' and lists' room went unused, and every page
/// of memory a process touches first costs it the kernel's zeroing.
pub fn fitted<T>(items: Vec<T>) -> Vec<T> {
    if items.capacity() == items.len() {
        return items;
    }
    let mut exact = Vec::with_capacity(items.len());
    exact.extend(items);
    exact
}
