//! A map in key order held as one sorted vector: for the model's small tables (env vars, tasks, their
//! inputs and outputs), which hold a few entries each and are read far more often than changed.
//!
//! A `BTreeMap` gives every table, however small, a node of eleven slots: a task environment's one
//! task took a 2 KB node, and at 10,000 environments those mostly empty nodes were half the resolved
//! model and a third of validating it. This type iterates, serialises and compares as that map did (in
//! key order, the last of equal keys winning), so everything that reads the model sees the same.

use std::borrow::Borrow;

use serde::Serialize;

#[derive(Clone, Debug, PartialEq)]
pub struct SortedMap<K, V> {
    /// Sorted by key, keys unique.
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap { entries: Vec::new() }
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty map with room for `room` entries: grown one insert at a time, a map of five env vars
    /// was copied twice on its way there.
    pub fn with_capacity(room: usize) -> Self {
        SortedMap { entries: Vec::with_capacity(room) }
    }

    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|at| &self.entries[at].1)
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`; the value it had, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.insert(at, (key, value));
                None
            }
        }
    }
}

impl<K, V> SortedMap<K, V> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(_, v)| v)
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SortedMap<K, V> {
    /// As a `BTreeMap` collects: in key order, and of equal keys the last one.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(items: I) -> Self {
        let mut entries: Vec<(K, V)> = items.into_iter().collect();
        // Stable: equal keys keep their order. Of each run of them the first slot stays, holding the
        // last one's value (`dedup_by` passes the later entry first, and drops it when told to).
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        SortedMap { entries }
    }
}

impl<'a, K, V> IntoIterator for &'a SortedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<K: Serialize, V: Serialize> Serialize for SortedMap<K, V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.entries.iter().map(|(k, v)| (k, v)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::SortedMap;

    #[test]
    fn reads_serialises_and_collects_as_a_btree_map() {
        let pairs = [("b", 1), ("a", 2), ("c", 3), ("a", 4), ("b", 5), ("", 6)];
        for len in 0..=pairs.len() {
            let sorted: SortedMap<&str, i32> = pairs[..len].iter().copied().collect();
            let btree: BTreeMap<&str, i32> = pairs[..len].iter().copied().collect();
            assert_eq!(sorted.iter().collect::<Vec<_>>(), btree.iter().collect::<Vec<_>>());
            assert_eq!(sorted.len(), btree.len());
            assert_eq!(serde_json::to_string(&sorted).unwrap(), serde_json::to_string(&btree).unwrap());
            for key in ["a", "b", "c", "", "d"] {
                assert_eq!(sorted.get(key), btree.get(key), "{key}");
                assert_eq!(sorted.contains_key(key), btree.contains_key(key));
            }
        }
        let mut sorted: SortedMap<String, i32> = SortedMap::new();
        let mut btree = BTreeMap::new();
        for (key, value) in pairs {
            assert_eq!(sorted.insert(key.to_string(), value), btree.insert(key.to_string(), value));
        }
        assert_eq!(sorted.iter().collect::<Vec<_>>(), btree.iter().collect::<Vec<_>>());
    }
}
