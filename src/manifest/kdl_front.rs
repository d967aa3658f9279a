//! The KDL front end: text → the same spanned [`Node`] tree as TOML, directed by the manifest's shapes.
//!
//! KDL has nodes, not tables, so the mapping needs to know what each field is:
//! - a plain field is a node with one argument: `port 8080`;
//! - a list of plain values is a node with the values as arguments: `pip "fastapi" "uvicorn"`;
//! - a table is a node with child nodes and/or properties: `scaling min_replicas=1 { max_replicas 4 }`;
//! - a map of user-named tables has one node per entry, named in the singular, its first argument the
//!   key: `environment "backend" { … }`; a list of tables, one node per item: `source { src "lib" }`;
//! - a map of plain values takes properties or children: `env LOG_LEVEL="debug"`.

use compact_str::CompactString;
use foldhash::{HashMap, HashMapExt};
use kdl::KdlDocument;

// The mapper reads the light document of `kdl_fast`, whichever parser read the text.
use super::kdl_fast::{Document, Entry as KdlEntry, Node as KdlNode, Read, Scalar};

use super::decode::{Shape, StructInfo};
use super::diagnostic::Diagnostic;
use super::nesting::{self, Syntax};
use super::raw::RawManifest;
use super::tree::{Entry, Node, Span, Table, Value, fitted};

/// Parses `text`; `None` when it has syntax errors, all of which are pushed to `diags`.
pub fn parse(text: &str, diags: &mut Vec<Diagnostic>) -> Option<Node> {
    // A large text is read in parts, and each part's entries of maps and lists mapped ahead on its
    // thread as soon as it is read; the rest is mapped here.
    map_read(text, super::kdl_fast::parse_each(text, |node| Ahead::of(node, &RawManifest::INFO)), diags)
}

/// The tree of `text` from what the fast reader read. It takes the common subset, nested no deeper
/// than the nesting guard allows; when it declines (`None`), the kdl crate, which recurses, reads the
/// text behind that guard and reports every error.
fn map_read(text: &str, read: Option<Read<Ahead>>, diags: &mut Vec<Diagnostic>) -> Option<Node> {
    let before = diags.len();
    let document = match read {
        Some(Read::Parts(ahead)) => {
            let table = Mapper { diags }.lay(ahead.into_iter(), &RawManifest::INFO);
            return (diags.len() == before).then(|| Node::new(table.into(), Span::new(0, text.len())));
        }
        Some(Read::Whole(document)) => document,
        None => {
            if let Err(error) = nesting::check(text, Syntax::Kdl) {
                diags.push(error);
                return None;
            }
            match KdlDocument::parse_v2(text) {
                Ok(document) => Document::from(&document),
                Err(error) => {
                    syntax_errors(text, error, diags);
                    return None;
                }
            }
        }
    };
    let nodes = document.into_nodes();
    let threads = crate::parts::threads_for(nodes.len(), 2000);
    let table = Mapper { diags }.top_level(nodes, &RawManifest::INFO, threads);
    (diags.len() == before).then(|| Node::new(table.into(), Span::new(0, text.len())))
}

/// The kdl crate's errors as diagnostics.
fn syntax_errors(text: &str, error: kdl::KdlError, diags: &mut Vec<Diagnostic>) {
    for diagnostic in error.diagnostics {
        let message = diagnostic.message.clone().unwrap_or_else(|| "unexpected input".to_string());
        let mut span = span_of(diagnostic.span);
        // Some errors come with a span from the start of the document to where kdl stopped;
        // that start is no place to point at (it would say line 1), the stop is.
        if span.start() == 0 && text.as_bytes()[..span.end().min(text.len())].contains(&b'\n') {
            span = Span::new(span.end(), span.end());
        }
        let mut out = Diagnostic::error("kdl-syntax", format!("invalid KDL: {message}"))
            .at(span, diagnostic.label.clone().unwrap_or_else(|| message.clone()));
        if let Some(help) = diagnostic.help {
            out = out.help(help);
        }
        diags.push(out);
    }
}

fn span_of(span: miette::SourceSpan) -> Span {
    Span::new(span.offset(), span.offset() + span.len())
}

struct Mapper<'d> {
    diags: &'d mut Vec<Diagnostic>,
}

