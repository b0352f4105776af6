//! The HTML report: `templates/report.html` rendered with minijinja (HTML autoescape on,
//! so every path, name and message from the store is escaped). The templates are
//! embedded in the binary; `reporting.templates_dir` may override any of them by name.
//! The output is one self-contained file: inline CSS, inline SVG, no network fetch.

use super::calendar::{self, Month};
use super::charts::{self, Chart};
use super::data::{LocationReport, ReportData};
use super::{Edition, Exporter};
use crate::problem::one_line;
use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use minijinja::value::Serde;
use minijinja::{Environment, Error, ErrorKind, Value};
use serde::Serialize;
use std::path::PathBuf;

/// The embedded templates, by the name `include`/`import` use.
const TEMPLATES: &[(&str, &str)] = &[
    ("report.html", include_str!("../../templates/report.html")),
    (
        "report_chart.html",
        include_str!("../../templates/report_chart.html"),
    ),
    (
        "report_calendar.html",
        include_str!("../../templates/report_calendar.html"),
    ),
    ("report.css", include_str!("../../templates/report.css")),
    (
        "report_parts.html",
        include_str!("../../templates/report_parts.html"),
    ),
    (
        "fleet_report.html",
        include_str!("../../templates/fleet_report.html"),
    ),
];

pub struct HtmlExporter {
    templates_dir: Option<PathBuf>,
}

/// What the template sees besides the model: layout computed from it.
#[derive(Serialize)]
struct View<'a> {
    report: &'a ReportData,
    /// `latest.html` reloads itself every 5 minutes.
    live: bool,
    months: Vec<Month>,
    overall_chart: Chart,
    cards: Vec<Card<'a>>,
}

#[derive(Serialize)]
struct Card<'a> {
    location: &'a LocationReport,
    problems: Vec<&'a crate::outcome::OpenProblem>,
    health_chart: Chart,
    size_chart: Chart,
}

impl HtmlExporter {
    pub fn new(templates_dir: Option<PathBuf>) -> HtmlExporter {
        if let Some(dir) = templates_dir.as_deref().filter(|d| !d.is_dir()) {
            tracing::warn!(
                "reporting.templates_dir {} is not a directory: the report uses the built-in templates; create it with the templates to override, or remove the key",
                dir.display()
            );
        }
        HtmlExporter { templates_dir }
    }

