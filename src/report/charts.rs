//! Geometry of the inline SVG trend charts: health score per day and backup sizes over
//! the window. Computes coordinates and labels only; `templates/report_chart.html` draws
//! them. Every chart carries a text summary, so no reader depends on the picture alone.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

const LEFT: f64 = 52.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 20.0;

#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub width: f64,
    pub height: f64,
    pub title: String,
    /// What the chart shows, in words.
    pub summary: String,
    pub plot: Plot,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    /// Polyline point lists (`x,y x,y …`); a gap in the data starts a new line.
    pub lines: Vec<String>,
    pub dots: Vec<Dot>,
    pub bars: Vec<Bar>,
    pub guides: Vec<Guide>,
    pub empty: bool,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Plot {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    pub pos: f64,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dot {
    pub x: f64,
    pub y: f64,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub title: String,
}

/// A horizontal reference line (health thresholds).
#[derive(Debug, Clone, Serialize)]
pub struct Guide {
    pub y: f64,
    pub text: String,
    pub class: &'static str,
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The drawing size in SVG units; text keeps its size in these units, so a chart shown
/// wider gets a wider canvas rather than bigger letters.
#[derive(Debug, Clone, Copy)]
pub struct Canvas {
    pub width: f64,
    pub height: f64,
}

/// A chart on a location's card.
pub const CARD: Canvas = Canvas {
    width: 320.0,
    height: 110.0,
};
/// A chart across the page.
pub const WIDE: Canvas = Canvas {
    width: 480.0,
    height: 130.0,
};

impl Canvas {
    fn plot(self) -> Plot {
        Plot {
            x0: LEFT,
            y0: TOP,
            x1: self.width - RIGHT,
            y1: self.height - BOTTOM,
        }
    }
}

fn frame(title: &str, canvas: Canvas) -> Chart {
    Chart {
        width: canvas.width,
        height: canvas.height,
        title: title.to_string(),
        summary: String::new(),
        plot: canvas.plot(),
        y_ticks: Vec::new(),
        x_ticks: Vec::new(),
        lines: Vec::new(),
        dots: Vec::new(),
        bars: Vec::new(),
        guides: Vec::new(),
        empty: true,
    }
}

fn short_day(d: NaiveDate) -> String {
    d.format("%b %-d").to_string()
}

/// Health score per day from `first` to `last` (inclusive), with threshold guides.
pub fn health(
    title: &str,
    canvas: Canvas,
    scores: &[(NaiveDate, Option<f64>)],
    first: NaiveDate,
    last: NaiveDate,
    warning: f64,
    critical: f64,
) -> Chart {
    let mut c = frame(title, canvas);
    let plot = c.plot;
    let span = (last - first).num_days().max(1) as f64;
    let x =
        |d: NaiveDate| round(plot.x0 + (d - first).num_days() as f64 / span * (plot.x1 - plot.x0));
    let y = |s: f64| round(plot.y1 - s.clamp(0.0, 1.0) * (plot.y1 - plot.y0));
    c.y_ticks = [0.0, 0.5, 1.0]
        .iter()
        .map(|&v| Tick {
            pos: y(v),
            text: format!("{v:.1}"),
        })
        .collect();
    c.x_ticks = vec![
        Tick {
            pos: x(first),
            text: short_day(first),
        },
        Tick {
            pos: x(last),
            text: short_day(last),
        },
    ];
    c.guides = vec![
        Guide {
            y: y(warning),
            text: format!("warning {warning:.2}"),
            class: "warn",
        },
        Guide {
            y: y(critical),
            text: format!("critical {critical:.2}"),
            class: "crit",
        },
    ];
    let mut line: Vec<String> = Vec::new();
    let mut prev: Option<NaiveDate> = None;
    for &(day, score) in scores.iter().filter(|(d, _)| *d >= first && *d <= last) {
        let Some(s) = score else {
            flush(&mut c.lines, &mut line);
            prev = None;
            continue;
        };
        if prev.is_some_and(|p| day - p > Duration::days(1)) {
            flush(&mut c.lines, &mut line);
        }
        line.push(format!("{},{}", x(day), y(s)));
        c.dots.push(Dot {
            x: x(day),
            y: y(s),
            title: format!("{day}: {s:.2}"),
        });
        prev = Some(day);
    }
    flush(&mut c.lines, &mut line);
    let scored: Vec<f64> = scores.iter().filter_map(|(_, s)| *s).collect();
    c.empty = scored.is_empty();
    c.summary = match (scored.first(), scored.last()) {
        (Some(f), Some(l)) => format!(
            "{} scored day{}; from {f:.2} to {l:.2}, lowest {:.2}",
            scored.len(),
            if scored.len() == 1 { "" } else { "s" },
            scored.iter().copied().fold(f64::INFINITY, f64::min)
        ),
        _ => "no stored health scores in the window yet".into(),
    };
    c
}

fn flush(lines: &mut Vec<String>, line: &mut Vec<String>) {
    if !line.is_empty() {
        lines.push(line.join(" "));
        line.clear();
    }
}

/// One bar per backup (timestamp, size, path) over [start, end].
pub fn sizes(
    title: &str,
    canvas: Canvas,
    backups: &[(DateTime<Utc>, u64, &str)],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    tz: &chrono_tz::Tz,
) -> Chart {
    let mut c = frame(title, canvas);
    let plot = c.plot;
    let span = (end - start).num_seconds().max(1) as f64;
    let width = plot.x1 - plot.x0;
    let x = |t: DateTime<Utc>| plot.x0 + (t - start).num_seconds() as f64 / span * width;
    let max = backups.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let bar_w = round((width / backups.len().max(8) as f64 * 0.7).clamp(1.0, 12.0));
    for &(t, size, path) in backups.iter().filter(|b| b.0 >= start && b.0 <= end) {
        let h =
            round(size as f64 / max * (plot.y1 - plot.y0)).max(if size > 0 { 0.8 } else { 0.0 });
        let left = (x(t) - bar_w / 2.0).clamp(plot.x0, plot.x1 - bar_w);
        c.bars.push(Bar {
            x: round(left),
            y: round(plot.y1 - h),
            w: bar_w,
            h,
            // The tooltip names the file on one line (a newline or U+202E shown escaped).
            title: format!(
                "{}: {} at {}",
                crate::problem::one_line(path),
                human_bytes(size),
                t.with_timezone(tz).format("%Y-%m-%d %H:%M")
            ),
        });
    }
    c.y_ticks = vec![
        Tick {
            pos: plot.y1,
            text: "0".into(),
        },
        Tick {
            pos: plot.y0,
            text: human_bytes(max as u64),
        },
    ];
    let (first, last) = (
        start.with_timezone(tz).date_naive(),
        end.with_timezone(tz).date_naive(),
    );
    c.x_ticks = vec![
        Tick {
            pos: plot.x0,
            text: short_day(first),
        },
        Tick {
            pos: plot.x1,
            text: short_day(last),
        },
    ];
    c.empty = c.bars.is_empty();
    let sizes: Vec<u64> = backups.iter().map(|b| b.1).collect();
    c.summary = match (sizes.first(), sizes.last()) {
        (Some(f), Some(l)) => format!(
            "{} backup{}; first {}, last {}, largest {}",
            sizes.len(),
            if sizes.len() == 1 { "" } else { "s" },
            human_bytes(*f),
            human_bytes(*l),
            human_bytes(max as u64)
        ),
        _ => "no backups in the window".into(),
    };
    c
}

pub fn human_bytes(n: u64) -> String {
    bytesize::ByteSize(n).display().iec().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn health_lines_break_at_gaps() {
        let scores = [
            (d("2026-01-01"), Some(1.0)),
            (d("2026-01-02"), Some(0.5)),
            (d("2026-01-04"), Some(0.0)),
            (d("2026-01-05"), None),
        ];
        let c = health(
            "h",
            CARD,
            &scores,
            d("2026-01-01"),
            d("2026-01-05"),
            0.8,
            0.5,
        );
        assert_eq!(c.lines.len(), 2);
        assert_eq!(
            c.lines[0],
            format!(
                "{},{} {},{}",
                LEFT,
                TOP,
                round(LEFT + 0.25 * (CARD.plot().x1 - CARD.plot().x0)),
                round((CARD.plot().y0 + CARD.plot().y1) / 2.0)
            )
        );
        assert_eq!(c.dots.len(), 3);
        assert!(!c.empty);
        assert!(c.summary.contains("lowest 0.00"), "{}", c.summary);
    }

    #[test]
    fn size_bars_stay_inside_the_plot() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let end = start + Duration::days(2);
        let c = sizes(
            "s",
            CARD,
            &[(start, 100, "a"), (end, 50, "b")],
            start,
            end,
            &chrono_tz::UTC,
        );
        assert_eq!(c.bars.len(), 2);
        for b in &c.bars {
            assert!(
                b.x >= CARD.plot().x0 && b.x + b.w <= CARD.plot().x1 + 0.05,
                "{b:?}"
            );
        }
        assert_eq!(c.bars[0].h, CARD.plot().y1 - CARD.plot().y0);
        assert!(sizes("s", CARD, &[], start, end, &chrono_tz::UTC).empty);
    }
}
