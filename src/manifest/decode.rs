//! Decoding the spanned tree into raw manifest types, collecting every error instead of stopping.
//!
//! Takes a [`Node`] and gives typed raw values plus diagnostics. Types declare themselves once with
//! [`record!`] and [`keyword!`]; the same declaration yields the decoder, the shape that directs the KDL
//! front end, and the JSON Schema, so the three cannot drift apart.

use compact_str::CompactString;

use super::diagnostic::{Diagnostic, suggestion};
use super::tree::{Entry, Node, Span, Table, Value};

/// What a value looks like, for the KDL front end and the JSON Schema.
#[derive(Clone, Copy)]
pub enum Shape {
    Str,
    Int,
    Float,
    Bool,
    /// One of a fixed set of strings.
    Keyword(&'static [&'static str]),
    /// A Kubernetes quantity: a string such as "500m" or a plain number.
    Quantity,
    /// Any plain value: string, number, boolean, list or table.
    Any,
    List(fn() -> Shape),
    /// A table whose keys are names chosen by the user.
    Map(fn() -> Shape),
    Struct(&'static StructInfo),
    /// Either a boolean or the given struct (`cache = true` or `cache = { version = "2" }`).
    BoolOr(fn() -> Shape),
    /// The given shape with no field required: a domain overlay's table.
    Patch(fn() -> Shape),
}

pub struct FieldInfo {
    pub name: &'static str,
    pub doc: &'static str,
    pub shape: fn() -> Shape,
    pub optional: bool,
    /// For maps: the KDL node name of one entry, whose first argument is the key
    /// (`environment "backend" { … }` for the `environments` map).
    pub kdl_each: Option<&'static str>,
}

pub struct StructInfo {
    pub name: &'static str,
    pub doc: &'static str,
    pub fields: &'static [FieldInfo],
}

impl StructInfo {
    pub fn field(&self, name: &str) -> Option<&FieldInfo> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn field_names(&self) -> Vec<&'static str> {
        self.fields.iter().map(|f| f.name).collect()
    }
}

/// The decoding context: where diagnostics go and where in the manifest we are.
pub struct Cx<'d> {
    pub diags: &'d mut Vec<Diagnostic>,
    /// The dotted path so far, built in place: a manifest has hundreds of thousands of fields, and a
    /// segment each would be as many allocations for a path that only messages read.
    path: String,
    /// How many segments `path` holds (a segment may be empty, so its length cannot tell).
    depth: usize,
    /// Inside an overlay: absent required fields come from the base, so they are not reported.
    partial: bool,
}

impl<'d> Cx<'d> {
    pub fn new(diags: &'d mut Vec<Diagnostic>) -> Self {
        Cx { diags, path: String::new(), depth: 0, partial: false }
    }

    /// The dotted path of the value being decoded, e.g. `environments.backend.port`.
    pub fn path(&self) -> String {
        if self.depth == 0 { "the manifest".to_string() } else { self.path.clone() }
    }

