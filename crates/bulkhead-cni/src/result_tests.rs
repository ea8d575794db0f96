use super::*;
use crate::backend::AttachmentKey;

fn attachment() -> Attachment {
    Attachment {
        key: AttachmentKey {
            container_id: "c1".into(),
            ifname: "eth0".into(),
        },
        netns: None,
        address: "10.88.0.2/24".into(),
        mac: "02:42:0a:58:00:02".into(),
        gateway: Some("10.88.0.1".into()),
        host_ifname: "bh0002".into(),
        port_mappings: vec![],
    }
}

#[test]
fn ours_has_host_and_container_interfaces() {
    let r = CniResult::for_attachment(&attachment(), "/run/netns/x", None);
    let v = r.render(Version::V1_1_0);
    assert_eq!(v["interfaces"][0], json!({"name": "bh0002"}));
    assert_eq!(v["interfaces"][1]["sandbox"], "/run/netns/x");
    assert_eq!(
        v["ips"][0],
        json!({"address": "10.88.0.2/24", "gateway": "10.88.0.1", "interface": 1})
    );
    assert_eq!(
        v["routes"][0],
        json!({"dst": "0.0.0.0/0", "gw": "10.88.0.1"})
    );
    assert_eq!(v["dns"], json!({}));
}

#[test]
fn old_versions_carry_ip_versions_and_drop_new_fields() {
    let mut r = CniResult::for_attachment(&attachment(), "/run/netns/x", None);
    r.interfaces[1].mtu = Some(1500);
    r.ips.push(IpConfig {
        address: "fd00::2/64".into(),
        gateway: None,
        interface: Some(1),
    });
    let old = r.render(Version::V0_4_0);
    assert_eq!(old["cniVersion"], "0.4.0");
    assert_eq!(old["ips"][0]["version"], "4");
    assert_eq!(old["ips"][1]["version"], "6");
    assert!(old["interfaces"][1].get("mtu").is_none());
    let new = r.render(Version::V1_1_0);
    assert!(new["ips"][0].get("version").is_none());
    assert_eq!(new["interfaces"][1]["mtu"], 1500);
    assert!(r.render(Version::V1_0_0)["interfaces"][1]
        .get("mtu")
        .is_none());
}

#[test]
fn prev_results_round_trip_and_chain() {
    let r = CniResult::for_attachment(&attachment(), "/run/netns/x", None);
    for v in [Version::V0_3_1, Version::V1_1_0] {
        assert_eq!(CniResult::from_prev(&r.render(v)).unwrap(), r);
    }
    let chained = r.clone().chain(r.clone());
    assert_eq!(chained.interfaces.len(), 4);
    assert_eq!(chained.ips[1].interface, Some(3));
    assert!(CniResult::from_prev(&json!({"ips": "x"})).is_err());
}
