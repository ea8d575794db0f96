//! Conformance: the real `bulkhead-cni` binary driven the way runtimes do it
//! (environment variables and stdin), against the file-backed fake daemon
//! selected with `BULKHEAD_CNI_FAKE_STATE` (debug builds only).

use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

struct Run {
    status: i32,
    stdout: Value,
}

fn cni(state: &Path, command: &str, container: &str, stdin: &Value) -> Run {
    cni_env(
        state,
        &[
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", container),
            ("CNI_NETNS", &format!("/run/netns/{container}")),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/opt/cni/bin"),
        ],
        stdin.to_string().as_bytes(),
    )
}

fn cni_env(state: &Path, vars: &[(&str, &str)], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bulkhead-cni"))
        .env_clear()
        .envs(vars.iter().copied())
        .env("BULKHEAD_CNI_FAKE_STATE", state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bulkhead-cni");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let stdout = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("stdout is JSON")
    };
    Run {
        status: out.status.code().unwrap(),
        stdout,
    }
}

fn conf(version: &str) -> Value {
    json!({"cniVersion": version, "name": "bulkhead-web", "type": "bulkhead-cni",
           "bulkhead": {"network": "web"}})
}

fn state() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn fake_state(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap()
}

/// Asserts a spec error result with `code` and returns its details.
fn assert_error(run: &Run, code: u64) -> String {
    assert_ne!(run.status, 0, "{}", run.stdout);
    let e = run.stdout.as_object().expect("an error object");
    let mut keys: Vec<&str> = e.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["cniVersion", "code", "details", "msg"]);
    assert_eq!(e["code"], code, "{}", run.stdout);
    assert!(!e["msg"].as_str().unwrap().is_empty());
    e["details"].as_str().unwrap().to_owned()
}