/// The entries of one `kdl_each` map or items of one list of a struct, gathered as its nodes are laid;
/// a map's keys so far, where each was given. A map may hold thousands.
#[derive(Default)]
struct EachField {
    given: HashMap<CompactString, Span>,
    entries: Vec<Entry>,
    items: Vec<Node>,
}

/// A mapped entry of a map (with its key and the key's span) or item of a list.
struct Each {
    key: Option<(CompactString, Span)>,
    value: Node,
    name_span: Span,
}

/// A node of a struct, mapped as far as it can be without the struct's table.
enum Ahead {
    /// An entry of the map or list `field`, what mapping it made, and the diagnostics it raised.
    Each { field: &'static str, made: Option<Each>, diags: Vec<Diagnostic> },
    /// Any other node: mapped in order, with the table at hand.
    Node(KdlNode),
}

impl Ahead {
    /// Maps an entry of a map or list whole, on any thread; leaves any other node as it is.
    fn of(node: KdlNode, info: &StructInfo) -> Ahead {
        let name = node.name().value();
        match info.fields.iter().find(|f| f.kdl_each == Some(name)) {
            Some(field) => {
                let mut diags = Vec::new();
                let made = Mapper { diags: &mut diags }.each_value(node, (field.shape)());
                Ahead::Each { field: field.name, made, diags }
            }
            None => Ahead::Node(node),
        }
    }
}

impl Mapper<'_> {
    fn error(&mut self, span: Span, message: String, label: &str, help: &str) {
        self.diags.push(Diagnostic::error("kdl-shape", message).at(span, label).help(help));
    }

    /// The document's nodes, as the manifest's table: [`Self::children`], with the entries of maps and
    /// lists (`environment "backend" { … }`: thousands in a large manifest) mapped ahead in parts on
    /// `threads` threads, each with diagnostics of its own, then laid into the table in order here with
    /// those diagnostics, so the table and the diagnostics are those of one pass (a test holds them equal).
    fn top_level(&mut self, nodes: Vec<KdlNode>, info: &StructInfo, threads: usize) -> Table {
        let mut slots: Vec<Option<KdlNode>> = nodes.into_iter().map(Some).collect();
        let parts = crate::parts::map_parts_mut(&mut slots, threads, |_, part| {
            part.iter_mut().filter_map(Option::take).map(|node| Ahead::of(node, info)).collect::<Vec<_>>()
        });
        self.lay(parts.into_iter().flatten(), info)
    }

    /// The child nodes of a struct's node, as the struct's table. Nodes are taken apart as they are
    /// mapped, so a large document is freed while the tree grows instead of after it.
    fn children(&mut self, nodes: Vec<KdlNode>, info: &StructInfo) -> Vec<Entry> {
        self.lay_entries(nodes.into_iter().map(|node| Ahead::of(node, info)), info)
    }

    /// Lays a struct's nodes, mapped as far as they can be without its table, into the table in order,
    /// with the diagnostics their mapping raised.
    fn lay(&mut self, nodes: impl Iterator<Item = Ahead>, info: &StructInfo) -> Table {
        Table::from(self.lay_entries(nodes, info))
    }

    /// [`Self::lay`], the table's entries.
    fn lay_entries(&mut self, nodes: impl Iterator<Item = Ahead>, info: &StructInfo) -> Vec<Entry> {
        let mut table = Vec::new();
        // The `kdl_each` maps and lists, gathered apart and laid into their fields at the end.
        let mut each: HashMap<&str, EachField> = HashMap::new();
        for node in nodes {
            match node {
                Ahead::Each { field, made, diags } => {
                    self.diags.extend(diags);
                    if let Some(made) = made {
                        self.each_insert(made, field, &mut table, each.entry(field).or_default());
                    }
                }
                Ahead::Node(node) => self.field_node(node, info, &mut table),
            }
        }
        // Most structs have none, and then their entries are not looked up (a lookup hashes the key).
        if !each.is_empty() {
            for entry in table.iter_mut() {
                let Some(field) = each.remove(entry.key.as_str()) else { continue };
                match &mut entry.value.value {
                    Value::Table(map) => *map = Table::from(field.entries),
                    Value::List(items) => *items = fitted(field.items).into_boxed_slice(),
                    _ => {}
                }
            }
        }
        table
    }

