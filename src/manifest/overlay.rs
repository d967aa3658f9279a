//! The one overlay merge: a domain's table laid over the base manifest, on the spanned tree.
//!
//! Precedence, the only rule: a value in the domain overlay wins over the base. Tables (images,
//! environments, `env`, `resources`, `tasks`, …) merge key by key, as deep as they go; lists and plain
//! values are replaced whole. Every value that the overlay supplies is marked, so `flyte config` can say
//! where each resolved value came from.

use foldhash::HashMap;

use super::tree::{Entry, Node, Table, Value};

/// Lays `overlay` over `base`.
pub fn merge(base: &mut Table, overlay: &Table) {
    if overlay.entries.is_empty() {
        return;
    }
    // The keys the base lacks are added after its own, in the overlay's order; the entries are then
    // copied once into a table of the new length. Otherwise they are changed in place.
    let added: Vec<&Entry> = if base.entries.len() * overlay.entries.len() > 1024 {
        merge_large(base, overlay)
    } else {
        let mut added = Vec::new();
        let entries = base.entries_mut();
        for entry in overlay.entries.iter() {
            match entries.iter_mut().find(|e| e.key == entry.key) {
                Some(existing) => merge_node(&mut existing.value, &entry.value),
                None => added.push(entry),
            }
        }
        added
    };
    if added.is_empty() {
        return;
    }
    let mut entries = Vec::with_capacity(base.entries.len() + added.len());
    entries.extend(base.entries.iter().cloned());
    for entry in added {
        let mut value = entry.value.clone();
        value.mark_overlay();
        entries.push(Entry { key: entry.key.clone(), key_span: entry.key_span, value });
    }
    *base = Table::from(entries);
}

/// [`merge`] for large tables (thousands of environments): one pass over each side rather than a scan of
/// the base for every overlay key. Keys are unique, so the order of the merges changes nothing. Returns
/// the overlay's entries the base lacks, in the overlay's order.
fn merge_large<'o>(base: &mut Table, overlay: &'o Table) -> Vec<&'o Entry> {
    let mut pending: HashMap<&str, &Entry> = overlay.entries.iter().map(|e| (e.key.as_str(), e)).collect();
    for existing in base.entries_mut() {
        if let Some(entry) = pending.remove(existing.key.as_str()) {
            merge_node(&mut existing.value, &entry.value);
        }
    }
    overlay.entries.iter().filter(|e| pending.contains_key(e.key.as_str())).collect()
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
                .map(|(key, value)| Entry { key: key.into(), key_span: Span::default(), value })
                .collect(),
        }
    }

    #[test]
    fn tables_merge_deeply_lists_and_values_replace() {
        let mut base = table(vec![
            ("env", node(table(vec![("A", node(Value::Str("1".into())))]).into())),
            ("pip", node(Value::List(Box::new([node(Value::Str("a".into())), node(Value::Str("b".into()))])))),
            ("port", node(Value::Int(1))),
        ]);
        let overlay = table(vec![
            ("env", node(table(vec![("B", node(Value::Str("2".into())))]).into())),
            ("pip", node(Value::List(Box::new([node(Value::Str("c".into()))])))),
            ("port", node(Value::Int(2))),
        ]);
        merge(&mut base, &overlay);
        let env = base.get("env").unwrap().value.as_table().unwrap();
        assert_eq!(env.keys().collect::<Vec<_>>(), ["A", "B"]);
        assert!(!env.get("A").unwrap().value.overlay());
        assert!(env.get("B").unwrap().value.overlay());
        let Value::List(pip) = &base.get("pip").unwrap().value.value else { panic!("pip is a list") };
        assert_eq!(pip.len(), 1);
        assert_eq!(base.get("port").unwrap().value.value, Value::Int(2));
        assert!(base.get("port").unwrap().value.overlay());
    }

    #[test]
    fn large_tables_merge_as_small_ones_do() {
        let env =
            |n: i64| node(table(vec![("port", node(Value::Int(n))), ("kind", node(Value::Str("app".into())))]).into());
        let names: Vec<String> = (0..100).map(|i| format!("e{i}")).collect();
        let mut base = table(names.iter().map(|n| (n.as_str(), env(0))).collect());
        // Every third environment changes its port; new ones are added in the overlay's order.
        let mut changes: Vec<(&str, Node)> = names
            .iter()
            .step_by(3)
            .rev()
            .map(|n| (n.as_str(), node(table(vec![("port", node(Value::Int(1)))]).into())))
            .collect();
        changes.insert(5, ("z-new", env(2)));
        changes.push(("a-new", env(3)));
        merge(&mut base, &table(changes));
        assert_eq!(base.entries.len(), 102);
        assert_eq!(base.keys().skip(100).collect::<Vec<_>>(), ["z-new", "a-new"]);
        for (i, entry) in base.entries.iter().take(100).enumerate() {
            let env = entry.value.as_table().unwrap();
            let port = &env.get("port").unwrap().value;
            assert_eq!(port.value, Value::Int(i64::from(i % 3 == 0)), "{}", entry.key);
            assert_eq!(port.overlay(), i % 3 == 0);
            assert!(!env.get("kind").unwrap().value.overlay());
        }
        assert!(base.entries[100].value.overlay());
    }
}
