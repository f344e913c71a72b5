//! Results: one table per workload, printed for people and as `RESULT`
//! lines for pasting.

use std::fmt::Write;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Millis,
    Micros,
}

impl Unit {
    fn value(self, duration: Duration) -> f64 {
        match self {
            Unit::Millis => duration.as_secs_f64() * 1e3,
            Unit::Micros => duration.as_secs_f64() * 1e6,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::Micros => "µs",
        }
    }

    /// The suffix of `RESULT` keys: ASCII.
    fn key_suffix(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::Micros => "us",
        }
    }
}

/// One row: a thread count and one value per pool.
pub struct Row {
    pub threads: usize,
    pub values: Vec<f64>,
}

pub struct Table {
    /// Short name, as in `RESULT workload=KEY`.
    pub key: String,
    /// What was measured, with sizes.
    pub title: String,
    /// How each value was obtained, e.g. "median of 7 runs".
    pub statistic: String,
    pub unit: Unit,
    /// Column names; the first pool is compared with each of the others.
    pub pools: Vec<&'static str>,
    /// A baseline that does not depend on the thread count.
    pub reference: Option<(&'static str, f64)>,
    /// Whether values are run times of a fixed amount of work, so that
    /// speed-ups make sense (for the chart).
    pub is_run_time: bool,
    pub rows: Vec<Row>,
}

impl Table {
    pub fn new(key: &str, title: String, statistic: String, unit: Unit) -> Self {
        Table {
            key: key.to_owned(),
            title,
            statistic,
            unit,
            pools: Vec::new(),
            reference: None,
            is_run_time: true,
            rows: Vec::new(),
        }
    }

    pub fn with_pools(mut self, pools: &[&'static str]) -> Self {
        self.pools = pools.to_vec();
        self
    }

    pub fn reference(mut self, name: &'static str, duration: Duration) -> Self {
        self.reference = Some((name, self.unit.value(duration)));
        self
    }

    pub fn not_run_time(mut self) -> Self {
        self.is_run_time = false;
        self
    }

    /// Appends a row; `durations` has one entry per pool, in `pools` order.
    pub fn push(&mut self, threads: usize, durations: &[Duration]) {
        debug_assert_eq!(durations.len(), self.pools.len());
        let values = durations.iter().map(|&d| self.unit.value(d)).collect();
        self.rows.push(Row { threads, values });
    }

    /// The human-readable table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let unit = self.unit.symbol();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{}", self.title);
        let _ = write!(out, "  ({unit}, {}", self.statistic);
        if let Some((name, value)) = self.reference {
            let _ = write!(out, "; {name}: {} {unit}", format_value(value));
        }
        let _ = writeln!(out, ")");
        let mut header = format!("{:>8}", "threads");
        for pool in &self.pools {
            let _ = write!(header, "{pool:>10}");
        }
        for name in self.ratio_names() {
            let _ = write!(header, "{name:>15}");
        }
        let _ = writeln!(out, "{header}");
        for row in &self.rows {
            let _ = write!(out, "{:>8}", row.threads);
            for &value in &row.values {
                let _ = write!(out, "{:>10}", format_value(value));
            }
            for ratio in ratios(row) {
                let _ = write!(out, "{:>15}", format!("{ratio:.2}"));
            }
            let _ = writeln!(out);
        }
        out
    }

    /// `RESULT workload=fib threads=2 pilfer_ms=.. rayon_ms=.. ratio=..`
    /// lines; `ratio` is first/second pool, `ratio_chili` first/third.
    pub fn result_lines(&self) -> Vec<String> {
        let suffix = self.unit.key_suffix();
        let mut lines = Vec::new();
        if let Some((name, value)) = self.reference {
            lines.push(format!(
                "RESULT workload={} reference={name} {name}_{suffix}={value:.3}",
                self.key
            ));
        }
        for row in &self.rows {
            let mut line = format!("RESULT workload={} threads={}", self.key, row.threads);
            for (pool, value) in self.pools.iter().zip(&row.values) {
                let _ = write!(line, " {pool}_{suffix}={value:.3}");
            }
            for (index, ratio) in ratios(row).enumerate() {
                let key = match index {
                    0 => "ratio".to_owned(),
                    _ => format!("ratio_{}", self.pools[index + 1]),
                };
                let _ = write!(line, " {key}={ratio:.3}");
            }
            lines.push(line);
        }
        lines
    }

    fn ratio_names(&self) -> impl Iterator<Item = String> + '_ {
        let first = self.pools[0];
        self.pools[1..]
            .iter()
            .map(move |other| format!("{first}/{other}"))
    }
}

/// The first value divided by each of the others.
fn ratios(row: &Row) -> impl Iterator<Item = f64> + '_ {
    row.values[1..].iter().map(|&other| row.values[0] / other)
}

/// About three significant digits.
fn format_value(value: f64) -> String {
    match value {
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v if v >= 1.0 => format!("{v:.2}"),
        v => format!("{v:.3}"),
    }
}