#[test]
fn version_lists_exactly_the_implemented_versions() {
    let dir = state();
    for v in ["0.3.1", "1.1.0"] {
        let run = cni_env(
            dir.path(),
            &[("CNI_COMMAND", "VERSION")],
            json!({"cniVersion": v}).to_string().as_bytes(),
        );
        assert_eq!(run.status, 0);
        assert_eq!(
            run.stdout,
            json!({"cniVersion": v, "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
        );
    }
}

#[test]
fn add_result_follows_the_requested_version() {
    let dir = state();
    let run = cni(dir.path(), "ADD", "c040", &conf("0.4.0"));
    assert_eq!(run.status, 0);
    assert_eq!(run.stdout["cniVersion"], "0.4.0");
    assert_eq!(run.stdout["ips"][0]["version"], "4");
    let run = cni(dir.path(), "ADD", "c110", &conf("1.1.0"));
    assert_eq!(run.stdout["cniVersion"], "1.1.0");
    assert!(run.stdout["ips"][0].get("version").is_none());
}

#[test]
fn add_result_schema_field_by_field() {
    let dir = state();
    let mut c = conf("1.1.0");
    c["dns"] = json!({"nameservers": ["10.88.0.1"], "search": ["svc.local"]});
    let r = cni(dir.path(), "ADD", "pod1", &c).stdout;
    let top: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(top, ["cniVersion", "dns", "interfaces", "ips", "routes"]);
    let ifs = r["interfaces"].as_array().unwrap();
    assert_eq!(ifs.len(), 2);
    assert!(ifs[0]["name"].as_str().unwrap().starts_with("bh"));
    assert!(
        ifs[0].get("sandbox").is_none(),
        "host interface has no sandbox"
    );
    assert_eq!(ifs[1]["name"], "eth0");
    assert_eq!(ifs[1]["sandbox"], "/run/netns/pod1");
    let mac = ifs[1]["mac"].as_str().unwrap();
    assert_eq!(mac.split(':').count(), 6);
    let ip = &r["ips"][0];
    assert_eq!(ip["interface"], 1);
    assert_eq!(ip["address"], "10.88.0.2/24");
    assert_eq!(ip["gateway"], "10.88.0.1");
    assert_eq!(
        r["routes"],
        json!([{"dst": "0.0.0.0/0", "gw": "10.88.0.1"}])
    );
    assert_eq!(
        r["dns"],
        json!({"nameservers": ["10.88.0.1"], "search": ["svc.local"]})
    );
}

#[test]
fn an_unsupported_version_is_code_1() {
    let dir = state();
    for v in ["0.2.0", "9.9.9"] {
        let run = cni(dir.path(), "ADD", "c1", &conf(v));
        assert_error(&run, 1);
        assert_eq!(run.stdout["cniVersion"], v);
    }
    assert_error(&cni(dir.path(), "CHECK", "c1", &conf("0.3.1")), 1);
    assert_error(
        &cni_env(
            dir.path(),
            &[("CNI_COMMAND", "STATUS")],
            conf("1.0.0").to_string().as_bytes(),
        ),
        1,
    );
}

#[test]
fn a_bad_configuration_is_code_7_and_garbage_is_code_6() {
    let dir = state();
    let mut c = conf("1.1.0");
    c["bulkhead"] = json!({"network": "web", "aclMode": "strict"});
    assert!(assert_error(&cni(dir.path(), "ADD", "c1", &c), 7).contains("bulkhead.aclMode"));
    c["bulkhead"] = json!({"network": "web", "colour": "blue"});
    assert!(assert_error(&cni(dir.path(), "ADD", "c1", &c), 2).contains("bulkhead.colour"));
    let run = cni_env(
        dir.path(),
        &[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "c"),
            ("CNI_NETNS", "/x"),
            ("CNI_IFNAME", "eth0"),
        ],
        b"{not json",
    );
    assert_error(&run, 6);
}

#[test]
fn missing_environment_is_code_4_naming_the_variables() {
    let dir = state();
    let stdin = conf("1.1.0").to_string();
    let run = cni_env(
        dir.path(),
        &[("CNI_COMMAND", "ADD"), ("CNI_NETNS", "/run/netns/x")],
        stdin.as_bytes(),
    );
    let details = assert_error(&run, 4);
    assert!(
        details.contains("CNI_CONTAINERID") && details.contains("CNI_IFNAME"),
        "{details}"
    );
    assert_error(&cni_env(dir.path(), &[], stdin.as_bytes()), 4);
}

#[test]
fn check_of_an_unknown_container_is_code_3() {
    let dir = state();
    let mut c = conf("1.1.0");
    let added = cni(dir.path(), "ADD", "known", &c).stdout;
    c["prevResult"] = added;
    assert_eq!(cni(dir.path(), "CHECK", "known", &c).status, 0);
    assert_error(&cni(dir.path(), "CHECK", "unknown", &c), 3);
}

#[test]
fn del_twice_succeeds_even_without_the_namespace() {
    let dir = state();
    assert_eq!(cni(dir.path(), "ADD", "c1", &conf("1.1.0")).status, 0);
    for _ in 0..2 {
        let run = cni_env(
            dir.path(),
            &[
                ("CNI_COMMAND", "DEL"),
                ("CNI_CONTAINERID", "c1"),
                ("CNI_IFNAME", "eth0"),
            ],
            conf("1.1.0").to_string().as_bytes(),
        );
        assert_eq!((run.status, run.stdout.clone()), (0, Value::Null));
    }
    assert_eq!(fake_state(dir.path())["attachments"], json!([]));
}

#[test]
fn add_after_a_daemon_restart() {
    let dir = state();
    std::fs::write(dir.path().join("down"), "").unwrap();
    assert!(assert_error(&cni(dir.path(), "ADD", "c1", &conf("1.1.0")), 11).contains("bulkheadd"));
    assert_error(
        &cni_env(
            dir.path(),
            &[("CNI_COMMAND", "STATUS")],
            conf("1.1.0").to_string().as_bytes(),
        ),
        50,
    );
    std::fs::remove_file(dir.path().join("down")).unwrap();
    assert_eq!(
        cni_env(
            dir.path(),
            &[("CNI_COMMAND", "STATUS")],
            conf("1.1.0").to_string().as_bytes()
        )
        .status,
        0
    );
    assert_eq!(cni(dir.path(), "ADD", "c1", &conf("1.1.0")).status, 0);
}

#[test]
fn port_mappings_and_acls_reach_the_backend() {
    let dir = state();
    let mut c = conf("1.1.0");
    c["bulkhead"]["aclMode"] = json!("replace");
    c["bulkhead"]["acls"] =
        json!([{"direction": "in", "action": "allow", "protocol": "tcp", "localPorts": [80]}]);
    c["runtimeConfig"] = json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"}]});
    assert_eq!(cni(dir.path(), "ADD", "c1", &c).status, 0);
    let stored = &fake_state(dir.path())["attachments"][0];
    assert_eq!(
        stored["attachment"]["port_mappings"],
        json!([{"host_port": 8080, "container_port": 80, "protocol": "tcp", "host_ip": "127.0.0.1"}])
    );
    assert_eq!(stored["acl_mode"], "replace");
    assert_eq!(stored["acls"][0]["local_ports"], "80");
}

#[test]
fn gc_removes_attachments_not_listed_as_valid() {
    let dir = state();
    for id in ["keep", "drop"] {
        assert_eq!(cni(dir.path(), "ADD", id, &conf("1.1.0")).status, 0);
    }
    let mut c = conf("1.1.0");
    c["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}]);
    let run = cni_env(
        dir.path(),
        &[("CNI_COMMAND", "GC"), ("CNI_PATH", "/opt/cni/bin")],
        c.to_string().as_bytes(),
    );
    assert_eq!((run.status, run.stdout), (0, Value::Null));
    let left: Vec<Value> = fake_state(dir.path())["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["attachment"]["key"]["containerID"].clone())
        .collect();
    assert_eq!(left, [json!("keep")]);
}

#[test]
fn status_reports_an_unknown_network_as_not_available() {
    let dir = state();
    let mut c = conf("1.1.0");
    c["bulkhead"]["network"] = json!("absent");
    assert!(assert_error(
        &cni_env(
            dir.path(),
            &[("CNI_COMMAND", "STATUS")],
            c.to_string().as_bytes()
        ),
        50
    )
    .contains("absent"));
}