    /// A node of a struct that is not an entry of a map or list: the field it names, into `table`.
    fn field_node(&mut self, node: KdlNode, info: &StructInfo, table: &mut Vec<Entry>) {
        let field = info.field(node.name().value());
        let (name, entries, children, span) = node.into_parts();
        let value = match field {
            Some(field) => {
                if let Some(each) = field.kdl_each {
                    let message = format!("write each entry of `{}` as its own `{each}` node", field.name);
                    self.error(
                        name.span(),
                        message,
                        "not a KDL node name here",
                        &format!("e.g. {each} \"name\" {{ … }}"),
                    );
                    return;
                }
                self.value(name.value(), entries, children, span, (field.shape)(), 0)
            }
            // Kept as it is, so decoding reports it as unknown with a "did you mean".
            None => Some(self.generic(name.value(), entries, children, span)),
        };
        let Some(value) = value else { return };
        let name_span = name.span();
        self.insert(table, name.into_value(), name_span, value);
    }

    fn insert(&mut self, table: &mut Vec<Entry>, key: CompactString, key_span: Span, value: Node) {
        if let Some(first) = table.iter().find(|e| e.key == key) {
            let first_span = first.key_span;
            self.duplicate(&key, key_span, first_span);
            return;
        }
        table.push(Entry { key, key_span, value });
    }

    fn duplicate(&mut self, key: &str, key_span: Span, first_span: Span) {
        self.diags.push(
            Diagnostic::error("duplicate", format!("`{key}` is given twice"))
                .at(key_span, "given again here")
                .related(first_span, "first given here")
                .help("give each field once"),
        );
    }

    /// One entry of a map (`environment "backend" { … }`) or one item of a list (`source { … }`),
    /// mapped: its key (maps only), value and name's span; `None` when it cannot be (said in diagnostics).
    fn each_value(&mut self, node: KdlNode, shape: Shape) -> Option<Each> {
        let name_span = node.name().span();
        let (key, item) = match unpatch(shape) {
            Shape::Map(item) => (Some(self.entry_key(&node)?), item),
            Shape::List(item) => (None, item),
            _ => return None,
        };
        let (name, entries, children, span) = node.into_parts();
        let value = self.value(name.value(), entries, children, span, item(), usize::from(key.is_some()))?;
        Some(Each { key, value, name_span })
    }

    /// Adds a mapped entry of a map or item of a list to `field` of `table`: to `gathered`, laid into the
    /// field's empty table or list when the struct is complete.
    fn each_insert(&mut self, each: Each, field: &str, table: &mut Vec<Entry>, gathered: &mut EachField) {
        let Each { key, value, name_span } = each;
        let index = match table.iter().position(|e| e.key == field) {
            Some(index) => index,
            None => {
                let empty = if key.is_some() { Table::default().into() } else { Value::List(Box::default()) };
                table.push(Entry { key: field.into(), key_span: name_span, value: Node::new(empty, name_span) });
                table.len() - 1
            }
        };
        match (&table[index].value.value, key) {
            (Value::Table(_), Some((key, key_span))) => match gathered.given.get(&key) {
                Some(&first_span) => self.duplicate(&key, key_span, first_span),
                None => {
                    gathered.given.insert(key.clone(), key_span);
                    gathered.entries.push(Entry { key, key_span, value });
                }
            },
            (Value::List(_), None) => gathered.items.push(value),
            _ => {}
        }
    }

    /// The first argument of a map entry's node: its name.
    fn entry_key(&mut self, node: &KdlNode) -> Option<(CompactString, Span)> {
        if let Some(entry) = node.entries().first()
            && entry.name().is_none()
            && let Scalar::String(key) = entry.value()
        {
            return Some((key.clone(), entry.span()));
        }
        let each = node.name().value();
        let message = format!("`{each}` needs its name as the first argument");
        self.error(node.name().span(), message, "name missing", &format!("e.g. {each} \"name\" {{ … }}"));
        None
    }

