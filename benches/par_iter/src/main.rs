//! rayon's parallel iterators, timed. `examples/compare` builds this
//! program twice, on rayon-core and on pilfer (rayon-core/ patched in), and
//! runs the two builds in turns; the same program, with `--serial`, times
//! the same code on plain iterators.
//!
//! ```text
//! par-iter-bench --list                            # the workloads: name, then description
//! par-iter-bench NAME THREADS SAMPLES [--serial] [--quick]
//! ```
//!
//! A run builds its input, then a pool of THREADS workers, takes one
//! warm-up sample and SAMPLES timed ones, and prints the timed samples in
//! nanoseconds on one line, and the minor page faults taken during them on
//! the next (`faults N`). Every sample's result is checked against the
//! serial code's, so a wrong answer fails the run.

use rayon::prelude::*;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// A timed workload: one sample, parallel or serial, returning its time
/// (the input's preparation excluded) and a value to check.
trait Workload: Send {
    fn sample(&mut self, parallel: bool) -> (Duration, u64);
}

/// Times `run`, keeping its value from being optimized away.
fn timed(run: impl FnOnce() -> u64) -> (Duration, u64) {
    let started = Instant::now();
    let value = black_box(run());
    (started.elapsed(), value)
}

/// xorshift64: the pseudo-random inputs.
fn pseudo_random(len: usize, seed: u64) -> Vec<u64> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        })
        .collect()
}

struct Sum(u64);

impl Workload for Sum {
    fn sample(&mut self, parallel: bool) -> (Duration, u64) {
        let n = self.0;
        let f = |x: u64| x.wrapping_mul(x) % 7;
        if parallel {
            timed(|| (0..n).into_par_iter().map(f).sum())
        } else {
            timed(|| (0..n).map(f).sum())
        }
    }
}

struct Sort {
    input: Vec<u64>,
    stable: bool,
}

impl Workload for Sort {
    fn sample(&mut self, parallel: bool) -> (Duration, u64) {
        let mut data = self.input.clone();
        let (time, ()) = match (parallel, self.stable) {
            (true, true) => timed_unit(|| data.par_sort()),
            (true, false) => timed_unit(|| data.par_sort_unstable()),
            (false, true) => timed_unit(|| data.sort()),
            (false, false) => timed_unit(|| data.sort_unstable()),
        };
        let check = data[0] ^ data[data.len() / 2] ^ data[data.len() - 1];
        (time, check)
    }
}

fn timed_unit(run: impl FnOnce()) -> (Duration, ()) {
    let started = Instant::now();
    run();
    (started.elapsed(), ())
}

struct Collect(u64);

impl Workload for Collect {
    fn sample(&mut self, parallel: bool) -> (Duration, u64) {
        let n = self.0;
        let f = |x: u64| x ^ (x >> 3);
        let started = Instant::now();
        let collected: Vec<u64> = if parallel {
            (0..n).into_par_iter().map(f).collect()
        } else {
            (0..n).map(f).collect()
        };
        let time = started.elapsed();
        let check = collected[collected.len() / 3] ^ collected.len() as u64;
        drop(black_box(collected));
        (time, check)
    }
}

/// Counts the primes below `n` by trial division: the work per item grows
/// with the item, unevenly.
struct Primes(u64);

fn is_prime(x: u64) -> bool {
    x >= 2 && (2..).take_while(|d| d * d <= x).all(|d| !x.is_multiple_of(d))
}

impl Workload for Primes {
    fn sample(&mut self, parallel: bool) -> (Duration, u64) {
        let n = self.0;
        if parallel {
            timed(|| (0..n).into_par_iter().filter(|&x| is_prime(x)).count() as u64)
        } else {
            timed(|| (0..n).filter(|&x| is_prime(x)).count() as u64)
        }
    }
}

struct Nested {
    outer: u64,
    inner: u64,
}

impl Workload for Nested {
    fn sample(&mut self, parallel: bool) -> (Duration, u64) {
        let (outer, inner) = (self.outer, self.inner);
        let f = |i: u64, j: u64| (i * j) % 7;
        if parallel {
            timed(|| {
                (0..outer)
                    .into_par_iter()
                    .map(|i| (0..inner).into_par_iter().map(|j| f(i, j)).sum::<u64>())
                    .sum()
            })
        } else {
            timed(|| {
                (0..outer)
                    .map(|i| (0..inner).map(|j| f(i, j)).sum::<u64>())
                    .sum()
            })
        }
    }
}

/// A sum split down to single items (`with_min_len(1)`): the cost of
/// splitting, per item. (u32: rayon's indexed ranges stop below u64.)
struct MinLen(u32);

impl Workload for MinLen {
    fn sample(&mut self, parallel: bool) -> (Duration, u64) {
        let n = self.0;
        let f = |x: u32| u64::from(x % 3);
        if parallel {
            timed(|| (0..n).into_par_iter().with_min_len(1).map(f).sum())
        } else {
            timed(|| (0..n).map(f).sum())
        }
    }
}

