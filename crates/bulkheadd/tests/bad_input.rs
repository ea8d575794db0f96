//! Bad input, through the CLI and as raw JSON on the socket: every bad flag
//! or field value gets a one-line error that names the field and the value,
//! and nothing changes (store listings, pins and host links are the same
//! before and after).

mod common;

use common::{endpoint, Daemon};
use serde_json::Value;

/// Everything observable: the listings, the ACLs of `e1`, pins, host links.
fn snapshot(d: &Daemon) -> Vec<String> {
    let mut s: Vec<String> = ["network", "namespace", "endpoint"]
        .iter()
        .map(|w| d.json(&[w, "ls"]).to_string())
        .collect();
    s.push(d.json(&["acl", "ls", "e1"]).to_string());
    s.extend(d.pins());
    s.extend(d.host_links(""));
    s
}

fn world() -> Option<Daemon> {
    let d = Daemon::start()?;
    d.network("n1", "nat", "10.95.0.0/24");
    endpoint(&d, "n1", "ns1", "e1");
    d.ok(&["namespace", "create", "ns2"]);
    Some(d)
}

fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

/// `(args, words the error line must contain)`.
fn cases() -> Vec<(Vec<String>, Vec<&'static str>)> {
    let long = "a".repeat(64);
    let net = |extra: &[&'static str]| with(&["network", "create", "n2", "--driver", "nat"], extra);
    let ep = |extra: &[&'static str]| {
        with(
            &[
                "endpoint",
                "create",
                "e2",
                "--network",
                "n1",
                "--namespace",
                "ns2",
            ],
            extra,
        )
    };
    let acl = |extra: &[&'static str]| {
        with(
            &["acl", "add", "e1", "--direction", "in", "--action", "allow"],
            extra,
        )
    };
    let list: Vec<(Vec<&str>, Vec<&'static str>)> = vec![
        (
            vec!["network", "create", "n2", "--driver", "bridge"],
            vec!["driver", "bridge"],
        ),
        (
            net(&["--subnet", "10.0.0.0/33"]),
            vec!["subnet", "10.0.0.0/33"],
        ),
        (
            net(&["--gateway", "10.0.0.300"]),
            vec!["gateway", "10.0.0.300"],
        ),
        (net(&["--acl-profile", "old"]), vec!["acl-profile", "old"]),
        (
            vec![
                "network",
                "create",
                "o1",
                "--driver",
                "overlay",
                "--subnet",
                "10.97.0.0/24",
                "--uplink",
                "up0",
                "--vni",
                "0",
            ],
            vec!["vni", "0"],
        ),
        (
            vec!["network", "create", "bad name", "--driver", "nat"],
            vec!["name", "bad name"],
        ),
        (
            vec!["network", "create", &long, "--driver", "nat"],
            vec!["name", "aaaa"],
        ),
        (
            vec!["namespace", "create", "ns3", "--isolation", "kvm"],
            vec!["isolation", "kvm"],
        ),
        (vec!["namespace", "create", "a b"], vec!["name", "a b"]),
        (vec!["namespace", "create", &long], vec!["name", "aaaa"]),
        (ep(&["--ip", "300.1.1.1"]), vec!["ip", "300.1.1.1"]),
        (ep(&["--ip", "10.96.0.5"]), vec!["ip", "10.96.0.5"]),
        (ep(&["--mac", "zz"]), vec!["mac", "zz"]),
        (ep(&["--publish", "70000:80"]), vec!["publish", "70000"]),
        (ep(&["--publish", "80:80/sctp"]), vec!["publish", "sctp"]),
        (ep(&["--acl-mode", "merge"]), vec!["acl-mode", "merge"]),
        (
            vec![
                "endpoint",
                "create",
                "e 2",
                "--network",
                "n1",
                "--namespace",
                "ns2",
            ],
            vec!["name", "e 2"],
        ),
        (acl(&["--protocol", "foo"]), vec!["protocol", "foo"]),
        (
            acl(&["--local-ports", "2000-1000"]),
            vec!["local_ports", "2000-1000"],
        ),
        (
            acl(&["--remote-ports", "99999"]),
            vec!["remote_ports", "99999"],
        ),
        (
            acl(&["--remote-addresses", "Any"]),
            vec!["remote_addresses", "Any"],
        ),
        (
            acl(&["--local-addresses", "10.0.0.0/40"]),
            vec!["local_addresses", "10.0.0.0/40"],
        ),
        (acl(&["--priority", "70000"]), vec!["priority", "70000"]),
        (acl(&["--rule-type", "vfp"]), vec!["rule-type", "vfp"]),
        (
            acl(&["--rule-type", "switch"]),
            vec!["rule_type switch", "nat"],
        ),
        (acl(&["--id", "has space"]), vec!["id", "has space"]),
        (
            vec!["acl", "add", "e1", "--direction", "up", "--action", "allow"],
            vec!["direction", "up"],
        ),
        (
            vec!["acl", "add", "e1", "--direction", "in", "--action", "deny"],
            vec!["action", "deny"],
        ),
        (
            vec!["trace", "--from", "e1", "--to", "e1", "--protocol", "foo"],
            vec!["protocol", "foo"],
        ),
        (vec!["output-bad"], vec!["output-bad"]),
    ];
    list.into_iter()
        .map(|(a, w)| (a.into_iter().map(str::to_owned).collect(), w))
        .collect()
}

#[test]
fn every_bad_flag_is_one_line_and_changes_nothing() {
    let Some(d) = world() else { return };
    let before = snapshot(&d);
    let mut failures = Vec::new();
    for (args, words) in cases() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = d.run(&args);
        let line = String::from_utf8_lossy(&out.stderr).into_owned();
        let missing: Vec<&&str> = words.iter().filter(|w| !line.contains(**w)).collect();
        if out.status.success() || line.lines().count() != 1 || !missing.is_empty() {
            failures.push(format!(
                "{args:?}: status {}, {line:?} lacks {missing:?}",
                out.status
            ));
        }
        if snapshot(&d) != before {
            failures.push(format!("{args:?} changed something"));
            break;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Errors that are not values: unknown objects, and removing what is in use.
    d.fails(&["endpoint", "rm", "nope"]);
    d.fails(&["acl", "rm", "e1", "nope"]);
    d.fails(&["network", "rm", "n1"]);
    d.fails(&["exec", "nope", "--", "true"]);
    assert_eq!(snapshot(&d), before);
}

fn curl(d: &Daemon, method: &str, path: &str, body: &str) -> (u16, Value) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--unix-socket"])
        .arg(d.socket())
        .args(["-X", method, "-H", "Content-Type: application/json"])
        .args(["-w", "\n%{http_code}", "--data-binary", body])
        .arg(format!("http://localhost{path}"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    let v = serde_json::from_str(body).unwrap_or(Value::Null);
    (code.trim().parse().expect("status"), v)
}

#[test]
fn raw_json_bad_fields_are_refused() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("!!!!! SKIPPED: curl is not installed !!!!!");
        return;
    }
    let Some(d) = world() else { return };
    let before = snapshot(&d);
    let mut failures = Vec::new();
    let cases: &[(&str, &str, &str)] = &[
        (
            "/v1/networks",
            r#"{"name":"n2","driver":"nat","colour":"red"}"#,
            "colour",
        ),
        (
            "/v1/networks",
            r#"{"name":"n2","driver":"nat","vni":true}"#,
            "vni",
        ),
        (
            "/v1/networks",
            r#"{"name":"n2","driver":"nat","vni":0}"#,
            "vni",
        ),
        ("/v1/networks", r#"{"name":5,"driver":"nat"}"#, "name"),
        (
            "/v1/networks",
            r#"{"name":"n2","driver":"bridge"}"#,
            "bridge",
        ),
        ("/v1/networks", r#"{"name":"n2"}"#, "driver"),
        ("/v1/networks", r#"{"name":"n2","driver":"nat"} x"#, "body"),
        (
            "/v1/namespaces",
            r#"{"name":"ns3","isolation":"kvm"}"#,
            "kvm",
        ),
        (
            "/v1/namespaces",
            r#"{"name":"ns3","isolation":["vm"]}"#,
            "isolation",
        ),
        (
            "/v1/endpoints",
            r#"{"name":"e2","network":"n1","namespace":"ns2","ip":"300.1.1.1"}"#,
            "300.1.1.1",
        ),
        (
            "/v1/endpoints",
            r#"{"name":"e2","network":"n1","namespace":"ns2","publish":"80:80"}"#,
            "publish",
        ),
        (
            "/v1/endpoints",
            r#"{"name":"e2","network":"n1","namespace":"ns2","ifname":"x/y"}"#,
            "x/y",
        ),
        (
            "/v1/endpoints",
            r#"{"name":"e2","network":"n1","namespace":"ns2","mtu":1500}"#,
            "mtu",
        ),
        (
            "/v1/endpoints/e1/acls",
            r#"{"direction":"in","action":"allow","priority":70000}"#,
            "70000",
        ),
        (
            "/v1/endpoints/e1/acls",
            r#"{"direction":"in","action":"allow","priority":{"a":1}}"#,
            "priority",
        ),
        (
            "/v1/endpoints/e1/acls",
            r#"{"direction":"in","action":"allow","local_ports":[[80]]}"#,
            "local_ports",
        ),
        (
            "/v1/endpoints/e1/acls",
            r#"{"direction":"in","action":"allow","remote_addresses":"Any"}"#,
            "Any",
        ),
        (
            "/v1/endpoints/e1/acls",
            r#"{"direction":"in","action":"allow","rule_type":"switch"}"#,
            "switch",
        ),
        (
            "/v1/endpoints/e1/acls",
            r#"{"direction":"in","action":"allow","Protocol":"tcp"}"#,
            "Protocol",
        ),
        (
            "/v1/trace",
            r#"{"from":"e1","to":"e1","protocol":null}"#,
            "protocol",
        ),
        (
            "/v1/import",
            r#"{"Networks":[{"ID":"x","Type":"NAT"}]}"#,
            "Ipams",
        ),
    ];
    for (path, body, word) in cases {
        let (code, v) = curl(&d, "POST", path, body);
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        if !(400..500).contains(&code) || msg.contains('\n') || !msg.contains(word) {
            failures.push(format!("{path} {body}: {code} {v} (want {word:?})"));
        }
        if snapshot(&d) != before {
            failures.push(format!("{path} {body} changed something"));
            break;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let (code, _) = curl(&d, "PUT", "/v1/networks", "{}");
    assert_eq!(code, 405);
    let (code, _) = curl(&d, "GET", "/v1/nope", "");
    assert_eq!(code, 404);
    assert_eq!(snapshot(&d), before);
}
