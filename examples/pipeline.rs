//! The shape a pool exists for: one thread produces items, a bounded pool
//! processes them, and the results come back in input order.
//!
//! ```text
//! cargo run --release --example pipeline -- FILE            # one item per line of FILE
//! cargo run --release --example pipeline -- --generate N    # N generated lines
//!     [--workers N] [--max-pending N]
//! ```
//!
//! The producer (the main thread) submits each line as a task to a pool
//! with a `max_pending` bound: when that many tasks wait to start, `submit`
//! blocks until a worker takes one, so a fast producer cannot fill memory
//! with queued work. Results are taken back in order from a window of task
//! handles whose length is also capped, so the whole pipeline holds a
//! bounded number of items however long the input. A progress line goes to
//! stderr; the summary, with the peak memory, to stdout.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: pipeline (FILE | --generate N) [--workers N] [--max-pending N]";

struct Options {
    input: Input,
    workers: Option<usize>,
    max_pending: usize,
}

enum Input {
    File(String),
    Generate(u64),
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut input = None;
    let mut workers = None;
    let mut max_pending = 256;
    let number = |flag: &str, value: Option<String>| -> Result<u64, String> {
        let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
        value
            .parse()
            .map_err(|_| format!("{flag}: {value:?} is not a number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--generate" => input = Some(Input::Generate(number("--generate", args.next())?)),
            "--workers" => workers = Some(number("--workers", args.next())? as usize),
            "--max-pending" => max_pending = number("--max-pending", args.next())? as usize,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
            path => input = Some(Input::File(path.to_owned())),
        }
    }
    let input = input.ok_or_else(|| "give a FILE or --generate N".to_owned())?;
    Ok(Options {
        input,
        workers,
        max_pending,
    })
}

/// The work done per item: word count, and a checksum mixed a few hundred
/// times so that processing costs more than producing.
fn process(line: String) -> (usize, u64) {
    let words = line.split_whitespace().count();
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for _ in 0..200 {
        for byte in line.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    (words, hash)
}

/// The lines of the input, one at a time: nothing is read ahead.
fn lines(input: &Input) -> io::Result<Box<dyn Iterator<Item = io::Result<String>>>> {
    Ok(match input {
        Input::File(path) => Box::new(BufReader::new(File::open(path)?).lines()),
        Input::Generate(count) => Box::new((0..*count).map(|i| {
            Ok(format!(
                "line {i}: the quick brown fox jumps over the lazy dog {}",
                i * 7919 % 1000
            ))
        })),
    })
}

/// Peak resident memory of the process, where the OS tells (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("pipeline: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut builder = pilfer::ThreadPool::builder().max_pending(options.max_pending);
    if let Some(workers) = options.workers {
        builder = builder.num_threads(workers);
    }
    let pool = match builder.build() {
        Ok(pool) => pool,
        Err(error) => {
            eprintln!("pipeline: {error}");
            return ExitCode::FAILURE;
        }
    };
    let lines = match lines(&options.input) {
        Ok(lines) => lines,
        Err(error) => {
            eprintln!("pipeline: cannot read the input: {error}");
            return ExitCode::FAILURE;
        }
    };

    let started = Instant::now();
    let mut progress = Progress::new();
    // Tasks in input order; the oldest is joined first, so results come
    // out in order. Capped, like the bound, so memory stays flat.
    let mut window = VecDeque::new();
    let window_cap = 2 * options.max_pending;
    let (mut items, mut words, mut checksum) = (0u64, 0usize, 0u64);
    let mut take = |task: pilfer::Task<(usize, u64)>| {
        let (line_words, hash) = task.join().expect("processing a line does not panic");
        items += 1;
        words += line_words;
        checksum = checksum.rotate_left(5) ^ hash; // order-sensitive
        items
    };
    for line in lines {
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                eprintln!("pipeline: reading failed: {error}");
                return ExitCode::FAILURE;
            }
        };
        // Blocks while `max_pending` tasks wait to start: backpressure.
        window.push_back(pool.submit(move || process(line)));
        while window.len() > window_cap || window.front().is_some_and(pilfer::Task::is_finished) {
            let done = take(window.pop_front().expect("not empty"));
            progress.update(done, pool.pending());
        }
    }
    for task in window {
        let done = take(task);
        progress.update(done, pool.pending());
    }
    progress.clear();
    let elapsed = started.elapsed();
    println!(
        "{items} lines, {words} words, checksum {checksum:016x} in {:.2} s with {} workers \
         (max_pending {})",
        elapsed.as_secs_f64(),
        pool.num_threads(),
        options.max_pending
    );
    if let Some(peak) = peak_rss_kib() {
        println!("peak resident memory: {:.1} MiB", peak as f64 / 1024.0);
    }
    ExitCode::SUCCESS
}

/// A progress line on stderr, rewritten in place on a terminal.
struct Progress {
    last: Instant,
    in_place: bool,
}

impl Progress {
    fn new() -> Self {
        Progress {
            last: Instant::now(),
            in_place: io::stderr().is_terminal(),
        }
    }

    fn update(&mut self, done: u64, pending: usize) {
        if self.last.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last = Instant::now();
        let line = format!("{done} lines done, {pending} waiting to start");
        let mut stderr = io::stderr().lock();
        let _ = if self.in_place {
            write!(stderr, "\r{line:50}").and_then(|()| stderr.flush())
        } else {
            writeln!(stderr, "{line}")
        };
    }

    fn clear(&self) {
        if self.in_place {
            let _ = write!(io::stderr(), "\r{:50}\r", "");
        }
    }
}
