use super::*;
use crate::fake::FakeBackend;
use std::collections::HashMap;
use std::path::Path;

fn invoke(dir: &Path, vars: &[(&str, &str)], stdin: Value) -> Outcome {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let dir = dir.to_owned();
    run(
        |k| map.get(k).cloned(),
        stdin.to_string().as_bytes(),
        Box::new(move |_: &NetConf| Ok(Box::new(FakeBackend::new(dir)) as Box<dyn Backend>)),
    )
}

fn code(o: &Outcome) -> u32 {
    match o {
        Outcome::Failure { error, .. } => error.code.number(),
        Outcome::Success(_) => 0,
    }
}

fn conf() -> Value {
    json!({"cniVersion": "1.1.0", "name": "n", "type": "bulkhead-cni", "bulkhead": {"network": "web"}})
}

const ADD: [(&str, &str); 4] = [
    ("CNI_COMMAND", "ADD"),
    ("CNI_CONTAINERID", "c1"),
    ("CNI_NETNS", "/run/netns/c1"),
    ("CNI_IFNAME", "eth0"),
];

#[test]
fn add_check_del_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let Outcome::Success(Some(result)) = invoke(dir.path(), &ADD, conf()) else {
        panic!()
    };
    assert_eq!(code(&invoke(dir.path(), &ADD, conf())), 101);
    let mut check = conf();
    check["prevResult"] = result.clone();
    let mut vars = ADD;
    vars[0].1 = "CHECK";
    assert_eq!(
        invoke(dir.path(), &vars, check.clone()),
        Outcome::Success(None)
    );
    let mut wrong = check.clone();
    wrong["prevResult"]["interfaces"][1]["mac"] = json!("02:00:00:00:00:99");
    assert_eq!(code(&invoke(dir.path(), &vars, wrong)), 104);
    vars[0].1 = "DEL";
    assert_eq!(invoke(dir.path(), &vars, conf()), Outcome::Success(None));
    vars[0].1 = "CHECK";
    assert_eq!(code(&invoke(dir.path(), &vars, check)), 3);
}

#[test]
fn daemon_down_codes_per_command() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("down"), "").unwrap();
    assert_eq!(code(&invoke(dir.path(), &ADD, conf())), 11);
    let mut vars = ADD;
    vars[0].1 = "DEL";
    assert_eq!(code(&invoke(dir.path(), &vars, conf())), 11);
    assert_eq!(
        code(&invoke(dir.path(), &[("CNI_COMMAND", "STATUS")], conf())),
        50
    );
}

#[test]
fn unknown_network_and_errors_echo_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = conf();
    c["bulkhead"]["network"] = json!("nope");
    c["cniVersion"] = json!("0.4.0");
    match invoke(dir.path(), &ADD, c.clone()) {
        Outcome::Failure { version, error } => {
            assert_eq!((version.as_str(), error.code.number()), ("0.4.0", 100));
        }
        other => panic!("{other:?}"),
    }
    c["bulkhead"]["driver"] = json!("nat");
    assert_eq!(code(&invoke(dir.path(), &ADD, c)), 0);
}