/// A sum split into single items (`with_max_len(1)`): a `join` per item,
/// the closest a parallel iterator comes to the pool's bare fork cost.
struct MaxLen(u32);

impl Workload for MaxLen {
    fn sample(&mut self, parallel: bool) -> (Duration, u64) {
        let n = self.0;
        let f = |x: u32| u64::from(x % 3);
        if parallel {
            timed(|| (0..n).into_par_iter().with_max_len(1).map(f).sum())
        } else {
            timed(|| (0..n).map(f).sum())
        }
    }
}

/// The lengths of the space-separated words of a text.
struct Split(String);

impl Split {
    fn new(bytes: usize) -> Split {
        let lengths = pseudo_random(bytes / 4, 7);
        let mut text = String::with_capacity(bytes + 16);
        for length in lengths {
            if text.len() >= bytes {
                break;
            }
            for _ in 0..1 + length % 9 {
                text.push('w');
            }
            text.push(' ');
        }
        Split(text)
    }
}

impl Workload for Split {
    fn sample(&mut self, parallel: bool) -> (Duration, u64) {
        let text = &self.0;
        if parallel {
            timed(|| text.par_split(' ').map(|word| word.len() as u64).sum())
        } else {
            timed(|| text.split(' ').map(|word| word.len() as u64).sum())
        }
    }
}

/// Finds the one item (three quarters in) whose hash matches.
struct FindAny(u64);