    /// A context at the same place, writing to other diagnostics: for a part decoded on another thread.
    fn fork<'e>(&self, diags: &'e mut Vec<Diagnostic>) -> Cx<'e> {
        Cx { diags, path: self.path.clone(), depth: self.depth, partial: self.partial }
    }

    pub fn partial<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let outer = std::mem::replace(&mut self.partial, true);
        let result = f(self);
        self.partial = outer;
        result
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diags.push(diagnostic);
    }

    pub fn within<T>(&mut self, segment: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        let length = self.enter();
        self.path.push_str(segment);
        self.leave(length, f)
    }

    /// [`Cx::within`] a list item, by its index.
    pub fn within_index<T>(&mut self, index: usize, f: impl FnOnce(&mut Self) -> T) -> T {
        let length = self.enter();
        // Written by hand: the formatter's machinery, for every item of every list, was a tenth of decoding.
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = index;
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        self.path.extend(digits[at..].iter().map(|&digit| char::from(digit)));
        self.leave(length, f)
    }

    /// Starts a segment; returns the path's length before it.
    fn enter(&mut self) -> usize {
        let length = self.path.len();
        if self.depth > 0 {
            self.path.push('.');
        }
        self.depth += 1;
        length
    }

    fn leave<T>(&mut self, length: usize, f: impl FnOnce(&mut Self) -> T) -> T {
        let result = f(self);
        self.path.truncate(length);
        self.depth -= 1;
        result
    }

    pub fn type_error(&mut self, node: &Node, expected: &str) {
        let message = format!("`{}` must be {expected}, found {}", self.path(), node.value.type_name());
        self.push(Diagnostic::error("wrong-type", message).at(node.span(), format!("expected {expected}")));
    }

    pub fn table<'n>(&mut self, node: &'n Node) -> Option<&'n Table> {
        match &node.value {
            Value::Table(table) => Some(table),
            _ => {
                self.type_error(node, "a table");
                None
            }
        }
    }

    /// Reports every key of `table` that `info` does not declare.
    pub fn check_fields(&mut self, table: &Table, info: &StructInfo) {
        for entry in table.entries.iter() {
            if info.field(&entry.key).is_none() {
                let message = format!("unknown field `{}` in `{}`", entry.key, self.path());
                self.push(
                    Diagnostic::error("unknown-field", message)
                        .at(entry.key_span, "unknown field")
                        .help(suggestion(&entry.key, &info.field_names())),
                );
            }
        }
    }

    /// Decodes the field `name` of `table`; a required field that is absent is reported at `parent`.
    pub fn field<T: Decode>(&mut self, parent: &Node, table: &Table, name: &str) -> Option<T> {
        self.field_entry(parent, table.get(name), name)
    }

    /// [`Cx::field`] with the field's entry already found (`None` when absent).
    pub fn field_entry<T: Decode>(&mut self, parent: &Node, entry: Option<&Entry>, name: &str) -> Option<T> {
        match entry {
            Some(entry) => self.within(name, |cx| T::decode(&entry.value, cx)),
            None if T::OPTIONAL => T::absent(),
            None if self.partial => None,
            None => {
                let message = format!("`{}` needs the field `{name}`", self.path());
                self.push(
                    Diagnostic::error("missing-field", message).at(parent.span(), format!("`{name}` is missing here")),
                );
                None
            }
        }
    }
}

pub trait Decode: Sized {
    /// True for `Option<T>`: the field may be left out.
    const OPTIONAL: bool = false;
    fn decode(node: &Node, cx: &mut Cx) -> Option<Self>;
    fn shape() -> Shape;
    /// The value of a field that is left out; only called when `OPTIONAL` is true.
    fn absent() -> Option<Self> {
        None
    }
}

impl<T: Decode> Decode for Option<T> {
    const OPTIONAL: bool = true;
    fn decode(node: &Node, cx: &mut Cx) -> Option<Self> {
        T::decode(node, cx).map(Some)
    }
    fn shape() -> Shape {
        T::shape()
    }
    fn absent() -> Option<Self> {
        Some(None)
    }
}

/// A value in a box of its own: an environment's raw type is over a kilobyte, and 10,000 of them were
/// moved as they were decoded, joined from their parts and collected.
impl<T: Decode> Decode for Box<T> {
    fn decode(node: &Node, cx: &mut Cx) -> Option<Self> {
        T::decode(node, cx).map(Box::new)
    }
    fn shape() -> Shape {
        T::shape()
    }
}

impl Decode for CompactString {
    fn decode(node: &Node, cx: &mut Cx) -> Option<Self> {
        match &node.value {
            // A copy of the tree's string: no allocation for the short ones (most of a manifest's).
            Value::Str(text) => Some(text.clone()),
            _ => {
                cx.type_error(node, "a string");
                None
            }
        }
    }
    fn shape() -> Shape {
        Shape::Str
    }
}

impl Decode for i64 {
    fn decode(node: &Node, cx: &mut Cx) -> Option<Self> {
        match &node.value {
            Value::Int(number) => Some(*number),
            _ => {
                cx.type_error(node, "an integer");
                None
            }
        }
    }
    fn shape() -> Shape {
        Shape::Int
    }
}

impl Decode for f64 {
    fn decode(node: &Node, cx: &mut Cx) -> Option<Self> {
        match &node.value {
            Value::Float(number) => Some(*number),
            Value::Int(number) => Some(*number as f64),
            _ => {
                cx.type_error(node, "a number");
                None
            }
        }
    }
    fn shape() -> Shape {
        Shape::Float
    }
}

impl Decode for bool {
    fn decode(node: &Node, cx: &mut Cx) -> Option<Self> {
        match &node.value {
            Value::Bool(flag) => Some(*flag),
            _ => {
                cx.type_error(node, "`true` or `false`");
                None
            }
        }
    }
    fn shape() -> Shape {
        Shape::Bool
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(node: &Node, cx: &mut Cx) -> Option<Self> {
        let Value::List(items) = &node.value else {
            cx.type_error(node, "a list");
            return None;
        };
        let mut decoded = Vec::with_capacity(items.len());
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            match cx.within_index(index, |cx| T::decode(item, cx)) {
                Some(value) => decoded.push(value),
                None => ok = false,
            }
        }
        ok.then_some(decoded)
    }
    fn shape() -> Shape {
        Shape::List(T::shape)
    }
}

