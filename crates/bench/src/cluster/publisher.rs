//! A light publisher: writes remote endpoints of made-up nodes straight
//! into etcd (key layout v1, `docs/cluster.md`), so node A's watch gets the
//! same stream of events as when two more daemons create endpoints, without
//! those daemons' CPU on this machine.
//!
//! The made-up nodes first take address blocks of their own (as a node
//! would), so node A never allocates one of their addresses; their VTEP is
//! an underlay address no node has (nothing is ever sent to it).

use std::path::Path;
use std::sync::mpsc::Receiver;

use bulkhead_dataplane::netns;
use etcd_client::Client;

use super::world::ETCD_URL;

/// The blocks the made-up nodes hold: 10.220.200.0/21 in /26 blocks.
const BLOCKS: u32 = 32;

fn ip(i: u32) -> String {
    let a = (200 << 8) + i;
    format!("10.220.{}.{}", a >> 8, a & 0xff)
}

/// From inside the namespace `on_underlay` (a node's host namespace: etcd
/// is reachable on the underlay only, and nothing may leave for the
/// machine's own network): claims the blocks, then per tick received on
/// `ticks` publishes `per_tick` endpoints (alternating between `node-y` and
/// `node-z`), until the sender hangs up; the number published.
pub fn run(on_underlay: &Path, ticks: &Receiver<()>, per_tick: u32) -> Result<u32, String> {
    netns::run_in(Some(on_underlay), || publish(ETCD_URL, ticks, per_tick))
        .map_err(|e| format!("enter {}: {e}", on_underlay.display()))?
}

fn publish(url: &str, ticks: &Receiver<()>, per_tick: u32) -> Result<u32, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let err = |e: etcd_client::Error| format!("etcd {url}: {e}");
    let mut c = rt.block_on(Client::connect([url], None)).map_err(err)?;
    for b in 0..BLOCKS {
        let key = format!("/bulkhead/v1/blocks/ov/{}_26", ip(b * 64));
        let node = if b % 2 == 0 { "node-y" } else { "node-z" };
        rt.block_on(c.put(key, format!("{{\"node\":\"{node}\"}}"), None))
            .map_err(err)?;
    }
    let mut n = 0;
    while ticks.recv().is_ok() {
        for _ in 0..per_tick {
            if n >= BLOCKS * 64 {
                return Err("the made-up nodes' blocks are full".into());
            }
            let node = if n % 2 == 0 { "node-y" } else { "node-z" };
            let addr = ip(n);
            let value = serde_json::json!({
                "name": format!("r{n}"),
                "network": "ov",
                "ip": addr,
                "mac": format!("02:bb:00:00:{:02x}:{:02x}", n >> 8, n & 0xff),
                "node": node,
                "vtep": "10.98.0.250",
            });
            let key = format!("/bulkhead/v1/endpoints/{node}/ov/{addr}");
            rt.block_on(c.put(key, value.to_string(), None))
                .map_err(err)?;
            n += 1;
        }
    }
    Ok(n)
}
