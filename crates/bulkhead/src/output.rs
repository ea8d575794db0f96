//! What the CLI prints: aligned tables for people, the API's JSON for scripts.
//!
//! Rendering is pure (a [`Response`] in, a `String` out), so tables are
//! tested by snapshot. Tables look like `podman network ls`: an upper-case
//! header, columns padded to their widest cell and separated by three spaces,
//! no trailing blanks, `-` for an empty cell. JSON is the response body as the
//! daemon sent it, pretty-printed; a removal prints nothing in JSON and the
//! removed name in a table, as podman does.

use crate::cli::OutputFormat;
use bulkhead_api::{
    AclInfo, Command, EndpointInfo, ImportResult, NamespaceInfo, NetworkInfo, PortMappingInfo,
    Response, TapInfo, TraceResult,
};

/// Renders a response to `cmd` in the chosen format, newline-terminated.
pub fn render(format: OutputFormat, cmd: &Command, response: &Response) -> String {
    match (format, response) {
        (OutputFormat::Json, Response::Removed) => String::new(),
        (OutputFormat::Json, other) => {
            let mut text = serde_json::to_string_pretty(other).unwrap_or_default();
            text.push('\n');
            text
        }
        (OutputFormat::Table, other) => render_table(cmd, other),
    }
}

fn render_table(cmd: &Command, response: &Response) -> String {
    let created = cmd.creates();
    match response {
        Response::Health(h) => format!("{} {}\n", h.status, h.version),
        Response::Network(n) if created => format!("{}\n", n.name),
        Response::Namespace(n) if created => format!("{}\n", n.name),
        Response::Endpoint(e) if created => format!("{}\n", e.name),
        Response::Acl(a) if created => format!("{}\n", a.id),
        Response::Network(n) => network_details(n),
        Response::Networks(list) => network_table(list),
        Response::Namespace(n) => namespace_details(n),
        Response::Namespaces(list) => namespace_table(list),
        Response::Endpoint(e) => endpoint_details(e),
        Response::Endpoints(list) => endpoint_table(list, matches!(cmd, Command::EndpointListAll)),
        Response::Nodes(list) => crate::output_nodes::node_table(list),
        Response::Acl(a) => acl_table(std::slice::from_ref(a)),
        Response::Acls(list) => acl_table(list),
        Response::AclStats(s) => crate::output_stats::acl_stats_table(s),
        Response::Trace(t) => trace_table(t),
        Response::Import(i) => import_table(i),
        Response::Events(page) => crate::events::render(OutputFormat::Table, page),
        Response::Removed => format!("{}\n", removed_name(cmd)),
    }
}

fn removed_name(cmd: &Command) -> &str {
    match cmd {
        Command::NetworkRemove { name }
        | Command::NamespaceRemove { name }
        | Command::EndpointRemove { name }
        | Command::NodeRemove { name } => name,
        Command::AclRemove { id, .. } => id,
        _ => "",
    }
}

/// The columns of an ACL listing (`acl ls`; `--stats` adds counters).
pub(crate) const ACL_HEADER: [&str; 10] = [
    "ID",
    "PRIORITY",
    "DIRECTION",
    "ACTION",
    "PROTOCOL",
    "LOCAL PORTS",
    "REMOTE PORTS",
    "LOCAL ADDRESSES",
    "REMOTE ADDRESSES",
    "RULE TYPE",
];

/// One ACL rule's cells under [`ACL_HEADER`].
pub(crate) fn acl_row(a: &AclInfo) -> Vec<String> {
    vec![
        a.id.clone(),
        a.priority.to_string(),
        a.direction.clone(),
        a.action.clone(),
        a.protocol.clone(),
        a.local_ports.join(","),
        a.remote_ports.join(","),
        a.local_addresses.join(","),
        a.remote_addresses.join(","),
        a.rule_type.clone(),
    ]
}

