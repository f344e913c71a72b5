//! Command-line options.

use std::path::PathBuf;
use std::thread;

pub const USAGE: &str = "\
usage: compare [--quick] [--threads 1,2,4] [--only fib,tree,...] [--runs N] [--rounds N] [--svg PATH]

  --quick          fewer runs and smaller inputs (under a minute on 2 cores)
  --threads LIST   thread counts to measure
                   (default: 1, 2, 4, ... up to the available cores, and their count)
  --only LIST      workloads to run, of: fib, tree, qsort, msort, matmul, queens,
                   scope, spawn, wake, idle, raw, iter (rayon's parallel
                   iterators, the same program built on rayon-core and on pilfer)
  --runs N         timed runs per median (default 9; 3 with --quick)
  --rounds N       spread each pool's runs over N rounds, the pools taking
                   turns, each round on a fresh pool after one warm-up
                   (default 3; 1 with --quick)
  --svg PATH       where to write the chart (default target/compare.svg)
  -h, --help       print this help";

const DEFAULT_SVG: &str = "target/compare.svg";
const DEFAULT_RUNS: usize = 9;
const QUICK_RUNS: usize = 3;
const DEFAULT_ROUNDS: usize = 3;
const QUICK_ROUNDS: usize = 1;

/// The workloads, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadId {
    Fib,
    Tree,
    Qsort,
    Msort,
    Matmul,
    Queens,
    Scope,
    Spawn,
    Wake,
    Idle,
    Raw,
    Iter,
}

impl WorkloadId {
    pub const ALL: [WorkloadId; 12] = [
        WorkloadId::Fib,
        WorkloadId::Tree,
        WorkloadId::Qsort,
        WorkloadId::Msort,
        WorkloadId::Matmul,
        WorkloadId::Queens,
        WorkloadId::Scope,
        WorkloadId::Spawn,
        WorkloadId::Wake,
        WorkloadId::Idle,
        WorkloadId::Raw,
        WorkloadId::Iter,
    ];

    /// The short name used by `--only` and in the output.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadId::Fib => "fib",
            WorkloadId::Tree => "tree",
            WorkloadId::Qsort => "qsort",
            WorkloadId::Msort => "msort",
            WorkloadId::Matmul => "matmul",
            WorkloadId::Queens => "queens",
            WorkloadId::Scope => "scope",
            WorkloadId::Spawn => "spawn",
            WorkloadId::Wake => "wake",
            WorkloadId::Idle => "idle",
            WorkloadId::Raw => "raw",
            WorkloadId::Iter => "iter",
        }
    }
}

#[derive(Debug)]
pub struct Options {
    pub quick: bool,
    /// Ascending, without duplicates.
    pub threads: Vec<usize>,
    /// In [`WorkloadId::ALL`] order, without duplicates.
    pub workloads: Vec<WorkloadId>,
    pub runs: usize,
    /// At most `runs`.
    pub rounds: usize,
    pub svg: PathBuf,
}

pub enum Command {
    Run(Options),
    Help,
}

/// Parses the arguments (without the program name); `Err` holds a message
/// for the user.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut quick = false;
    let mut threads = None;
    let mut workloads = None;
    let mut runs = None;
    let mut rounds = None;
    let mut svg = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = || {
            inline_value
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--quick" if inline_value.is_some() => return Err("--quick takes no value".into()),
            "--quick" => quick = true,
            "--threads" => threads = Some(parse_threads(&value()?)?),
            "--only" => workloads = Some(parse_workloads(&value()?)?),
            "--runs" => runs = Some(parse_count("--runs", &value()?)?),
            "--rounds" => rounds = Some(parse_count("--rounds", &value()?)?),
            "--svg" => svg = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    let runs = runs.unwrap_or(if quick { QUICK_RUNS } else { DEFAULT_RUNS });
    let rounds = rounds.unwrap_or(if quick { QUICK_ROUNDS } else { DEFAULT_ROUNDS });
    if rounds > runs {
        return Err(format!(
            "--rounds {rounds} is more than --runs {runs}: every round needs a run"
        ));
    }
    Ok(Command::Run(Options {
        quick,
        threads: threads.unwrap_or_else(default_threads),
        workloads: workloads.unwrap_or_else(|| WorkloadId::ALL.to_vec()),
        runs,
        rounds,
        svg: svg.unwrap_or_else(|| PathBuf::from(DEFAULT_SVG)),
    }))
}

/// 1, 2, 4, ... below the number of cores this process may use, then that
/// number.
fn default_threads() -> Vec<usize> {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads: Vec<usize> = (0..)
        .map(|power| 1 << power)
        .take_while(|&n| n < cores)
        .collect();
    threads.push(cores);
    threads
}

fn parse_threads(list: &str) -> Result<Vec<usize>, String> {
    let mut threads = list
        .split(',')
        .map(|item| match item.trim().parse() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("--threads: {item:?} is not a positive integer")),
        })
        .collect::<Result<Vec<usize>, _>>()?;
    threads.sort_unstable();
    threads.dedup();
    Ok(threads)
}

fn parse_workloads(list: &str) -> Result<Vec<WorkloadId>, String> {
    let mut chosen = Vec::new();
    for name in list.split(',').map(str::trim) {
        let id = WorkloadId::ALL
            .into_iter()
            .find(|id| id.name() == name)
            .ok_or_else(|| format!("--only: unknown workload {name:?}"))?;
        chosen.push(id);
    }
    Ok(WorkloadId::ALL
        .into_iter()
        .filter(|id| chosen.contains(id))
        .collect())
}

fn parse_count(flag: &str, value: &str) -> Result<usize, String> {
    match value.trim().parse() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err(format!("{flag}: {value:?} is not a positive integer")),
    }
}
