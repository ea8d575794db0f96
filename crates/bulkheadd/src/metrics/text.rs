//! The classic Prometheus text format (0.0.4) from the library's
//! OpenMetrics output, which is what is served.
//!
//! Why: `prometheus-client` writes OpenMetrics, where a counter family is
//! named without `_total` (`# TYPE x counter`, samples `x_total`) and the
//! text ends in `# EOF`. The classic text format, which every Prometheus
//! scrapes, `curl` users read, and `promtool check metrics` checks, names
//! the family as its samples. The translation is line by line: a counter's
//! `HELP` and `TYPE` lines get the `_total` name, `# UNIT` and `# EOF` go
//! (the unit is in the name already); samples are the same in both formats.

/// OpenMetrics text → Prometheus text 0.0.4.
pub fn classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let family = if kind == "counter" && !name.ends_with("_total") {
                format!("{name}_total")
            } else {
                name.to_owned()
            };
            if let Some(h) = help.take() {
                let text = h.split_once(' ').map_or("", |(_, t)| t);
                out.push_str(&format!("# HELP {family} {text}\n"));
            }
            out.push_str(&format!("# TYPE {family} {kind}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_as_their_samples_and_openmetrics_only_lines_go() {
        let om = "# HELP bh_requests Requests.\n# TYPE bh_requests counter\n\
                  bh_requests_total{route=\"a\"} 2\n# HELP bh_commit Commit time.\n\
                  # TYPE bh_commit histogram\n# UNIT bh_commit seconds\n\
                  bh_commit_count 1\n# EOF\n";
        assert_eq!(
            classic(om),
            "# HELP bh_requests_total Requests.\n# TYPE bh_requests_total counter\n\
             bh_requests_total{route=\"a\"} 2\n# HELP bh_commit Commit time.\n\
             # TYPE bh_commit histogram\nbh_commit_count 1\n"
        );
    }
}
