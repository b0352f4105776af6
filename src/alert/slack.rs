//! The `slack` channel: one incoming-webhook message per digest in Block Kit (`blocks`)
//! with the subject as the `text` fallback for notifications. Worst location first, one
//! section per location (continued in further sections when long), each alert one
//! bullet. Slack refuses what is too big, so the message stays within its limits: at most
//! 50 blocks, 3,000 characters of section text, and the whole payload under 40,000
//! characters, titles included. What does not fit is summarised in a last block ("… and
//! 140 more") that points to the report. What is shortened is cut at a word, unless the
//! word itself is too long (a location name has no length limit).

use super::Channel;
use super::digest::{Digest, Group, Line};
use super::http::post_json;
use anyhow::Result;
use serde_json::{Value, json};
use std::time::Duration;

/// Slack's limits, with room to spare for what Slack counts differently.
pub const MAX_BLOCKS: usize = 50;
pub const MAX_SECTION_CHARS: usize = 3_000;
pub const MAX_PAYLOAD_CHARS: usize = 40_000;
/// The payload budget: under Slack's limit with room for the closing summary block.
const PAYLOAD_BUDGET: usize = MAX_PAYLOAD_CHARS - 2_000;
/// Section text budget, title included: under the limit with room to spare.
const SECTION_BUDGET: usize = MAX_SECTION_CHARS - 100;
/// The most a section title or the subject line shows of a location's name (escaped).
const NAME_CHARS: usize = 200;
/// The most the first section shows of the subject (escaped).
const SUBJECT_CHARS: usize = 2 * NAME_CHARS;
/// The most one line of the recent log takes in its section (escaped).
const LOG_LINE_CHARS: usize = 500;

pub struct Slack {
    pub webhook_url: String,
    pub timeout: Duration,
}

impl Channel for Slack {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn deliver(&self, digest: &Digest) -> Result<()> {
        post_json(&self.webhook_url, &payload(digest), self.timeout)
    }
}

/// Slack's escaping of message text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn marker(status: &str) -> &'static str {
    match status {
        "critical" => ":red_circle:",
        "warning" => ":large_orange_circle:",
        _ => ":large_green_circle:",
    }
}

