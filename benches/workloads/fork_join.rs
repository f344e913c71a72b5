//! The fork-join workloads, each written once against [`Joiner`].

use super::{ForkPool, Job, Joiner, Workload, timed};
use super::{MATMUL_LEAF, MSORT_CUTOFF, QSORT_CUTOFF};
use std::hint::black_box;
use std::time::Duration;

/// Seed of the sorts' input.
const SORT_SEED: u64 = 0x5EED;

/// `fib(n)`, computed with a join at every call.
pub(crate) struct Fib(pub(crate) u32);

impl Job for Fib {
    type Output = u64;

    fn run<J: Joiner>(self, joiner: &mut J) -> u64 {
        let Fib(n) = self;
        if n < 2 {
            return n.into();
        }
        let (a, b) = joiner.join(Fib(n - 1), Fib(n - 2));
        a + b
    }
}

/// fib-join: pure join overhead.
pub struct FibJoin {
    n: u32,
    expected: u64,
}

impl FibJoin {
    pub fn new(n: u32) -> Self {
        let (mut previous, mut current) = (0u64, 1u64);
        for _ in 0..n {
            (previous, current) = (current, previous + current);
        }
        FibJoin {
            n,
            expected: previous,
        }
    }
}

impl<P: ForkPool> Workload<P> for FibJoin {
    fn sample(&mut self, pool: &P) -> Duration {
        let (value, elapsed) = timed(|| pool.run(Fib(black_box(self.n))));
        assert_eq!(
            value,
            self.expected,
            "fib({}) is wrong on {}",
            self.n,
            P::NAME
        );
        elapsed
    }
}

/// A node of a heap-allocated binary tree.
struct Node {
    value: u64,
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
}

/// A perfect binary tree whose nodes hold `0..nodes`, in pre-order.
struct Tree {
    root: Option<Box<Node>>,
    nodes: u64,
}

impl Tree {
    /// A tree of `2^depth - 1` nodes.
    fn perfect(depth: u32) -> Self {
        fn build(depth: u32, next: &mut u64) -> Option<Box<Node>> {
            if depth == 0 {
                return None;
            }
            let value = *next;
            *next += 1;
            let left = build(depth - 1, next);
            let right = build(depth - 1, next);
            Some(Box::new(Node { value, left, right }))
        }
        let mut nodes = 0;
        let root = build(depth, &mut nodes);
        Tree { root, nodes }
    }
}

/// Which child a tree sum hands to `join` as its first half (the one the
/// calling thread runs first; pilfer and rayon offer the second to thieves,
/// chili the first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Halves {
    /// `join(left, right)`.
    LeftFirst,
    /// `join(right, left)`.
    RightFirst,
}

/// The sum of a subtree, with one join per node.
struct SumTree<'a>(Option<&'a Node>, Halves);

impl Job for SumTree<'_> {
    type Output = u64;

    fn run<J: Joiner>(self, joiner: &mut J) -> u64 {
        let SumTree(Some(node), halves) = self else {
            return 0;
        };
        let (left, right) = (node.left.as_deref(), node.right.as_deref());
        let (first, second) = match halves {
            Halves::LeftFirst => (left, right),
            Halves::RightFirst => (right, left),
        };
        let (a, b) = joiner.join(SumTree(first, halves), SumTree(second, halves));
        node.value + a + b
    }
}

/// tree-sum: a join per node, over memory scattered on the heap.
///
/// The tree is built the way such benchmarks usually build it (chili's
/// included): each node is boxed after its two subtrees, so the heap holds
/// the nodes in post-order. A walk that visits a node, then its *right*
/// subtree, then its left one reads memory in descending order, which the
/// hardware prefetcher streams; the left-first walk does not, and pays a
/// cache miss per node. [`Halves`] picks the walk, so both can be shown.
pub struct TreeSum {
    tree: Tree,
    halves: Halves,
}

impl TreeSum {
    /// Builds the tree (slow for deep trees; not part of any sample).
    pub fn new(depth: u32, halves: Halves) -> Self {
        TreeSum {
            tree: Tree::perfect(depth),
            halves,
        }
    }
}

impl<P: ForkPool> Workload<P> for TreeSum {
    fn sample(&mut self, pool: &P) -> Duration {
        let (sum, elapsed) = timed(|| pool.run(SumTree(self.tree.root.as_deref(), self.halves)));
        let nodes = self.tree.nodes;
        assert_eq!(
            sum,
            nodes * (nodes - 1) / 2,
            "tree sum is wrong on {}",
            P::NAME
        );
        elapsed
    }
}

