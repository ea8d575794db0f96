//! `bulkheadd --peers FILE`: the static peer list of overlay networks is
//! loaded at start and programmed on the network's VXLAN device (an FDB
//! entry to the remote host and a neighbour entry for the remote endpoint);
//! a bad file stops the daemon with one line naming it.

mod common;

use std::process::Command;

use common::{ip, Daemon};

#[test]
fn peers_file_programs_overlay_networks_and_bad_files_are_refused() {
    let Some(mut d) = Daemon::start() else { return };
    // The uplink: one end of a veth pair inside the throwaway host namespace.
    ip(&[
        "-n", &d.host, "link", "add", "bhtul0", "type", "veth", "peer", "name", "bhtul1",
    ]);
    ip(&[
        "-n",
        &d.host,
        "addr",
        "add",
        "192.0.2.10/24",
        "dev",
        "bhtul0",
    ]);
    ip(&["-n", &d.host, "link", "set", "bhtul0", "up"]);
    ip(&["-n", &d.host, "link", "set", "bhtul1", "up"]);
    let peers = d.dir.path().join("peers.json");
    std::fs::write(
        &peers,
        r#"{"ov": [{"ip": "10.203.0.50", "mac": "02:00:00:00:50:50", "host": "192.0.2.20"}]}"#,
    )
    .expect("write peers");
    d.stop();
    d.extra_args = vec!["--peers".into(), peers.display().to_string()];
    d.spawn();
    d.ok(&[
        "network",
        "create",
        "ov",
        "--driver",
        "overlay",
        "--subnet",
        "10.203.0.0/24",
        "--uplink",
        "bhtul0",
        "--vni",
        "4242",
    ]);
    let neigh = ip(&["-n", &d.host, "neigh", "show", "10.203.0.50"]);
    assert!(
        neigh.contains("02:00:00:00:50:50"),
        "neighbour of the remote endpoint: {neigh}"
    );
    let fdb = Command::new("bridge")
        .args(["-n", &d.host, "fdb", "show"])
        .output()
        .expect("bridge fdb");
    let fdb = String::from_utf8_lossy(&fdb.stdout);
    assert!(
        fdb.lines()
            .any(|l| l.contains("02:00:00:00:50:50") && l.contains("dst 192.0.2.20")),
        "FDB entry to the remote host: {fdb}"
    );
    d.ok(&["network", "rm", "ov"]);

    // A bad file: the daemon refuses to start, naming the file.
    std::fs::write(
        &peers,
        r#"{"ov": [{"ip": "nope", "mac": "02:00:00:00:50:50", "host": "192.0.2.20"}]}"#,
    )
    .expect("write bad peers");
    d.stop();
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", d.host))
        .arg(env!("CARGO_BIN_EXE_bulkheadd"))
        .arg("--state-dir")
        .arg(d.state_dir())
        .arg("--socket")
        .arg(d.socket())
        .arg("--netns-prefix")
        .arg(&d.prefix)
        .arg("--peers")
        .arg(&peers)
        .output()
        .expect("run bulkheadd");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(last.contains("peers") && last.contains("nope"), "{err}");
}
