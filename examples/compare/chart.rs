//! The chart, drawn with plotters as SVG: small multiples. One panel per
//! workload that has a serial baseline, with its speed-up over the serial
//! code against threads (a line per pool, and the ideal); then panels of
//! pilfer/rayon time ratios, a line per workload: one for the workloads of
//! the pools' own API, one for rayon's parallel iterators (`iter-`).

use crate::table::{Table, ratios};
use plotters::coord::Shift;
use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use std::error::Error;
use std::fs;
use std::path::Path;

/// Size of one panel, and panels per row.
const PANEL: (u32, u32) = (420, 320);
const COLUMNS: u32 = 3;

/// Tableau 10.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Length of a line in a legend.
const LEGEND_LINE: i32 = 18;

type Chart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<WithKeyPoints<LogCoord<f64>>, RangedCoordf64>>;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// One line of a panel.
struct Series {
    label: String,
    color: RGBColor,
    /// (threads, value).
    points: Vec<(f64, f64)>,
}

/// Which tables a panel of ratio lines shows.
type Chooses = fn(&Table) -> bool;

/// The groups of ratio lines, each a panel: which tables, and the caption.
const RATIO_PANELS: [(Chooses, &str); 2] = [
    (
        |table| !is_iterator(table),
        "pilfer / rayon time (below 1: pilfer faster)",
    ),
    (is_iterator, "parallel iterators: pilfer / rayon-core time"),
];

/// A table of `benches/par_iter`'s workloads.
fn is_iterator(table: &Table) -> bool {
    table.key.starts_with("iter-")
}

/// Whether `tables` give anything to draw.
pub fn has_lines(tables: &[Table]) -> bool {
    tables.iter().any(|table| table.has_serial) || ratio_lines(tables.iter()).next().is_some()
}

/// Writes the chart of `tables`, measured at `threads` (ascending, not
/// empty), to `path`, creating its directory if needed.
pub fn write(path: &Path, threads: &[usize], tables: &[Table]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let with_serial: Vec<&Table> = tables.iter().filter(|table| table.has_serial).collect();
    let ratio_panels: Vec<(Vec<Series>, &str)> = RATIO_PANELS
        .iter()
        .map(|&(chosen, caption)| {
            let lines = ratio_lines(tables.iter().filter(|table| chosen(table)));
            (lines.collect::<Vec<_>>(), caption)
        })
        .filter(|(series, _)| !series.is_empty())
        .collect();
    let panels = (with_serial.len() + ratio_panels.len()) as u32;
    let rows = panels.div_ceil(COLUMNS);
    let size = (PANEL.0 * COLUMNS.min(panels), PANEL.1 * rows);
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((rows as usize, COLUMNS.min(panels) as usize));
    for (table, area) in with_serial.iter().zip(&areas) {
        speed_up_panel(area, threads, table)?;
    }
    for ((series, caption), area) in ratio_panels.iter().zip(&areas[with_serial.len()..]) {
        ratio_panel(area, threads, series, caption)?;
    }
    root.present()?;
    Ok(())
}

/// A panel: each pool's speed-up over the serial code, and the ideal.
fn speed_up_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    threads: &[usize],
    table: &Table,
) -> Result<()> {
    let series: Vec<Series> = table
        .pools
        .iter()
        .enumerate()
        .map(|(column, pool)| Series {
            label: (*pool).to_owned(),
            color: COLORS[column % COLORS.len()],
            points: table
                .rows
                .iter()
                .filter_map(|row| Some((row.threads as f64, row.speed_up(column)?)))
                .collect(),
        })
        .collect();
    let most = *threads.last().expect("at least one thread count") as f64;
    let top = highest(&series).max(most);
    let caption = format!("{}: speed-up over serial", table.key);
    let mut chart = panel(area, threads, caption, top)?;
    let ideal = threads.iter().map(|&n| (n as f64, n as f64));
    draw_dashed(&mut chart, "ideal", ideal)?;
    for line in &series {
        draw_line(&mut chart, line)?;
    }
    legend(&mut chart)
}

/// The panel of pilfer/rayon ratios, a line per workload, and the line of
/// parity.
fn ratio_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    threads: &[usize],
    series: &[Series],
    caption: &str,
) -> Result<()> {
    // Room above the lines for the legend's many entries.
    let top = highest(series).max(1.0) * 1.6;
    let mut chart = panel(area, threads, caption.to_owned(), top)?;
    let parity = threads.iter().map(|&n| (n as f64, 1.0));
    draw_dashed(&mut chart, "parity", parity)?;
    for line in series {
        draw_line(&mut chart, line)?;
    }
    legend(&mut chart)
}

/// A line per run-time table whose first two pools are pilfer and rayon.
fn ratio_lines<'a>(
    tables: impl Iterator<Item = &'a Table> + 'a,
) -> impl Iterator<Item = Series> + 'a {
    tables
        .filter(|table| table.is_run_time && table.pools.starts_with(&["pilfer", "rayon"]))
        .zip(COLORS.iter().cycle())
        .map(|(table, &color)| Series {
            label: table.key.clone(),
            color,
            points: table
                .rows
                .iter()
                .filter_map(|row| Some((row.threads as f64, ratios(row).next()?)))
                .collect(),
        })
}

fn highest(series: &[Series]) -> f64 {
    series
        .iter()
        .flat_map(|line| line.points.iter().map(|&(_, value)| value))
        .fold(0.0, f64::max)
}

/// Axes: threads on a log scale, labelled at each measured count; values
/// from zero to above `top`.
fn panel<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    threads: &[usize],
    caption: String,
    top: f64,
) -> Result<Chart<'a, 'b>> {
    let key_points: Vec<f64> = threads.iter().map(|&n| n as f64).collect();
    let (fewest, most) = (key_points[0], key_points[key_points.len() - 1]);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(
            (fewest / 1.3..most * 1.3)
                .log_scale()
                .with_key_points(key_points),
            0.0..top * 1.15,
        )?;
    chart
        .configure_mesh()
        .x_desc("threads")
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 12))
        .light_line_style(TRANSPARENT)
        .x_label_formatter(&|threads| format!("{threads}"))
        .draw()?;
    Ok(chart)
}

/// A thin grey dashed reference line (a point per thread count: on the
/// logarithmic x axis, the ideal is not a straight line).
fn draw_dashed(
    chart: &mut Chart<'_, '_>,
    label: &str,
    points: impl Iterator<Item = (f64, f64)> + Clone,
) -> Result<()> {
    let style = BLACK.mix(0.4).stroke_width(1);
    chart
        .draw_series(DashedLineSeries::new(points, 4, 4, style))?
        .label(label)
        .legend(move |(x, y)| DashedPathElement::new([(x, y), (x + LEGEND_LINE, y)], 4, 4, style));
    Ok(())
}

fn draw_line(chart: &mut Chart<'_, '_>, series: &Series) -> Result<()> {
    let style = series.color.stroke_width(2);
    chart
        .draw_series(LineSeries::new(series.points.iter().copied(), style).point_size(3))?
        .label(&series.label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + LEGEND_LINE, y)], style));
    Ok(())
}

fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.5))
        .label_font(("sans-serif", 11))
        .draw()?;
    Ok(())
}
