//! `bulkhead events [--follow] [--endpoint EP]`: recent drops, tampering
//! and repairs, as a table or as JSON lines (one compact object per event,
//! so `--follow --output json` streams into `jq`).
//!
//! Following is a loop of long polls (`POST /v1/events` with the last
//! sequence number seen and a wait): each event is printed once, as soon as
//! the daemon has it; a gap in sequence numbers (the daemon's ring
//! overwrote events before they were read) is reported on stderr.

use bulkhead_api::time::UtcTime;
use bulkhead_api::{Client, EventInfo, EventsPage, EventsRequest};

use crate::cli::OutputFormat;
use crate::output::table;

/// How long one poll of `--follow` waits for news.
const FOLLOW_WAIT_MS: u64 = 5_000;

/// `2026-12-03T13:05:07.123Z` from milliseconds since the epoch (UTC).
pub fn format_time(ms: u64) -> String {
    let t = UtcTime::from_unix_ms(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis
    )
}

fn endpoint_of(addr: &Option<String>, port: Option<u16>) -> String {
    match (addr, port) {
        (Some(a), Some(p)) if a.contains(':') => format!("[{a}]:{p}"),
        (Some(a), Some(p)) => format!("{a}:{p}"),
        (Some(a), None) => a.clone(),
        _ => String::new(),
    }
}

/// One table row.
fn row(e: &EventInfo) -> Vec<String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    vec![
        format_time(e.time_ms),
        e.kind.clone(),
        opt(&e.endpoint),
        opt(&e.point),
        opt(&e.direction),
        opt(&e.rule),
        opt(&e.protocol),
        endpoint_of(&e.src, e.src_port),
        endpoint_of(&e.dst, e.dst_port),
        opt(&e.detail),
    ]
}

const HEADER: [&str; 10] = [
    "TIME",
    "KIND",
    "ENDPOINT",
    "POINT",
    "DIR",
    "RULE",
    "PROTO",
    "SOURCE",
    "DESTINATION",
    "DETAIL",
];

/// A page as the chosen format prints it.
pub fn render(format: OutputFormat, page: &EventsPage) -> String {
    match format {
        OutputFormat::Json => page
            .events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap_or_default() + "\n")
            .collect(),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = page.events.iter().map(row).collect();
            table(&HEADER, &rows)
        }
    }
}

/// The events asked for; with `follow`, keeps printing new ones until the
/// output is closed or the daemon goes away. `print` writes one chunk.
pub async fn run(
    client: &Client,
    format: OutputFormat,
    endpoint: Option<String>,
    follow: bool,
    mut print: impl FnMut(&str) -> Result<bool, crate::commands::CliError>,
) -> Result<(), crate::commands::CliError> {
    let mut after = 0u64;
    let mut first = true;
    loop {
        let page = client
            .events(EventsRequest {
                endpoint: endpoint.clone(),
                after: (!first).then_some(after),
                wait_ms: (follow && !first).then_some(FOLLOW_WAIT_MS),
            })
            .await?;
        if let Some(e) = page.events.first() {
            if !first && e.seq > after + 1 && endpoint.is_none() {
                eprintln!(
                    "bulkhead: {} events were overwritten before they were read",
                    e.seq - after - 1
                );
            }
        }
        let text = match (format, first) {
            // Following as a table: the header once, then rows as they come
            // (columns cannot be aligned with rows not yet seen).
            (OutputFormat::Table, false) => page
                .events
                .iter()
                .map(|e| {
                    row(e)
                        .into_iter()
                        .map(|c| if c.is_empty() { "-".into() } else { c })
                        .collect::<Vec<_>>()
                        .join("   ")
                        + "\n"
                })
                .collect(),
            _ => render(format, &page),
        };
        if !text.is_empty() && !print(&text)? {
            return Ok(());
        }
        after = page.last.max(after);
        first = false;
        if !follow {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_rfc3339_with_milliseconds() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(1_796_303_699_040), "2026-12-03T13:14:59.040Z");
        assert_eq!(format_time(951_782_400_001), "2000-02-29T00:00:00.001Z");
    }

    #[test]
    fn json_output_is_one_line_per_event() {
        let e = EventInfo {
            seq: 7,
            kind: "drop".into(),
            endpoint: Some("web".into()),
            src: Some("10.0.0.1".into()),
            src_port: Some(40000),
            ..Default::default()
        };
        let page = EventsPage {
            events: vec![e.clone(), e],
            last: 7,
        };
        let text = render(OutputFormat::Json, &page);
        assert_eq!(text.lines().count(), 2);
        let back: EventInfo = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(back.endpoint.as_deref(), Some("web"));
        let table = render(OutputFormat::Table, &page);
        assert!(table.contains("10.0.0.1:40000"), "{table}");
    }
}
