//! The last lines this run logged about each location, kept in memory so an alert can
//! show what the run saw there (`alerts.include_log`).
//!
//! A [`RecentLog`] is an explicit value: `logging::init` registers a `tracing` layer that
//! fills it and hands it back, and the run passes it to the alert step. An event belongs
//! to a location when it carries a `location` field, or when a span around it does.
//! Not for: persisting logs (that is `logging.file`).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Lines kept per location; older ones are dropped first.
const PER_LOCATION: usize = 50;

/// Recent log lines by location. Clones share one buffer.
#[derive(Debug, Clone, Default)]
pub struct RecentLog(Arc<Mutex<HashMap<String, VecDeque<String>>>>);

impl RecentLog {
    /// The layer that fills this buffer, to register with the subscriber; keeps info and
    /// above.
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        Filler(self.clone()).with_filter(LevelFilter::INFO)
    }

    /// The last `n` lines logged for `location`, oldest first.
    pub fn recent(&self, location: &str, n: usize) -> Vec<String> {
        let buffer = self.0.lock().unwrap_or_else(|e| e.into_inner());
        buffer
            .get(location)
            .map(|lines| {
                lines
                    .iter()
                    .skip(lines.len().saturating_sub(n))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn push(&self, location: String, line: String) {
        let mut buffer = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let lines = buffer.entry(location).or_default();
        if lines.len() == PER_LOCATION {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

struct Filler(RecentLog);

/// The `location` a span was opened with.
struct SpanLocation(String);

#[derive(Default)]
struct Fields {
    location: Option<String>,
    message: String,
    others: Vec<String>,
}

impl Fields {
    fn record(&mut self, name: &str, value: String) {
        match name {
            "location" => self.location = Some(value),
            "message" => self.message = value,
            _ => self.others.push(format!("{name}={value}")),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field.name(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field.name(), format!("{value:?}"));
    }
}

impl<S> Layer<S> for Filler
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(location), Some(span)) = (fields.location, ctx.span(id)) {
            span.extensions_mut().insert(SpanLocation(location));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let location = fields.location.clone().or_else(|| {
            ctx.event_scope(event)?
                .find_map(|span| span.extensions().get::<SpanLocation>().map(|l| l.0.clone()))
        });
        let Some(location) = location else {
            return;
        };
        let mut line = format!("{} {}", event.metadata().level(), fields.message);
        for other in &fields.others {
            line.push(' ');
            line.push_str(other);
        }
        // A file name in the message must not split the line in an alert.
        self.0
            .push(location, crate::problem::one_line(&line).into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::prelude::*;

    #[test]
    fn keeps_recent_lines_per_location_from_fields_and_spans() {
        let log = RecentLog::default();
        let subscriber = tracing_subscriber::registry().with(log.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(location = "rl_test_a", files = 3, "scanned");
            tracing::debug!(location = "rl_test_a", "too chatty, not kept");
            tracing::warn!("no location, not kept");
            let span = tracing::info_span!("verify", location = "rl_test_b");
            let _guard = span.enter();
            tracing::warn!("checksum differs");
        });
        assert_eq!(log.recent("rl_test_a", 10), vec!["INFO scanned files=3"]);
        assert_eq!(log.recent("rl_test_b", 10), vec!["WARN checksum differs"]);
        assert!(log.recent("rl_test_none", 10).is_empty());
    }

    #[test]
    fn drops_the_oldest_past_the_limit() {
        let log = RecentLog::default();
        let subscriber = tracing_subscriber::registry().with(log.layer());
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..(PER_LOCATION + 5) {
                tracing::info!(location = "rl_test_ring", "line {i}");
            }
        });
        let all = log.recent("rl_test_ring", 1000);
        assert_eq!(all.len(), PER_LOCATION);
        assert_eq!(all.first().unwrap(), "INFO line 5");
        assert_eq!(
            log.recent("rl_test_ring", 2),
            vec![
                format!("INFO line {}", PER_LOCATION + 3),
                format!("INFO line {}", PER_LOCATION + 4)
            ]
        );
    }
}
