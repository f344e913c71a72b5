//! Compares pilfer with rayon (and chili on the join workloads) at several
//! thread counts: a table per workload, `RESULT` lines to paste into
//! BENCHMARKS.md, and a speed-up chart (SVG).
//!
//! ```text
//! cargo run --release --example compare [-- --quick] [-- --help]
//! ```
//!
//! The workloads are shared with the criterion benches
//! (`benches/workloads/mod.rs`). The pools of a table take turns over a few
//! rounds (`--rounds`); each round builds a fresh pool (the only one alive)
//! and takes one warm-up sample before its timed ones. A table reports the
//! median of each pool's samples from all rounds; wake latency reports
//! percentiles of many samples instead.

#[path = "../benches/workloads/mod.rs"]
mod workloads;

#[path = "compare/chart.rs"]
mod chart;
#[path = "compare/cli.rs"]
mod cli;
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
    Capture, Chili, FibJoin, ForkPool, Halves, IdleCpu, OsThreads, Pilfer, Qsort, Rayon,
    ScopeChunks, Serial, SpawnExternal, SpawnRaw, TreeSum, WakeLatency, Workload,
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
            wake_samples: FULL_WAKE_SAMPLES,
            raw_tasks: workloads::RAW_TASKS,
        };
        if quick {
            Sizes {
                tree_depth: workloads::TREE_DEPTH,
                spawn_tasks: 250_000,
                qsort_len: 1 << 20,
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
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: Vec<String> = options.threads.iter().map(usize::to_string).collect();
    println!(
        "pilfer vs rayon (and chili on fib and tree): threads {}; median of {} runs in {} \
         (pools taking turns, a fresh pool and a warm-up per round); {cores} cores available{}\n",
        threads.join(","),
        options.runs.div_ceil(options.rounds) * options.rounds,
        match options.rounds {
            1 => "1 round".to_owned(),
            rounds => format!("{rounds} rounds"),
        },
        if options.quick { "; quick sizes" } else { "" },
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
        WorkloadId::Fib => 1 + 3 * pools,
        // Two walks of the tree: left half first, and right half first.
        WorkloadId::Tree => 2 * (1 + 3 * pools),
        WorkloadId::Raw => 1 + 2 * pools,
        // Two captures: one word, and four.
        WorkloadId::Spawn => 2 * 2 * pools,
        WorkloadId::Scope | WorkloadId::Qsort | WorkloadId::Wake | WorkloadId::Idle => 2 * pools,
    }
}

fn run(id: WorkloadId, sizes: &Sizes, options: &Options, r: &mut Runner) -> Vec<Table> {
    let threads = &options.threads[..];
    let median = format!(
        "median of {} runs",
        r.runs().div_ceil(r.rounds()) * r.rounds()
    );
    let table = |title: String, unit| Table::new(id.name(), title, median.clone(), unit);
    match id {
        WorkloadId::Fib => {
            let n = sizes.fib;
            let mut fib = FibJoin::new(n);
            let serial = r.median_on("fib serial", &Serial, &mut fib);
            let title = format!("fib-join: fib({n}) with a join at every call");
            let table = table(title, Unit::Millis).reference(Serial::NAME, serial);
            vec![sweep_with_chili(r, table, threads, &mut fib)]
        }
        WorkloadId::Tree => {
            let depth = sizes.tree_depth;
            let mut tables = Vec::new();
            for (halves, key, walk) in [
                (Halves::LeftFirst, "tree", "join(left, right)"),
                (Halves::RightFirst, "tree-rl", "join(right, left)"),
            ] {
                let mut tree = TreeSum::new(depth, halves);
                let serial = r.median_on(&format!("{key} serial"), &Serial, &mut tree);
                let title = format!(
                    "{key}: Box tree of 2^{depth}-1 nodes (post-order on the heap), {walk} per node"
                );
                let table = Table::new(key, title, median.clone(), Unit::Millis)
                    .reference(Serial::NAME, serial);
                tables.push(sweep_with_chili(r, table, threads, &mut tree));
            }
            tables
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
                let table = Table::new(key, title, median.clone(), Unit::Millis);
                sweep(r, table, threads, &mut SpawnExternal::new(tasks, capture))
            })
            .collect()
        }
        WorkloadId::Scope => {
            let len = sizes.scope_len;
            let chunk = workloads::CHUNK_LEN;
            let title =
                format!("scope-chunks: {len} u32, one scoped task per {chunk}-element chunk");
            let mut scope = ScopeChunks::new(len);
            vec![sweep(r, table(title, Unit::Millis), threads, &mut scope)]
        }
        WorkloadId::Qsort => {
            let len = sizes.qsort_len;
            let cutoff = workloads::QSORT_CUTOFF;
            let title = format!("qsort: {len} pseudo-random u32, serial below {cutoff}");
            let mut sort = Qsort::new(len);
            vec![sweep(r, table(title, Unit::Millis), threads, &mut sort)]
        }
        WorkloadId::Wake => wake(r, threads, sizes.wake_samples).into(),
        WorkloadId::Idle => {
            let title = format!(
                "idle CPU: process CPU time in {} ms of idleness after fib({})",
                workloads::IDLE_SLEEP.as_millis(),
                workloads::IDLE_BURST_FIB
            );
            let table = table(title, Unit::Millis).not_run_time();
            let mut idle = IdleCpu::new(workloads::IDLE_BURST_FIB, workloads::IDLE_SLEEP);
            vec![sweep(r, table, threads, &mut idle)]
        }
        WorkloadId::Raw => {
            let tasks = sizes.raw_tasks;
            let mut raw = SpawnRaw::new(tasks);
            let os_threads = r.median_on("raw os-threads", &OsThreads, &mut raw);
            let title = format!("spawn-raw: {tasks} small tasks on a pool vs one OS thread each");
            let table = table(title, Unit::Millis).reference("os_threads", os_threads);
            vec![sweep(r, table, threads, &mut raw)]
        }
    }
}

