//! The TOML front end: text → the spanned [`Node`] tree, with every syntax error reported.
//!
//! [`super::toml_fast`] reads the common subset straight into the tree; the rest, and every mistake,
//! goes through the `toml` crate's spanned document.

use toml::de::{DeTable, DeValue};

use super::diagnostic::Diagnostic;
use super::nesting::{self, MAX_DEPTH, Syntax};
use super::tree::{Entry, Node, Span, Table, Value};

/// Parses `text`; `None` when it has syntax errors, all of which are pushed to `diags`.
pub fn parse(text: &str, diags: &mut Vec<Diagnostic>) -> Option<Node> {
    // The fast reader nests 16 levels at most and declines deeper text, so it needs no guard: the
    // nesting scan (a pass over the whole text) runs only before the `toml` crate, which recurses.
    if let Some(tree) = super::toml_fast::parse(text) {
        return Some(tree);
    }
    if let Err(error) = nesting::check(text, Syntax::Toml) {
        diags.push(error);
        return None;
    }
    parse_with_crate(text, diags)
}

/// [`parse`] by the `toml` crate alone, after the nesting guard.
pub fn parse_with_crate(text: &str, diags: &mut Vec<Diagnostic>) -> Option<Node> {
    let (document, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for error in errors {
            let span = error.span().map(Span::from).unwrap_or_default();
            let message = error.message().trim().to_string();
            // A long dotted key nests without brackets, so the scan above cannot see it; the parser's
            // own limit then stops it, and that is the same mistake as any other deep nesting.
            if message.contains("recursion limit") {
                diags.push(
                    Diagnostic::error("too-deep", format!("the manifest nests deeper than {MAX_DEPTH} levels"))
                        .at(
                            if span == Span::default() { long_dotted_key(text).unwrap_or(span) } else { span },
                            "nested too deeply",
                        )
                        .help("no manifest field nests this deep; look for a very long dotted key"),
                );
                continue;
            }
            diags.push(Diagnostic::error("toml-syntax", format!("invalid TOML: {message}")).at(span, message));
        }
        return None;
    }
    let span = Span::from(document.span());
    let table = convert_table(document.get_ref(), 1, diags)?;
    Some(Node::new(table.into(), span))
}

/// The first line with more key dots than any manifest nests: the parser's "recursion limit" error has
/// no span, and only a dotted key that long reaches it. Dots in strings and comments do not count.
fn long_dotted_key(text: &str) -> Option<Span> {
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let (mut dots, mut quote, mut escaped) = (0, None, false);
        for byte in line.bytes() {
            match (quote, byte) {
                _ if escaped => escaped = false,
                (Some(b'"'), b'\\') => escaped = true,
                (Some(open), _) if byte == open => quote = None,
                (Some(_), _) => {}
                (None, b'#') => break,
                (None, b'"' | b'\'') => quote = Some(byte),
                (None, b'.') => dots += 1,
                (None, _) => {}
            }
        }
        if dots >= MAX_DEPTH {
            return Some(Span::new(start, start + line.trim_end().len()));
        }
        start += line.len();
    }
    None
}

fn convert_table(table: &DeTable<'_>, depth: usize, diags: &mut Vec<Diagnostic>) -> Option<Table> {
    let mut entries = Vec::with_capacity(table.len());
    for (key, value) in table.iter() {
        entries.push(Entry {
            key: key.get_ref().as_ref().into(),
            key_span: Span::from(key.span()),
            value: convert(value.get_ref(), Span::from(value.span()), depth + 1, diags)?,
        });
    }
    Some(Table::from(entries))
}

fn convert(value: &DeValue<'_>, span: Span, depth: usize, diags: &mut Vec<Diagnostic>) -> Option<Node> {
    // Dotted keys nest without brackets, so the bracket scan cannot see them; this catches the rest.
    if depth > MAX_DEPTH {
        diags.push(
            Diagnostic::error("too-deep", format!("the manifest nests deeper than {MAX_DEPTH} levels"))
                .at(span, "too deep")
                .help("no manifest field nests this deep"),
        );
        return None;
    }
    let value = match value {
        DeValue::String(text) => Value::Str(text.as_ref().into()),
        DeValue::Integer(number) => match i64::from_str_radix(number.as_str(), number.radix()) {
            Ok(number) => Value::Int(number),
            Err(_) => {
                diags.push(
                    Diagnostic::error("toml-syntax", "the integer does not fit in 64 bits").at(span, "too large"),
                );
                return None;
            }
        },
        DeValue::Float(number) => match number.as_str().parse::<f64>() {
            Ok(number) => Value::Float(number),
            Err(_) => {
                diags.push(Diagnostic::error("toml-syntax", "invalid float").at(span, "not a float"));
                return None;
            }
        },
        DeValue::Boolean(flag) => Value::Bool(*flag),
        DeValue::Datetime(datetime) => Value::Datetime(datetime.to_string().into()),
        DeValue::Array(items) => Value::List(
            items
                .iter()
                .map(|item| convert(item.get_ref(), Span::from(item.span()), depth + 1, diags))
                .collect::<Option<_>>()?,
        ),
        DeValue::Table(table) => convert_table(table, depth, diags)?.into(),
    };
    Some(Node::new(value, span))
}