/// Quicksort of a slice, joining the two sides of each partition.
struct QuickSort<'a>(&'a mut [u32]);

impl Job for QuickSort<'_> {
    type Output = ();

    fn run<J: Joiner>(self, joiner: &mut J) {
        let values = self.0;
        if values.len() <= QSORT_CUTOFF {
            values.sort_unstable();
            return;
        }
        let pivot = partition(values);
        let (low, high) = values.split_at_mut(pivot);
        joiner.join(QuickSort(low), QuickSort(&mut high[1..]));
    }
}

/// Partitions `values` (at least 3 long) around the median of its first,
/// middle and last elements; returns the pivot's final index, with smaller
/// elements before it and the others after.
fn partition(values: &mut [u32]) -> usize {
    let last = values.len() - 1;
    let middle = values.len() / 2;
    // Order the three candidates so that the first is the smallest and the
    // last is the median.
    if values[middle] < values[0] {
        values.swap(middle, 0);
    }
    if values[last] < values[0] {
        values.swap(last, 0);
    }
    if values[middle] < values[last] {
        values.swap(middle, last);
    }
    let pivot = values[last];
    let mut store = 0;
    for i in 0..last {
        if values[i] < pivot {
            values.swap(i, store);
            store += 1;
        }
    }
    values.swap(store, last);
    store
}

/// `len` deterministic pseudo-random numbers (SplitMix64).
fn pseudo_random_u32s(len: usize, seed: u64) -> Vec<u32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 32) as u32
        })
        .collect()
}

/// qsort: parallel quicksort of pseudo-random numbers.
pub struct Qsort {
    input: Vec<u32>,
    buffer: Vec<u32>,
}

impl Qsort {
    pub fn new(len: usize) -> Self {
        let input = pseudo_random_u32s(len, SORT_SEED);
        let buffer = input.clone();
        Qsort { input, buffer }
    }
}

impl<P: ForkPool> Workload<P> for Qsort {
    fn sample(&mut self, pool: &P) -> Duration {
        self.buffer.copy_from_slice(&self.input);
        let ((), elapsed) = timed(|| pool.run(QuickSort(&mut self.buffer)));
        assert!(
            self.buffer.is_sorted(),
            "quicksort on {} left the data unsorted",
            P::NAME
        );
        elapsed
    }
}

/// Merge sort of a slice, ping-ponging between it and a scratch slice of the
/// same length: the two halves are sorted (in parallel) into the other
/// slice, then merged (in parallel) back.
struct MergeSort<'a> {
    values: &'a mut [u32],
    scratch: &'a mut [u32],
    /// Whether the sorted result goes to `scratch` rather than `values`.
    into_scratch: bool,
}

impl Job for MergeSort<'_> {
    type Output = ();

    fn run<J: Joiner>(self, joiner: &mut J) {
        let MergeSort {
            values,
            scratch,
            into_scratch,
        } = self;
        if values.len() <= MSORT_CUTOFF {
            values.sort_unstable();
            if into_scratch {
                scratch.copy_from_slice(values);
            }
            return;
        }
        let middle = values.len() / 2;
        {
            let (low, high) = values.split_at_mut(middle);
            let (low_scratch, high_scratch) = scratch.split_at_mut(middle);
            // The halves land in the slice this level merges from.
            joiner.join(
                MergeSort {
                    values: low,
                    scratch: low_scratch,
                    into_scratch: !into_scratch,
                },
                MergeSort {
                    values: high,
                    scratch: high_scratch,
                    into_scratch: !into_scratch,
                },
            );
        }
        let (from, into) = if into_scratch {
            (&*values, scratch)
        } else {
            (&*scratch, values)
        };
        let (low, high) = from.split_at(middle);
        Merge { low, high, into }.run(joiner);
    }
}

/// Merges two sorted slices into `into`, splitting large merges in two
/// around the middle element of the longer input.
struct Merge<'a> {
    low: &'a [u32],
    high: &'a [u32],
    into: &'a mut [u32],
}

impl Job for Merge<'_> {
    type Output = ();

    fn run<J: Joiner>(self, joiner: &mut J) {
        let Merge { low, high, into } = self;
        if low.len() + high.len() <= MSORT_CUTOFF {
            merge(low, high, into);
            return;
        }
        let (long, short) = if low.len() >= high.len() {
            (low, high)
        } else {
            (high, low)
        };
        let split = long.len() / 2;
        let cut = short.partition_point(|&value| value < long[split]);
        let (into_low, into_high) = into.split_at_mut(split + cut);
        joiner.join(
            Merge {
                low: &long[..split],
                high: &short[..cut],
                into: into_low,
            },
            Merge {
                low: &long[split..],
                high: &short[cut..],
                into: into_high,
            },
        );
    }
}

