//! The `node ls` table: one row per cluster node, in name order, with the
//! columns spec §10 names (name, underlay address, state, endpoints, last
//! seen).

use bulkhead_api::NodeInfo;

use crate::output::table;

/// `node ls` as a table.
pub fn node_table(list: &[NodeInfo]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|n| {
            vec![
                n.name.clone(),
                n.underlay_address.clone(),
                n.state.clone(),
                n.endpoints.to_string(),
                n.last_seen.clone(),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "UNDERLAY ADDRESS",
            "STATE",
            "ENDPOINTS",
            "LAST SEEN",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_table_has_the_spec_columns() {
        let out = node_table(&[NodeInfo {
            name: "node-a".into(),
            underlay_address: "10.98.0.2".into(),
            state: "lost".into(),
            endpoints: 3,
            last_seen: "2026-12-03T19:00:00Z".into(),
        }]);
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with("NAME") && lines[0].contains("LAST SEEN"),
            "{out}"
        );
        assert!(
            lines[1].contains("node-a") && lines[1].contains("lost") && lines[1].contains(" 3 "),
            "{out}"
        );
    }
}