    fn environment(&self) -> Environment<'static> {
        let mut env = Environment::new();
        let dir = self.templates_dir.clone();
        env.set_loader(move |name| {
            if let Some(dir) = &dir {
                let file = dir.join(name);
                if !name.contains(['/', '\\']) && file.is_file() {
                    return std::fs::read_to_string(&file).map(Some).map_err(|e| {
                        Error::new(
                            ErrorKind::TemplateNotFound,
                            format!("cannot read {}: {e}", file.display()),
                        )
                    });
                }
            }
            Ok(TEMPLATES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, s)| s.to_string()))
        });
        env.add_filter("bytes", |n: u64| charts::human_bytes(n));
        env.add_filter("age", |secs: i64| crate::output::human_age(secs));
        env.add_filter("score", |s: Option<f64>| {
            s.map_or_else(|| "n/a".to_string(), |s| format!("{s:.2}"))
        });
        env.add_filter("percent", |r: Option<f64>| {
            r.map_or_else(|| "n/a".to_string(), |r| format!("{:.0}%", r * 100.0))
        });
        env.add_filter("count", |n: u64| thousands(n));
        env.add_filter("wrap", |s: String| {
            Value::from_safe_string(wrap_at_separators(&s))
        });
        // Text that may quote a file name (a check's detail): on one line, as in the
        // text and Nagios output.
        env.add_filter("line", |s: String| one_line(&s).into_owned());
        env.add_filter("when", |t: Option<String>| {
            t.map_or_else(|| "–".to_string(), |t| short_time(&t))
        });
        env
    }

    fn view<'a>(&self, report: &'a ReportData, edition: Edition) -> Result<View<'a>> {
        let day = |s: &str| {
            s.parse::<NaiveDate>()
                .with_context(|| format!("bad day `{s}`"))
        };
        let time = |s: &str| -> Result<DateTime<Utc>> {
            Ok(DateTime::parse_from_rfc3339(s)
                .with_context(|| format!("bad time `{s}`"))?
                .to_utc())
        };
        let tz: chrono_tz::Tz = report.timezone.parse().unwrap_or(chrono_tz::UTC);
        let today = day(&report.today)?;
        let (start, end) = (time(&report.window.start)?, time(&report.window.end)?);
        let first = start.with_timezone(&tz).date_naive();
        let (warning, critical) = (report.thresholds.warning, report.thresholds.critical);
        let scores = |h: &[super::data::DayScore]| -> Result<Vec<(NaiveDate, Option<f64>)>> {
            h.iter().map(|d| Ok((day(&d.day)?, d.score))).collect()
        };
        // Worst first, as everywhere in the page; the calendar's lines follow the cards.
        let mut ordered: Vec<&LocationReport> = report.locations.iter().collect();
        ordered.sort_by_key(|l| std::cmp::Reverse(super::data::status_rank(&l.status)));
        let mut cards = Vec::new();
        for &l in &ordered {
            let sizes: Vec<(DateTime<Utc>, u64, &str)> = report
                .backups
                .iter()
                .filter(|b| b.location == l.name)
                .map(|b| Ok((time(&b.timestamp)?, b.size, b.path.as_str())))
                .collect::<Result<_>>()?;
            cards.push(Card {
                location: l,
                problems: report
                    .problems
                    .iter()
                    .filter(|p| p.location.as_deref() == Some(l.name.as_str()))
                    .collect(),
                health_chart: charts::health(
                    "Health score",
                    charts::CARD,
                    &scores(&l.health_history)?,
                    first,
                    today,
                    warning,
                    critical,
                ),
                size_chart: charts::sizes("Backup sizes", charts::CARD, &sizes, start, end, &tz),
            });
        }
        Ok(View {
            report,
            live: edition == Edition::Latest,
            months: calendar::months(
                &report.calendar,
                first,
                today,
                &ordered
                    .iter()
                    .map(|l| calendar::Track {
                        name: l.name.clone(),
                        counts: l.several_a_day,
                    })
                    .collect::<Vec<_>>(),
            ),
            overall_chart: charts::health(
                "Overall health (mean of the locations)",
                charts::WIDE,
                &scores(&report.health_trend)?,
                first,
                today,
                warning,
                critical,
            ),
            cards,
        })
    }
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A file name on one line ([`one_line`]: a newline or U+202E is shown escaped, as in the
/// text and Nagios output), HTML-escaped, with a line-break opportunity (`<wbr>`) after
/// each `_`, `-`, `.` and `/`: a long name wraps between its parts, not in the middle of
/// one.
fn wrap_at_separators(s: &str) -> String {
    let s = one_line(s);
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '/' => out.push_str("&#x2f;"),
            c => out.push(c),
        }
        if matches!(c, '_' | '-' | '.' | '/') {
            out.push_str("<wbr>");
        }
    }
    out
}

/// `2026-11-21T02:00:00+01:00` → `2026-11-21 02:00`.
fn short_time(t: &str) -> String {
    match DateTime::parse_from_rfc3339(t) {
        Ok(d) => d.format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => t.to_string(),
    }
}

impl HtmlExporter {
    /// Render the template `name` (embedded, or overridden in `reporting.templates_dir`)
    /// with `view` as its context, for reports other than the host's own.
    /// The page goes to `out` as it renders.
    pub(super) fn render_template_to(
        &self,
        name: &str,
        view: &impl Serialize,
        out: &mut dyn std::io::Write,
    ) -> Result<()> {
        let env = self.environment();
        let template = env.get_template(name)?;
        template
            .render_captured_to(Value::from(Serde(view)), out)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("rendering templates/{name}"))?;
        Ok(())
    }
}

impl Exporter for HtmlExporter {
    fn extension(&self) -> &'static str {
        "html"
    }

    fn render(&self, report: &ReportData, edition: Edition) -> Result<Vec<u8>> {
        let env = self.environment();
        let view = self.view(report, edition)?;
        let template = env.get_template("report.html")?;
        let html = template
            .render(Value::from(Serde(&view)))
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("rendering templates/report.html")?;
        Ok(html.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_helpers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_752_197), "1,752,197");
        assert_eq!(short_time("2026-11-21T02:00:00+01:00"), "2026-11-21 02:00");
        assert_eq!(short_time("junk"), "junk");
        assert_eq!(
            wrap_at_separators("db_2026-11.sql"),
            "db_<wbr>2026-<wbr>11.<wbr>sql"
        );
        assert_eq!(wrap_at_separators("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#x27;");
        assert_eq!(
            wrap_at_separators("a\nb\u{202e}c"),
            "a\\nb\\u{202e}c",
            "on one line"
        );
    }
}
