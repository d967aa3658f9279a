//! Work on thousands of items spread over the machine's cores, with results as one pass gives them.
//!
//! A large manifest is decoded, checked and hashed environment by environment, each independent of the
//! others: [`map_parts`] cuts the items into consecutive parts, runs them on scoped threads and returns
//! the parts' results in order, so joining them gives what a single pass in order gives.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// How many threads to spread `items` over, giving each at least `per_thread`: 1 for anything smaller
/// than two such parts, so a small manifest never starts a thread. The core count is read once (on
/// Linux it comes from cgroup files, too slow to ask for every table).
pub fn threads_for(items: usize, per_thread: usize) -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    let parts = items / per_thread.max(1);
    if parts < 2 {
        return 1;
    }
    parts.min(*CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from)))
}

/// How many pieces each thread's share of the items is cut into. The threads take pieces one at a
/// time until none is left, so a thread that runs slower takes fewer. Cut in halves, a newly started
/// thread often ran its half slower than the main thread ran the other (its allocator has no freed
/// memory to reuse, and the kernel zeroes every fresh page), and the main thread waited. A piece's
/// own cost is one result and a lock. At 10,000 environments, alternating the two in one process:
/// resolving 64.0 -> 62.5 ms (medians of 30) on a quiet machine, 79 -> 73 ms on a busy one.
const PIECES_PER_THREAD: usize = 16;

/// `work` on consecutive parts of `items`, spread over `threads` threads, the results in the parts'
/// order. With one thread it runs here, on the whole slice. Otherwise the items are cut into pieces
/// that the threads take in turn (this one too, always starting with the first); how many pieces there
/// are is not the caller's to count on. A piece whose thread panicked is done again here, so a panic is
/// reported as it would be without threads.
pub fn map_parts<'a, T: Sync, R: Send>(items: &'a [T], threads: usize, work: impl Fn(&'a [T]) -> R + Sync) -> Vec<R> {
    map_parts_at(items, threads, |_, part| work(part))
}

/// [`map_parts`] where each part also gets the position of its first item in `items`.
pub fn map_parts_at<'a, T: Sync, R: Send>(
    items: &'a [T],
    threads: usize,
    work: impl Fn(usize, &'a [T]) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() < 2 {
        return vec![work(0, items)];
    }
    let size = piece_size(items.len(), threads);
    let pieces: Vec<&'a [T]> = items.chunks(size).collect();
    let done: Vec<Mutex<Option<R>>> = pieces.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let take_pieces = || {
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(piece) = pieces.get(index) else { break };
            let result = work(index * size, piece);
            *done[index].lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
        }
    };
    std::thread::scope(|scope| {
        // The first piece is taken here before any thread starts: what it allocates (the decoded
        // environments' room for all of them) is freed by the thread that allocated it.
        next.store(1, Ordering::Relaxed);
        let workers: Vec<_> = (1..threads).map(|_| scope.spawn(take_pieces)).collect();
        let first = work(0, pieces[0]);
        *done[0].lock().unwrap_or_else(PoisonError::into_inner) = Some(first);
        take_pieces();
        // A worker that panicked leaves its piece undone; it is done again below.
        workers.into_iter().for_each(|worker| drop(worker.join()));
    });
    done.into_iter()
        .zip(pieces)
        .enumerate()
        .map(|(index, (slot, piece))| {
            slot.into_inner().unwrap_or_else(PoisonError::into_inner).unwrap_or_else(|| work(index * size, piece))
        })
        .collect()
}

