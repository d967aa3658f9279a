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
    Datetime(Box<str>),
    /// A boxed slice rather than a vector (16 bytes, not 24): with it, every variant fits beside the
    /// inline string's spare byte values, and a value takes 24 bytes instead of 32.
    List(Box<[Node]>),
    /// Shared: a domain's resolved tree copies only the tables its overlay changes (copy on write), so
    /// the base tree of thousands of environments is not copied once per domain.
    Table(Table),
}

impl From<Table> for Value {
    fn from(table: Table) -> Self {
        Value::Table(table)
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

/// A value with the text it came from, and whether a domain overlay supplied it rather than the base
/// manifest: that flag is kept in the top bit of the span's end (a manifest is at most 8 MiB), which
/// makes a node 32 bytes instead of 40 and a table entry 64 instead of 80. The tree of a large manifest
/// holds hundreds of thousands of them.
#[derive(Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    start: u32,
    end_and_overlay: u32,
}

const OVERLAY_BIT: u32 = 1 << 31;

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("value", &self.value)
            .field("span", &self.span())
            .field("overlay", &self.overlay())
            .finish()
    }
}

impl Node {
    pub fn new(value: Value, span: Span) -> Self {
        // Offsets at or past 2 GiB (never in a manifest) are held just below it.
        let end = span.end.min(OVERLAY_BIT - 1);
        Node { value, start: span.start.min(end), end_and_overlay: end }
    }

    /// The node with `value`, where this one is and with its overlay flag.
    pub fn with_value(&self, value: Value) -> Self {
        Node { value, start: self.start, end_and_overlay: self.end_and_overlay }
    }

    /// The text the value came from.
    pub fn span(&self) -> Span {
        Span { start: self.start, end: self.end_and_overlay & !OVERLAY_BIT }
    }

    /// True when a domain overlay supplied this value rather than the base manifest.
    pub fn overlay(&self) -> bool {
        self.end_and_overlay & OVERLAY_BIT != 0
    }

    pub fn as_table(&self) -> Option<&Table> {
        match &self.value {
            Value::Table(table) => Some(table),
            _ => None,
        }
    }

    /// Marks this node and everything under it as supplied by an overlay.
    pub fn mark_overlay(&mut self) {
        self.end_and_overlay |= OVERLAY_BIT;
        match &mut self.value {
            Value::List(items) => items.iter_mut().for_each(Node::mark_overlay),
            Value::Table(table) => table.entries_mut().iter_mut().for_each(|e| e.value.mark_overlay()),
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
/// Its entries are one shared allocation, of their own length: cloning a table shares them, and a
/// change copies them (copy on write). A table behind a shared box of its own took two allocations and
/// two hops to its entries; the tree of a large manifest holds over a hundred thousand tables.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub entries: Arc<[Entry]>,
}

impl From<Vec<Entry>> for Table {
    fn from(entries: Vec<Entry>) -> Self {
        Table { entries: entries.into() }
    }
}

impl Table {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.key.as_str())
    }

    /// The entries to change in place, copied first if another tree shares them.
    pub fn entries_mut(&mut self) -> &mut [Entry] {
        Arc::make_mut(&mut self.entries)
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

// The sizes the layout above is for; a change that grows them shows up here.
const _: () = assert!(size_of::<Value>() == 24 && size_of::<Node>() == 32 && size_of::<Entry>() == 64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_keeps_its_span_apart_from_its_overlay_flag() {
        let mut node = Node::new(Value::List(Box::new([Node::new(Value::Int(1), Span::new(3, 4))])), Span::new(2, 9));
        assert_eq!((node.span(), node.overlay()), (Span::new(2, 9), false));
        node.mark_overlay();
        assert_eq!((node.span(), node.overlay()), (Span::new(2, 9), true));
        let Value::List(items) = &node.value else { panic!("a list") };
        assert_eq!((items[0].span(), items[0].overlay()), (Span::new(3, 4), true));
        let moved = node.with_value(Value::Bool(true));
        assert_eq!((moved.span(), moved.overlay()), (Span::new(2, 9), true));
        // Past the flag's bit, offsets are held below it rather than taken for the flag.
        let far = Node::new(Value::Bool(false), Span::new(1 << 31, (1 << 31) + 5));
        assert_eq!((far.span(), far.overlay()), (Span::new((1 << 31) - 1, (1 << 31) - 1), false));
    }
}
