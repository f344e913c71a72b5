//! How deep each nesting form of the API can go on a worker's default
//! stack, and what each level costs, for pilfer and for rayon-core (through
//! rayon's re-exports): the table of README.md's "Nesting and the stack".
//!
//! ```text
//! cargo run --release --example nesting              # the whole table (a minute or two)
//! cargo run --release --example nesting -- scope     # the forms whose name contains "scope"
//! ```
//!
//! Every run is a child process of this one (the same binary, with
//! `--child`), so that a stack overflow, which aborts the process, is a
//! result and not the end of the measurement. Each builds one-worker pools
//! with the default stack size, the worst case: no other worker takes work
//! off the stack that waits.
//!
//! * **Chains** nest one level inside the other, each waiting for the
//!   next: the depth is found by doubling, then bisecting to within 2%,
//!   and the stack a level costs is measured at a depth of 200 (the bytes
//!   between the shallowest and the deepest frame on every thread the
//!   chain ran on, divided by the depth).
//! * **Shapes** are the ones that pile unrelated work onto a waiting stack
//!   when waits run whatever they find: each either completes or aborts.

use std::collections::HashMap;
use std::process::{Command, ExitCode};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

/// How long a child may run before it counts as hung.
const CHILD_LIMIT: Duration = Duration::from_secs(60);
/// The deepest chain tried.
const MAX_DEPTH: u64 = 1 << 22;
/// The deepest chain of installs across pools tried: on pilfer, each level
/// is a hand-over between threads, and past half a stack the chain goes on
/// on spare workers, so it is limited by time rather than by the stack.
const MAX_DEPTH_ACROSS: u64 = 1 << 17;
/// The depth at which a chain's stack per level is measured.
const MEASURE_DEPTH: u64 = 200;

// ---------------------------------------------------------------------------
// Stack probes.

/// The highest and lowest address each thread's probes saw.
static EXTENT: Mutex<Option<HashMap<ThreadId, (usize, usize)>>> = Mutex::new(None);
/// Whether probes record (only in the measuring run: a lock per level).
static RECORDING: AtomicUsize = AtomicUsize::new(0);

/// Called once per level of a chain, in that level's frame.
#[inline(never)]
fn probe() {
    if RECORDING.load(Ordering::Relaxed) == 0 {
        return;
    }
    let marker = 0u8;
    let address = std::hint::black_box(&marker) as *const u8 as usize;
    let mut extent = EXTENT.lock().unwrap();
    let entry = extent
        .get_or_insert_with(HashMap::new)
        .entry(thread::current().id())
        .or_insert((address, address));
    entry.0 = entry.0.max(address);
    entry.1 = entry.1.min(address);
}

/// The stack the probes saw in use, summed over threads.
fn stack_used() -> usize {
    let extent = EXTENT.lock().unwrap();
    extent
        .iter()
        .flat_map(|map| map.values())
        .map(|(high, low)| high - low)
        .sum()
}

// ---------------------------------------------------------------------------
// The forms, written once for both pools.

