//! Property tests of the allocator: any sequence of allocations (with and
//! without requested addresses), releases and owner releases never hands
//! out an address twice, never a reserved one, never one outside the
//! subnet, fails only for a stated reason, and agrees with a model.

use std::collections::BTreeMap;
use std::net::IpAddr;

use bulkhead_store::{MemoryStore, Reader, StoreError, StoreExt, Subnet};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Allocate for owner `o`, maybe requesting the address at offset `h`.
    Allocate {
        owner: u8,
        hint: Option<u16>,
    },
    /// Release the `i`-th held address (modulo the count).
    Release(usize),
    ReleaseOwner(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, proptest::option::weighted(0.3, any::<u16>()))
            .prop_map(|(owner, hint)| Op::Allocate { owner, hint }),
        2 => any::<usize>().prop_map(Op::Release),
        1 => (0u8..6).prop_map(Op::ReleaseOwner),
    ]
}

/// (subnet, gateway): small pools so that exhaustion and wrap-around happen.
fn pool() -> impl Strategy<Value = (&'static str, Option<&'static str>)> {
    prop_oneof![
        Just(("10.0.0.0/28", Some("10.0.0.1"))),
        Just(("10.0.0.16/29", Some("10.0.0.22"))),
        Just(("192.168.0.0/27", None)),
        Just(("fd00::/123", Some("fd00::1"))),
        Just(("fd00::/64", None)),
    ]
}

fn nth(subnet: &str, offset: u16) -> IpAddr {
    let s: Subnet = subnet.parse().unwrap();
    match s.network() {
        IpAddr::V4(n) => IpAddr::V4((u32::from(n).wrapping_add(u32::from(offset))).into()),
        IpAddr::V6(n) => IpAddr::V6((u128::from(n) + u128::from(offset)).into()),
    }
}

fn is_reserved(subnet: &Subnet, gateway: Option<IpAddr>, ip: IpAddr) -> bool {
    let last_v4 = match subnet.network() {
        IpAddr::V4(n) => Some(IpAddr::V4(
            (u32::from(n) | (u32::MAX >> subnet.prefix())).into(),
        )),
        IpAddr::V6(_) => None,
    };
    ip == subnet.network() || Some(ip) == last_v4 || Some(ip) == gateway
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn allocator_never_duplicates_or_leaks((cidr, gw) in pool(), ops in prop::collection::vec(op(), 1..120)) {
        let store = MemoryStore::new();
        let subnet: Subnet = cidr.parse().unwrap();
        let gateway = gw.map(|g| g.parse::<IpAddr>().unwrap());
        store.transaction(|t| t.create_pool("n", subnet, gateway)).unwrap();
        // The model: address -> owner.
        let mut held: BTreeMap<IpAddr, String> = BTreeMap::new();
        // IPv4 reserves the network and broadcast addresses, IPv6 the
        // subnet-router anycast address; both reserve the gateway.
        let (bits, reserved) = if subnet.network().is_ipv4() { (32, 2) } else { (128, 1) };
        let usable = (bits - subnet.prefix() < 32)
            .then(|| (1u32 << (bits - subnet.prefix())) - reserved - u32::from(gateway.is_some()));

        for op in ops {
            match op {
                Op::Allocate { owner, hint } => {
                    let owner = format!("o{owner}");
                    let hint = hint.map(|h| nth(cidr, h % 64));
                    match store.transaction(|t| t.allocate("n", hint, &owner)) {
                        Ok(ip) => {
                            prop_assert!(subnet.contains(ip), "{ip} outside {subnet}");
                            prop_assert!(!is_reserved(&subnet, gateway, ip), "{ip} is reserved");
                            prop_assert!(hint.is_none_or(|h| h == ip));
                            prop_assert!(held.insert(ip, owner).is_none(), "{ip} handed out twice");
                        }
                        Err(StoreError::Exhausted { .. }) => {
                            prop_assert!(hint.is_none());
                            prop_assert_eq!(Some(held.len() as u32), usable);
                        }
                        Err(StoreError::AddressInUse { ip, .. }) => prop_assert!(held.contains_key(&ip)),
                        Err(StoreError::Reserved { ip, .. }) => {
                            prop_assert!(is_reserved(&subnet, gateway, ip));
                        }
                        Err(StoreError::NotInSubnet { ip, .. }) => prop_assert!(!subnet.contains(ip)),
                        Err(e) => prop_assert!(false, "unexpected error: {e}"),
                    }
                }
                Op::Release(i) => {
                    if let Some(ip) = held.keys().nth(i % held.len().max(1)).copied() {
                        store.transaction(|t| t.release("n", ip)).unwrap();
                        held.remove(&ip);
                        let again = store.transaction(|t| t.release("n", ip));
                        prop_assert!(matches!(again, Err(StoreError::NotAllocated { .. })), "double release");
                    }
                }
                Op::ReleaseOwner(o) => {
                    let owner = format!("o{o}");
                    let released = store.transaction(|t| t.release_owner(&owner)).unwrap();
                    let expected = held.iter().filter(|(_, w)| **w == owner).count();
                    prop_assert_eq!(released.len(), expected);
                    held.retain(|_, w| *w != owner);
                }
            }
            let stored: BTreeMap<IpAddr, String> = store
                .read(|t| t.allocations("n"))
                .unwrap()
                .into_iter()
                .map(|a| (a.ip, a.owner))
                .collect();
            prop_assert_eq!(&stored, &held);
        }
    }
}
