//! Compares pilfer with rayon (and chili on the join workloads) at several
//! thread counts, and every fork-join and scope workload with the same code
//! run serially: a table per workload (medians, spreads, speed-ups over the
//! serial code), `RESULT` lines to paste into BENCHMARKS.md, and a chart
//! (SVG) of the speed-ups and of pilfer/rayon ratios.
//!
//! ```text
//! cargo run --release --example compare [-- --quick] [-- --help]
//! ```
//!
//! The workloads are shared with the criterion benches
//! (`benches/workloads/mod.rs`). The pools of a table, and the serial code,
//! take turns over a few rounds (`--rounds`) at each thread count; each
//! round builds a fresh pool (the only one alive) and takes one warm-up
//! sample before its timed ones. A table reports the median of each pool's
//! samples from all rounds, with their minimum and maximum; a speed-up is
//! the serial median of the same row over the pool's. Wake latency reports
//! percentiles of many samples instead.

#[path = "../benches/workloads/mod.rs"]
mod workloads;

#[path = "compare/chart.rs"]
mod chart;
#[path = "compare/cli.rs"]
mod cli;
#[path = "compare/par_iter.rs"]
mod par_iter;
#[path = "compare/runner.rs"]
mod runner;
#[path = "compare/table.rs"]
mod table;

use cli::{Command, Options, WorkloadId};
use runner::Runner;
use std::process::ExitCode;
use std::time::Instant;
use table::{Table, Unit};
use workloads::{
    Capture, Chili, FibJoin, ForkPool, Halves, IdleCpu, Matmul, Msort, OsThreads, Pilfer, Qsort,
    QueensSearch, Rayon, ScopeChunks, Serial, SpawnExternal, SpawnRaw, TreeSum, WakeLatency,
    Workload,
};