    /// The value of the node `name` (its `entries`, `children` and `span`) as `shape`, ignoring its
    /// first `skip` arguments (a map entry's key).
    fn value(
        &mut self,
        name: &str,
        entries: Vec<KdlEntry>,
        children: Vec<KdlNode>,
        span: Span,
        shape: Shape,
        skip: usize,
    ) -> Option<Node> {
        // Counted by reference, then consumed once: this runs for every node of the manifest.
        let arg_count = entries.iter().filter(|e| e.name().is_none()).count().saturating_sub(skip);
        let first_arg_span = entries.iter().filter(|e| e.name().is_none()).nth(skip).map(KdlEntry::span);
        let has_props = entries.iter().any(|e| e.name().is_some());
        let args = |entries: Vec<KdlEntry>| entries.into_iter().filter(|e| e.name().is_none()).skip(skip);
        match unpatch(shape) {
            Shape::Str | Shape::Int | Shape::Float | Shape::Bool | Shape::Keyword(_) | Shape::Quantity => {
                if arg_count != 1 || has_props || !children.is_empty() {
                    self.error(
                        span,
                        format!("`{name}` takes exactly one value"),
                        "one value expected",
                        &format!("e.g. {name} \"value\""),
                    );
                    return None;
                }
                args(entries).next().and_then(|only| self.scalar(only))
            }
            Shape::List(item) if !matches!(unpatch(item()), Shape::Struct(_)) => {
                if has_props || !children.is_empty() {
                    self.error(
                        span,
                        format!("`{name}` takes its items as arguments"),
                        "a list expected",
                        &format!("e.g. {name} \"a\" \"b\""),
                    );
                    return None;
                }
                let items = args(entries).map(|a| self.scalar(a)).collect::<Option<Vec<_>>>()?;
                Some(Node::new(Value::List(fitted(items).into_boxed_slice()), span))
            }
            Shape::BoolOr(_) if arg_count == 1 && !has_props && children.is_empty() => {
                args(entries).next().and_then(|only| self.scalar(only))
            }
            Shape::Any => Some(self.generic(name, entries, children, span)),
            shape => {
                if let Some(first) = first_arg_span {
                    self.error(
                        first,
                        format!("`{name}` takes properties or child nodes, not arguments"),
                        "unexpected argument",
                        &format!("e.g. {name} key=\"value\" or {name} {{ key \"value\" }}"),
                    );
                    return None;
                }
                let mut table = match shape {
                    Shape::Struct(info) => self.children(children, info),
                    Shape::BoolOr(inner) => match unpatch(inner()) {
                        Shape::Struct(info) => self.children(children, info),
                        _ => Vec::new(),
                    },
                    Shape::Map(item) => {
                        let mut table = Vec::new();
                        for child in children {
                            let (key, entries, children, span) = child.into_parts();
                            if let Some(value) = self.value(key.value(), entries, children, span, item(), 0) {
                                let key_span = key.span();
                                self.insert(&mut table, key.into_value(), key_span, value);
                            }
                        }
                        table
                    }
                    _ => {
                        self.error(
                            span,
                            format!("`{name}` cannot be written this way"),
                            "unexpected shape",
                            "see the README's KDL section",
                        );
                        return None;
                    }
                };
                self.properties(&mut table, entries);
                Some(Node::new(Table::from(table).into(), span))
            }
        }
    }

    /// The properties among `entries` (`key=value`), into `table`.
    fn properties(&mut self, table: &mut Vec<Entry>, entries: Vec<KdlEntry>) {
        for prop in entries {
            let (Some(key), value, span) = prop.into_parts() else { continue };
            if let Some(value) = self.scalar_value(value, span) {
                let key_span = key.span();
                self.insert(table, key.into_value(), key_span, value);
            }
        }
    }

    fn scalar(&mut self, entry: KdlEntry) -> Option<Node> {
        let (_, value, span) = entry.into_parts();
        self.scalar_value(value, span)
    }

    fn scalar_value(&mut self, value: Scalar, span: Span) -> Option<Node> {
        let value = match value {
            Scalar::String(text) => Value::Str(text),
            Scalar::Integer(number) => match i64::try_from(number) {
                Ok(number) => Value::Int(number),
                Err(_) => {
                    self.error(
                        span,
                        "the integer does not fit in 64 bits".to_string(),
                        "too large",
                        "use a smaller number",
                    );
                    return None;
                }
            },
            Scalar::Float(number) => Value::Float(number),
            Scalar::Bool(flag) => Value::Bool(flag),
            Scalar::Null => {
                self.error(span, "#null is not a manifest value".to_string(), "null", "leave the field out instead");
                return None;
            }
        };
        Some(Node::new(value, span))
    }

