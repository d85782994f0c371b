//! `latency.svg`: write and read latency per entry of every row, on a logarithmic axis
//! (plotters, SVG backend only).

use crate::report::Row;
use anyhow::{Result, anyhow};
use plotters::prelude::*;
use std::path::Path;

/// Draws the chart of `rows` into `path`.
pub fn latency_svg(rows: &[Row], path: &Path) -> Result<()> {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.write_us > 0.0 && r.read_us > 0.0).collect();
    if rows.is_empty() {
        return Ok(());
    }
    let values = rows.iter().flat_map(|r| [r.write_us, r.read_us]);
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(0.0, f64::max);
    let (lo, hi) = (10f64.powf(lo.log10().floor()), 10f64.powf(hi.log10().ceil() + 0.01));
    let width = (160 + 70 * rows.len()) as u32;
    let root = SVGBackend::new(path, (width.max(640), 480)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<std::io::Error>| anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(err)?;
    let n = rows.len();
    let mut chart = ChartBuilder::on(&root)
        .caption("writeManyLogs: latency per entry (µs, log scale)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(120)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, (lo..hi).log_scale())
        .map_err(err)?;
    let names: Vec<String> = rows.iter().map(|r| r.case.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_style(("sans-serif", 13).into_font().transform(FontTransform::Rotate90))
        .x_label_formatter(&|x| {
            let i = x.round();
            let on_tick = (x - i).abs() < 1e-6 && i >= 0.0;
            if on_tick { names.get(i as usize).cloned().unwrap_or_default() } else { String::new() }
        })
        .y_desc("µs per entry")
        .draw()
        .map_err(err)?;
    let write_color = RGBColor(214, 96, 77);
    let read_color = RGBColor(67, 147, 195);
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            Rectangle::new(
                [(i as f64 - 0.4, lo), (i as f64 - 0.02, r.write_us)],
                write_color.filled(),
            )
        }))
        .map_err(err)?
        .label("write")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], write_color.filled()));
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            Rectangle::new(
                [(i as f64 + 0.02, lo), (i as f64 + 0.4, r.read_us)],
                read_color.filled(),
            )
        }))
        .map_err(err)?
        .label("full-range read")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], read_color.filled()));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
