//! The one overlay merge: a domain's table laid over the base manifest, on the spanned tree.
//!
//! Precedence, the only rule: a value in the domain overlay wins over the base. Tables (images,
//! environments, `env`, `resources`, `tasks`, …) merge key by key, as deep as they go; lists and plain
//! values are replaced whole. Every value that the overlay supplies is marked, so `flyte config` can say
//! where each resolved value came from.

use super::tree::{Entry, Node, Table, Value};

/// Lays `overlay` over `base`.
pub fn merge(base: &mut Table, overlay: &Table) {
    for entry in &overlay.entries {
        match base.get_mut(&entry.key) {
            Some(existing) => merge_node(&mut existing.value, &entry.value),
            None => {
                let mut value = entry.value.clone();
                value.mark_overlay();
                base.entries.push(Entry { key: entry.key.clone(), key_span: entry.key_span, value });
            }
        }
    }
}

fn merge_node(base: &mut Node, overlay: &Node) {
    if let (Value::Table(base_table), Value::Table(overlay_table)) = (&mut base.value, &overlay.value) {
        merge(base_table, overlay_table);
        return;
    }
    *base = overlay.clone();
    base.mark_overlay();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tree::Span;

    fn node(value: Value) -> Node {
        Node::new(value, Span::default())
    }

    fn table(entries: Vec<(&str, Node)>) -> Table {
        Table {
            entries: entries
                .into_iter()
                .map(|(key, value)| Entry { key: key.to_string(), key_span: Span::default(), value })
                .collect(),
        }
    }

    #[test]
    fn tables_merge_deeply_lists_and_values_replace() {
        let mut base = table(vec![
            ("env", node(Value::Table(table(vec![("A", node(Value::Str("1".into())))])))),
            ("pip", node(Value::List(vec![node(Value::Str("a".into())), node(Value::Str("b".into()))]))),
            ("port", node(Value::Int(1))),
        ]);
        let overlay = table(vec![
            ("env", node(Value::Table(table(vec![("B", node(Value::Str("2".into())))])))),
            ("pip", node(Value::List(vec![node(Value::Str("c".into()))]))),
            ("port", node(Value::Int(2))),
        ]);
        merge(&mut base, &overlay);
        let env = base.get("env").unwrap().value.as_table().unwrap();
        assert_eq!(env.keys().collect::<Vec<_>>(), ["A", "B"]);
        assert!(!env.get("A").unwrap().value.overlay);
        assert!(env.get("B").unwrap().value.overlay);
        let Value::List(pip) = &base.get("pip").unwrap().value.value else { panic!("pip is a list") };
        assert_eq!(pip.len(), 1);
        assert_eq!(base.get("port").unwrap().value.value, Value::Int(2));
        assert!(base.get("port").unwrap().value.overlay);
    }
}
