//! Work on thousands of items spread over the machine's cores, with results as one pass gives them.
//!
//! A large manifest is decoded, checked and hashed environment by environment, each independent of the
//! others: [`map_parts`] cuts the items into consecutive parts, runs each on a scoped thread and returns
//! the parts' results in order, so joining them gives what a single pass in order gives.

use std::sync::OnceLock;

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

/// `work` on `threads` consecutive parts of `items`, the results in the parts' order. With one thread
/// it runs here, on the whole slice. The first part always runs here too, while new threads take the
/// rest: one thread fewer to start, and what the first part allocates is freed by the thread that
/// allocated it (memory freed across threads, from a thread that has ended, costs the allocator far
/// more). A part whose thread panicked is done again here, so a panic is reported as it would be
/// without threads.
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
    let chunk = items.len().div_ceil(threads);
    let work = &work;
    let (first, rest) = items.split_at(chunk);
    let at = |index: usize| chunk * (index + 1);
    std::thread::scope(|scope| {
        let workers: Vec<_> =
            rest.chunks(chunk).enumerate().map(|(index, part)| scope.spawn(move || work(at(index), part))).collect();
        let mut results = Vec::with_capacity(workers.len() + 1);
        results.push(work(0, first));
        results.extend(
            workers
                .into_iter()
                .zip(rest.chunks(chunk))
                .enumerate()
                .map(|(index, (worker, part))| worker.join().unwrap_or_else(|_| work(at(index), part))),
        );
        results
    })
}

/// [`map_parts`] on a mutable slice: each part also gets the position of its first item, and may take
/// from or change its items. The first part runs here; a part whose thread panicked is not done again
/// (its items may be half changed), the panic goes on here.
pub fn map_parts_mut<T: Send, R: Send>(
    items: &mut [T],
    threads: usize,
    work: impl Fn(usize, &mut [T]) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() < 2 {
        return vec![work(0, items)];
    }
    let chunk = items.len().div_ceil(threads);
    let work = &work;
    let (first, rest) = items.split_at_mut(chunk);
    std::thread::scope(|scope| {
        let workers: Vec<_> = rest
            .chunks_mut(chunk)
            .enumerate()
            .map(|(part, items)| scope.spawn(move || work((part + 1) * chunk, items)))
            .collect();
        let mut results = Vec::with_capacity(workers.len() + 1);
        results.push(work(0, first));
        for worker in workers {
            match worker.join() {
                Ok(result) => results.push(result),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
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
            assert_eq!(parts.len(), threads.min(items.len()), "{threads} threads");
            assert_eq!(parts.concat(), items, "{threads} threads");
        }
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
            assert_eq!(firsts.len(), threads, "{threads} threads");
            assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{threads} threads");
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