/// Defines module `$name` with every form, calling crate `$pool`'s API.
/// pilfer-only forms are listed separately.
macro_rules! forms {
    ($name:ident, $pool:ident) => {
        mod $name {
            use super::probe;
            use std::sync::atomic::{AtomicUsize, Ordering};

            pub fn one_worker() -> $pool::ThreadPool {
                $pool::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .expect("building a one-worker pool")
            }

            pub fn join(depth: u64) {
                probe();
                if depth > 0 {
                    $pool::join(|| join(depth - 1), || std::hint::black_box(()));
                }
            }

            pub fn scope(depth: u64) {
                probe();
                if depth > 0 {
                    $pool::scope(|s| s.spawn(move |_| scope(depth - 1)));
                }
            }

            pub fn scope_fifo(depth: u64) {
                probe();
                if depth > 0 {
                    $pool::scope_fifo(|s| s.spawn_fifo(move |_| scope_fifo(depth - 1)));
                }
            }

            pub fn in_place_scope(depth: u64) {
                probe();
                if depth > 0 {
                    $pool::in_place_scope(|s| s.spawn(move |_| in_place_scope(depth - 1)));
                }
            }

            pub fn in_place_scope_fifo(depth: u64) {
                probe();
                if depth > 0 {
                    $pool::in_place_scope_fifo(|s| {
                        s.spawn_fifo(move |_| in_place_scope_fifo(depth - 1))
                    });
                }
            }

            pub fn broadcast(depth: u64) {
                probe();
                if depth > 0 {
                    $pool::broadcast(|_| broadcast(depth - 1));
                }
            }

            /// Two pools calling into each other, one level each.
            pub fn install_across(depth: u64, pools: &[$pool::ThreadPool; 2]) {
                probe();
                if depth > 0 {
                    pools[(depth % 2) as usize].install(|| install_across(depth - 1, pools));
                }
            }

            /// A tree of FIFO scopes, 4 children per node, 9 levels below
            /// the root: 349 525 nodes.
            pub fn fifo_scope_tree(depth: u32, nodes: &AtomicUsize) {
                nodes.fetch_add(1, Ordering::Relaxed);
                if depth > 0 {
                    $pool::scope_fifo(|s| {
                        for _ in 0..4 {
                            s.spawn_fifo(move |_| fifo_scope_tree(depth - 1, nodes));
                        }
                    });
                }
            }

            /// The same with plain scopes.
            pub fn scope_tree(depth: u32, nodes: &AtomicUsize) {
                nodes.fetch_add(1, Ordering::Relaxed);
                if depth > 0 {
                    $pool::scope(|s| {
                        for _ in 0..4 {
                            s.spawn(move |_| scope_tree(depth - 1, nodes));
                        }
                    });
                }
            }

            /// A tree of detached FIFO spawns (3 children, 10 levels), each
            /// node waiting in a scope while its children's jobs are queued.
            pub fn detached_fifo_tree(depth: u32, nodes: &'static AtomicUsize) {
                nodes.fetch_add(1, Ordering::Relaxed);
                if depth > 0 {
                    $pool::scope(|s| {
                        s.spawn(|_| std::hint::black_box(()));
                        for _ in 0..3 {
                            $pool::spawn_fifo(move || detached_fifo_tree(depth - 1, nodes));
                        }
                    });
                }
            }

            /// 10 000 tasks queued on pool A; each installs into pool B,
            /// whose job installs back into A: A's worker waits while its
            /// other tasks are queued.
            pub fn installs_while_tasks_queue(pools: &[$pool::ThreadPool; 2]) -> usize {
                let done = AtomicUsize::new(0);
                let [a, b] = pools;
                a.scope(|s| {
                    for _ in 0..10_000 {
                        s.spawn(|_| {
                            b.install(|| a.install(|| done.fetch_add(1, Ordering::Relaxed)));
                        });
                    }
                });
                done.into_inner()
            }

            /// 10 000 tasks queued on one pool, each broadcasting to it and
            /// waiting.
            pub fn broadcasts_while_tasks_queue(pool: &$pool::ThreadPool) -> usize {
                let done = AtomicUsize::new(0);
                pool.scope(|s| {
                    for _ in 0..10_000 {
                        s.spawn(|_| {
                            $pool::broadcast(|_| done.fetch_add(1, Ordering::Relaxed));
                        });
                    }
                });
                done.into_inner()
            }
        }
    };
}

forms!(on_pilfer, pilfer);
forms!(on_rayon, rayon);

/// pilfer-only chains.
fn block_in_place(depth: u64) {
    probe();
    if depth > 0 {
        pilfer::block_in_place(|| block_in_place(depth - 1));
    }
}

fn isolate(depth: u64) {
    probe();
    if depth > 0 {
        pilfer::isolate(|| pilfer::join(|| isolate(depth - 1), || std::hint::black_box(())));
    }
}

// ---------------------------------------------------------------------------
// The table's rows.

#[derive(Clone, Copy, PartialEq)]
enum Pool {
    Pilfer,
    Rayon,
}

impl Pool {
    fn name(self) -> &'static str {
        match self {
            Pool::Pilfer => "pilfer",
            Pool::Rayon => "rayon",
        }
    }

    fn parse(name: &str) -> Option<Pool> {
        [Pool::Pilfer, Pool::Rayon]
            .into_iter()
            .find(|pool| pool.name() == name)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    /// Runs at a depth (the argument).
    Chain,
    /// Runs once, at its own size.
    Shape,
}

struct Form {
    name: &'static str,
    what: &'static str,
    kind: Kind,
    /// Whether rayon-core has it.
    in_rayon: bool,
}

const FORMS: &[Form] = &[
    chain("join", "`join(a, b)`, recursing in `a`"),
    chain("scope", "`scope` whose task opens the next"),
    chain("scope_fifo", "`scope_fifo` whose task opens the next"),
    chain(
        "in_place_scope",
        "`in_place_scope` whose task opens the next",
    ),
    chain("in_place_scope_fifo", "`in_place_scope_fifo` likewise"),
    chain("broadcast", "`broadcast` whose share broadcasts again"),
    chain(
        "install_across",
        "`install` into another pool, which installs back",
    ),
    pilfer_chain("block_in_place", "`block_in_place` inside `block_in_place`"),
    pilfer_chain("isolate", "`isolate` around a `join`, recursing"),
    shape(
        "fifo_scope_tree",
        "tree of `scope_fifo`s, 4 children, depth 9 (349 525 tasks)",
    ),
    shape("scope_tree", "tree of `scope`s, 4 children, depth 9"),
    shape(
        "detached_fifo_tree",
        "tree of `spawn_fifo`s waiting in scopes, 3 children, depth 10",
    ),
    shape(
        "installs_while_tasks_queue",
        "10 000 queued tasks, each `install`ing into a pool that installs back",
    ),
    shape(
        "broadcasts_while_tasks_queue",
        "10 000 queued tasks, each broadcasting and waiting",
    ),
];

