//! The speed-up-against-threads chart, drawn with plotters as SVG.

use crate::table::Table;
use plotters::coord::Shift;
use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use std::error::Error;
use std::fs;
use std::path::Path;

const SIZE: (u32, u32) = (1000, 700);

/// One colour per workload (Tableau 10).
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// (dash, gap) in pixels of a table's second and third pool; the first
/// pool's line is solid, with markers.
const DASHES: [(u32, u32); 2] = [(10, 5), (3, 3)];

/// Length of a line in the legend.
const LEGEND_LINE: i32 = 24;

type Chart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<WithKeyPoints<LogCoord<f64>>, RangedCoordf64>>;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// One line of the chart.
struct Series {
    label: String,
    color: RGBColor,
    /// `None` for a solid line with markers.
    dashes: Option<(u32, u32)>,
    /// (threads, speed-up).
    points: Vec<(f64, f64)>,
}

/// Whether any of `tables` has a line to draw.
pub fn has_lines(tables: &[Table]) -> bool {
    tables.iter().any(|table| table.is_run_time)
}

/// Writes the speed-ups of every run-time table, measured at `threads`
/// (ascending, not empty), to `path`, creating its directory if needed.
pub fn write(path: &Path, threads: &[usize], tables: &[Table]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let series = speed_ups(tables);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = build_chart(&root, threads, &series)?;
    draw_ideal(&mut chart, threads)?;
    for line in &series {
        draw_series(&mut chart, line)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.5))
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

/// A line per pool of every run-time table: its time at the fewest threads
/// divided by its time at each thread count.
fn speed_ups(tables: &[Table]) -> Vec<Series> {
    let mut series = Vec::new();
    let charted = tables.iter().filter(|table| table.is_run_time);
    for (table, &color) in charted.zip(COLORS.iter().cycle()) {
        let Some(first) = table.rows.first() else {
            continue;
        };
        for (column, &pool) in table.pools.iter().enumerate() {
            let base = first.values[column];
            let points = table
                .rows
                .iter()
                .map(|row| (row.threads as f64, base / row.values[column]))
                .collect();
            series.push(Series {
                label: format!("{} {pool}", table.key),
                color,
                dashes: column.checked_sub(1).map(|i| DASHES[i % DASHES.len()]),
                points,
            });
        }
    }
    series
}

/// Axes: threads on a log scale, labelled at each measured count; speed-up
/// from zero to above both the ideal and the highest measured one.
fn build_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    threads: &[usize],
    series: &[Series],
) -> Result<Chart<'a, 'b>> {
    let key_points: Vec<f64> = threads.iter().map(|&n| n as f64).collect();
    let (fewest, most) = (key_points[0], key_points[key_points.len() - 1]);
    let highest = series
        .iter()
        .flat_map(|line| line.points.iter().map(|&(_, speed_up)| speed_up))
        .fold(most / fewest, f64::max);
    let caption = match threads[0] {
        1 => "Speed-up against threads (each pool against itself at 1 thread)".to_owned(),
        n => format!("Speed-up against threads (each pool against itself at {n} threads)"),
    };
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(
            (fewest / 1.2..most * 1.2)
                .log_scale()
                .with_key_points(key_points),
            0.0..highest * 1.15,
        )?;
    chart
        .configure_mesh()
        .x_desc("threads")
        .y_desc("speed-up")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(TRANSPARENT)
        .x_label_formatter(&|threads| format!("{threads}"))
        .draw()?;
    Ok(chart)
}

/// Linear speed-up, as a thin grey dashed line.
fn draw_ideal(chart: &mut Chart<'_, '_>, threads: &[usize]) -> Result<()> {
    let fewest = threads[0] as f64;
    // A point per thread count: on the logarithmic x axis, the ideal is
    // not a straight line.
    let points = threads.iter().map(|&n| (n as f64, n as f64 / fewest));
    let style = BLACK.mix(0.4).stroke_width(1);
    chart
        .draw_series(DashedLineSeries::new(points, 4, 4, style))?
        .label("ideal")
        .legend(move |(x, y)| DashedPathElement::new([(x, y), (x + LEGEND_LINE, y)], 4, 4, style));
    Ok(())
}

fn draw_series(chart: &mut Chart<'_, '_>, series: &Series) -> Result<()> {
    let style = series.color.stroke_width(2);
    let points = series.points.iter().copied();
    let legend_line = |(x, y)| [(x, y), (x + LEGEND_LINE, y)];
    match series.dashes {
        None => chart
            .draw_series(LineSeries::new(points, style).point_size(3))?
            .label(&series.label)
            .legend(move |at| PathElement::new(legend_line(at), style)),
        Some((dash, gap)) => chart
            .draw_series(DashedLineSeries::new(points, dash, gap, style))?
            .label(&series.label)
            .legend(move |at| DashedPathElement::new(legend_line(at), dash, gap, style)),
    };
    Ok(())
}
