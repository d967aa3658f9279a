//! The TOML front end: text → the spanned [`Node`] tree, with every syntax error reported.

use toml::de::{DeTable, DeValue};

use super::diagnostic::Diagnostic;
use super::nesting::{self, MAX_DEPTH, Syntax};
use super::tree::{Entry, Node, Span, Table, Value};

/// Parses `text`; `None` when it has syntax errors, all of which are pushed to `diags`.
pub fn parse(text: &str, diags: &mut Vec<Diagnostic>) -> Option<Node> {
    if let Err(error) = nesting::check(text, Syntax::Toml) {
        diags.push(error);
        return None;
    }
    let (document, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for error in errors {
            let span = error.span().map(Span::from).unwrap_or_default();
            let message = error.message().trim().to_string();
            diags.push(Diagnostic::error("toml-syntax", format!("invalid TOML: {message}")).at(span, message));
        }
        return None;
    }
    let span = Span::from(document.span());
    let table = convert_table(document.get_ref(), 1, diags)?;
    Some(Node::new(Value::Table(table), span))
}

fn convert_table(table: &DeTable<'_>, depth: usize, diags: &mut Vec<Diagnostic>) -> Option<Table> {
    let mut entries = Vec::with_capacity(table.len());
    for (key, value) in table.iter() {
        entries.push(Entry {
            key: key.get_ref().to_string(),
            key_span: Span::from(key.span()),
            value: convert(value.get_ref(), Span::from(value.span()), depth + 1, diags)?,
        });
    }
    Some(Table { entries })
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
        DeValue::String(text) => Value::Str(text.to_string()),
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
        DeValue::Datetime(datetime) => Value::Datetime(datetime.to_string()),
        DeValue::Array(items) => Value::List(
            items
                .iter()
                .map(|item| convert(item.get_ref(), Span::from(item.span()), depth + 1, diags))
                .collect::<Option<_>>()?,
        ),
        DeValue::Table(table) => Value::Table(convert_table(table, depth, diags)?),
    };
    Some(Node::new(value, span))
}