const fn chain(name: &'static str, what: &'static str) -> Form {
    Form {
        name,
        what,
        kind: Kind::Chain,
        in_rayon: true,
    }
}

/// A chain of a form that rayon-core does not have.
const fn pilfer_chain(name: &'static str, what: &'static str) -> Form {
    Form {
        name,
        what,
        kind: Kind::Chain,
        in_rayon: false,
    }
}

const fn shape(name: &'static str, what: &'static str) -> Form {
    Form {
        name,
        what,
        kind: Kind::Shape,
        in_rayon: true,
    }
}

/// Runs `form` on `pool` (a child's whole job); returns a value to print.
fn run_form(pool: Pool, form: &str, depth: u64) -> Result<String, String> {
    macro_rules! dispatch {
        ($forms:ident) => {{
            let one = $forms::one_worker();
            match form {
                "join" => one.install(|| $forms::join(depth)),
                "scope" => one.install(|| $forms::scope(depth)),
                "scope_fifo" => one.install(|| $forms::scope_fifo(depth)),
                "in_place_scope" => one.install(|| $forms::in_place_scope(depth)),
                "in_place_scope_fifo" => one.install(|| $forms::in_place_scope_fifo(depth)),
                "broadcast" => one.install(|| $forms::broadcast(depth)),
                "install_across" => {
                    let pools = [one, $forms::one_worker()];
                    pools[0].install(|| $forms::install_across(depth, &pools));
                }
                "fifo_scope_tree" => {
                    let nodes = AtomicUsize::new(0);
                    one.install(|| $forms::fifo_scope_tree(9, &nodes));
                    return Ok(format!("{} tasks", nodes.into_inner()));
                }
                "scope_tree" => {
                    let nodes = AtomicUsize::new(0);
                    one.install(|| $forms::scope_tree(9, &nodes));
                    return Ok(format!("{} tasks", nodes.into_inner()));
                }
                "detached_fifo_tree" => {
                    static NODES: AtomicUsize = AtomicUsize::new(0);
                    one.spawn(|| $forms::detached_fifo_tree(10, &NODES));
                    let expected = (0..=10).map(|level| 3usize.pow(level)).sum::<usize>();
                    let started = Instant::now();
                    while NODES.load(Ordering::Relaxed) < expected {
                        if started.elapsed() > CHILD_LIMIT {
                            return Err("not all nodes ran".into());
                        }
                        thread::sleep(Duration::from_millis(1));
                    }
                    return Ok(format!("{expected} tasks"));
                }
                "installs_while_tasks_queue" => {
                    let pools = [one, $forms::one_worker()];
                    let done = $forms::installs_while_tasks_queue(&pools);
                    return Ok(format!("{done} tasks"));
                }
                "broadcasts_while_tasks_queue" => {
                    let done = $forms::broadcasts_while_tasks_queue(&one);
                    return Ok(format!("{done} tasks"));
                }
                "block_in_place" if pool == Pool::Pilfer => one.install(|| block_in_place(depth)),
                "isolate" if pool == Pool::Pilfer => one.install(|| isolate(depth)),
                _ => return Err(format!("no form {form} on {}", pool.name())),
            }
            Ok(format!("{}", stack_used()))
        }};
    }
    match pool {
        Pool::Pilfer => dispatch!(on_pilfer),
        Pool::Rayon => dispatch!(on_rayon),
    }
}

// ---------------------------------------------------------------------------
// The parent: children, depths, the table.

/// How a child run ended.
enum Outcome {
    /// It printed this.
    Ok(String),
    /// A stack overflow (or another abort), or an error it printed.
    Failed(String),
    Hung,
}

