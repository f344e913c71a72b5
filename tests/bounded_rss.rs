//! Peak memory under a bound: a producer far faster than the workers pushes
//! a million 512-byte tasks through `max_pending(1024)`, and the peak RSS
//! of the process grows by well under 64 MiB (unbounded, the queued tasks
//! alone would take over 500 MiB).
//!
//! Peak RSS is per process, so this file holds this one test and nothing
//! else runs beside it.

mod common;

/// A `kB` field of /proc/self/status (`VmRSS`, `VmHWM`), in KiB.
#[cfg(target_os = "linux")]
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

#[test]
fn a_million_512_byte_tasks_keep_rss_growth_under_64_mib() {
    if !cfg!(target_os = "linux") {
        println!("skipped: peak RSS is read from /proc/self/status, which needs Linux");
        return;
    }
    #[cfg(target_os = "linux")]
    common::with_deadline("a million bounded tasks", run);
}

#[cfg(target_os = "linux")]
fn run() {
    use pilfer::{FullPolicy, ThreadPool};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    const TASKS: u64 = 1_000_000;
    const PAYLOAD: usize = 512;
    const MAX_PENDING: usize = 1024;
    const GROWTH_LIMIT_KIB: u64 = 64 * 1024;

    // Reset the peak to the current RSS (Linux 4.0+), so that whatever the
    // process touched before (test harness, libraries) does not count; if
    // the kernel refuses, the peak so far is at least the current RSS,
    // which only makes the test stricter.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let rss_before = status_kib("VmRSS");
    let hwm_before = status_kib("VmHWM");

    let pool = ThreadPool::builder()
        .num_threads(2)
        .pin_workers(false)
        .max_pending(MAX_PENDING)
        .when_full(FullPolicy::Block)
        .build()
        .expect("building the pool");
    let executed = Arc::new(AtomicU64::new(0));
    let checksum = Arc::new(AtomicU64::new(0));
    let mut expected_checksum = 0u64;
    let start = Instant::now();
    let mut max_pending_seen = 0;
    for i in 0..TASKS {
        // Each task carries its own 512 bytes (boxed with the closure while
        // queued); the workers read them, so they cannot be optimised out.
        let mut payload = [0u8; PAYLOAD];
        payload[0] = i as u8;
        payload[PAYLOAD - 1] = (i >> 8) as u8;
        expected_checksum += u64::from(payload[0]) + u64::from(payload[PAYLOAD - 1]);
        let (executed, checksum) = (Arc::clone(&executed), Arc::clone(&checksum));
        pool.spawn(move || {
            let payload = std::hint::black_box(payload);
            let sum = u64::from(payload[0]) + u64::from(payload[PAYLOAD - 1]);
            checksum.fetch_add(sum, Ordering::Relaxed);
            executed.fetch_add(1, Ordering::Relaxed);
        });
        if i % 4096 == 0 {
            let pending = pool.pending();
            assert!(pending <= MAX_PENDING, "pending() = {pending}");
            max_pending_seen = max_pending_seen.max(pending);
        }
    }
    let submitted_in = start.elapsed();
    drop(pool);
    let elapsed = start.elapsed();

    let hwm_after = status_kib("VmHWM");
    let growth = hwm_after.saturating_sub(rss_before);
    println!(
        "{TASKS} tasks of {PAYLOAD} bytes through max_pending({MAX_PENDING}): submitted in \
         {submitted_in:?}, all run in {elapsed:?}; pending() peaked at {max_pending_seen} \
         (sampled); VmRSS before {rss_before} KiB, VmHWM before {hwm_before} KiB, after \
         {hwm_after} KiB (peak reset: {reset}): growth {growth} KiB"
    );
    assert_eq!(executed.load(Ordering::SeqCst), TASKS, "tasks lost");
    assert_eq!(
        checksum.load(Ordering::SeqCst),
        expected_checksum,
        "payloads arrived damaged"
    );
    assert!(
        growth < GROWTH_LIMIT_KIB,
        "peak RSS grew by {growth} KiB (limit {GROWTH_LIMIT_KIB} KiB): the bound does not \
         hold the queued tasks back"
    );
}