/// At most `max` characters of the escaped `text`, cut at a word boundary and marked
/// with `…`. A word that would leave less than half of `max` (a long location name) is
/// cut itself, though never inside an escape such as `&amp;`.
pub fn fit_words(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let limit = max.saturating_sub(1);
    let cut: String = text.chars().take(limit).collect();
    let kept = match cut.rfind(char::is_whitespace) {
        Some(at) if cut[..at].chars().count() >= limit / 2 => cut[..at].trim_end(),
        _ => match cut.rfind('&') {
            Some(at) if !cut[at..].contains(';') => &cut[..at],
            _ => cut.as_str(),
        },
    };
    format!("{kept}…")
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

fn bullet(line: &Line) -> String {
    format!(
        "• *[{}]* {} — {}",
        escape(&line.label),
        escape(&line.what),
        escape(&line.detail)
    )
}

fn group_title(group: &Group, continued: bool) -> String {
    format!(
        "{} *{}* ({}){}",
        marker(&group.status),
        fit_words(&escape(&group.title), NAME_CHARS),
        group.status.to_uppercase(),
        if continued { ", continued" } else { "" }
    )
}

/// A group's sections: the title and as many bullets as fit in each, the title counted.
/// A bullet too long for a section of its own is shortened to what is left beside the
/// title.
fn group_sections(group: &Group) -> Vec<(Value, usize)> {
    let mut out = Vec::new();
    let mut text = group_title(group, false);
    let mut in_section = 0;
    for line in &group.alerts {
        let b = bullet(line);
        if in_section > 0 && text.chars().count() + 1 + b.chars().count() > SECTION_BUDGET {
            out.push((section(text), in_section));
            text = group_title(group, true);
            in_section = 0;
        }
        let room = SECTION_BUDGET.saturating_sub(text.chars().count() + 1);
        text.push('\n');
        text.push_str(&fit_words(&b, room));
        in_section += 1;
    }
    out.push((section(text), in_section));
    if !group.log.is_empty() {
        let mut log = String::new();
        for l in &group.log {
            // A line about a long location name still leaves room for the others.
            let l = fit_words(&escape(l), LOG_LINE_CHARS);
            if log.chars().count() + l.chars().count() + 40 > SECTION_BUDGET {
                break;
            }
            log.push_str(&l);
            log.push('\n');
        }
        out.push((
            section(format!("Recent log of this run:\n```{}```", log.trim_end())),
            0,
        ));
    }
    out
}

fn size(v: &Value) -> usize {
    serde_json::to_string(v).map_or(usize::MAX, |s| s.chars().count())
}

pub fn payload(digest: &Digest) -> Value {
    let mut head = format!(
        "*{}*\n{}",
        fit_words(&escape(&digest.subject), SUBJECT_CHARS),
        escape(&digest.summary)
    );
    if let Some(url) = &digest.report_url {
        head.push_str(&format!("\n<{}|Latest report>", escape(url)));
    }
    let mut blocks = vec![section(fit_words(&head, SECTION_BUDGET))];
    let mut used = size(&blocks[0]) + digest.subject.len() * 2 + 100;
    let total: usize = digest.groups.iter().map(|g| g.alerts.len()).sum();
    let mut shown = 0;
    'groups: for group in &digest.groups {
        for (block, alerts) in group_sections(group) {
            let cost = size(&block) + 1;
            // One block stays free for the summary of what did not fit.
            if blocks.len() + 1 >= MAX_BLOCKS || used + cost > PAYLOAD_BUDGET {
                break 'groups;
            }
            used += cost;
            shown += alerts;
            blocks.push(block);
        }
    }
    if shown < total {
        let more = total - shown;
        let mut text = format!("… and {more} more");
        match &digest.report_url {
            Some(url) => text.push_str(&format!(" in the <{}|latest report>", escape(url))),
            None => text.push_str(" (see `backup-monitor --status`)"),
        }
        blocks.push(json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": text }],
        }));
    }
    json!({
        "text": escape(&digest.subject),
        "blocks": blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Event;
    use crate::alert::digest::fixtures;
    use crate::problem::{Kind, Severity};

    /// The payload's blocks, each check of Slack's limits passed: the number of blocks,
    /// each section's text, the whole payload.
    fn within_limits(p: &Value) -> &Vec<Value> {
        let blocks = p["blocks"].as_array().unwrap();
        assert!(blocks.len() <= MAX_BLOCKS, "{} blocks", blocks.len());
        for b in blocks {
            if let Some(t) = b["text"]["text"].as_str() {
                let n = t.chars().count();
                assert!(n <= MAX_SECTION_CHARS, "{n} characters: {t}");
            }
        }
        let whole = serde_json::to_string(p).unwrap();
        assert!(whole.chars().count() < MAX_PAYLOAD_CHARS, "{}", whole.len());
        blocks
    }

    fn texts(p: &Value) -> String {
        p["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                b["text"]["text"]
                    .as_str()
                    .or(b["elements"][0]["text"].as_str())
                    .unwrap_or_default()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn one_section_per_location_worst_first_with_escaped_text_and_no_log() {
        let mut alert = fixtures::alert(Kind::NoBackups, Severity::Critical, Some("db"));
        alert.problem.message = "no file matches <*.sql>".into();
        let warn = fixtures::alert(Kind::LowDiskSpace, Severity::Warning, Some("a_first"));
        let notices = [
            fixtures::notice(Event::Open, warn),
            fixtures::notice(Event::Open, alert),
        ];
        let clock = fixtures::clock_at(60);
        let d = Digest::build(&notices, "h", &clock, &|_| Vec::new());
        let p = payload(&d);
        assert_eq!(
            p["text"],
            "[backup-monitor] CRITICAL db: no_backups (+1 more)"
        );
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 3, "{p:#}");
        let db = blocks[1]["text"]["text"].as_str().unwrap();
        assert!(db.starts_with(":red_circle: *db* (CRITICAL)"), "{db}");
        assert!(db.contains("no file matches &lt;*.sql&gt;"), "{db}");
        assert!(db.contains("*[NEW CRITICAL]*"), "{db}");
        assert!(!texts(&p).contains("Recent log"), "no log unless asked");
    }

    #[test]
    fn the_log_is_shown_when_given_and_the_report_linked() {
        let alert = fixtures::alert(Kind::NoBackups, Severity::Critical, Some("db"));
        let clock = fixtures::clock_at(60);
        let d = Digest::build(
            &[fixtures::notice(Event::Open, alert)],
            "h",
            &clock,
            &|_| vec!["WARN a & b".into()],
        )
        .linking(Some("https://r.example.com/bm/"));
        let t = texts(&payload(&d));
        assert!(t.contains("```WARN a &amp; b```"), "{t}");
        assert!(
            t.contains("<https://r.example.com/bm/latest.html|Latest report>"),
            "{t}"
        );
    }

    #[test]
    fn five_hundred_problems_stay_within_every_limit_and_are_summarised() {
        let mut notices = Vec::new();
        for i in 0..500 {
            let location = format!("location_{:02}", i % 40);
            let mut a = fixtures::alert(Kind::MissingBackup, Severity::Critical, Some(&location));
            a.id = i;
            a.problem.message = format!(
                "no backup for the daily slot number {i} starting 2026-11-19 02:00, which is a long sentence about it"
            );
            notices.push(fixtures::notice(Event::Open, a));
        }
        let clock = fixtures::clock_at(86_400);
        let d = Digest::build(&notices, "h", &clock, &|_| Vec::new())
            .linking(Some("https://r.example.com"));
        let p = payload(&d);
        let blocks = within_limits(&p);
        let shown = texts(&p).matches("• ").count();
        let last = blocks.last().unwrap()["elements"][0]["text"]
            .as_str()
            .unwrap();
        assert_eq!(
            last,
            format!(
                "… and {} more in the <https://r.example.com/latest.html|latest report>",
                500 - shown
            )
        );
        assert!(shown > 100, "as many as fit are shown: {shown}");
    }

    #[test]
    fn long_location_names_are_shortened_and_every_section_counts_its_title() {
        let mut notices = Vec::new();
        for (i, n) in [300, 3_500, 50].into_iter().enumerate() {
            let location = format!("L{i}_{}&", "x".repeat(n));
            for (j, kind) in [Kind::EmptyBackup, Kind::ArchiveCorrupt, Kind::NoBackups]
                .into_iter()
                .enumerate()
            {
                let mut a = fixtures::alert(kind, Severity::Critical, Some(&location));
                a.id = (i * 10 + j) as i64;
                a.problem.message = format!("{location}/{location}.sql.gz is empty (0 bytes)");
                notices.push(fixtures::notice(Event::Open, a));
            }
        }
        let clock = fixtures::clock_at(60);
        let d = Digest::build(&notices, "h", &clock, &|_| vec!["x".repeat(5_000)])
            .linking(Some("https://r.example.com"));
        let p = payload(&d);
        within_limits(&p);
        let t = texts(&p);
        assert!(
            t.contains("latest.html|Latest report>"),
            "the head keeps its link"
        );
        assert!(
            !t.contains("&am…") && !t.contains("&a…"),
            "no escape cut in two"
        );
        assert_eq!(t.matches("• ").count(), 9, "every alert has its bullet");
        assert_eq!(
            fit_words(&"x".repeat(50), 11),
            format!("{}…", "x".repeat(10))
        );
        assert_eq!(fit_words("xxxxxxx&amp;yy", 11), "xxxxxxx…");
    }

    #[test]
    fn one_huge_message_is_shortened_at_a_word() {
        let mut a = fixtures::alert(Kind::ChecksumMismatch, Severity::Critical, Some("db"));
        a.problem.message = "word ".repeat(2_000);
        let clock = fixtures::clock_at(60);
        let d = Digest::build(&[fixtures::notice(Event::Open, a)], "h", &clock, &|_| {
            Vec::new()
        });
        let p = payload(&d);
        let t = p["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(t.chars().count() <= MAX_SECTION_CHARS);
        assert!(t.ends_with("word…"), "{}", &t[t.len() - 20..]);
        assert_eq!(fit_words("alpha beta gamma", 12), "alpha beta…");
        assert_eq!(fit_words("alpha", 12), "alpha");
    }
}
