//! Unit tests of the daemon backend: names, prefixes, an absent daemon.

use super::*;

fn scope(conf: &str) -> Scope {
    Scope {
        conf_name: conf.into(),
        network: "web".into(),
    }
}

fn key(id: &str, ifname: &str) -> AttachmentKey {
    AttachmentKey {
        container_id: id.into(),
        ifname: ifname.into(),
    }
}

#[test]
fn names_are_stable_valid_and_distinct() {
    let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let a = endpoint_name(&scope("net"), &key(id, "eth0"));
    assert_eq!(a, endpoint_name(&scope("net"), &key(id, "eth0")));
    assert!(a.starts_with("cni-0123456789ab-") && a.len() <= 63, "{a}");
    assert_ne!(a, endpoint_name(&scope("net"), &key(id, "eth1")));
    assert_ne!(a, endpoint_name(&scope("other"), &key(id, "eth0")));
    assert_eq!(
        namespace_name("c1"),
        format!("cni-c1-{:08x}", fnv1a(&["c1"]) as u32)
    );
    // FNV-1a 64 of "a" is af63dc4c8601ec8c.
    assert_eq!(fnv1a(&["a"]), 0xaf63_dc4c_8601_ec8c);
}

#[test]
fn bare_addresses_get_the_subnet_prefix() {
    let net = NetworkInfo {
        subnets: vec!["10.1.0.0/16".into()],
        ..NetworkInfo::default()
    };
    assert_eq!(with_prefix("10.1.0.9", &net), "10.1.0.9/16");
    assert_eq!(with_prefix("10.1.0.9/24", &net), "10.1.0.9/24");
    assert_eq!(with_prefix("fd00::9", &net), "fd00::9/128");
}

#[test]
fn an_absent_daemon_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = DaemonBackend::new(&dir.path().join("none.sock")).unwrap();
    let err = b.status(&scope("net")).unwrap_err();
    assert!(matches!(err, BackendError::Unreachable(_)), "{err:?}");
    assert!(matches!(
        b.del(&scope("net"), &key("c1", "eth0")),
        Err(BackendError::Unreachable(_))
    ));
}