fn mix(x: u64) -> u64 {
    (x ^ (x >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 7
}

impl Workload for FindAny {
    fn sample(&mut self, parallel: bool) -> (Duration, u64) {
        let n = self.0;
        let wanted = mix(n / 4 * 3);
        let hit = |x: &u64| mix(*x) == wanted;
        if parallel {
            timed(|| (0..n).into_par_iter().find_any(hit).unwrap_or(u64::MAX))
        } else {
            timed(|| (0..n).find(hit).unwrap_or(u64::MAX))
        }
    }
}

/// A plain (sequential) iterator fed to the pool with `par_bridge`, some
/// work per item.
struct Bridge(u64);

fn item_work(x: u64) -> u64 {
    (0..64).fold(x, |acc, k| mix(acc ^ k))
}

impl Workload for Bridge {
    fn sample(&mut self, parallel: bool) -> (Duration, u64) {
        let n = self.0;
        if parallel {
            timed(|| (0..n).par_bridge().map(item_work).sum::<u64>())
        } else {
            timed(|| (0..n).map(item_work).sum::<u64>())
        }
    }
}

/// The gravitational forces between `n` bodies, all pairs.
struct NBody(Vec<[f64; 4]>);

impl NBody {
    fn new(n: usize) -> NBody {
        let raw = pseudo_random(4 * n, 11);
        let unit = |x: u64| (x >> 11) as f64 / (1u64 << 53) as f64;
        NBody(
            raw.chunks(4)
                .map(|c| [unit(c[0]), unit(c[1]), unit(c[2]), 0.5 + unit(c[3])])
                .collect(),
        )
    }

    fn force(bodies: &[[f64; 4]], body: &[f64; 4]) -> [f64; 3] {
        let mut force = [0.0; 3];
        for other in bodies {
            let d = [other[0] - body[0], other[1] - body[1], other[2] - body[2]];
            let r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + 1e-3;
            let scale = other[3] * body[3] / (r2 * r2.sqrt());
            for axis in 0..3 {
                force[axis] += d[axis] * scale;
            }
        }
        force
    }
}

impl Workload for NBody {
    fn sample(&mut self, parallel: bool) -> (Duration, u64) {
        let bodies = &self.0;
        let total = |forces: Vec<[f64; 3]>| {
            forces
                .iter()
                .map(|f| f[0].abs() + f[1].abs() + f[2].abs())
                .sum::<f64>() as u64
        };
        if parallel {
            timed(|| total(bodies.par_iter().map(|b| NBody::force(bodies, b)).collect()))
        } else {
            timed(|| total(bodies.iter().map(|b| NBody::force(bodies, b)).collect()))
        }
    }
}

/// Points of a `side` × `side` grid in the Mandelbrot set, a row per item.
struct Mandelbrot(usize);

fn mandelbrot_row(y: usize, side: usize) -> u64 {
    let ci = 2.0 * y as f64 / side as f64 - 1.0;
    (0..side)
        .filter(|&x| {
            let cr = 3.0 * x as f64 / side as f64 - 2.0;
            let (mut zr, mut zi) = (0.0f64, 0.0f64);
            for _ in 0..200 {
                let next = zr * zr - zi * zi + cr;
                zi = 2.0 * zr * zi + ci;
                zr = next;
                if zr * zr + zi * zi > 4.0 {
                    return false;
                }
            }
            true
        })
        .count() as u64
}

impl Workload for Mandelbrot {
    fn sample(&mut self, parallel: bool) -> (Duration, u64) {
        let side = self.0;
        if parallel {
            timed(|| {
                (0..side)
                    .into_par_iter()
                    .map(|y| mandelbrot_row(y, side))
                    .sum()
            })
        } else {
            timed(|| (0..side).map(|y| mandelbrot_row(y, side)).sum())
        }
    }
}

/// The workloads, by name, with what they do (full size, then quick).
const WORKLOADS: [(&str, &str); 13] = [
    ("iter-sum", "sum of a mapped range of 50M u64 (12.5M quick)"),
    (
        "iter-sort-unstable",
        "par_sort_unstable of 4M pseudo-random u64 (1M quick)",
    ),
    (
        "iter-sort",
        "par_sort (stable) of 4M pseudo-random u64 (1M quick)",
    ),
    (
        "iter-collect",
        "collect of 8M mapped u64 into a Vec (2M quick)",
    ),
    (
        "iter-primes",
        "count of the primes below 2M by trial division: uneven work per item (500k quick)",
    ),
    (
        "iter-nested",
        "nested par_iter: 4000 x 1000 (1000 x 1000 quick)",
    ),
    (
        "iter-min-len",
        "with_min_len(1) sum of 4M u64: splitting down to single items (1M quick)",
    ),
    (
        "iter-max-len",
        "with_max_len(1) sum of 1M u64: a join per item (250k quick)",
    ),
    (
        "iter-split",
        "par_split of 8 MB of text into words, their lengths summed (2 MB quick)",
    ),
    (
        "iter-find-any",
        "find_any of the one match, 3/4 into 50M u64 (12.5M quick)",
    ),
    (
        "iter-bridge",
        "par_bridge of a plain iterator of 1M items, 64 mixes each (250k quick)",
    ),
    (
        "iter-nbody",
        "n-body forces, all pairs, 3000 bodies (1500 quick)",
    ),
    (
        "iter-mandelbrot",
        "Mandelbrot set on a 1024 x 1024 grid, 200 iterations, a row per item (512 quick)",
    ),
];

/// Workload `name` with its input built, at full or quick size.
fn make(name: &str, quick: bool) -> Option<Box<dyn Workload>> {
    let size = |full: u64| if quick { full / 4 } else { full };
    Some(match name {
        "iter-sum" => Box::new(Sum(size(50_000_000))),
        "iter-sort-unstable" => Box::new(Sort {
            input: pseudo_random(size(4 << 20) as usize, 3),
            stable: false,
        }),
        "iter-sort" => Box::new(Sort {
            input: pseudo_random(size(4 << 20) as usize, 5),
            stable: true,
        }),
        "iter-collect" => Box::new(Collect(size(8 << 20))),
        "iter-primes" => Box::new(Primes(size(2_000_000))),
        "iter-nested" => Box::new(Nested {
            outer: size(4000),
            inner: 1000,
        }),
        "iter-min-len" => Box::new(MinLen(size(4 << 20) as u32)),
        "iter-max-len" => Box::new(MaxLen(size(1 << 20) as u32)),
        "iter-split" => Box::new(Split::new(size(8 << 20) as usize)),
        "iter-find-any" => Box::new(FindAny(size(50_000_000))),
        "iter-bridge" => Box::new(Bridge(size(1_000_000))),
        "iter-nbody" => Box::new(NBody::new(size(3000) as usize * if quick { 2 } else { 1 })),
        "iter-mandelbrot" => Box::new(Mandelbrot(size(1024) as usize * if quick { 2 } else { 1 })),
        _ => return None,
    })
}

/// Minor page faults of this process so far (Linux; 0 elsewhere).
fn minor_faults() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which is in parentheses.
            let rest = &stat[stat.rfind(')')? + 2..];
            rest.split(' ').nth(7)?.parse().ok()
        })
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        for (name, what) in WORKLOADS {
            println!("{name}\t{what}");
        }
        return ExitCode::SUCCESS;
    }
    let serial = args.iter().any(|arg| arg == "--serial");
    let quick = args.iter().any(|arg| arg == "--quick");
    let positional: Vec<&String> = args.iter().filter(|arg| !arg.starts_with("--")).collect();
    let (Some(name), Some(threads), Some(samples)) = (
        positional.first(),
        positional.get(1).and_then(|n| n.parse::<usize>().ok()),
        positional.get(2).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: par-iter-bench --list | NAME THREADS SAMPLES [--serial] [--quick]");
        return ExitCode::from(2);
    };
    let Some(mut workload) = make(name, quick) else {
        eprintln!("par-iter-bench: no workload {name:?} (see --list)");
        return ExitCode::from(2);
    };
    let (_, expected) = workload.sample(false);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("building the pool");
    let mut run = || {
        let (time, value) = if serial {
            workload.sample(false)
        } else {
            pool.install(|| workload.sample(true))
        };
        assert_eq!(value, expected, "{name}: a wrong result");
        time
    };
    run();
    let faults = minor_faults();
    let times: Vec<String> = (0..samples).map(|_| run().as_nanos().to_string()).collect();
    let faults = minor_faults() - faults;
    println!("{}", times.join(" "));
    println!("faults {faults}");
    ExitCode::SUCCESS
}