/// Fills `table` with the medians of `workload` on pilfer and rayon.
fn sweep<W>(r: &mut Runner, table: Table, threads: &[usize], workload: &mut W) -> Table
where
    W: Workload<Pilfer> + Workload<Rayon>,
{
    let mut table = table.with_pools(&[Pilfer::NAME, Rayon::NAME]);
    for &n in threads {
        let key = &table.key;
        let samples = r.interleaved(r.runs(), |r, count| {
            [
                r.on_new_pool::<Pilfer>(key, n, count, workload),
                r.on_new_pool::<Rayon>(key, n, count, workload),
            ]
        });
        table.push(n, &samples.each_ref().map(|s| runner::median(s)));
    }
    table
}

/// Fills `table` with the medians of `workload` on pilfer, rayon and chili.
fn sweep_with_chili<W>(r: &mut Runner, table: Table, threads: &[usize], workload: &mut W) -> Table
where
    W: Workload<Pilfer> + Workload<Rayon> + Workload<Chili>,
{
    let mut table = table.with_pools(&[Pilfer::NAME, Rayon::NAME, Chili::NAME]);
    for &n in threads {
        let key = &table.key;
        let samples = r.interleaved(r.runs(), |r, count| {
            [
                r.on_new_pool::<Pilfer>(key, n, count, workload),
                r.on_new_pool::<Rayon>(key, n, count, workload),
                r.on_new_pool::<Chili>(key, n, count, workload),
            ]
        });
        table.push(n, &samples.each_ref().map(|s| runner::median(s)));
    }
    table
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
        for (table, pct) in tables.iter_mut().zip([50, 99]) {
            let at = |samples: &[_]| runner::percentile(samples, pct);
            table.push(n, &[at(&pilfer), at(&rayon)]);
        }
    }
    tables
}
