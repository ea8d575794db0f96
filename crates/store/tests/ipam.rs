//! IPAM: allocation order, requested addresses, exhaustion, release, large
//! pools, persistence and concurrent allocation.

mod common;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use bulkhead_store::{MemoryStore, Reader, RedbStore, Store, StoreError, StoreExt, Subnet};
use common::each_store;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn subnet(s: &str) -> Subnet {
    s.parse().unwrap()
}

fn pool(store: &dyn Store, network: &str, cidr: &str, gateway: Option<&str>) {
    store
        .transaction(|t| t.create_pool(network, subnet(cidr), gateway.map(ip)))
        .unwrap();
}

fn alloc(
    store: &dyn Store,
    network: &str,
    hint: Option<&str>,
    owner: &str,
) -> Result<IpAddr, StoreError> {
    store.transaction(|t| t.allocate(network, hint.map(ip), owner))
}

#[test]
fn scans_after_the_cursor_and_skips_reserved() {
    each_store(|store| {
        pool(store, "n", "10.0.0.0/29", Some("10.0.0.1"));
        let got: Vec<_> = (0..3)
            .map(|i| alloc(store, "n", None, &format!("e{i}")).unwrap())
            .collect();
        assert_eq!(got, [ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.4")]);
        store
            .transaction(|t| t.release("n", ip("10.0.0.3")))
            .unwrap();
        // The just-released address is not reused at once.
        assert_eq!(alloc(store, "n", None, "e3").unwrap(), ip("10.0.0.5"));
        assert_eq!(alloc(store, "n", None, "e4").unwrap(), ip("10.0.0.6"));
        // Then the scan wraps (skipping .7 broadcast, .0 network, .1 gateway).
        assert_eq!(alloc(store, "n", None, "e5").unwrap(), ip("10.0.0.3"));
        let err = alloc(store, "n", None, "e6").unwrap_err();
        assert_eq!(err.to_string(), "subnet 10.0.0.0/29: no free address");
        let owners: Vec<_> = store
            .read(|t| t.allocations("n"))
            .unwrap()
            .into_iter()
            .map(|a| a.owner)
            .collect();
        assert_eq!(owners, ["e0", "e5", "e2", "e3", "e4"]);
    });
}

#[test]
fn requested_addresses_are_checked() {
    each_store(|store| {
        pool(store, "n", "10.0.0.0/24", Some("10.0.0.1"));
        assert_eq!(
            alloc(store, "n", Some("10.0.0.50"), "a").unwrap(),
            ip("10.0.0.50")
        );
        let msg = |hint| alloc(store, "n", Some(hint), "b").unwrap_err().to_string();
        assert_eq!(
            msg("10.0.0.50"),
            "ip 10.0.0.50: already allocated in network n to a"
        );
        assert_eq!(msg("10.0.1.5"), "ip 10.0.1.5: not in subnet 10.0.0.0/24");
        assert_eq!(msg("fd00::5"), "ip fd00::5: not in subnet 10.0.0.0/24");
        assert_eq!(
            msg("10.0.0.1"),
            "ip 10.0.0.1: reserved in subnet 10.0.0.0/24 (gateway)"
        );
        assert_eq!(
            msg("10.0.0.0"),
            "ip 10.0.0.0: reserved in subnet 10.0.0.0/24 (network address)"
        );
        assert_eq!(
            msg("10.0.0.255"),
            "ip 10.0.0.255: reserved in subnet 10.0.0.0/24 (broadcast address)"
        );
        // A requested address does not move the cursor.
        assert_eq!(alloc(store, "n", None, "c").unwrap(), ip("10.0.0.2"));
    });
}

#[test]
fn pool_lifecycle_and_errors() {
    each_store(|store| {
        let err = alloc(store, "n", None, "a").unwrap_err();
        assert_eq!(err.to_string(), "network n: no address pool");
        let err = store
            .transaction(|t| t.create_pool("n", subnet("10.0.0.0/24"), Some(ip("10.1.0.1"))))
            .unwrap_err();
        assert_eq!(err.to_string(), "ip 10.1.0.1: not in subnet 10.0.0.0/24");
        pool(store, "n", "10.0.0.0/24", None);
        let err = store
            .transaction(|t| t.create_pool("n", subnet("10.9.0.0/16"), None))
            .unwrap_err();
        assert!(matches!(err, StoreError::PoolExists { .. }));
        assert!(store
            .transaction(|t| t.create_pool("a/b", subnet("10.0.0.0/24"), None))
            .is_err());
        assert!(alloc(store, "n", None, "bad/owner").is_err());
        let err = store
            .transaction(|t| t.release("n", ip("10.0.0.9")))
            .unwrap_err();
        assert_eq!(err.to_string(), "ip 10.0.0.9: not allocated in network n");
        alloc(store, "n", None, "a").unwrap();
        assert!(store.transaction(|t| t.delete_pool("n")).unwrap());
        assert!(store.read(|t| t.allocations("n")).unwrap().is_empty());
        assert!(store
            .transaction(|t| t.release_owner("a"))
            .unwrap()
            .is_empty());
        // A new pool under the same id starts afresh.
        pool(store, "n", "10.0.0.0/24", None);
        assert_eq!(alloc(store, "n", None, "a").unwrap(), ip("10.0.0.1"));
    });
}

#[test]
fn release_owner_frees_everything_it_holds() {
    each_store(|store| {
        pool(store, "n1", "10.0.0.0/24", None);
        pool(store, "n6", "fd00:1::/64", None);
        let a = alloc(store, "n1", None, "ep-a").unwrap();
        let b = alloc(store, "n1", None, "ep-b").unwrap();
        let a6 = alloc(store, "n6", None, "ep-a").unwrap();
        let mut released = store.transaction(|t| t.release_owner("ep-a")).unwrap();
        released.sort_by_key(|r| r.ip);
        assert_eq!(released.iter().map(|r| r.ip).collect::<Vec<_>>(), [a, a6]);
        let left = store
            .read(|t| Ok((t.allocations("n1")?, t.allocations("n6")?)))
            .unwrap();
        assert_eq!(left.0.iter().map(|r| r.ip).collect::<Vec<_>>(), [b]);
        assert!(left.1.is_empty());
        // Released addresses can be requested again.
        assert_eq!(alloc(store, "n1", Some(&a.to_string()), "ep-c").unwrap(), a);
    });
}

#[test]
fn a_slash_16_fills_up_exactly() {
    let store = MemoryStore::new();
    pool(&store, "big", "10.1.0.0/16", Some("10.1.0.1"));
    let mut seen = HashSet::new();
    // Many allocations per transaction keep the test fast; the pool record
    // is rewritten on each, as in real use.
    for chunk in 0..16 {
        store
            .transaction(|t| {
                for i in 0..4096 {
                    match t.allocate("big", None, &format!("o{chunk}-{i}")) {
                        Ok(a) => assert!(seen.insert(a), "{a} handed out twice"),
                        Err(StoreError::Exhausted { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            })
            .unwrap();
    }
    assert_eq!(seen.len(), 65536 - 3);
    assert!(!seen.contains(&ip("10.1.0.1")) && !seen.contains(&ip("10.1.255.255")));
    assert!(matches!(
        alloc(&store, "big", None, "x"),
        Err(StoreError::Exhausted { .. })
    ));
    store
        .transaction(|t| t.release("big", ip("10.1.77.7")))
        .unwrap();
    assert_eq!(alloc(&store, "big", None, "x").unwrap(), ip("10.1.77.7"));
}

#[test]
fn ipv6_slash_64_is_sparse_and_works() {
    each_store(|store| {
        pool(store, "v6", "fd00:ab::/64", Some("fd00:ab::1"));
        let first = alloc(store, "v6", None, "a").unwrap();
        assert_eq!(first, ip("fd00:ab::2"));
        let far = alloc(store, "v6", Some("fd00:ab::ffff:ffff:ffff:fffe"), "b").unwrap();
        assert_eq!(far, ip("fd00:ab::ffff:ffff:ffff:fffe"));
        assert_eq!(alloc(store, "v6", None, "c").unwrap(), ip("fd00:ab::3"));
        let err = alloc(store, "v6", Some("fd00:ab::3"), "d").unwrap_err();
        assert!(matches!(err, StoreError::AddressInUse { .. }));
        store
            .transaction(|t| t.release("v6", ip("fd00:ab::3")))
            .unwrap();
        assert_eq!(alloc(store, "v6", None, "d").unwrap(), ip("fd00:ab::4"));
        assert_eq!(store.read(|t| t.allocations("v6")).unwrap().len(), 3);
    });
}

#[test]
fn allocations_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let before: Vec<IpAddr> = {
        let store = RedbStore::open(dir.path()).unwrap();
        pool(&store, "n", "10.0.0.0/24", Some("10.0.0.1"));
        pool(&store, "v6", "fd00::/64", None);
        alloc(&store, "v6", None, "a").unwrap();
        (0..5)
            .map(|i| alloc(&store, "n", None, &format!("e{i}")).unwrap())
            .collect()
    };
    let store = RedbStore::open(dir.path()).unwrap();
    let stored: Vec<IpAddr> = store
        .read(|t| t.allocations("n"))
        .unwrap()
        .into_iter()
        .map(|a| a.ip)
        .collect();
    assert_eq!(stored, before);
    // The cursor survived too: allocation continues after the last address.
    assert_eq!(alloc(&store, "n", None, "e5").unwrap(), ip("10.0.0.7"));
    assert_eq!(alloc(&store, "v6", None, "b").unwrap(), ip("fd00::2"));
    assert!(matches!(
        alloc(&store, "n", Some("10.0.0.2"), "x"),
        Err(StoreError::AddressInUse { .. })
    ));
}

fn hammer(store: Arc<dyn Store>) {
    pool(&*store, "n", "10.0.0.0/24", Some("10.0.0.1"));
    let threads: Vec<_> = (0..64)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                (0..3)
                    .map(|i| alloc(&*store, "n", None, &format!("t{t}-{i}")).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<IpAddr> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 192);
    assert_eq!(unique.len(), 192, "an address was handed out twice");
    let stored = store.read(|t| t.allocations("n")).unwrap();
    assert_eq!(stored.len(), 192);
}

#[test]
fn no_double_allocation_under_64_threads() {
    hammer(Arc::new(MemoryStore::new()));
    let dir = tempfile::tempdir().unwrap();
    hammer(Arc::new(RedbStore::open(dir.path()).unwrap()));
}
