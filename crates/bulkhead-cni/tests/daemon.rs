//! The plugin against the real daemon, as a runtime drives it (root only).
//!
//! Each test makes its containers' network namespaces itself (`ip netns
//! add`, like a runtime), runs the real `bulkhead-cni` binary, and checks
//! with real packets and the daemon's API. Everything lives in throwaway
//! namespaces (see `common`).

mod common;

use bulkhead_api::NamespaceSpec;
use bulkhead_testkit::probe::{arrives, ProbeKind};
use common::{arrives_soon, result_ip, Daemon, Netns};
use serde_json::json;

#[test]
fn add_gives_working_addresses_check_and_del_twice() {
    let Some(d) = Daemon::start() else { return };
    let conf = d.conf("web", "web", "10.91.0.0/24");
    let (a, b) = (Netns::new("cna"), Netns::new("cnb"));
    let ra = d.cni("ADD", "ctr-a", Some(&a.path()), &conf);
    assert!(ra.ok, "{ra:?}\n{}", d.log());
    let rb = d.cni("ADD", "ctr-b", Some(&b.path()), &conf);
    assert!(rb.ok, "{rb:?}");
    let (ipa, ipb) = (result_ip(&ra.json()), result_ip(&rb.json()));
    assert_ne!(ipa, ipb);
    assert_eq!(ra.json()["interfaces"][1]["sandbox"], json!(a.path()));
    // The default profile (current) holds for real packets.
    for kind in [ProbeKind::Tcp(8080), ProbeKind::Udp(5353), ProbeKind::Icmp] {
        assert!(
            arrives_soon(&a.path(), &b.path(), ipb, kind),
            "{kind:?} a->b"
        );
        assert!(
            arrives_soon(&b.path(), &a.path(), ipa, kind),
            "{kind:?} b->a"
        );
    }
    assert!(!arrives(&a.path(), &b.path(), ipb, ProbeKind::Raw(253)).unwrap());
    // The namespace is adopted and lists the container.
    let ns = d
        .api(d.client().namespace_list())
        .unwrap()
        .into_iter()
        .find(|n| n.containers == ["ctr-a"])
        .expect("namespace of ctr-a");
    assert!(ns.adopted, "{ns:?}");
    assert_eq!(ns.netns_path.as_deref(), a.path().to_str());
    let eps = d.api(d.client().endpoint_list()).unwrap();
    assert!(eps
        .iter()
        .any(|e| e.container_id.as_deref() == Some("ctr-a")));
    // CHECK against the ADD result; a second ADD of the same key is 101.
    let mut check = conf.clone();
    check["prevResult"] = ra.json();
    assert!(d.cni("CHECK", "ctr-a", Some(&a.path()), &check).ok);
    assert_eq!(d.cni("ADD", "ctr-a", Some(&a.path()), &conf).code(), 101);
    // DEL twice: both succeed, the runtime's netns stays.
    for _ in 0..2 {
        let r = d.cni("DEL", "ctr-a", Some(&a.path()), &conf);
        assert!(r.ok, "{r:?}");
    }
    assert!(
        a.path().exists(),
        "DEL must never delete the runtime's netns"
    );
    assert_eq!(d.cni("CHECK", "ctr-a", Some(&a.path()), &check).code(), 3);
    let names: Vec<String> = d
        .api(d.client().namespace_list())
        .unwrap()
        .into_iter()
        .flat_map(|n| n.containers)
        .collect();
    assert_eq!(names, ["ctr-b"]);
    assert_eq!(d.host_links("bhp").len(), 1);
    assert!(d.cni("DEL", "ctr-b", None, &conf).ok);
    assert!(d.host_links("bhp").is_empty());
    assert!(d.api(d.client().namespace_list()).unwrap().is_empty());
    assert!(d.pins().is_empty(), "adoption made no pins");
}

