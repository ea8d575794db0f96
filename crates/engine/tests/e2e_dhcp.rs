//! DHCP for vm endpoints on the real kernel, every driver (spec §2, §11;
//! `docs/adr/0007-dhcp.md`). No VM: the test opens each TAP switch port
//! from userspace as its guest ([`TapGuest`]) and writes and reads raw
//! frames, as a VMM would. All drivers run concurrently (one thread each).

mod common;
mod dhcp_support;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use bulkhead_dataplane::host::HostKernel;
use bulkhead_engine::{Config, Engine};
use bulkhead_store::MemoryStore;
use bulkhead_testkit::dhcp::client_frame;
use common::*;
use dhcp_support::*;
use dhcproto::v4::MessageType;

/// One driver: the guest gets its lease; a REQUEST for another address is
/// NAKed; DISCOVERs with another MAC (as the frame's source and chaddr, or
/// as chaddr only) get no answer at all.
fn answers_own_mac_only(driver: &str) {
    let tag = format!("dh{}", &driver[..3]);
    let Some(h) = Harness::new(&tag) else { return };
    let (_lan, _) = network(&h, driver, &tag);
    let gateway = h.engine.network("d").expect("network").gateway.map(v4);
    let ep = vm_at(&h, "vm1", vm_ips(driver)[0]);
    let guest = guest(&h, &ep);
    let server = lease(&guest, &ep, gateway, driver);
    let mac = ep.mac_address.0;
    let other_ip = Ipv4Addr::from(u32::from(v4(ep.ip_address.addr)) + 1);
    let nak = exchange(
        &guest,
        &client_frame(
            mac,
            MessageType::Request,
            0x1003,
            Some(other_ip),
            Some(server),
        ),
        0x1003,
        ANSWER,
    )
    .unwrap_or_else(|| panic!("{driver}: no NAK"));
    assert_eq!(nak.opts().msg_type(), Some(MessageType::Nak), "{driver}");
    let stranger = [0x02, 0x42, 0xde, 0xad, 0xbe, 0xef];
    let mut chaddr_only = client_frame(stranger, MessageType::Discover, 0x1005, None, None);
    chaddr_only[6..12].copy_from_slice(&mac);
    for (frame, xid) in [
        (
            client_frame(stranger, MessageType::Discover, 0x1004, None, None),
            0x1004,
        ),
        (chaddr_only, 0x1005),
    ] {
        assert!(
            exchange(&guest, &frame, xid, SILENCE).is_none(),
            "{driver}: a DISCOVER for another MAC is answered"
        );
    }
    // Deleted: the server is gone with the endpoint (its TAP too).
    h.engine.delete_endpoint("vm1").expect("delete");
    assert!(
        exchange(
            &guest,
            &client_frame(mac, MessageType::Discover, 0x1006, None, None),
            0x1006,
            SILENCE
        )
        .is_none(),
        "{driver}: answered after delete"
    );
}

#[test]
fn vm_guests_get_their_own_lease_and_nothing_for_other_macs_on_every_driver() {
    let threads: Vec<_> = DRIVERS
        .iter()
        .map(|d| std::thread::spawn(move || answers_own_mac_only(d)))
        .collect();
    let failed: Vec<&str> = DRIVERS
        .iter()
        .zip(threads)
        .filter_map(|(d, t)| t.join().is_err().then_some(*d))
        .collect();
    assert!(
        failed.is_empty(),
        "drivers {failed:?} failed (see their panics above)"
    );
}

/// A daemon restart: a new kernel handle (no servers) and a new engine on
/// the same store. Before the new engine's reconcile the guest gets no
/// answer (the old servers are stopped); after it, its lease again.
#[test]
fn reconcile_restores_dhcp_after_a_restart() {
    if !require_root() {
        return;
    }
    let host = Host::with_outside("dhrc");
    let store = Arc::new(MemoryStore::new());
    let (prefix, _) = unique_prefix('x');
    let open = || {
        let kernel = Arc::new(HostKernel::open(Some(host.host())).expect("open kernel"));
        let config = Config {
            netns_prefix: prefix.clone(),
        };
        Engine::open(kernel, store.clone(), config)
            .expect("open engine")
            .0
    };
    let first = open();
    first
        .create_network(bulkhead_model::NetworkSpec {
            name: "d".into(),
            driver: "nat".into(),
            subnets: vec!["10.222.0.0/24".into()],
            ..Default::default()
        })
        .expect("network");
    first
        .create_namespace(bulkhead_model::NamespaceSpec {
            name: "vm1".into(),
            isolation: Some("vm".into()),
            ..Default::default()
        })
        .expect("namespace");
    let ep = first
        .create_endpoint(bulkhead_model::EndpointSpec {
            name: "vm1".into(),
            network: "d".into(),
            namespace: "vm1".into(),
            ..Default::default()
        })
        .expect("endpoint");
    let gateway = first.network("d").expect("network").gateway.map(v4);
    let guest = guest(&host, &ep);
    lease(&guest, &ep, gateway, "before restart");
    drop(first); // the daemon stops: its kernel handle's servers with it
    std::thread::sleep(Duration::from_millis(300));
    let mac = ep.mac_address.0;
    assert!(
        exchange(
            &guest,
            &client_frame(mac, MessageType::Discover, 0x2001, None, None),
            0x2001,
            SILENCE
        )
        .is_none(),
        "the stopped daemon still answers: the restart would prove nothing"
    );
    let second = open();
    lease(&guest, &ep, gateway, "after restart");
    drop(second);
    delete_pins(&prefix);
}
