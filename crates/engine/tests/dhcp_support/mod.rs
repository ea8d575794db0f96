//! Shared by the DHCP end-to-end tests: one network per driver, vm
//! endpoints, a TAP guest and the DHCP exchange as its client.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bulkhead_model::Endpoint;
use bulkhead_testkit::dhcp::server_message;
use bulkhead_testkit::tap::TapGuest;
use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};

use crate::common::*;
use bulkhead_testkit::dhcp::client_frame;

pub const UPLINK: &str = "bhtl0";
pub const DRIVERS: [&str; 5] = ["nat", "transparent", "l2bridge", "l2tunnel", "overlay"];
pub const ANSWER: Duration = Duration::from_secs(3);
pub const SILENCE: Duration = Duration::from_millis(800);

/// A network `d` of `driver` in `h` (with its LAN when it has an uplink);
/// returns the LAN guard and a free address for a process endpoint.
pub fn network(h: &Harness, driver: &str, tag: &str) -> (Option<Lan>, &'static str) {
    match driver {
        "nat" => {
            h.nat_network("d", "10.220.0.0/24", None);
            (None, "10.220.0.50")
        }
        "overlay" => {
            l2_network(
                h,
                "d",
                driver,
                "10.221.0.0/24",
                None,
                UPLINK_DEV,
                Some(4021),
            );
            (None, "10.221.0.50")
        }
        _ => {
            let lan = Lan::attach(h, tag, UPLINK, driver == "l2tunnel");
            l2_network(
                h,
                "d",
                driver,
                LAN_SUBNET,
                Some("198.51.100.254"),
                UPLINK,
                None,
            );
            (Some(lan), "198.51.100.50")
        }
    }
}

/// A vm endpoint `name` (own vm namespace) on `d`; at `ip` when given (on
/// the LAN subnet the host's own 198.51.100.1 must not be handed out).
pub fn vm_at(h: &Harness, name: &str, ip: Option<&str>) -> Endpoint {
    h.engine
        .create_namespace(bulkhead_model::NamespaceSpec {
            name: name.into(),
            isolation: Some("vm".into()),
            ..Default::default()
        })
        .expect("vm namespace");
    h.engine
        .create_endpoint(bulkhead_model::EndpointSpec {
            name: name.into(),
            network: "d".into(),
            namespace: name.into(),
            ip: ip.map(Into::into),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("create vm endpoint {name}: {e}"))
}

/// Addresses for vm endpoints on `driver`'s network `d`.
pub fn vm_ips(driver: &str) -> [Option<&'static str>; 2] {
    match driver {
        "nat" | "overlay" => [None, None],
        _ => [Some("198.51.100.60"), Some("198.51.100.61")],
    }
}

pub fn v4(ip: IpAddr) -> Ipv4Addr {
    match ip {
        IpAddr::V4(a) => a,
        IpAddr::V6(a) => panic!("not IPv4: {a}"),
    }
}

/// Sends `frame` as the guest and waits for the server's reply to `xid`.
pub fn exchange(guest: &TapGuest, frame: &[u8], xid: u32, wait: Duration) -> Option<Message> {
    // A write fails (EIO) once the TAP is gone: no answer either.
    guest.send(frame).ok()?;
    let got = guest.recv_matching(wait, |f| server_message(f).is_some_and(|m| m.xid() == xid))?;
    server_message(&got)
}

/// Opens `ep`'s TAP as its guest and waits until the host side is
/// operationally up: until the kernel's link watch has seen the carrier,
/// the TAP's queue discipline drops what is sent to the guest.
pub fn guest(host: &Host, ep: &Endpoint) -> TapGuest {
    // Seen once under load: EBUSY (a queue still attached) right after the
    // port was made; a VMM retries its open too.
    let mut tries = 0;
    let g = loop {
        match TapGuest::open(host.host(), ep.switch_port.as_str(), false) {
            Ok(g) => break g,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 20 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("open tap {}: {e}", ep.switch_port),
        }
    };
    wait_up(host.host_name(), ep.switch_port.as_str());
    g
}

pub fn opt(m: &Message, code: OptionCode) -> Option<DhcpOption> {
    m.opts().get(code).cloned()
}

/// DISCOVER → OFFER, REQUEST → ACK as `ep`'s guest; returns the server id.
pub fn lease(guest: &TapGuest, ep: &Endpoint, gateway: Option<Ipv4Addr>, what: &str) -> Ipv4Addr {
    let mac = ep.mac_address.0;
    let addr = v4(ep.ip_address.addr);
    let offer = exchange(
        guest,
        &client_frame(mac, MessageType::Discover, 0x1001, None, None),
        0x1001,
        ANSWER,
    )
    .unwrap_or_else(|| panic!("{what}: no OFFER on {}", ep.switch_port));
    assert_eq!(offer.opts().msg_type(), Some(MessageType::Offer), "{what}");
    assert_eq!(offer.yiaddr(), addr, "{what}: offered address");
    assert_eq!(&offer.chaddr()[..6], &mac, "{what}");
    let mask = bulkhead_dataplane::dhcp::reply::mask(ep.ip_address.prefix);
    assert_eq!(
        opt(&offer, OptionCode::SubnetMask),
        Some(DhcpOption::SubnetMask(mask)),
        "{what}"
    );
    assert_eq!(
        opt(&offer, OptionCode::Router),
        gateway.map(|g| DhcpOption::Router(vec![g])),
        "{what}: router"
    );
    assert_eq!(
        opt(&offer, OptionCode::AddressLeaseTime),
        Some(DhcpOption::AddressLeaseTime(3600)),
        "{what}"
    );
    assert_eq!(
        opt(&offer, OptionCode::DomainNameServer),
        None,
        "{what}: no DNS configured"
    );
    let Some(DhcpOption::ServerIdentifier(server)) = opt(&offer, OptionCode::ServerIdentifier)
    else {
        panic!("{what}: no server identifier")
    };
    let req = client_frame(mac, MessageType::Request, 0x1002, Some(addr), Some(server));
    let ack = exchange(guest, &req, 0x1002, ANSWER).unwrap_or_else(|| panic!("{what}: no ACK"));
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack), "{what}");
    assert_eq!(ack.yiaddr(), addr, "{what}: acked address");
    server
}