#[test]
fn del_after_the_netns_is_gone_and_across_a_restart() {
    let Some(mut d) = Daemon::start() else { return };
    let conf = d.conf("web", "web", "10.92.0.0/24");
    let (a, b, c) = (Netns::new("cna"), Netns::new("cnb"), Netns::new("cnc"));
    for (id, ns) in [("ctr-a", &a), ("ctr-b", &b)] {
        let r = d.cni("ADD", id, Some(&ns.path()), &conf);
        assert!(r.ok, "{r:?}");
    }
    // The runtime deletes a's netns before DEL: DEL still succeeds.
    a.delete();
    assert!(d.cni("DEL", "ctr-a", Some(&a.path()), &conf).ok);
    assert!(d.cni("DEL", "ctr-a", None, &conf).ok);
    // b's netns vanishes while the daemon is down: reconcile neither
    // recreates it nor loses the record; DEL afterwards cleans up.
    d.restart();
    b.delete();
    d.restart();
    assert!(!b.path().exists(), "reconcile recreated an adopted netns");
    assert!(d.host_links("bhp").is_empty(), "{:?}", d.host_links("bhp"));
    assert_eq!(d.api(d.client().endpoint_list()).unwrap().len(), 1);
    assert!(d.cni("DEL", "ctr-b", Some(&b.path()), &conf).ok);
    assert!(d.api(d.client().endpoint_list()).unwrap().is_empty());
    // ADD after a restart works, and its address is usable.
    let r = d.cni("ADD", "ctr-c", Some(&c.path()), &conf);
    assert!(r.ok, "{r:?}\n{}", d.log());
    d.restart();
    let mut check = conf.clone();
    check["prevResult"] = r.json();
    let run = d.cni("CHECK", "ctr-c", Some(&c.path()), &check);
    assert!(run.ok, "{run:?}");
    let e = Netns::new("cne");
    let re = d.cni("ADD", "ctr-e", Some(&e.path()), &conf);
    assert!(re.ok, "{re:?}");
    let ipc = result_ip(&r.json());
    assert!(arrives_soon(&e.path(), &c.path(), ipc, ProbeKind::Tcp(80)));
    assert!(d.cni("DEL", "ctr-c", Some(&c.path()), &conf).ok);
    assert!(d.cni("DEL", "ctr-e", Some(&e.path()), &conf).ok);
    assert!(d.host_links("bhp").is_empty());
}

#[test]
fn gc_keeps_only_valid_attachments_and_status_is_ok() {
    let Some(d) = Daemon::start() else { return };
    let conf = d.conf("web", "web", "10.93.0.0/24");
    let (a, b) = (Netns::new("cna"), Netns::new("cnb"));
    for (id, ns) in [("keep", &a), ("drop", &b)] {
        assert!(d.cni("ADD", id, Some(&ns.path()), &conf).ok);
    }
    assert!(d.cni("STATUS", "", None, &conf).ok);
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}]);
    let r = d.cni("GC", "", None, &gc);
    assert!(r.ok, "{r:?}");
    let eps = d.api(d.client().endpoint_list()).unwrap();
    let ids: Vec<_> = eps.iter().filter_map(|e| e.container_id.clone()).collect();
    assert_eq!(ids, ["keep"]);
    assert_eq!(d.host_links("bhp").len(), 1);
}

#[test]
fn a_pod_is_one_namespace_and_namespace_ls_shows_its_containers() {
    let Some(d) = Daemon::start() else { return };
    let conf = d.conf("web", "web", "10.94.0.0/24");
    let pod = Netns::new("cnpod");
    let r = d.cni("ADD", "pod-infra", Some(&pod.path()), &conf);
    assert!(r.ok, "{r:?}");
    let ns_name = d.api(d.client().namespace_list()).unwrap()[0].name.clone();
    // The pod's second container joins the same namespace (same path).
    let join = |id: &str, path: &std::path::Path| {
        d.api(d.client().namespace_create(NamespaceSpec {
            name: ns_name.clone(),
            netns_path: Some(path.display().to_string()),
            container_id: Some(id.into()),
            ..NamespaceSpec::default()
        }))
    };
    let joined = join("pod-app", &pod.path()).unwrap();
    assert_eq!(joined.containers, ["pod-infra", "pod-app"]);
    join("pod-app", &pod.path()).unwrap(); // idempotent
    let other = Netns::new("cnx");
    let err = join("pod-app", &other.path()).unwrap_err().to_string();
    assert!(err.contains("already exists"), "{err}");
    let list = d.api(d.client().namespace_list()).unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].containers, ["pod-infra", "pod-app"]);
    assert_eq!(list[0].endpoints.len(), 1);
    // One endpoint, one address for the whole pod; DEL of the sandbox ends it.
    assert!(d.cni("DEL", "pod-infra", Some(&pod.path()), &conf).ok);
    assert!(d.api(d.client().namespace_list()).unwrap().is_empty());
    assert!(pod.path().exists());
}

