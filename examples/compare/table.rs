//! Results: one table per workload, printed for people and as `RESULT`
//! lines for pasting.

use crate::runner::{Samples, median};
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

/// One pool's figure at one thread count: the statistic (a median or a
/// percentile) and the spread of the samples it was taken from.
#[derive(Clone, Copy, Debug)]
pub struct Cell {
    pub value: f64,
    pub min: f64,
    pub max: f64,
}

/// One row: a thread count and one cell per pool.
pub struct Row {
    pub threads: usize,
    /// The serial code's figure, measured alongside, if the table has one.
    pub serial: Option<Cell>,
    /// One per pool, in `Table::pools` order.
    pub cells: Vec<Cell>,
    /// The share of the first pool's worker time spent searching for work
    /// during the timed samples, if it reports it.
    pub search_share: Option<f64>,
}

impl Row {
    /// How many times faster than the serial code pool `column` ran.
    pub fn speed_up(&self, column: usize) -> Option<f64> {
        self.serial
            .map(|serial| serial.value / self.cells[column].value)
    }
}

pub struct Table {
    /// Short name, as in `RESULT workload=KEY`.
    pub key: String,
    /// What was measured, with sizes.
    pub title: String,
    /// How each value was obtained, e.g. "median of 9 runs".
    pub statistic: String,
    pub unit: Unit,
    /// Column names; the first pool is compared with each of the others.
    pub pools: Vec<&'static str>,
    /// Whether every row has the serial code's figure, measured in the same
    /// rounds as the pools.
    pub has_serial: bool,
    /// A baseline that does not depend on the thread count.
    pub reference: Option<(&'static str, f64)>,
    /// Whether values are run times of a fixed amount of work, so that
    /// ratios make sense (for the chart).
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
            has_serial: false,
            reference: None,
            is_run_time: true,
            rows: Vec::new(),
        }
    }

    pub fn with_pools(mut self, pools: &[&'static str]) -> Self {
        self.pools = pools.to_vec();
        self
    }

    /// The first samples of each row are the serial code's.
    pub fn with_serial(mut self) -> Self {
        self.has_serial = true;
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

    /// Appends a row of medians; `samples` has the serial code's first if
    /// the table has them, then one entry per pool.
    pub fn push(&mut self, threads: usize, samples: &[Samples]) {
        self.push_with(threads, samples, median);
    }

    /// Appends a row whose statistic is `statistic` of each pool's sorted
    /// samples (a percentile, say).
    pub fn push_with(
        &mut self,
        threads: usize,
        samples: &[Samples],
        statistic: impl Fn(&[Duration]) -> Duration,
    ) {
        let cell = |samples: &Samples| Cell {
            value: self.unit.value(statistic(&samples.times)),
            min: self.unit.value(samples.times[0]),
            max: self.unit.value(samples.times[samples.times.len() - 1]),
        };
        let (serial, pools) = match self.has_serial {
            true => (Some(cell(&samples[0])), &samples[1..]),
            false => (None, samples),
        };
        debug_assert_eq!(pools.len(), self.pools.len());
        self.rows.push(Row {
            threads,
            serial,
            cells: pools.iter().map(cell).collect(),
            // An idle pool (wake-up, idle CPU) searches all the time.
            search_share: pools[0].search_share.filter(|_| self.is_run_time),
        });
    }

    /// The human-readable table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let unit = self.unit.symbol();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{}", self.title);
        let _ = write!(out, "  ({unit}, {} [min-max]", self.statistic);
        if self.has_serial {
            let _ = write!(out, "; ×: speed-up over the serial code, run alongside");
        }
        if let Some((name, value)) = self.reference {
            let _ = write!(out, "; {name}: {} {unit}", format_value(value));
        }
        if self.rows.iter().any(|row| row.search_share.is_some()) {
            let _ = write!(
                out,
                "; search: {}'s worker time spent looking for work",
                self.pools[0]
            );
        }
        let _ = writeln!(out, ")");
        let _ = writeln!(out, "{}", self.header());
        for row in &self.rows {
            let _ = write!(out, "{:>7}", row.threads);
            if let Some(serial) = row.serial {
                let _ = write!(out, "  {:<22}", format_cell(serial));
            }
            for (column, &cell) in row.cells.iter().enumerate() {
                let mut text = format_cell(cell);
                if let Some(speed_up) = row.speed_up(column) {
                    let _ = write!(text, " ×{speed_up:.2}");
                }
                let _ = write!(out, "  {text:<28}");
            }
            if self.rows.iter().any(|row| row.search_share.is_some()) {
                let share = row
                    .search_share
                    .map_or_else(|| "-".to_owned(), |share| format!("{:.0}%", share * 100.0));
                let _ = write!(out, "{share:>7}");
            }
            for ratio in ratios(row) {
                let _ = write!(out, "{:>15}", format!("{ratio:.2}"));
            }
            let _ = writeln!(out);
        }
        out
    }

    fn header(&self) -> String {
        let mut header = format!("{:>7}", "threads");
        if self.has_serial {
            let _ = write!(header, "  {:<22}", "serial");
        }
        for pool in &self.pools {
            let _ = write!(header, "  {pool:<28}");
        }
        if self.rows.iter().any(|row| row.search_share.is_some()) {
            let _ = write!(header, "{:>7}", "search");
        }
        for name in self.ratio_names() {
            let _ = write!(header, "{name:>15}");
        }
        header
    }

    /// `RESULT workload=fib threads=2 serial_ms=.. pilfer_ms=..
    /// pilfer_min_ms=.. pilfer_max_ms=.. pilfer_speedup=.. rayon_ms=..
    /// ratio=..` lines; `ratio` is first/second pool, `ratio_chili`
    /// first/third.
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
            if let Some(serial) = row.serial {
                let _ = write!(line, " serial_{suffix}={:.3}", serial.value);
            }
            for (column, (pool, cell)) in self.pools.iter().zip(&row.cells).enumerate() {
                let _ = write!(
                    line,
                    " {pool}_{suffix}={:.3} {pool}_min_{suffix}={:.3} {pool}_max_{suffix}={:.3}",
                    cell.value, cell.min, cell.max
                );
                if let Some(speed_up) = row.speed_up(column) {
                    let _ = write!(line, " {pool}_speedup={speed_up:.3}");
                }
            }
            if let Some(share) = row.search_share {
                let _ = write!(line, " {}_search={share:.3}", self.pools[0]);
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

/// The first pool's value divided by each of the others'.
pub fn ratios(row: &Row) -> impl Iterator<Item = f64> + '_ {
    row.cells[1..]
        .iter()
        .map(|other| row.cells[0].value / other.value)
}

/// `1.54 [1.50-1.71]`.
fn format_cell(cell: Cell) -> String {
    format!(
        "{} [{}-{}]",
        format_value(cell.value),
        format_value(cell.min),
        format_value(cell.max)
    )
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
