//! `plot`: the latency percentiles of a results JSON as a PNG. One line per latency of each
//! scenario over p50, p90, p99, p99.9 and max, on a logarithmic scale in milliseconds, with a
//! legend beside the chart. Text is drawn with a font compiled into the binary (Hack, from
//! `epaint_default_fonts`), so no system font or fontconfig is needed.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use plotters::{
    coord::ranged1d::SegmentValue,
    prelude::*,
    style::{FontStyle, register_font},
};
use serde_json::{Map, Value};

/// The percentiles drawn, with the field of the report that holds each one.
const PERCENTILES: [(&str, &str); 5] = [
    ("p50", "p50_ms"),
    ("p90", "p90_ms"),
    ("p99", "p99_ms"),
    ("p99.9", "p99_9_ms"),
    ("max", "max_ms"),
];

/// Scenarios in the order of the legend; any other follow in the order of the file.
const ORDER: [&str; 9] = [
    "pairs",
    "rate_private",
    "rate_target",
    "rate_steps",
    "rate",
    "fanout",
    "slow",
    "ceiling",
    "idle",
];

/// Ten colours that tell apart (matplotlib's "tab10").
const COLOURS: [RGBColor; 10] = [
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

/// The smallest latency drawn (log scale: zero has no place on it).
const FLOOR_MS: f64 = 0.001;

const FONT: &str = "sans-serif";

#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// The results JSON: scripts/bench.sh's bench/results/<stamp>.json, or one scenario's
    /// `--json` output.
    #[arg(long)]
    results: PathBuf,
    /// The PNG to write (default: the results path with .png).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Which latencies to draw: names containing any of these comma-separated words, or
    /// `all`.
    #[arg(long, default_value = "new_message,last_member,publish_to_ack")]
    latencies: String,
    /// Image width in pixels.
    #[arg(long, default_value_t = 1400)]
    width: u32,
    /// Image height in pixels.
    #[arg(long, default_value_t = 800)]
    height: u32,
}

/// One line of the chart.
#[derive(Debug, PartialEq)]
struct Series {
    label: String,
    /// Milliseconds, one per entry of [`PERCENTILES`].
    values: Vec<f64>,
}

pub fn run(args: &PlotArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.results)
        .with_context(|| format!("reading {}", args.results.display()))?;
    let results: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.results.display()))?;
    let wanted: Vec<&str> = args
        .latencies
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    let series = series(&results, &wanted);
    anyhow::ensure!(
        !series.is_empty(),
        "{} holds no latency matching {:?}",
        args.results.display(),
        args.latencies
    );
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.results.with_extension("png"));
    draw(
        &out,
        &title(&results),
        &series,
        &notes(&results),
        (args.width, args.height),
    )?;
    eprintln!("jetchat-load: wrote {}", out.display());
    Ok(())
}

/// The scenarios of a suite's results, or the one report a scenario's `--json` printed.
fn scenarios(results: &Value) -> Vec<(String, &Map<String, Value>)> {
    if let Some(all) = results.get("scenarios").and_then(Value::as_object) {
        let mut named: Vec<(String, &Map<String, Value>)> = all
            .iter()
            .filter_map(|(name, report)| Some((name.clone(), report.as_object()?)))
            .collect();
        named.sort_by_key(|(name, _)| ORDER.iter().position(|o| o == name).unwrap_or(ORDER.len()));
        named
    } else if let Some(report) = results.as_object() {
        let name = report
            .get("scenario")
            .and_then(Value::as_str)
            .unwrap_or("results");
        vec![(name.to_owned(), report)]
    } else {
        Vec::new()
    }
}

/// Every latency with samples whose name matches `wanted` (any word of it, or `all`).
fn series(results: &Value, wanted: &[&str]) -> Vec<Series> {
    let all = wanted.contains(&"all");
    let mut lines = Vec::new();
    for (scenario, report) in scenarios(results) {
        let Some(latencies) = report.get("latency_ms").and_then(Value::as_object) else {
            continue;
        };
        for (name, summary) in latencies {
            if !all && !wanted.iter().any(|w| name.contains(w)) {
                continue;
            }
            if summary.get("count").and_then(Value::as_u64).unwrap_or(0) == 0 {
                continue;
            }
            let values: Option<Vec<f64>> = PERCENTILES
                .iter()
                .map(|(_, field)| summary.get(*field).and_then(Value::as_f64))
                .collect();
            if let Some(values) = values {
                lines.push(Series {
                    label: format!("{scenario}: {}", pretty(name)),
                    values,
                });
            }
        }
    }
    lines
}