#[test]
fn adoption_is_refused_for_bad_paths() {
    let Some(d) = Daemon::start() else { return };
    let create = |path: &str, isolation: Option<&str>| {
        d.api(d.client().namespace_create(NamespaceSpec {
            name: "x".into(),
            isolation: isolation.map(Into::into),
            netns_path: Some(path.into()),
            container_id: None,
        }))
        .unwrap_err()
        .to_string()
    };
    let dir = d.dir.path().display().to_string();
    for (path, iso) in [
        ("relative/ns", None),
        ("/run/netns/../etc", None),
        (dir.as_str(), None),
        ("/nonexistent/ns", None),
        ("/proc/self/ns/net", Some("vm")),
    ] {
        let err = create(path, iso);
        assert!(err.contains("netns_path"), "{path}: {err}");
    }
    let own = format!("/run/netns/{}x", d.prefix);
    assert!(create(&own, None).contains("prefix"));
}

/// Spec §9: a pod author's `portMappings[].hostIP` must be an address of
/// the host. ADD with 169.254.169.254 (the metadata service) fails with
/// code 7 naming the field, and leaves no endpoint or adopted namespace;
/// the same pod with the loopback address (a host address) is attached.
#[test]
fn a_host_ip_that_is_not_the_hosts_is_code_7() {
    let Some(d) = Daemon::start() else { return };
    let mut conf = d.conf("web", "web", "10.91.4.0/24");
    let a = Netns::new("cnh");
    let mapping =
        |ip: &str| json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "hostIP": ip}]});
    conf["runtimeConfig"] = mapping("169.254.169.254");
    let r = d.cni("ADD", "ctr-h", Some(&a.path()), &conf);
    assert_eq!(r.code(), 7, "{r:?}");
    let details = r.json()["details"].as_str().unwrap_or_default().to_owned();
    assert!(
        details.contains("invalid publish[0].host_ip \"169.254.169.254\": an address of this host"),
        "{details}"
    );
    assert!(d.api(d.client().endpoint_list()).unwrap().is_empty());
    assert!(d.api(d.client().namespace_list()).unwrap().is_empty());
    conf["runtimeConfig"] = mapping("127.0.0.1");
    let r = d.cni("ADD", "ctr-h", Some(&a.path()), &conf);
    assert!(r.ok, "{r:?}\n{}", d.log());
}

/// Spec §9 (hostile tenants): ADD with `CNI_NETNS` naming the daemon's own
/// namespace (where its switch tables live), or a namespace another
/// container already holds, is refused with code 105, and nothing is made.
/// The weakened case (the host's switch table deleted through such an
/// adoption) is shown in `crates/engine/tests/attacks/adoption.rs`.
#[test]
fn add_into_the_daemons_namespace_or_a_held_one_is_refused() {
    let Some(d) = Daemon::start() else { return };
    let conf = d.conf("web", "web", "10.93.0.0/24");
    let r = d.cni("ADD", "ctr-h", Some(&d.host_path()), &conf);
    assert_eq!(r.code(), 105, "{r:?}");
    let details = r.json()["details"].as_str().unwrap_or_default().to_owned();
    assert!(
        details.contains("netns_path") && details.contains("host namespace"),
        "{details}"
    );
    assert!(d.host_links("bhp").is_empty());
    assert!(d.api(d.client().namespace_list()).unwrap().is_empty());
    // A pod's netns, then another container id handed the same netns.
    let a = Netns::new("cnh");
    assert!(d.cni("ADD", "ctr-a", Some(&a.path()), &conf).ok);
    let r = d.cni("ADD", "ctr-x", Some(&a.path()), &conf);
    assert_eq!(r.code(), 105, "{r:?}");
    assert!(r.json()["details"]
        .as_str()
        .unwrap_or_default()
        .contains("ctr-a"));
    assert_eq!(d.host_links("bhp").len(), 1);
    assert!(d.cni("DEL", "ctr-a", Some(&a.path()), &conf).ok);
}