/// The serial merge of two sorted slices into `into` (their total length).
fn merge(mut low: &[u32], mut high: &[u32], into: &mut [u32]) {
    let mut out = into.iter_mut();
    while let (Some(&a), Some(&b)) = (low.first(), high.first()) {
        let slot = out.next().expect("merge output too short");
        if a <= b {
            *slot = a;
            low = &low[1..];
        } else {
            *slot = b;
            high = &high[1..];
        }
    }
    for (slot, &value) in out.zip(low.iter().chain(high)) {
        *slot = value;
    }
}

/// msort: parallel merge sort (parallel merges too) of pseudo-random numbers.
pub struct Msort {
    input: Vec<u32>,
    sorted: Vec<u32>,
    buffer: Vec<u32>,
    scratch: Vec<u32>,
}

impl Msort {
    pub fn new(len: usize) -> Self {
        let input = pseudo_random_u32s(len, SORT_SEED);
        let mut sorted = input.clone();
        sorted.sort_unstable();
        Msort {
            buffer: input.clone(),
            scratch: vec![0; len],
            input,
            sorted,
        }
    }
}

impl<P: ForkPool> Workload<P> for Msort {
    fn sample(&mut self, pool: &P) -> Duration {
        self.buffer.copy_from_slice(&self.input);
        let job = MergeSort {
            values: &mut self.buffer,
            scratch: &mut self.scratch,
            into_scratch: false,
        };
        let ((), elapsed) = timed(|| pool.run(job));
        assert!(
            self.buffer == self.sorted,
            "merge sort on {} gave a wrong result",
            P::NAME
        );
        elapsed
    }
}

/// Two jobs joined: one node of a fork-join tree with two children.
struct Both<A, B>(A, B);

impl<A: Job, B: Job> Job for Both<A, B> {
    type Output = (A::Output, B::Output);

    fn run<J: Joiner>(self, joiner: &mut J) -> Self::Output {
        joiner.join(self.0, self.1)
    }
}

/// `c += a · b` for square matrices in quadrant order: a matrix larger than
/// `MATMUL_LEAF` rows is its four quadrants (top left, top right, bottom
/// left, bottom right) one after the other, each laid out the same way; a
/// leaf block is row-major. Each quadrant of `c` is then a slice of its own.
struct MatMul<'a> {
    c: &'a mut [f64],
    a: &'a [f64],
    b: &'a [f64],
}

/// The four quadrants of a matrix in quadrant order.
fn quadrants(matrix: &[f64]) -> [&[f64]; 4] {
    let (top, bottom) = matrix.split_at(matrix.len() / 2);
    let (q11, q12) = top.split_at(top.len() / 2);
    let (q21, q22) = bottom.split_at(bottom.len() / 2);
    [q11, q12, q21, q22]
}

fn quadrants_mut(matrix: &mut [f64]) -> [&mut [f64]; 4] {
    let half = matrix.len() / 2;
    let (top, bottom) = matrix.split_at_mut(half);
    let (q11, q12) = top.split_at_mut(half / 2);
    let (q21, q22) = bottom.split_at_mut(half / 2);
    [q11, q12, q21, q22]
}

impl Job for MatMul<'_> {
    type Output = ();

    fn run<J: Joiner>(self, joiner: &mut J) {
        let MatMul { c, a, b } = self;
        if c.len() <= MATMUL_LEAF * MATMUL_LEAF {
            multiply_block(c, a, b);
            return;
        }
        let [a11, a12, a21, a22] = quadrants(a);
        let [b11, b12, b21, b22] = quadrants(b);
        let [c11, c12, c21, c22] = quadrants_mut(c);
        fn product<'x>(c: &'x mut [f64], a: &'x [f64], b: &'x [f64]) -> MatMul<'x> {
            MatMul { c, a, b }
        }
        // Two phases of four independent quadrant products each.
        joiner.join(
            Both(product(c11, a11, b11), product(c12, a11, b12)),
            Both(product(c21, a21, b11), product(c22, a21, b12)),
        );
        joiner.join(
            Both(product(c11, a12, b21), product(c12, a12, b22)),
            Both(product(c21, a22, b21), product(c22, a22, b22)),
        );
    }
}

