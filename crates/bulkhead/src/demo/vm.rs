//! `bulkhead demo --vm`: a vm endpoint next to a process endpoint on an
//! l2bridge network, with a real guest (QEMU under TCG, from
//! [`bulkhead_guest`]) on the vm endpoint's TAP switch port.
//!
//! Contract: every step is a `bulkhead` command line over the API, like
//! the rest of the tour; the guest's address comes from bulkhead's DHCP
//! and must be the endpoint's; the probes are real packets whose outcome
//! is printed as observed (`crossed` / `blocked`), never assumed. The
//! section fails (and the demo with it) unless traffic crosses both ways,
//! the switch-port block rules stop it with the guest's own TCP counter
//! unmoved, and their removal restores it. The guest and its boot files
//! are gone when this returns, also on failure.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bulkhead_api::Response;
use bulkhead_guest::{probe, BootFiles, Guest, GuestError};

use super::{step, DemoError, Tour};

/// The l2bridge network of this section (its own subnet; the gateway is
/// the stub LAN's router, which nothing answers for here).
const SUBNET: &str = "10.202.0.0/24";
const GATEWAY: &str = "10.202.0.254";
/// The stub uplink: a veth pair in the throwaway host namespace.
const UPLINK: (&str, &str) = ("bhdemo-up", "bhdemo-lan");
/// The process endpoint's TCP listener, and the guest's.
const APP_PORT: u16 = 8080;
const GUEST_PORT: u16 = 7000;
/// The block rules: new flows into and out of the guest at its port.
const RULES: [(&str, &str); 2] = [("in", "cut-guest-in"), ("out", "cut-guest-out")];

/// What one round of probes saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Round {
    ping_out: bool,
    tcp_out: bool,
    tcp_in: bool,
    /// TCP segments the guest's kernel counted during the round.
    segments_in: u64,
}

impl Round {
    fn all(self, crossed: bool) -> bool {
        [self.ping_out, self.tcp_out, self.tcp_in] == [crossed; 3]
    }
}

fn seen(crossed: bool) -> &'static str {
    if crossed {
        "crossed"
    } else {
        "blocked"
    }
}

fn guest_step<T>(r: Result<T, GuestError>) -> Result<T, DemoError> {
    r.map_err(|e| DemoError::Step(e.to_string()))
}

/// The guest's boot files, in a directory removed on drop.
struct Files {
    dir: PathBuf,
    files: BootFiles,
}