/// [`map_parts`] on a mutable slice: each part also gets the position of its first item, and may take
/// from or change its items. The first piece runs here; a piece whose thread panicked is not done again
/// (its items may be half changed), the panic goes on here.
pub fn map_parts_mut<T: Send, R: Send>(
    items: &mut [T],
    threads: usize,
    work: impl Fn(usize, &mut [T]) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() < 2 {
        return vec![work(0, items)];
    }
    let size = piece_size(items.len(), threads);
    let count = items.len().div_ceil(size);
    let mut pieces = items.chunks_mut(size).enumerate();
    let Some((_, first)) = pieces.next() else { return vec![work(0, items)] };
    let pieces = Mutex::new(pieces);
    let done: Vec<Mutex<Option<R>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let take_pieces = || {
        loop {
            let taken = pieces.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some((index, piece)) = taken else { break };
            let result = work(index * size, piece);
            *done[index].lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
        }
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (1..threads).map(|_| scope.spawn(take_pieces)).collect();
        let result = work(0, first);
        *done[0].lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
        take_pieces();
        for worker in workers {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
    done.into_iter()
        .map(|slot| slot.into_inner().unwrap_or_else(PoisonError::into_inner).expect("every piece is done"))
        .collect()
}

/// Drops `items` on `threads` threads, a consecutive part each (this one takes the first). Thousands of
/// decoded environments, each a tree of small allocations, took milliseconds to free on one thread.
pub fn drop_in_parts<T: Send>(mut items: Vec<T>, threads: usize) {
    if threads <= 1 || items.len() < 2 {
        return;
    }
    let size = items.len().div_ceil(threads);
    let mut rest = Vec::with_capacity(threads - 1);
    while items.len() > size {
        let at = (items.len() - 1) / size * size;
        rest.push(items.split_off(at));
    }
    std::thread::scope(|scope| {
        for part in rest {
            scope.spawn(move || drop(part));
        }
        drop(items);
    });
}

/// The items in each piece when `len` items are spread over `threads` threads: at least one.
fn piece_size(len: usize, threads: usize) -> usize {
    len.div_ceil(threads * PIECES_PER_THREAD).max(1)
}

/// Where to cut a text of `len` bytes into up to `parts` parts of about equal length: for each, the
/// first place `next_cut` finds at or after the even split (and past the cut before), in order.
pub fn cuts(len: usize, parts: usize, next_cut: impl Fn(usize) -> Option<usize>) -> Vec<usize> {
    let mut cuts: Vec<usize> = Vec::with_capacity(parts);
    for part in 1..parts {
        let from = (len / parts * part).max(cuts.last().map_or(0, |&cut| cut + 1));
        match next_cut(from) {
            Some(at) if at < len => cuts.push(at),
            _ => break,
        }
    }
    cuts
}

/// The start of the first line at or after `from` whose first byte is one `starts` takes: a place
/// where a part of a text may start.
pub fn line_from(text: &str, from: usize, starts: impl Fn(u8) -> bool) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = from;
    if at > 0 {
        // The start of the next line, unless `from` is one.
        at += bytes.get(at - 1..)?.iter().position(|&b| b == b'\n')?;
    }
    loop {
        if starts(*bytes.get(at)?) {
            return Some(at);
        }
        at += bytes.get(at..)?.iter().position(|&b| b == b'\n')? + 1;
    }
}

/// `work` on each range of a text of `len` bytes between `cuts` (start, end), on up to `threads`
/// threads as in [`map_parts`] (one reads them one after another here); the results in the text's order.
pub fn map_ranges<R: Send>(
    len: usize,
    cuts: &[usize],
    threads: usize,
    work: impl Fn(usize, usize) -> R + Sync,
) -> Vec<R> {
    let starts = std::iter::once(0).chain(cuts.iter().copied());
    let ranges: Vec<(usize, usize)> = starts.zip(cuts.iter().copied().chain([len])).collect();
    map_parts(&ranges, threads, |part| part.iter().map(|&(start, end)| work(start, end)).collect::<Vec<_>>())
        .into_iter()
        .flatten()
        .collect()
}

/// For tests of work split into parts: `run` on one thread, then on 2, 3 and 7, each giving what one
/// thread gives (`what` says of what, when not); returns the one thread's result.
#[cfg(test)]
pub fn same_on_threads<R: PartialEq + std::fmt::Debug>(what: &str, run: impl Fn(usize) -> R) -> R {
    let one = run(1);
    for threads in [2, 3, 7] {
        assert_eq!(run(threads), one, "{threads} threads: {what}");
    }
    one
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_come_back_in_order_and_cover_every_item() {
        let items: Vec<u32> = (0..1003).collect();
        for threads in [1, 2, 3, 8] {
            let parts = map_parts(&items, threads, |part| part.to_vec());
            assert!(parts.len() >= threads.min(items.len()), "{threads} threads");
            assert!(parts.iter().all(|part| !part.is_empty()), "{threads} threads");
            assert_eq!(parts.concat(), items, "{threads} threads");
        }
        // More threads than items: one item each.
        assert_eq!(map_parts(&items[..3], 8, |part| part.to_vec()), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(map_parts(&[] as &[u32], 4, |part| part.len()), vec![0]);
    }

    #[test]
    fn parts_know_where_they_start() {
        let items: Vec<usize> = (0..1003).collect();
        for threads in [1, 2, 3, 8] {
            let parts = map_parts_at(&items, threads, |first, part| {
                assert_eq!(part.first().copied(), Some(first), "{threads} threads");
                part.len()
            });
            assert_eq!(parts.iter().sum::<usize>(), items.len(), "{threads} threads");
        }
    }

    #[test]
    fn mutable_parts_know_where_they_start() {
        for threads in [1, 2, 3, 8] {
            let mut items: Vec<usize> = vec![0; 1003];
            let firsts = map_parts_mut(&mut items, threads, |first, part| {
                for (offset, item) in part.iter_mut().enumerate() {
                    *item = first + offset;
                }
                first
            });
            assert_eq!(items, (0..1003).collect::<Vec<_>>(), "{threads} threads");
            assert!(firsts.len() >= threads, "{threads} threads");
            assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{threads} threads");
        }
    }

    #[test]
    fn a_piece_whose_thread_panicked_is_done_again_here() {
        let here = std::thread::current().id();
        let items: Vec<u32> = (0..100).collect();
        // Every other thread panics on the first piece it takes; whichever pieces they took, the
        // result is the whole, in order.
        let parts = map_parts(&items, 4, |part| {
            assert!(std::thread::current().id() == here, "a piece on another thread");
            part.to_vec()
        });
        assert_eq!(parts.concat(), items);
    }

    #[test]
    fn dropping_in_parts_drops_every_item() {
        for (threads, len) in [(1, 10), (2, 10), (3, 10), (3, 2), (8, 5), (2, 0)] {
            let counted = std::sync::Arc::new(());
            let items: Vec<_> = (0..len).map(|_| counted.clone()).collect();
            drop_in_parts(items, threads);
            assert_eq!(std::sync::Arc::strong_count(&counted), 1, "{threads} threads, {len} items");
        }
    }

    #[test]
    fn texts_are_cut_where_asked_and_read_in_order() {
        let text = "a\nbb\nccc\ndddd\n";
        let cuts = cuts(text.len(), 3, |from| line_from(text, from, |_| true));
        assert_eq!(cuts, vec![5, 9]);
        assert_eq!(line_from(text, 0, |b| b == b'c'), Some(5));
        assert_eq!(line_from(text, 5, |b| b == b'c'), Some(5));
        assert_eq!(line_from(text, 6, |b| b == b'c'), None);
        for threads in [1, 2, 3] {
            let parts = map_ranges(text.len(), &cuts, threads, |start, end| &text[start..end]);
            assert_eq!(parts, vec!["a\nbb\n", "ccc\n", "dddd\n"], "{threads} threads");
        }
        assert!(super::cuts(text.len(), 3, |_| None).is_empty());
        assert_eq!(map_ranges(4, &[], 2, |start, end| (start, end)), vec![(0, 4)]);
    }

    #[test]
    fn small_inputs_stay_on_one_thread() {
        assert_eq!(threads_for(0, 500), 1);
        assert_eq!(threads_for(999, 500), 1);
        assert!(threads_for(100_000, 500) >= 1);
    }
}
