//! Month grids for the HTML calendar: one month per month of the window, weeks from
//! Monday, the days of adjacent months filling the first and last week, and in every day
//! one line per location (always the same line, so a gap in one location is never hidden
//! by another's backup). Pure layout of the model's `CalendarDay`s; no colours here (the
//! template maps states to classes).

use super::data::{CalendarDay, LocationDay};
use chrono::{Datelike, Duration, Months, NaiveDate};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Serialize)]
pub struct Month {
    /// Anchor id, `month-YYYY-MM`.
    pub id: String,
    pub title: String,
    pub prev: Option<MonthLink>,
    pub next: Option<MonthLink>,
    pub weeks: Vec<Vec<Day>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MonthLink {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Day {
    pub date: String,
    pub number: u32,
    /// False for the days of the adjacent months (shown dimmed).
    pub in_month: bool,
    pub today: bool,
    pub future: bool,
    pub marks: Vec<Mark>,
    /// Missing due slots that day (`location HH:MM`).
    pub missing: Vec<String>,
    /// One line per location, in the order of [`Track`]s given.
    pub rows: Vec<Row>,
    /// A text description of the day, for the tooltip and screen readers.
    pub label: String,
}

/// A location as the calendar draws it.
#[derive(Debug, Clone)]
pub struct Track {
    pub name: String,
    /// Several slots a day (hourly, or a cron firing more than daily): a day shows its
    /// count of backups, not only a tick.
    pub counts: bool,
}

/// One location's mark on one day.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub state: RowState,
    /// What the mark shows: `✔`, a count, `✖`, or nothing.
    pub text: String,
    pub label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowState {
    /// Backups and no missed slot.
    Ok,
    /// Backups, but also missed slots.
    Partial,
    /// Missed slots and no backup.
    Missed,
    /// Nothing that day (nothing due, or a day in the future).
    Empty,
}

fn row(track: &Track, day: Option<&LocationDay>) -> Row {
    let (backups, missed) = day.map_or((0, 0), |d| (d.backups, d.missing.len() as u64));
    let state = match (backups, missed) {
        (0, 0) => RowState::Empty,
        (_, 0) => RowState::Ok,
        (0, _) => RowState::Missed,
        _ => RowState::Partial,
    };
    let text = match state {
        RowState::Empty => String::new(),
        _ if track.counts => {
            if missed > 0 {
                format!("{backups}/{}", backups + missed)
            } else {
                backups.to_string()
            }
        }
        RowState::Ok if backups > 1 => backups.to_string(),
        RowState::Ok => "✔".to_string(),
        RowState::Partial => format!("{backups}/{}", backups + missed),
        RowState::Missed => "✖".to_string(),
    };
    let mut label = format!("{}: ", track.name);
    label.push_str(&match backups {
        0 => "no backup".to_string(),
        1 => "1 backup".to_string(),
        n => format!("{n} backups"),
    });
    if let Some(d) = day.filter(|d| !d.missing.is_empty()) {
        label.push_str(&format!(", missed {}", d.missing.join(", ")));
    }
    Row { state, text, label }
}

#[derive(Debug, Clone, Serialize)]
pub struct Mark {
    pub letter: String,
    /// CSS class: `db`, `web` or `gen`.
    pub class: &'static str,
    pub label: &'static str,
}

fn mark(letter: &str) -> Mark {
    let (class, label) = match letter {
        "d" => ("db", "database"),
        "w" => ("web", "website/files"),
        _ => ("gen", "generic"),
    };
    Mark {
        letter: letter.to_string(),
        class,
        label,
    }
}

fn anchor(first: NaiveDate) -> MonthLink {
    MonthLink {
        id: first.format("month-%Y-%m").to_string(),
        title: first.format("%B %Y").to_string(),
    }
}

/// The months from `first`'s to `today`'s, oldest first, one line per track in each day.
pub fn months(
    days: &[CalendarDay],
    first: NaiveDate,
    today: NaiveDate,
    tracks: &[Track],
) -> Vec<Month> {
    let by_date: HashMap<&str, &CalendarDay> = days.iter().map(|d| (d.date.as_str(), d)).collect();
    let mut starts = Vec::new();
    let mut m = first.with_day(1).unwrap_or(first);
    while m <= today {
        starts.push(m);
        m = m + Months::new(1);
    }
    starts
        .iter()
        .enumerate()
        .map(|(i, &start)| Month {
            id: anchor(start).id,
            title: anchor(start).title,
            prev: i.checked_sub(1).map(|p| anchor(starts[p])),
            next: starts.get(i + 1).map(|&n| anchor(n)),
            weeks: weeks(start, today, &by_date, tracks),
        })
        .collect()
}

fn weeks(
    start: NaiveDate,
    today: NaiveDate,
    by_date: &HashMap<&str, &CalendarDay>,
    tracks: &[Track],
) -> Vec<Vec<Day>> {
    let end = start + Months::new(1);
    let mut d = start - Duration::days(i64::from(start.weekday().num_days_from_monday()));
    let mut weeks = Vec::new();
    while d < end {
        let week = (0..7)
            .map(|i| day(d + Duration::days(i), start.month(), today, by_date, tracks))
            .collect();
        weeks.push(week);
        d += Duration::days(7);
    }
    weeks
}

fn day(
    date: NaiveDate,
    month: u32,
    today: NaiveDate,
    by_date: &HashMap<&str, &CalendarDay>,
    tracks: &[Track],
) -> Day {
    let key = date.to_string();
    let info = by_date.get(key.as_str());
    let marks: Vec<Mark> = info
        .map(|c| c.marks.iter().map(|m| mark(m)).collect())
        .unwrap_or_default();
    let missing = info.map(|c| c.missing.clone()).unwrap_or_default();
    let mut parts = vec![date.format("%a %-d %B %Y").to_string()];
    if date == today {
        parts.push("today".into());
    }
    if let Some(c) = info.filter(|c| c.backups > 0) {
        let kinds: Vec<&str> = marks.iter().map(|m| m.label).collect();
        let n = if c.backups == 1 {
            "1 backup".to_string()
        } else {
            format!("{} backups", c.backups)
        };
        parts.push(format!("{n} ({})", kinds.join(", ")));
    }
    if !missing.is_empty() {
        parts.push(format!("missing: {}", missing.join(", ")));
    }
    let rows: Vec<Row> = tracks
        .iter()
        .map(|t| {
            let own = info.and_then(|c| c.locations.iter().find(|l| l.location == t.name));
            row(t, own)
        })
        .collect();
    Day {
        date: key,
        number: date.day(),
        in_month: date.month() == month,
        today: date == today,
        future: date > today,
        marks,
        missing,
        rows,
        label: parts.join(" · "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn months_span_the_window_with_links() {
        let days = vec![CalendarDay {
            date: "2026-11-03".into(),
            marks: vec!["d".into(), "w".into()],
            backups: 2,
            missing: vec!["db 02:00".into()],
            locations: vec![LocationDay {
                location: "web".into(),
                backups: 2,
                missing: vec![],
            }],
        }];
        let m = months(&days, date("2026-10-20"), date("2026-11-05"), &[]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].id, "month-2026-10");
        assert!(m[0].prev.is_none());
        assert_eq!(m[0].next.as_ref().unwrap().id, "month-2026-11");
        assert_eq!(m[1].prev.as_ref().unwrap().title, "October 2026");
        // November 2026 starts on a Sunday: the first week begins Monday 26 October.
        let first = &m[1].weeks[0];
        assert_eq!(first[0].date, "2026-10-26");
        assert!(!first[0].in_month);
        assert!(first[6].in_month);
        let d3 = m[1]
            .weeks
            .iter()
            .flatten()
            .find(|d| d.date == "2026-11-03")
            .unwrap();
        assert_eq!(
            d3.marks
                .iter()
                .map(|m| m.letter.as_str())
                .collect::<Vec<_>>(),
            ["d", "w"]
        );
        assert_eq!(d3.missing, ["db 02:00"]);
        assert!(d3.label.contains("missing: db 02:00"), "{}", d3.label);
        let today = m[1].weeks.iter().flatten().filter(|d| d.today).count();
        assert_eq!(today, 1);
        assert!(m.iter().all(|m| m.weeks.iter().all(|w| w.len() == 7)));
    }

    #[test]
    fn every_location_keeps_its_own_line() {
        let day = |locations: Vec<LocationDay>| CalendarDay {
            date: "2026-11-03".into(),
            locations,
            ..CalendarDay::default()
        };
        let ld = |name: &str, backups, missing: &[&str]| LocationDay {
            location: name.into(),
            backups,
            missing: missing.iter().map(|s| s.to_string()).collect(),
        };
        let tracks = [
            Track {
                name: "db".into(),
                counts: false,
            },
            Track {
                name: "files".into(),
                counts: false,
            },
            Track {
                name: "wal".into(),
                counts: true,
            },
            Track {
                name: "weekly".into(),
                counts: false,
            },
        ];
        let days = [day(vec![
            ld("db", 0, &["02:00"]),
            ld("files", 1, &[]),
            ld("wal", 22, &["03:00", "04:00"]),
        ])];
        let m = months(&days, date("2026-11-01"), date("2026-11-05"), &tracks);
        let d = m[0]
            .weeks
            .iter()
            .flatten()
            .find(|d| d.date == "2026-11-03")
            .unwrap();
        let got: Vec<(RowState, &str)> =
            d.rows.iter().map(|r| (r.state, r.text.as_str())).collect();
        assert_eq!(
            got,
            [
                (RowState::Missed, "✖"),
                (RowState::Ok, "✔"),
                (RowState::Partial, "22/24"),
                (RowState::Empty, ""),
            ]
        );
        assert_eq!(d.rows[0].label, "db: no backup, missed 02:00");
        assert_eq!(d.rows[2].label, "wal: 22 backups, missed 03:00, 04:00");
    }

    #[test]
    fn year_boundary() {
        let m = months(&[], date("2026-12-15"), date("2027-01-02"), &[]);
        assert_eq!(
            m.iter().map(|m| m.title.as_str()).collect::<Vec<_>>(),
            ["December 2026", "January 2027"]
        );
    }
}