fn child(pool: Pool, form: &str, depth: u64, record: bool) -> Outcome {
    let exe = std::env::current_exe().expect("the example's own path");
    let mut command = Command::new(exe);
    command.args(["--child", pool.name(), form, &depth.to_string()]);
    if record {
        command.arg("--record");
    }
    let mut process = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting a child");
    let started = Instant::now();
    loop {
        if let Some(status) = process.try_wait().expect("waiting for a child") {
            let output = process.wait_with_output().expect("reading a child");
            let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
            let stderr = String::from_utf8_lossy(&output.stderr);
            return if status.success() {
                Outcome::Ok(stdout)
            } else if stderr.contains("overflowed its stack") {
                Outcome::Failed("stack overflow".into())
            } else {
                let last = stderr.lines().last().unwrap_or("").to_string();
                Outcome::Failed(format!("{status}: {last}"))
            };
        }
        if started.elapsed() > CHILD_LIMIT {
            let _ = process.kill();
            let _ = process.wait();
            return Outcome::Hung;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// The deepest chain that completes (to within 2%), and the first failure.
fn max_depth(pool: Pool, form: &str) -> (u64, Option<String>) {
    let runs = |depth| matches!(child(pool, form, depth, false), Outcome::Ok(_));
    let (mut good, mut bad) = (0, None);
    let mut depth = 256;
    let most = if form == "install_across" {
        MAX_DEPTH_ACROSS
    } else {
        MAX_DEPTH
    };
    while depth <= most {
        if runs(depth) {
            good = depth;
            depth *= 2;
        } else {
            bad = Some(depth);
            break;
        }
    }
    let Some(mut bad) = bad else {
        return (good, None);
    };
    let failure = match child(pool, form, bad, false) {
        Outcome::Failed(why) => why,
        Outcome::Hung => "hangs".into(),
        Outcome::Ok(_) => "flaky".into(),
    };
    while bad - good > good / 50 + 1 {
        let middle = good + (bad - good) / 2;
        if runs(middle) {
            good = middle;
        } else {
            bad = middle;
        }
    }
    (good, Some(failure))
}

fn chain_row(pool: Pool, form: &Form) -> String {
    if pool == Pool::Rayon && !form.in_rayon {
        return "– | –".into();
    }
    let per_level = match child(pool, form.name, MEASURE_DEPTH, true) {
        Outcome::Ok(used) => used
            .parse::<u64>()
            .map(|used| format!("{}", used / MEASURE_DEPTH))
            .unwrap_or(used),
        Outcome::Failed(why) => why,
        Outcome::Hung => "hangs".into(),
    };
    let (depth, failure) = max_depth(pool, form.name);
    let depth = match failure {
        None => format!("> {depth}"),
        Some(why) if why == "stack overflow" => format!("{depth}"),
        Some(why) => format!("{depth} (then {why})"),
    };
    format!("{per_level} | {depth}")
}

fn shape_cell(pool: Pool, form: &Form) -> String {
    if pool == Pool::Rayon && !form.in_rayon {
        return "–".into();
    }
    match child(pool, form.name, 0, false) {
        Outcome::Ok(what) => format!("completes ({what})"),
        Outcome::Failed(why) => format!("**{why}**"),
        Outcome::Hung => "**hangs**".into(),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let (Some(pool), Some(form), Some(depth)) = (
            args.get(1).and_then(|name| Pool::parse(name)),
            args.get(2),
            args.get(3).and_then(|depth| depth.parse().ok()),
        ) else {
            eprintln!("nesting: --child POOL FORM DEPTH [--record]");
            return ExitCode::from(2);
        };
        if args.get(4).map(String::as_str) == Some("--record") {
            RECORDING.store(1, Ordering::Relaxed);
        }
        return match run_form(pool, form, depth) {
            Ok(value) => {
                println!("{value}");
                ExitCode::SUCCESS
            }
            Err(why) => {
                eprintln!("{why}");
                ExitCode::FAILURE
            }
        };
    }
    let filter = args.first().cloned().unwrap_or_default();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "One-worker pools, default stacks ({profile} build); bytes of stack per level at depth \
         {MEASURE_DEPTH}, and the deepest chain that completes (within 2%).\n"
    );
    println!("| chain | pilfer B/level | pilfer depth | rayon-core B/level | rayon-core depth |");
    println!("|---|---|---|---|---|");
    for form in FORMS.iter().filter(|form| form.name.contains(&filter)) {
        if let Kind::Chain = form.kind {
            println!(
                "| {} | {} | {} |",
                form.what,
                chain_row(Pool::Pilfer, form),
                chain_row(Pool::Rayon, form)
            );
        }
    }
    println!("\n| shape | pilfer | rayon-core |");
    println!("|---|---|---|");
    for form in FORMS.iter().filter(|form| form.name.contains(&filter)) {
        if let Kind::Shape = form.kind {
            println!(
                "| {} | {} | {} |",
                form.what,
                shape_cell(Pool::Pilfer, form),
                shape_cell(Pool::Rayon, form)
            );
        }
    }
    ExitCode::SUCCESS
}