/// A value with the place it came from.
#[derive(Clone, Debug)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
    /// True when a domain overlay supplied it.
    pub overlay: bool,
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Decode> Decode for Spanned<T> {
    fn decode(node: &Node, cx: &mut Cx) -> Option<Self> {
        T::decode(node, cx).map(|value| Spanned { value, span: node.span(), overlay: node.overlay() })
    }
    fn shape() -> Shape {
        T::shape()
    }
}

/// A table whose keys are names chosen by the user, in source order.
#[derive(Clone, Debug)]
pub struct Keyed<T> {
    pub entries: Vec<(Spanned<CompactString>, T)>,
}

impl<T> Default for Keyed<T> {
    fn default() -> Self {
        Keyed { entries: Vec::new() }
    }
}

impl<T> Keyed<T> {
    pub fn iter(&self) -> impl Iterator<Item = (&Spanned<CompactString>, &T)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<T: Decode + Send> Decode for Keyed<T> {
    fn decode(node: &Node, cx: &mut Cx) -> Option<Self> {
        const PER_THREAD: usize = 1000;
        let table = cx.table(node)?;
        let threads = crate::parts::threads_for(table.entries.len(), PER_THREAD);
        decode_in_parts(&table.entries, cx, threads).map(|entries| Keyed { entries })
    }
    fn shape() -> Shape {
        Shape::Map(T::shape)
    }
}

type KeyedEntries<T> = Vec<(Spanned<CompactString>, T)>;

/// The entries of a table with user-chosen keys, in order; `None` when any failed to decode. With
/// more than one thread (thousands of environments), parts are decoded side by side, each with a
/// context of its own at the same place, and joined in order: the same entries and diagnostics as
/// one pass (a test holds them equal).
fn decode_in_parts<T: Decode + Send>(entries: &[Entry], cx: &mut Cx, threads: usize) -> Option<KeyedEntries<T>> {
    if threads <= 1 {
        return decode_keyed(entries, cx, entries.len());
    }
    let at: &Cx = cx;
    // The first part is decoded into room for all of them and the others are appended to it: only
    // they are moved (an environment's raw type is over a kilobyte).
    let parts = crate::parts::map_parts_at(entries, threads, |first, part| {
        let mut diags = Vec::new();
        let room = if first == 0 { entries.len() } else { part.len() };
        let decoded = decode_keyed::<T>(part, &mut at.fork(&mut diags), room);
        (diags, decoded)
    });
    let mut decoded: Option<KeyedEntries<T>> = None;
    let mut ok = true;
    for (diags, part) in parts {
        cx.diags.extend(diags);
        match (part, &mut decoded) {
            (Some(part), Some(decoded)) => decoded.extend(part),
            (Some(part), None) => decoded = Some(part),
            (None, _) => ok = false,
        }
    }
    decoded.filter(|_| ok)
}

/// The entries of a table with user-chosen keys, in order, in a vector with room for `room`; `None`
/// when any failed to decode.
fn decode_keyed<T: Decode>(entries: &[Entry], cx: &mut Cx, room: usize) -> Option<KeyedEntries<T>> {
    let mut decoded = Vec::with_capacity(room.max(entries.len()));
    let mut ok = true;
    for entry in entries {
        let key = Spanned { value: entry.key.clone(), span: entry.key_span, overlay: entry.value.overlay() };
        match cx.within(&entry.key, |cx| T::decode(&entry.value, cx)) {
            Some(value) => decoded.push((key, value)),
            None => ok = false,
        }
    }
    ok.then_some(decoded)
}

/// A Kubernetes quantity as written: `"500m"`, `"2Gi"`, `2` or `0.5`. Checked in validation.
#[derive(Clone, Debug)]
pub struct QuantityText(pub CompactString);

impl Decode for QuantityText {
    fn decode(node: &Node, cx: &mut Cx) -> Option<Self> {
        match &node.value {
            Value::Str(text) => Some(QuantityText(text.clone())),
            Value::Int(number) => Some(QuantityText(compact_str::format_compact!("{number}"))),
            Value::Float(number) => Some(QuantityText(compact_str::format_compact!("{number}"))),
            _ => {
                cx.type_error(node, "a quantity such as \"500m\", \"2Gi\" or 2");
                None
            }
        }
    }
    fn shape() -> Shape {
        Shape::Quantity
    }
}

/// Any plain value, kept as JSON (an input's default value).
#[derive(Clone, Debug)]
pub struct PlainValue(pub serde_json::Value);

impl Decode for PlainValue {
    fn decode(node: &Node, cx: &mut Cx) -> Option<Self> {
        to_json(node, cx).map(PlainValue)
    }
    fn shape() -> Shape {
        Shape::Any
    }
}

fn to_json(node: &Node, cx: &mut Cx) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    Some(match &node.value {
        Value::Str(text) => J::String(text.as_str().to_owned()),
        Value::Int(number) => J::from(*number),
        Value::Float(number) => match serde_json::Number::from_f64(*number) {
            Some(n) => J::Number(n),
            None => {
                cx.type_error(node, "a finite number");
                return None;
            }
        },
        Value::Bool(flag) => J::Bool(*flag),
        Value::Datetime(text) => J::String(text.to_string()),
        Value::List(items) => J::Array(items.iter().map(|i| to_json(i, cx)).collect::<Option<_>>()?),
        Value::Table(table) => J::Object(
            table
                .entries
                .iter()
                .map(|e| Some((e.key.as_str().to_owned(), to_json(&e.value, cx)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

/// Either `true`/`false` or a table of settings.
#[derive(Clone, Debug)]
pub enum BoolOr<T> {
    Bool(bool),
    Settings(T),
}

impl<T: Decode> Decode for BoolOr<T> {
    fn decode(node: &Node, cx: &mut Cx) -> Option<Self> {
        match &node.value {
            Value::Bool(flag) => Some(BoolOr::Bool(*flag)),
            Value::Table(_) => T::decode(node, cx).map(BoolOr::Settings),
            _ => {
                cx.type_error(node, "`true`, `false` or a table");
                None
            }
        }
    }
    fn shape() -> Shape {
        Shape::BoolOr(T::shape)
    }
}

/// Declares a raw manifest struct: the struct, its decoder and its shape.
///
/// Field names are the manifest keys. Doc comments become the schema's descriptions.
macro_rules! record {
    (
        $(#[doc = $doc:literal])*
        pub struct $name:ident {
            $(
                $(#[doc = $fdoc:literal])*
                $(#[kdl_each = $each:literal])?
                pub $field:ident : $ty:ty,
            )*
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Clone, Debug)]
        pub struct $name {
            $( $(#[doc = $fdoc])* pub $field: $ty, )*
        }

        impl $name {
            pub const INFO: $crate::manifest::decode::StructInfo = $crate::manifest::decode::StructInfo {
                name: stringify!($name),
                doc: concat!($($doc, "\n",)*),
                fields: &[
                    $(
                        $crate::manifest::decode::FieldInfo {
                            name: stringify!($field),
                            doc: concat!($($fdoc, "\n",)*),
                            shape: <$ty as $crate::manifest::decode::Decode>::shape,
                            optional: <$ty as $crate::manifest::decode::Decode>::OPTIONAL,
                            kdl_each: record!(@optional $($each)?),
                        },
                    )*
                ],
            };
        }

        impl $crate::manifest::decode::Decode for $name {
            fn decode(
                node: &$crate::manifest::tree::Node,
                cx: &mut $crate::manifest::decode::Cx,
            ) -> Option<Self> {
                let table = cx.table(node)?;
                // One pass over the table's keys, each matched at once, rather than a scan per field.
                $( let mut $field: Option<&$crate::manifest::tree::Entry> = None; )*
                let mut unknown = false;
                for entry in table.entries.iter() {
                    match entry.key.as_str() {
                        $( stringify!($field) => { $field = $field.or(Some(entry)); } )*
                        _ => unknown = true,
                    }
                }
                if unknown {
                    cx.check_fields(table, &Self::INFO);
                }
                $( let $field = cx.field_entry::<$ty>(node, $field, stringify!($field)); )*
                Some(Self { $( $field: $field?, )* })
            }
            fn shape() -> $crate::manifest::decode::Shape {
                $crate::manifest::decode::Shape::Struct(&Self::INFO)
            }
        }
    };
    (@optional) => { None };
    (@optional $each:literal) => { Some($each) };
}
pub(crate) use record;

/// Declares a string enum: each variant is written as its keyword in the manifest.
macro_rules! keyword {
    (
        $(#[doc = $doc:literal])*
        pub enum $name:ident { $( $(#[doc = $vdoc:literal])* $variant:ident = $text:literal, )* }
    ) => {
        $(#[doc = $doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        pub enum $name { $( $(#[doc = $vdoc])* #[serde(rename = $text)] $variant, )* }

        impl $name {
            pub const KEYWORDS: &'static [&'static str] = &[$($text),*];
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $text, )* }
            }
        }

        impl $crate::manifest::decode::Decode for $name {
            fn decode(
                node: &$crate::manifest::tree::Node,
                cx: &mut $crate::manifest::decode::Cx,
            ) -> Option<Self> {
                let $crate::manifest::tree::Value::Str(text) = &node.value else {
                    let expected = format!("one of {}", Self::KEYWORDS.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", "));
                    cx.type_error(node, &expected);
                    return None;
                };
                match text.as_str() {
                    $( $text => Some($name::$variant), )*
                    other => {
                        let message = format!("`{}` cannot be \"{other}\"", cx.path());
                        cx.push(
                            $crate::manifest::diagnostic::Diagnostic::error("unknown-keyword", message)
                                .at(node.span(), "not a known value")
                                .help($crate::manifest::diagnostic::suggestion(other, Self::KEYWORDS)),
                        );
                        None
                    }
                }
            }
            fn shape() -> $crate::manifest::decode::Shape {
                $crate::manifest::decode::Shape::Keyword(Self::KEYWORDS)
            }
        }
    };
}
pub(crate) use keyword;

#[cfg(test)]
mod tests {
    use super::super::raw::RawEnvironment;
    use super::super::{Source, parse};
    use super::*;

    #[test]
    fn list_items_are_named_by_their_index_in_paths() {
        let mut diags = Vec::new();
        let mut cx = Cx::new(&mut diags);
        for index in [0, 7, 10, 99, 12_345, usize::MAX] {
            let path = cx.within("command", |cx| cx.within_index(index, |cx| cx.path()));
            assert_eq!(path, format!("command.{index}"));
        }
        assert_eq!(cx.path(), "the manifest");
    }

    #[test]
    fn decoding_in_parts_gives_what_one_pass_gives() {
        // Sixty environments, every fifth with a mistake of its own kind: an unknown field, a wrong
        // type, an unknown keyword, a bad list item; overlay-free.
        let mut text = String::from("[project]\nname = \"parts\"\n");
        for i in 0..60 {
            text.push_str(&format!("[environments.e{i}]\nkind = \"task\"\nimage = \"base\"\n"));
            match i % 5 {
                0 => text.push_str("colour = \"blue\"\n"),
                1 => text.push_str("port = \"eighty\"\n"),
                2 => text.push_str("kind2 = 1\n"),
                3 => text.push_str("depends_on = [\"a\", 2]\n"),
                _ => {}
            }
            if i % 7 == 0 && i % 5 != 4 {
                text.push_str(&format!(
                    "[environments.e{i}.tasks.t]\nentrypoint = \"m:f\"\ninputs = {{ x = \"nope\" }}\n"
                ));
            }
        }
        let parsed = parse(Source::new("flyte.toml", text)).unwrap_or_else(|r| panic!("{:?}", r.diagnostics));
        let environments = &parsed.tree.as_table().and_then(|t| t.get("environments")).expect("environments").value;
        let table = environments.as_table().expect("a table");
        let run = |threads: usize| {
            let mut diags = Vec::new();
            let mut cx = Cx::new(&mut diags);
            let decoded = cx.within("environments", |cx| {
                decode_in_parts::<RawEnvironment>(&table.entries, cx, threads)
                    .map(|entries| entries.iter().map(|(k, v)| format!("{}={v:?}", k.value)).collect::<Vec<_>>())
            });
            (decoded, format!("{diags:?}"), diags.len())
        };
        let (_, one_diags, count) = crate::parts::same_on_threads("decoded and diagnostics", run);
        assert!(count >= 40, "every fifth environment has a mistake: {count} found");
        assert!(one_diags.contains("environments.e1.port"), "paths name the environment");
        // And with no mistakes, the entries themselves.
        let clean: Vec<Entry> =
            table.entries.iter().filter(|e| e.key.ends_with('4') || e.key.ends_with('9')).cloned().collect();
        let decode = |threads: usize| {
            let mut diags = Vec::new();
            let decoded = decode_in_parts::<RawEnvironment>(&clean, &mut Cx::new(&mut diags), threads);
            decoded.map(|entries| entries.iter().map(|(k, v)| format!("{}={v:?}", k.value)).collect::<Vec<_>>())
        };
        let one = decode(1).expect("the clean environments decode");
        assert_eq!(one.len(), clean.len());
        assert_eq!(decode(4).expect("in parts too"), one);
    }
}
