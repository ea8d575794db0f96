//! What each network driver asks of the kernel (see `docs/drivers.md`):
//! the switch of a network ([`switch_spec`]), how its switch ports attach
//! ([`port_attach`]) and the checks a network must pass before it is stored
//! ([`Engine::check_driver`]).
//!
//! | driver | switch (`bhn…`) | switch port |
//! |---|---|---|
//! | nat | port-less bridge with the gateway | routed (/32 + proxy ARP) |
//! | transparent | bridge, uplink enslaved | bridge port |
//! | l2bridge | port-less bridge | routed, proxy neighbour on the uplink |
//! | l2tunnel | port-less bridge + policy routing | as l2bridge, resolved to the uplink's MAC |
//! | overlay | bridge + VXLAN `bhv…`, MTU uplink − 50, gateway on the bridge | bridge port |
//!
//! Contract: pure functions of the network, except `check_driver`, which
//! asks the kernel whether the uplink exists; nothing here changes the kernel.

use bulkhead_dataplane::kernel::{PortAttach, SwitchKind, SwitchSpec};
use bulkhead_model::{Driver, Id, InvalidValue, Network};

use crate::error::{EngineError, Result};
use crate::network::device_name;
use crate::state::State;
use crate::Engine;

/// Prefix of overlay VXLAN devices: `bhv` + 10 hex digits of the network id.
pub const VXLAN_PREFIX: &str = "bhv";

pub(crate) fn vxlan_name(id: &Id) -> String {
    format!("{VXLAN_PREFIX}{}", id.short_hex(10))
}

/// The routing table of an l2tunnel network: 0x62680000 + 16 bits of its id.
pub(crate) fn tunnel_table(id: &Id) -> u32 {
    let low = u32::from_str_radix(&id.short_hex(4), 16).unwrap_or(0);
    0x6268_0000 | low
}

/// The switch of a non-nat network (`None` for nat).
pub(crate) fn switch_spec(n: &Network) -> Option<SwitchSpec> {
    let uplink = n
        .uplink
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let kind = match n.driver {
        Driver::Nat => return None,
        Driver::Transparent => SwitchKind::Bridge { uplink },
        Driver::L2Bridge => SwitchKind::Routed { uplink },
        Driver::L2Tunnel => {
            let s = n.subnets[0];
            SwitchKind::Tunnel {
                uplink,
                subnet: (s.network(), s.prefix()),
                router: n.gateway,
                table: tunnel_table(&n.id),
            }
        }
        Driver::Overlay => SwitchKind::Overlay {
            vxlan: vxlan_name(&n.id),
            uplink,
            vni: n.vni.unwrap_or(0),
        },
    };
    Some(SwitchSpec {
        name: device_name(&n.id),
        kind,
    })
}

/// How the switch ports of `n` attach.
pub(crate) fn port_attach(n: &Network) -> PortAttach {
    let uplink = n
        .uplink
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    match n.driver {
        Driver::Nat => PortAttach::Routed,
        Driver::L2Bridge => PortAttach::Uplink {
            uplink,
            hairpin: false,
        },
        Driver::L2Tunnel => PortAttach::Uplink {
            uplink,
            hairpin: true,
        },
        Driver::Transparent | Driver::Overlay => PortAttach::Bridge {
            bridge: device_name(&n.id),
        },
    }
}

/// The gateway address the host itself holds on the network's bridge:
/// nat and overlay (the same address on every host; VXLAN never floods, so
/// each host answers for it alone). The L2 drivers' gateway is the LAN's
/// router, which the host does not own.
pub(crate) fn host_gateway(n: &Network) -> Option<(std::net::IpAddr, u8)> {
    match n.driver {
        Driver::Nat | Driver::Overlay => n.gateway.map(|g| (g, n.subnets[0].prefix())),
        _ => None,
    }
}

impl Engine {
    /// Driver checks a network must pass before it is stored: the uplink
    /// exists in the host namespace; a transparent network's uplink (which
    /// its bridge takes over) is no other network's; an overlay VNI is used
    /// by one network only.
    pub(crate) fn check_driver(&self, state: &State, n: &Network) -> Result<()> {
        if let Some(uplink) = &n.uplink {
            let name = uplink.as_str();
            let found = self
                .kernel
                .link_names(name)
                .map_err(EngineError::kernel)?
                .iter()
                .any(|l| l == name);
            if !found {
                return Err(InvalidValue::new(
                    "uplink",
                    name,
                    "an existing interface of the host namespace",
                )
                .into());
            }
            for other in state.networks.values() {
                let shared = other.uplink.as_ref() == Some(uplink);
                let exclusive =
                    n.driver == Driver::Transparent || other.driver == Driver::Transparent;
                if shared && exclusive {
                    return Err(EngineError::Conflict(format!(
                        "uplink {name}: network {:?} ({}) already uses it, and a transparent \
                         network's bridge takes its uplink for itself",
                        other.name.as_str(),
                        other.driver
                    )));
                }
            }
        }
        if let (Driver::Overlay, Some(vni)) = (n.driver, n.vni) {
            if let Some(other) = state.networks.values().find(|o| o.vni == Some(vni)) {
                return Err(EngineError::Conflict(format!(
                    "vni {vni}: network {:?} already uses it",
                    other.name.as_str()
                )));
            }
        }
        Ok(())
    }
}