/// `send_to_new_message` → `send → new_message`.
fn pretty(name: &str) -> String {
    name.replace("_to_", " → ")
}

fn title(results: &Value) -> String {
    let date = results
        .get("date")
        .or_else(|| results.get("started_at"))
        .and_then(Value::as_str);
    let commit = results
        .pointer("/versions/jetchat_commit")
        .and_then(Value::as_str);
    let mut title = String::from("jetchat latency percentiles (ms, log scale)");
    for part in [date, commit].into_iter().flatten() {
        title.push_str(", ");
        title.push_str(part);
    }
    title
}

/// Lines of text under the legend: what the back-pressure scenario found besides latency.
fn notes(results: &Value) -> Vec<String> {
    let mut notes = Vec::new();
    for (scenario, report) in scenarios(results) {
        let Some(figures) = report.get("figures").and_then(Value::as_object) else {
            continue;
        };
        let figure = |name: &str| figures.get(name).and_then(Value::as_f64);
        if let (Some(closed), Some(slow)) = (figure("slow_closed_4008"), figure("slow_members")) {
            notes.push(format!(
                "{scenario}: {closed:.0} of {slow:.0} slow readers closed with 4008"
            ));
        }
        let mib = |name: &str| figure(name).map(|kib| kib / 1024.0);
        if let (Some(before), Some(peak), Some(after)) = (
            mib("jetchat_rss_before_kib"),
            mib("jetchat_rss_during_peak_kib"),
            mib("jetchat_rss_after_kib"),
        ) {
            notes.push(format!(
                "{scenario}: jetchat RSS {before:.0} → {peak:.0} → {after:.0} MiB"
            ));
            notes.push("  (before, peak during, after)".to_owned());
        }
    }
    notes
}

fn draw(
    out: &Path,
    title: &str,
    series: &[Series],
    notes: &[String],
    size: (u32, u32),
) -> anyhow::Result<()> {
    register_font(FONT, FontStyle::Normal, epaint_default_fonts::HACK_REGULAR)
        .map_err(|_| anyhow!("the built-in font does not load"))?;
    let root = BitMapBackend::new(out, size).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, (FONT, 24))?;
    let legend_width = size.0 * 37 / 100;
    let (chart_area, legend) = root.split_horizontally(size.0 - legend_width);

    let values = series.iter().flat_map(|s| s.values.iter().copied());
    let low = values.clone().fold(f64::INFINITY, f64::min).max(FLOOR_MS);
    let high = values.fold(FLOOR_MS, f64::max).max(low);
    // Whole decades: plotters marks a log axis from its first power of ten on, and only
    // with enough labels asked for does it mark 2, 3, … 9 between them.
    let low = 10f64.powf(low.log10().floor());
    let high = 10f64.powf(high.log10().ceil()).max(low * 10.0);
    let decades = (high / low).log10().round() as usize;
    let mut chart = ChartBuilder::on(&chart_area)
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(
            // An integer range includes its end: one segment per percentile.
            (0..PERCENTILES.len() - 1).into_segmented(),
            (low..high).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => PERCENTILES.get(*i).map_or("", |p| p.0).to_owned(),
            _ => String::new(),
        })
        .y_labels(12 * decades + 10)
        .y_label_formatter(&|v| {
            if round_number(*v) {
                ms(*v)
            } else {
                String::new()
            }
        })
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.15))
        .draw()?;
    for (i, line) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<(SegmentValue<usize>, f64)> = line
            .values
            .iter()
            .enumerate()
            .map(|(x, &v)| (SegmentValue::CenterOf(x), v.max(FLOOR_MS)))
            .collect();
        chart.draw_series(LineSeries::new(
            points.iter().cloned(),
            colour.stroke_width(2),
        ))?;
        let at = points.iter().map(|(x, y)| (x.clone(), *y));
        match shape(i) {
            0 => chart.draw_series(at.map(|p| Circle::new(p, 4, colour.filled())))?,
            1 => chart.draw_series(at.map(|p| TriangleMarker::new(p, 5, colour.filled())))?,
            _ => chart.draw_series(at.map(|p| Cross::new(p, 4, colour.stroke_width(2))))?,
        };
    }

    // The legend: a sample of each line and its name, with its p99.
    let row = 28;
    for (i, line) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let y = 40 + row * i as i32;
        legend.draw(&PathElement::new(
            vec![(0, y), (36, y)],
            colour.stroke_width(2),
        ))?;
        match shape(i) {
            0 => legend.draw(&Circle::new((18, y), 4, colour.filled()))?,
            1 => legend.draw(&TriangleMarker::new((18, y), 5, colour.filled()))?,
            _ => legend.draw(&Cross::new((18, y), 4, colour.stroke_width(2)))?,
        }
        legend.draw(&Text::new(
            format!("{} (p99 {})", line.label, ms(line.values[2])),
            (44, y - 8),
            (FONT, 15),
        ))?;
    }
    let below = 40 + row * series.len() as i32 + row / 2;
    for (i, note) in notes.iter().enumerate() {
        legend.draw(&Text::new(
            note.clone(),
            (0, below + 22 * i as i32),
            (FONT, 15),
        ))?;
    }
    root.present()
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