/// `c += a · b` for row-major square blocks, serially.
fn multiply_block(c: &mut [f64], a: &[f64], b: &[f64]) {
    let n = c.len().isqrt();
    for (c_row, a_row) in c.chunks_exact_mut(n).zip(a.chunks_exact(n)) {
        for (&a_ik, b_row) in a_row.iter().zip(b.chunks_exact(n)) {
            for (c_ij, &b_kj) in c_row.iter_mut().zip(b_row) {
                *c_ij += a_ik * b_kj;
            }
        }
    }
}

/// matmul: blocked matrix multiply, recursive on quadrants.
pub struct Matmul {
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
    expected: Vec<f64>,
}

impl Matmul {
    /// Two `n`×`n` matrices (`n` a power of two times `MATMUL_LEAF`) of
    /// small integers, so that every sum is exact whatever the order.
    pub fn new(n: usize) -> Self {
        assert!(n >= MATMUL_LEAF && (n / MATMUL_LEAF).is_power_of_two());
        let a: Vec<f64> = (0..n * n).map(|i| (i * 7 % 11) as f64 - 5.0).collect();
        let b: Vec<f64> = (0..n * n).map(|i| (i * 5 % 13) as f64 - 6.0).collect();
        let mut expected = vec![0.0; n * n];
        let job = MatMul {
            c: &mut expected,
            a: &a,
            b: &b,
        };
        job.run(&mut super::Serial);
        Matmul {
            c: vec![0.0; n * n],
            a,
            b,
            expected,
        }
    }
}

impl<P: ForkPool> Workload<P> for Matmul {
    fn sample(&mut self, pool: &P) -> Duration {
        self.c.fill(0.0);
        let job = MatMul {
            c: &mut self.c,
            a: &self.a,
            b: &self.b,
        };
        let ((), elapsed) = timed(|| pool.run(job));
        assert!(
            self.c == self.expected,
            "matrix multiply on {} gave a wrong result",
            P::NAME
        );
        elapsed
    }
}

/// A partial N-queens board: the columns and diagonals taken by the queens
/// placed so far (one per row, from the top), and the columns of the next
/// row still to try. Counts the solutions below it, joining over halves of
/// the candidate columns: the subtrees differ widely in size (most end
/// after a few rows, some reach the bottom).
#[derive(Clone, Copy)]
struct Queens {
    full: u32,
    columns: u32,
    /// Squares of the next row attacked along a down-left diagonal.
    left: u32,
    /// Squares of the next row attacked along a down-right diagonal.
    right: u32,
    candidates: u32,
}

impl Queens {
    fn start(n: u32) -> Queens {
        let full = (1u32 << n) - 1;
        Queens {
            full,
            columns: 0,
            left: 0,
            right: 0,
            candidates: full,
        }
    }
}

impl Job for Queens {
    type Output = u64;

    fn run<J: Joiner>(self, joiner: &mut J) -> u64 {
        let count = self.candidates.count_ones();
        if count == 0 {
            return 0;
        }
        if count > 1 {
            // Split the candidate columns in two halves.
            let mut low = 0;
            let mut rest = self.candidates;
            for _ in 0..count / 2 {
                let lowest = rest & rest.wrapping_neg();
                low |= lowest;
                rest ^= lowest;
            }
            let (a, b) = joiner.join(
                Queens {
                    candidates: low,
                    ..self
                },
                Queens {
                    candidates: rest,
                    ..self
                },
            );
            return a + b;
        }
        // One candidate: place the queen, go to the next row.
        let columns = self.columns | self.candidates;
        if columns == self.full {
            return 1;
        }
        let left = ((self.left | self.candidates) << 1) & self.full;
        let right = (self.right | self.candidates) >> 1;
        Queens {
            full: self.full,
            columns,
            left,
            right,
            candidates: self.full & !(columns | left | right),
        }
        .run(joiner)
    }
}

/// queens: the number of solutions of N-queens, an irregular search.
pub struct QueensSearch {
    n: u32,
    expected: u64,
}

impl QueensSearch {
    pub fn new(n: u32) -> Self {
        assert!((1..=16).contains(&n), "N-queens for 1 to 16 rows");
        QueensSearch {
            n,
            expected: Queens::start(n).run(&mut super::Serial),
        }
    }
}

impl<P: ForkPool> Workload<P> for QueensSearch {
    fn sample(&mut self, pool: &P) -> Duration {
        let (count, elapsed) = timed(|| pool.run(Queens::start(black_box(self.n))));
        assert_eq!(
            count,
            self.expected,
            "{}-queens on {} counted wrong",
            self.n,
            P::NAME
        );
        elapsed
    }
}