/// Lays out rows under a header; see the module docs for the format.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cells = |row: &[String]| -> Vec<String> {
        row.iter()
            .map(|c| if c.is_empty() { "-".into() } else { c.clone() })
            .collect()
    };
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let body: Vec<Vec<String>> = rows.iter().map(|r| cells(r)).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &body {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&body) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("   ");
            }
            line.push_str(cell);
            line.push_str(&" ".repeat(w - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Key/value lines for one object, keys padded to the widest.
fn details(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| {
            let v = if v.is_empty() { "-" } else { v };
            format!("{k:width$}   {v}\n")
        })
        .collect()
}

fn opt(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

fn short_id(id: &str) -> String {
    id.chars().filter(|c| *c != '-').take(12).collect()
}

fn network_table(list: &[NetworkInfo]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|n| {
            vec![
                short_id(&n.id),
                n.name.clone(),
                n.driver.clone(),
                n.subnets.join(","),
                opt(&n.gateway),
                n.vni.map(|v| v.to_string()).unwrap_or_default(),
                n.acl_profile.clone(),
                n.endpoints.to_string(),
            ]
        })
        .collect();
    let header = [
        "NETWORK ID",
        "NAME",
        "DRIVER",
        "SUBNETS",
        "GATEWAY",
        "VNI",
        "ACL PROFILE",
        "ENDPOINTS",
    ];
    table(&header, &rows)
}

fn network_details(n: &NetworkInfo) -> String {
    details(&[
        ("id", n.id.clone()),
        ("name", n.name.clone()),
        ("driver", n.driver.clone()),
        ("subnets", n.subnets.join(",")),
        ("gateway", opt(&n.gateway)),
        ("uplink", opt(&n.uplink)),
        ("vni", n.vni.map(|v| v.to_string()).unwrap_or_default()),
        ("acl_profile", n.acl_profile.clone()),
        ("endpoints", n.endpoints.to_string()),
    ])
}

fn namespace_table(list: &[NamespaceInfo]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|n| {
            vec![
                short_id(&n.id),
                n.compartment_id.to_string(),
                n.name.clone(),
                n.isolation.clone(),
                n.endpoints.join(","),
                n.containers
                    .iter()
                    .map(|c| short_id(c))
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        })
        .collect();
    let header = [
        "ID",
        "COMPARTMENT",
        "NAME",
        "ISOLATION",
        "ENDPOINTS",
        "CONTAINERS",
    ];
    table(&header, &rows)
}

fn namespace_details(n: &NamespaceInfo) -> String {
    details(&[
        ("id", n.id.clone()),
        ("name", n.name.clone()),
        ("compartment_id", n.compartment_id.to_string()),
        ("isolation", n.isolation.clone()),
        ("netns_path", opt(&n.netns_path)),
        ("endpoints", n.endpoints.join(",")),
        ("containers", n.containers.join(",")),
    ])
}

fn ports(mappings: &[PortMappingInfo]) -> String {
    mappings
        .iter()
        .map(|m| match &m.host_ip {
            Some(ip) => format!("{ip}:{}->{}/{}", m.host_port, m.container_port, m.protocol),
            None => format!("{}->{}/{}", m.host_port, m.container_port, m.protocol),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn endpoint_table(list: &[EndpointInfo], with_node: bool) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            vec![
                e.name.clone(),
                e.network.clone(),
                e.namespace.clone(),
                e.ip_address.clone(),
                e.mac_address.clone(),
                e.switch_port.clone(),
                e.acl_mode.clone(),
                e.acls.len().to_string(),
                ports(&e.port_mappings),
            ]
            .into_iter()
            .chain(with_node.then(|| opt(&e.node)))
            .collect()
        })
        .collect();
    let mut header = vec![
        "NAME",
        "NETWORK",
        "NAMESPACE",
        "IP ADDRESS",
        "MAC ADDRESS",
        "SWITCH PORT",
        "ACL MODE",
        "ACLS",
        "PORTS",
    ];
    if with_node {
        header.push("NODE");
    }
    table(&header, &rows)
}

/// A vm endpoint's TAP on one line: name and options (`-`: not set).
fn tap(t: Option<&TapInfo>) -> String {
    let id = |v: Option<u32>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    t.map_or_else(
        || "-".to_owned(),
        |t| {
            format!(
                "{} owner={} group={} queues={}",
                t.name,
                id(t.owner),
                id(t.group),
                t.queues
            )
        },
    )
}

fn endpoint_details(e: &EndpointInfo) -> String {
    let mut text = details(&[
        ("id", e.id.clone()),
        ("name", e.name.clone()),
        ("network", e.network.clone()),
        ("namespace", e.namespace.clone()),
        ("ip_address", e.ip_address.clone()),
        ("mac_address", e.mac_address.clone()),
        ("switch_port", e.switch_port.clone()),
        ("ifname", opt(&e.ifname)),
        ("port_mappings", ports(&e.port_mappings)),
        ("acl_mode", e.acl_mode.clone()),
        ("acls", e.acls.len().to_string()),
        ("tap", tap(e.tap.as_ref())),
    ]);
    if !e.acls.is_empty() {
        text.push('\n');
        text.push_str(&acl_table(&e.acls));
    }
    text
}

fn acl_table(list: &[AclInfo]) -> String {
    let rows: Vec<Vec<String>> = list.iter().map(acl_row).collect();
    table(&ACL_HEADER, &rows)
}

fn trace_table(t: &TraceResult) -> String {
    let rows: Vec<Vec<String>> = t
        .hops
        .iter()
        .map(|h| {
            vec![
                h.stage.replace('_', " "),
                h.point.clone(),
                h.location.clone(),
                h.rule.clone(),
                h.verdict.clone(),
            ]
        })
        .collect();
    let mut text = table(&["STEP", "POINT", "LOCATION", "RULE", "VERDICT"], &rows);
    if !t.target.is_empty() {
        text.push_str(&format!("to: {} ({})\n", t.target, t.delivered));
    }
    text.push_str(&format!("verdict: {}\n", t.verdict));
    text
}

fn import_table(i: &ImportResult) -> String {
    let mut rows = Vec::new();
    for (kind, names) in [
        ("network", &i.networks),
        ("namespace", &i.namespaces),
        ("endpoint", &i.endpoints),
    ] {
        rows.extend(names.iter().map(|n| vec![kind.to_owned(), n.clone()]));
    }
    let mut text = table(&["KIND", "NAME"], &rows);
    text.push_str(&format!("acl rules: {}\n", i.acls));
    text
}

#[cfg(test)]
#[path = "output_tests.rs"]
mod tests;