fn main() -> ExitCode {
    let options = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("compare: {message}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    print_header(&options);
    let tables = run_all(&options);
    println!("Summary:");
    for line in tables.iter().flat_map(Table::result_lines) {
        println!("{line}");
    }
    println!("\nfinished in {:.1} s", started.elapsed().as_secs_f64());
    write_chart(&options, &tables)
}

/// Runs the chosen workloads, printing each one's tables when it is done.
fn run_all(options: &Options) -> Vec<Table> {
    let sizes = Sizes::new(options.quick);
    let steps = options
        .workloads
        .iter()
        .map(|&id| steps(id, options.threads.len(), options.rounds))
        .sum();
    let mut runner = Runner::new(options.runs, options.rounds, steps);
    let mut tables = Vec::new();
    for &id in &options.workloads {
        let new_tables = run(id, &sizes, options, &mut runner);
        runner.clear_progress();
        for table in &new_tables {
            println!("{}", table.render());
        }
        tables.extend(new_tables);
    }
    tables
}

fn write_chart(options: &Options, tables: &[Table]) -> ExitCode {
    if !chart::has_lines(tables) {
        println!("no chart: none of the chosen workloads is timed");
        return ExitCode::SUCCESS;
    }
    match chart::write(&options.svg, &options.threads, tables) {
        Ok(()) => {
            println!("chart: {}", options.svg.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            let path = options.svg.display();
            eprintln!("compare: cannot write the chart to {path}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The tree of a full run: `2^22 - 1` nodes (the benches use `2^20 - 1`).
const FULL_TREE_DEPTH: u32 = 22;
/// Wake-latency samples per pool and thread count in a full run.
const FULL_WAKE_SAMPLES: usize = 200;

/// Input sizes; `--quick` shrinks those that take long.
struct Sizes {
    fib: u32,
    tree_depth: u32,
    spawn_tasks: usize,
    scope_len: usize,
    qsort_len: usize,
    msort_len: usize,
    matmul_n: usize,
    queens_n: u32,
    wake_samples: usize,
    raw_tasks: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        let full = Sizes {
            fib: workloads::FIB_N,
            tree_depth: FULL_TREE_DEPTH,
            spawn_tasks: workloads::SPAWN_TASKS,
            scope_len: workloads::SCOPE_LEN,
            qsort_len: workloads::QSORT_LEN,
            msort_len: workloads::MSORT_LEN,
            matmul_n: workloads::MATMUL_N,
            queens_n: workloads::QUEENS_N,
            wake_samples: FULL_WAKE_SAMPLES,
            raw_tasks: workloads::RAW_TASKS,
        };
        if quick {
            Sizes {
                tree_depth: workloads::TREE_DEPTH,
                spawn_tasks: 250_000,
                qsort_len: 1 << 20,
                msort_len: 1 << 20,
                matmul_n: 256,
                wake_samples: 50,
                ..full
            }
        } else {
            full
        }
    }
}

fn print_header(options: &Options) {
    if let Some(model) = cpu_model() {
        println!("machine: {model}");
    }
    let pinned = std::env::var(workloads::PIN_ENV).map_or(true, |value| value.trim() != "0");
    println!(
        "pilfer pools: {}",
        if pinned {
            "pinned (the default; PILFER_BENCH_PIN=0 to unpin)"
        } else {
            "unpinned (PILFER_BENCH_PIN=0)"
        }
    );
    print_steadiness();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: Vec<String> = options.threads.iter().map(usize::to_string).collect();
    println!(
        "pilfer vs rayon (and chili on the fork-join workloads) and the serial code: threads {}; \
         median of {} runs in {} (pools taking turns, a fresh pool and a warm-up per round); \
         {cores} cores available{}\n",
        threads.join(","),
        options.runs.div_ceil(options.rounds) * options.rounds,
        match options.rounds {
            1 => "1 round".to_owned(),
            rounds => format!("{rounds} rounds"),
        },
        if options.quick { "; quick sizes" } else { "" },
    );
}

/// How steady the machine is: the same serial computation timed over and
/// over for a third of a second on this thread. On a shared virtual machine
/// a core's speed can change by half within a few milliseconds (the host's
/// other tenants); no speed-up in the tables is more certain than this.
fn print_steadiness() {
    #[inline(never)]
    fn fib(n: u64) -> u64 {
        if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed().as_secs_f64() < 0.3 || samples.len() < 5 {
        let sample = Instant::now();
        std::hint::black_box(fib(std::hint::black_box(24)));
        samples.push(sample.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    let (min, max) = (samples[0], samples[samples.len() - 1]);
    // The fastest and slowest tenth, so that one preemption does not count.
    let (fast, slow) = (samples[samples.len() / 10], samples[samples.len() * 9 / 10]);
    println!(
        "steadiness: serial fib(24), {} samples in 0.3 s: {fast:.0}-{slow:.0} µs from the fastest \
         to the slowest tenth (x{:.2}; all: {min:.0}-{max:.0} µs)",
        samples.len(),
        slow / fast,
    );
}

/// The processor's model name, where the OS tells (Linux), so that a saved
/// output says which machine gave it.
fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

/// How many measurements `id` takes at `threads` thread counts, each pool
/// measured in `rounds` rounds.
fn steps(id: WorkloadId, threads: usize, rounds: usize) -> usize {
    let pools = threads * rounds;
    match id {
        // Serial, pilfer, rayon and chili.
        WorkloadId::Fib
        | WorkloadId::Qsort
        | WorkloadId::Msort
        | WorkloadId::Matmul
        | WorkloadId::Queens => 4 * pools,
        // Two walks of the tree: left half first, and right half first.
        WorkloadId::Tree => 2 * 4 * pools,
        WorkloadId::Scope => 3 * pools,
        WorkloadId::Raw => 1 + 2 * pools,
        // Two captures: one word, and four.
        WorkloadId::Spawn => 2 * 2 * pools,
        WorkloadId::Wake | WorkloadId::Idle => 2 * pools,
        // Serial, pilfer and rayon, for each of the program's workloads.
        WorkloadId::Iter => 3 * pools * ITER_WORKLOADS,
    }
}

/// How many workloads `benches/par_iter` has (for the progress line only).
const ITER_WORKLOADS: usize = 13;

fn run(id: WorkloadId, sizes: &Sizes, options: &Options, r: &mut Runner) -> Vec<Table> {
    let threads = &options.threads[..];
    let median = format!(
        "median of {} runs",
        r.runs().div_ceil(r.rounds()) * r.rounds()
    );
    let table = |key: &str, title: String| Table::new(key, title, median.clone(), Unit::Millis);
    let key = id.name();
    match id {
        WorkloadId::Fib => {
            let n = sizes.fib;
            let title = format!("{key}: fib({n}) with a join at every call");
            vec![fork_join(
                r,
                table(key, title),
                threads,
                &mut FibJoin::new(n),
            )]
        }
        WorkloadId::Tree => {
            let depth = sizes.tree_depth;
            [
                (Halves::LeftFirst, "tree", "join(left, right)"),
                (Halves::RightFirst, "tree-rl", "join(right, left)"),
            ]
            .into_iter()
            .map(|(halves, key, walk)| {
                let title = format!(
                    "{key}: Box tree of 2^{depth}-1 nodes (post-order on the heap), {walk} per node"
                );
                let mut tree = TreeSum::new(depth, halves);
                fork_join(r, table(key, title), threads, &mut tree)
            })
            .collect()
        }
        WorkloadId::Qsort => {
            let len = sizes.qsort_len;
            let cutoff = workloads::QSORT_CUTOFF;
            let title =
                format!("{key}: quicksort of {len} pseudo-random u32, serial below {cutoff}");
            vec![fork_join(
                r,
                table(key, title),
                threads,
                &mut Qsort::new(len),
            )]
        }
        WorkloadId::Msort => {
            let len = sizes.msort_len;
            let cutoff = workloads::MSORT_CUTOFF;
            let title = format!(
                "{key}: merge sort (parallel merges) of {len} pseudo-random u32, serial below {cutoff}"
            );
            vec![fork_join(
                r,
                table(key, title),
                threads,
                &mut Msort::new(len),
            )]
        }
        WorkloadId::Matmul => {
            let n = sizes.matmul_n;
            let leaf = workloads::MATMUL_LEAF;
            let title = format!(
                "{key}: {n}x{n} f64 matrix multiply on quadrants, four joined products per \
                 phase, serial below {leaf}x{leaf}"
            );
            vec![fork_join(
                r,
                table(key, title),
                threads,
                &mut Matmul::new(n),
            )]
        }
        WorkloadId::Queens => {
            let n = sizes.queens_n;
            let title =
                format!("{key}: {n}-queens solutions, a join over halves of the candidates");
            let mut search = QueensSearch::new(n);
            vec![fork_join(r, table(key, title), threads, &mut search)]
        }
        WorkloadId::Scope => {
            let len = sizes.scope_len;
            let chunk = workloads::CHUNK_LEN;
            let title = format!("{key}: {len} u32, one scoped task per {chunk}-element chunk");
            let mut scope = ScopeChunks::new(len);
            let table = table(key, title)
                .with_serial()
                .with_pools(&[Pilfer::NAME, Rayon::NAME]);
            vec![sweep(r, table, threads, |r, n, count| {
                [
                    r.on_new_pool::<Serial>(key, n, count, &mut scope),
                    r.on_new_pool::<Pilfer>(key, n, count, &mut scope),
                    r.on_new_pool::<Rayon>(key, n, count, &mut scope),
                ]
            })]
        }
        WorkloadId::Spawn => {
            let tasks = sizes.spawn_tasks;
            [
                (Capture::OneWord, "spawn", "capturing one word"),
                (Capture::FourWords, "spawn-4w", "capturing four words"),
            ]
            .into_iter()
            .map(|(capture, key, what)| {
                let title =
                    format!("{key}: {tasks} tiny detached tasks from the main thread, {what}");
                let mut spawn = SpawnExternal::new(tasks, capture);
                pilfer_and_rayon(r, table(key, title), threads, &mut spawn)
            })
            .collect()
        }
        WorkloadId::Wake => wake(r, threads, sizes.wake_samples).into(),
        WorkloadId::Idle => {
            let title = format!(
                "{key}: process CPU time in {} ms of idleness after fib({})",
                workloads::IDLE_SLEEP.as_millis(),
                workloads::IDLE_BURST_FIB
            );
            let table = table(key, title).not_run_time();
            let mut idle = IdleCpu::new(workloads::IDLE_BURST_FIB, workloads::IDLE_SLEEP);
            vec![pilfer_and_rayon(r, table, threads, &mut idle)]
        }
        WorkloadId::Iter => iter(r, threads, options.quick),
        WorkloadId::Raw => {
            let tasks = sizes.raw_tasks;
            let mut raw = SpawnRaw::new(tasks);
            let os_threads = r.median_on("raw os-threads", &OsThreads, &mut raw);
            let title = format!("{key}: {tasks} small tasks on a pool vs one OS thread each");
            let table = table(key, title).reference("os_threads", os_threads);
            vec![pilfer_and_rayon(r, table, threads, &mut raw)]
        }
    }
}

/// rayon's parallel iterators: a table per workload of `benches/par_iter`,
/// its rayon-core and pilfer builds and the serial code taking turns.
fn iter(r: &mut Runner, threads: &[usize], quick: bool) -> Vec<Table> {
    let listed = par_iter::build().and_then(|builds| {
        let listed = par_iter::list(&builds.rayon)?;
        Ok((builds, listed))
    });
    let (builds, listed) = match listed {
        Ok(found) => found,
        Err(error) => {
            eprintln!("compare: no parallel-iterator workloads: {error}");
            return Vec::new();
        }
    };
    let median = format!(
        "median of {} runs",
        r.runs().div_ceil(r.rounds()) * r.rounds()
    );
    let mut tables = Vec::new();
    for workload in &listed {
        let key = workload.name.as_str();
        let title = format!("{key}: {}", workload.what);
        let table = Table::new(key, title, median.clone(), Unit::Millis)
            .with_serial()
            .with_pools(&[Pilfer::NAME, Rayon::NAME]);
        let mut failed = None;
        let table = sweep(r, table, threads, |r, n, count| {
            let mut child = |binary: &std::path::Path, name: &str, serial: bool| {
                r.external(&format!("{key} {name} t={n}"), || {
                    par_iter::samples(binary, key, n, count, serial, quick).unwrap_or_else(
                        |error| {
                            failed.get_or_insert(error);
                            Vec::new()
                        },
                    )
                })
            };
            [
                child(&builds.rayon, Serial::NAME, true),
                child(&builds.pilfer, Pilfer::NAME, false),
                child(&builds.rayon, Rayon::NAME, false),
            ]
        });
        match failed {
            Some(error) => eprintln!("compare: {key} not measured: {error}"),
            None => tables.push(table),
        }
    }
    tables
}

/// Fills `table`, a row per thread count, with the samples that `round`
/// takes in each of the runner's rounds.
fn sweep<const K: usize>(
    r: &mut Runner,
    mut table: Table,
    threads: &[usize],
    mut round: impl FnMut(&mut Runner, usize, usize) -> [runner::Samples; K],
) -> Table {
    for &n in threads {
        let samples = r.interleaved(r.runs(), |r, count| round(r, n, count));
        table.push(n, &samples);
    }
    table
}

/// A fork-join workload on the serial code, pilfer, rayon and chili.
fn fork_join<W>(r: &mut Runner, table: Table, threads: &[usize], workload: &mut W) -> Table
where
    W: Workload<Serial> + Workload<Pilfer> + Workload<Rayon> + Workload<Chili>,
{
    let table = table
        .with_serial()
        .with_pools(&[Pilfer::NAME, Rayon::NAME, Chili::NAME]);
    let key = table.key.clone();
    sweep(r, table, threads, |r, n, count| {
        [
            r.on_new_pool::<Serial>(&key, n, count, workload),
            r.on_new_pool::<Pilfer>(&key, n, count, workload),
            r.on_new_pool::<Rayon>(&key, n, count, workload),
            r.on_new_pool::<Chili>(&key, n, count, workload),
        ]
    })
}

/// A task workload on pilfer and rayon.
fn pilfer_and_rayon<W>(r: &mut Runner, table: Table, threads: &[usize], workload: &mut W) -> Table
where
    W: Workload<Pilfer> + Workload<Rayon>,
{
    let table = table.with_pools(&[Pilfer::NAME, Rayon::NAME]);
    let key = table.key.clone();
    sweep(r, table, threads, |r, n, count| {
        [
            r.on_new_pool::<Pilfer>(&key, n, count, workload),
            r.on_new_pool::<Rayon>(&key, n, count, workload),
        ]
    })
}

/// p50 and p99 tables of the wake latency on pilfer and rayon.
fn wake(r: &mut Runner, threads: &[usize], samples: usize) -> [Table; 2] {
    let idle_ms = workloads::WAKE_IDLE.as_millis();
    let mut tables = ["p50", "p99"].map(|p| {
        let title =
            format!("wake latency {p}: spawn on a pool idle for {idle_ms} ms to task start");
        let taken = samples.div_ceil(r.rounds()) * r.rounds();
        let statistic = format!("{p} of {taken} samples");
        Table::new(&format!("wake-{p}"), title, statistic, Unit::Micros)
            .with_pools(&[Pilfer::NAME, Rayon::NAME])
            .not_run_time()
    });
    let mut wake = WakeLatency::new(workloads::WAKE_IDLE);
    for &n in threads {
        let [pilfer, rayon] = r.interleaved(samples, |r, count| {
            [
                r.on_new_pool::<Pilfer>("wake", n, count, &mut wake),
                r.on_new_pool::<Rayon>("wake", n, count, &mut wake),
            ]
        });
        let samples = [pilfer, rayon];
        for (table, pct) in tables.iter_mut().zip([50, 99]) {
            table.push_with(n, &samples, |sorted| runner::percentile(sorted, pct));
        }
    }
    tables
}