/// The marker of line `i`: its shape changes every ten lines, where the colours repeat.
fn shape(i: usize) -> usize {
    (i / COLOURS.len()) % 3
}

/// Whether a value is 1, 2 or 5 times a power of ten: those are labelled on the log axis.
fn round_number(v: f64) -> bool {
    if v <= 0.0 {
        return false;
    }
    let mantissa = v / 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .any(|m| (mantissa - m).abs() < 1e-6)
}

/// Milliseconds for an axis or a legend: 0.25, 3.5, 42, 1200.
fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    } else {
        let text = format!("{v:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn summary(p50: f64) -> Value {
        json!({"count": 10, "p50_ms": p50, "p90_ms": p50 * 2.0, "p99_ms": p50 * 3.0,
               "p99_9_ms": p50 * 4.0, "max_ms": p50 * 5.0, "mean_ms": p50})
    }

    fn suite() -> Value {
        json!({
            "date": "2026-11-25T00:00:00Z",
            "versions": {"jetchat_commit": "abc1234"},
            "scenarios": {
                "fanout": {"latency_ms": {
                    "send_to_accepted": summary(1.0),
                    "send_to_each_new_message": summary(2.0),
                }},
                "pairs": {"latency_ms": {"send_to_new_message": summary(3.0)}},
                "slow": {"figures": {"slow_closed_4008": 2, "slow_members": 2,
                    "jetchat_rss_before_kib": 10240, "jetchat_rss_during_peak_kib": 20480,
                    "jetchat_rss_after_kib": 10240},
                    "latency_ms": {
                    "baseline_fast_send_to_new_message": summary(4.0),
                    "slow_fast_send_to_new_message": {"count": 0, "p50_ms": 0.0,
                        "p90_ms": 0.0, "p99_ms": 0.0, "p99_9_ms": 0.0, "max_ms": 0.0},
                }},
                "idle": {"failed": true},
            }
        })
    }

    #[test]
    fn picks_matching_latencies_in_scenario_order() {
        let lines = series(&suite(), &["new_message"]);
        let labels: Vec<&str> = lines.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "pairs: send → new_message",
                "fanout: send → each_new_message",
                "slow: baseline_fast_send → new_message",
            ]
        );
        assert_eq!(lines[0].values, [3.0, 6.0, 9.0, 12.0, 15.0]);
        assert_eq!(series(&suite(), &["all"]).len(), 4);
    }

    #[test]
    fn notes_tell_what_the_slow_readers_got() {
        assert_eq!(
            notes(&suite()),
            [
                "slow: 2 of 2 slow readers closed with 4008",
                "slow: jetchat RSS 10 → 20 → 10 MiB",
                "  (before, peak during, after)",
            ]
        );
    }

    #[test]
    fn one_scenario_report_plots_too() {
        let report =
            json!({"scenario": "rate", "latency_ms": {"send_to_new_message": summary(1.0)}});
        let lines = series(&report, &["new_message"]);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].label, "rate: send → new_message");
    }

    #[test]
    fn writes_a_png() {
        let dir = std::env::temp_dir().join(format!("jetchat-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let results = dir.join("suite.json");
        std::fs::write(&results, suite().to_string()).unwrap();
        run(&PlotArgs {
            results: results.clone(),
            out: None,
            latencies: "new_message".into(),
            width: 800,
            height: 500,
        })
        .unwrap();
        let png = std::fs::read(dir.join("suite.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn log_axis_labels_one_two_five() {
        assert!(round_number(1.0) && round_number(20.0) && round_number(0.05));
        assert!(!round_number(3.0) && !round_number(70.0) && !round_number(0.0));
    }

    #[test]
    fn milliseconds_read_well() {
        assert_eq!(ms(0.25), "0.25");
        assert_eq!(ms(3.5), "3.5");
        assert_eq!(ms(42.0), "42");
        assert_eq!(ms(1234.4), "1234");
    }
}