    /// A node mapped without a schema shape: a field decoding will report as unknown, or a free-form
    /// input value. One argument is a scalar, several (or `- item` children) a list, properties and
    /// children a table.
    fn generic(&mut self, name: &str, entries: Vec<KdlEntry>, children: Vec<KdlNode>, span: Span) -> Node {
        let arg_count = entries.iter().filter(|e| e.name().is_none()).count();
        let first_arg_span = entries.iter().find(|e| e.name().is_none()).map(KdlEntry::span);
        let has_props = arg_count < entries.len();
        if !has_props && children.is_empty() {
            if arg_count == 1 {
                let only = entries.into_iter().next();
                return only
                    .and_then(|only| self.scalar(only))
                    .unwrap_or_else(|| Node::new(Table::default().into(), span));
            }
            let items = entries.into_iter().filter_map(|a| self.scalar(a)).collect();
            return Node::new(Value::List(fitted(items).into_boxed_slice()), span);
        }
        if arg_count == 0 && !has_props && children.iter().all(|c| c.name().value() == "-") {
            let items = children
                .into_iter()
                .map(|c| {
                    let (name, entries, children, span) = c.into_parts();
                    self.generic(name.value(), entries, children, span)
                })
                .collect();
            return Node::new(Value::List(fitted(items).into_boxed_slice()), span);
        }
        if let Some(first) = first_arg_span {
            let message = format!("`{name}` mixes arguments with properties or child nodes");
            self.error(
                first,
                message,
                "argument beside a table",
                &format!("write a table (`{name} key=1`) or plain values (`{name} \"a\" \"b\"`), not both"),
            );
        }
        let mut table = Vec::new();
        self.properties(&mut table, entries);
        for child in children {
            let (key, entries, children, span) = child.into_parts();
            let value = self.generic(key.value(), entries, children, span);
            let key_span = key.span();
            self.insert(&mut table, key.into_value(), key_span, value);
        }
        Node::new(Table::from(table).into(), span)
    }
}

fn unpatch(shape: Shape) -> Shape {
    match shape {
        Shape::Patch(inner) => unpatch(inner()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read in parts and mapped ahead on each part's thread, every repository KDL manifest and
    /// mutations of it give the tree and the diagnostics of one pass.
    #[test]
    fn reading_and_mapping_in_parts_gives_what_one_pass_gives() {
        let texts = super::super::mutations::repository_texts("kdl");
        let inserts = ['"', '{', '}', ';', '\n', 'e'];
        let mut in_parts = 0usize;
        for text in super::super::mutations::mutations(&texts, &inserts, 20) {
            let ahead = |node| Ahead::of(node, &RawManifest::INFO);
            let mut one_diags = Vec::new();
            let one = map_read(&text, super::super::kdl_fast::parse_each_in(&text, 1, 1, ahead), &mut one_diags);
            for parts in [2, 3] {
                let read = super::super::kdl_fast::parse_each_in(&text, parts, parts, ahead);
                in_parts += usize::from(matches!(read, Some(Read::Parts(_))));
                let mut diags = Vec::new();
                let tree = map_read(&text, read, &mut diags);
                assert_eq!((&tree, &diags), (&one, &one_diags), "{parts} parts:\n{text}");
            }
        }
        assert!(in_parts > 500, "{in_parts} read in parts");
    }

    /// Mapped with the top level's entries mapped ahead in parts, every repository KDL manifest and
    /// mutations of it (mistakes of every kind, duplicates across parts) give the table and the
    /// diagnostics of one pass.
    #[test]
    fn mapping_ahead_in_parts_gives_what_one_pass_gives() {
        let texts = super::super::mutations::repository_texts("kdl");
        let inserts = ['"', '{', '}', ';', '\n', ' ', 'e', '='];
        let (mut mapped, mut with_diagnostics) = (0usize, 0usize);
        for text in super::super::mutations::mutations(&texts, &inserts, 20) {
            let map = |threads: usize| {
                let document = super::super::kdl_fast::parse(&text)?;
                let mut diags = Vec::new();
                let table = Mapper { diags: &mut diags }.top_level(document.into_nodes(), &RawManifest::INFO, threads);
                Some((table, diags))
            };
            let Some((_, diags)) = crate::parts::same_on_threads(&text, map) else { continue };
            mapped += 1;
            with_diagnostics += usize::from(!diags.is_empty());
        }
        assert!(mapped > 500 && with_diagnostics > 50, "{mapped} mapped, {with_diagnostics} with diagnostics");
    }
}