impl Files {
    fn build(dir: PathBuf) -> Result<Files, DemoError> {
        step("guest boot files", std::fs::create_dir_all(&dir))?;
        match bulkhead_guest::initramfs::build(&dir) {
            Ok(files) => Ok(Files { dir, files }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(DemoError::Step(e.to_string()))
            }
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The endpoint `ep` in namespace `ns` (made with `extra` arguments): its
/// address, MAC and switch port.
fn endpoint(
    tour: &Tour,
    ep: &str,
    ns: &str,
    extra: &[&str],
) -> Result<(Ipv4Addr, String, String), DemoError> {
    tour.call(&[&["namespace", "create", ns][..], extra].concat())?;
    let args = [
        "endpoint",
        "create",
        ep,
        "--network",
        "vmdemo",
        "--namespace",
        ns,
    ];
    let Response::Endpoint(e) = tour.call(&args)? else {
        return Err(DemoError::Step(
            "create endpoint: unexpected response".into(),
        ));
    };
    let ip = e.ip_address.split('/').next().unwrap_or_default();
    let ip = step("endpoint address", ip.parse::<Ipv4Addr>())?;
    Ok((ip, e.mac_address, e.switch_port))
}

/// One round: guest → app ping and TCP, app → guest TCP, all three at
/// once (a stopped probe waits out its bounded timeout; three in a row
/// would add them up), printed.
fn round(g: &mut Guest, app: (Ipv4Addr, &Path), guest_ip: Ipv4Addr) -> Result<Round, DemoError> {
    let (app_ip, app_ns) = app;
    let before = guest_step(probe::snmp(g, "Tcp", "InSegs"))?;
    let reply = guest_step(probe::guest_listen(g, GUEST_PORT))?;
    let m = probe::marker();
    let to_app = SocketAddr::V4(SocketAddrV4::new(app_ip, APP_PORT));
    let to_guest = SocketAddr::V4(SocketAddrV4::new(guest_ip, GUEST_PORT));
    let (outbound, inbound) = std::thread::scope(|s| {
        let inbound = s.spawn(|| probe::tcp_exchange(app_ns, to_guest, &m, &reply));
        let outbound = probe::ping_and_tcp_from_guest(g, app_ns, app_ip, to_app);
        (outbound, inbound.join().unwrap_or(false))
    });
    let (ping_out, peer) = guest_step(outbound)?;
    let tcp_in = inbound && guest_step(probe::guest_received(g, GUEST_PORT))?.contains(&m);
    // The probes' own segments (the listener set-up is local to the guest).
    let after = guest_step(probe::snmp(g, "Tcp", "InSegs"))?;
    let r = Round {
        ping_out,
        tcp_out: peer.is_some(),
        tcp_in,
        segments_in: after.saturating_sub(before),
    };
    println!("  guest -> app  icmp        {}", seen(r.ping_out));
    let from = peer.map(|p| format!(" (app saw {p})")).unwrap_or_default();
    println!(
        "  guest -> app  tcp/{APP_PORT}    {}{from}",
        seen(r.tcp_out)
    );
    println!("  app -> guest  tcp/{GUEST_PORT}    {}", seen(r.tcp_in));
    println!(
        "  TCP segments the guest's kernel received: {}",
        r.segments_in
    );
    Ok(r)
}

/// Runs the section on `tour`'s service; `state` is a directory for the
/// guest's boot files.
pub(super) fn run(tour: &Tour, state: PathBuf) -> Result<(), DemoError> {
    println!("\nvm endpoint (--vm): a QEMU guest on a TAP switch port of an l2bridge network, next to a process endpoint");
    step("stub uplink", tour.service.add_uplink(UPLINK.0, UPLINK.1))?;
    let net = [
        "network", "create", "vmdemo", "--driver", "l2bridge", "--subnet", SUBNET,
    ];
    tour.call(&[&net[..], &["--gateway", GATEWAY, "--uplink", UPLINK.0]].concat())?;
    println!(
        "network vmdemo: l2bridge, subnet {SUBNET}, gateway {GATEWAY}, uplink {}",
        UPLINK.0
    );
    let (app_ip, _, app_port) = endpoint(tour, "app", "gamma", &[])?;
    println!(
        "endpoint app: {app_ip} in namespace gamma (process isolation), switch port {app_port}"
    );
    let (guest_ip, mac, tap) = endpoint(tour, "guest", "vm1", &["--isolation", "vm"])?;
    println!("endpoint guest: {guest_ip} in namespace vm1 (vm isolation): TAP {tap}, MAC {mac}");
    let Response::Namespace(gamma) = tour.call(&["namespace", "inspect", "gamma"])? else {
        return Err(DemoError::Step(
            "inspect namespace: unexpected response".into(),
        ));
    };
    let app_ns = gamma
        .netns_path
        .map(PathBuf::from)
        .ok_or_else(|| DemoError::Step("namespace gamma: no network namespace".into()))?;

    let files = Files::build(state)?;
    let started = Instant::now();
    let mut g = guest_step(Guest::boot(
        "guest",
        &files.files,
        tour.service.host(),
        &tap,
        &mac,
    ))?;
    println!(
        "guest booted in {:.1}s: qemu-system-x86_64 -accel tcg, kernel {}, NIC virtio-net-pci on {tap} with MAC {mac}",
        started.elapsed().as_secs_f64(),
        files.files.kernel.display()
    );
    let lease = guest_step(g.dhcp())?;
    println!(
        "guest DHCP lease from bulkhead: {}",
        lease.as_deref().unwrap_or("none (no offer)")
    );
    if lease != Some(guest_ip.to_string()) {
        return Err(DemoError::Step(format!(
            "the guest's lease {lease:?} is not its endpoint's address {guest_ip}"
        )));
    }

    println!("\nguest <-> process endpoint (real packets):");
    let open = round(&mut g, (app_ip, &app_ns), guest_ip)?;
    let mut shown = Vec::new();
    for (direction, id) in RULES {
        let rule = format!(
            "acl add guest --direction {direction} --action block --rule-type switch --id {id}"
        );
        let args: Vec<&str> = rule.split(' ').collect();
        tour.call(&args)?;
        shown.push(rule);
    }
    println!("\nafter `{}`:", shown.join("` and `"));
    let cut = round(&mut g, (app_ip, &app_ns), guest_ip)?;
    for (_, id) in RULES {
        tour.call(&["acl", "rm", "guest", id])?;
    }
    println!(
        "\nafter `acl rm guest {}` and `acl rm guest {}`:",
        RULES[0].1, RULES[1].1
    );
    let restored = round(&mut g, (app_ip, &app_ns), guest_ip)?;
    drop(g);

    let expected = open.all(true) && cut.all(false) && cut.segments_in == 0 && restored.all(true);
    if !expected {
        return Err(DemoError::Step(
            "the guest's traffic did not cross, stop at its switch port and come back as expected (see above)".into(),
        ));
    }
    println!("\nthe guest's traffic crossed, was stopped at its switch port (the guest saw no segment) and came back.");
    Ok(())
}

/// Deletes what the section made, best effort (the uplink goes with the
/// host namespace).
pub(super) fn teardown(tour: &Tour) {
    for e in ["app", "guest"] {
        let _ = tour.call(&["endpoint", "rm", e]);
    }
    for n in ["gamma", "vm1"] {
        let _ = tour.call(&["namespace", "rm", n]);
    }
    let _ = tour.call(&["network", "rm", "vmdemo"]);
}
