//! A run's time series drawn as an SVG chart (records/s above, p50 and p99 latency
//! below), from a fresh run or from saved JSON, so the charts in BENCHMARKS.md can be
//! regenerated from the results they show. SVG only: no font or image libraries.

use std::path::Path;

use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Deserialize;

use super::series::SeriesPoint;

/// What a chart needs; read from a saved report (other fields are ignored).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ChartInput {
    pub mode: String,
    pub offered_rate: Option<f64>,
    pub clients: Option<usize>,
    pub series: Vec<SeriesPoint>,
}

/// `medchain bench --chart-from FILE.json --svg OUT.svg`.
pub fn redraw(json: &Path, svg: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(json).with_context(|| format!("reading {}", json.display()))?;
    let input: ChartInput = serde_json::from_str(&text)
        .with_context(|| format!("{} is not the JSON of a bench run", json.display()))?;
    if input.series.is_empty() {
        anyhow::bail!("{} has no series to draw", json.display());
    }
    draw(&input, svg)
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart: {e}")
}

/// The chart of `input` into the file `svg`: records/s above, latency below, sharing
/// the time axis.
pub fn draw(input: &ChartInput, svg: &Path) -> anyhow::Result<()> {
    let load = match (input.offered_rate, input.clients) {
        (Some(r), _) => format!("{r} records/s offered"),
        (None, Some(c)) => format!("closed loop, {c} clients"),
        (None, None) => "closed loop".into(),
    };
    let title = format!("medchain bench: {} mode, {load}", input.mode);
    let s = &input.series;
    let x_max = s.iter().map(|p| p.t_s + 1).max().unwrap_or(1) as f64;

    let root = SVGBackend::new(svg, (960, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let root = root.titled(&title, ("sans-serif", 20)).map_err(plot_err)?;
    let (upper, lower) = root.split_vertically(300);
    draw_rate(&upper, s, x_max)?;
    draw_latency(&lower, s, x_max)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

/// A part of the chart's drawing area.
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// The point of each second is drawn at its middle: records started in [t, t+1).
fn mid(p: &SeriesPoint) -> f64 {
    p.t_s as f64 + 0.5
}

/// Labels on the time axis: one per second up to ten seconds, eleven for longer runs.
fn x_labels(x_max: f64) -> usize {
    (x_max.min(10.0) as usize) + 1
}

fn whole(v: &f64) -> String {
    format!("{v:.0}")
}

fn draw_rate(area: &Area<'_>, s: &[SeriesPoint], x_max: f64) -> anyhow::Result<()> {
    let rate_max = s.iter().map(|p| p.records_per_s).max().unwrap_or(0).max(1) as f64 * 1.1;
    let mut top = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(60)
        .caption("committed records/s", ("sans-serif", 16))
        .build_cartesian_2d(0f64..x_max, 0f64..rate_max)
        .map_err(plot_err)?;
    top.configure_mesh()
        .x_labels(x_labels(x_max))
        .x_label_formatter(&whole)
        .y_label_formatter(&whole)
        .x_desc("time (s)")
        .y_desc("records/s")
        .draw()
        .map_err(plot_err)?;
    top.draw_series(LineSeries::new(
        s.iter().map(|p| (mid(p), p.records_per_s as f64)),
        &BLUE,
    ))
    .map_err(plot_err)?;
    Ok(())
}

fn draw_latency(area: &Area<'_>, s: &[SeriesPoint], x_max: f64) -> anyhow::Result<()> {
    let lat_max = s
        .iter()
        .filter_map(|p| p.p99_ms.or(p.p50_ms))
        .fold(1.0f64, f64::max)
        * 1.1;
    let mut bottom = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(60)
        .caption("commit latency (ms)", ("sans-serif", 16))
        .build_cartesian_2d(0f64..x_max, 0f64..lat_max)
        .map_err(plot_err)?;
    bottom
        .configure_mesh()
        .x_labels(x_labels(x_max))
        .x_label_formatter(&whole)
        .x_desc("time (s)")
        .y_desc("ms")
        .draw()
        .map_err(plot_err)?;
    for (name, colour, get) in [
        (
            "p50",
            BLUE,
            (|p: &SeriesPoint| p.p50_ms) as fn(&SeriesPoint) -> Option<f64>,
        ),
        ("p99", RED, |p: &SeriesPoint| p.p99_ms),
    ] {
        bottom
            .draw_series(LineSeries::new(
                s.iter().filter_map(|p| get(p).map(|v| (mid(p), v))),
                &colour,
            ))
            .map_err(plot_err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    bottom
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_with_text_is_drawn_from_saved_json() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("run.json");
        let series: Vec<serde_json::Value> = (0..5)
            .map(|t| {
                serde_json::json!({"t_s": t, "committed": 100 * (t + 1), "records_per_s": 100,
                    "p50_ms": if t == 2 { serde_json::Value::Null } else { serde_json::json!(10.5) },
                    "p99_ms": 40.0, "failures": 0})
            })
            .collect();
        let doc = serde_json::json!({"mode": "http", "clients": 8, "offered_rate": null,
            "throughput_rps": 100.0, "series": series});
        std::fs::write(&json, doc.to_string()).unwrap();
        let svg = dir.path().join("run.svg");
        redraw(&json, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..100.min(text.len())]);
        assert!(text.contains("<polyline"), "no lines drawn");
        assert!(text.contains("committed records/s"), "no caption text");
        assert!(text.contains("p99"), "no legend text");

        std::fs::write(&json, "{\"mode\":\"http\"}").unwrap();
        assert!(redraw(&json, &svg).is_err());
    }
}
