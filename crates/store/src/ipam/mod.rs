//! Persisted IP address management, inside the caller's write transaction.
//!
//! Each network has at most one pool (see [`pool`] for its layout and search
//! order). Every allocation is also a row `ipam/addr/<network>/<ip>` naming
//! its owner, indexed by `ipam/owner/<owner>/<network>/<ip>`, so releasing
//! everything an endpoint holds does not scan the table. Because
//! allocation reads and writes the pool in the caller's write transaction,
//! and the store has one writer at a time, an address is never handed out
//! twice, across restarts too. Network ids and owners may not contain `/`.

mod pool;
mod subnet;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use self::pool::{chunk_key, chunk_of, pool_key, Chunk, Pool};
pub use self::subnet::Subnet;
use crate::backend::{HasRaw, RawRead};
use crate::envelope::{Kind, Record};
use crate::error::{Result, StoreError};
use crate::txn::{list_prefix, Reader, WriteTxn};

/// One allocated address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Allocation {
    pub network: String,
    pub ip: IpAddr,
    pub owner: String,
}

/// The row of an allocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
struct AddrRow(Allocation);

impl Record for AddrRow {
    const KIND: Kind = Kind::Ipam;
    const SCHEMA: u32 = 1;
    fn key(&self) -> String {
        addr_key(&self.0.network, self.0.ip)
    }
}

/// The owner index entry of an allocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
struct OwnerRow(Allocation);

impl Record for OwnerRow {
    const KIND: Kind = Kind::Ipam;
    const SCHEMA: u32 = 1;
    fn key(&self) -> String {
        format!("owner/{}/{}/{}", self.0.owner, self.0.network, self.0.ip)
    }
}

fn addr_key(network: &str, ip: IpAddr) -> String {
    format!("addr/{network}/{ip}")
}

fn check_id(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() || value.contains('/') || value.chars().any(char::is_control) {
        return Err(StoreError::InvalidKey {
            field,
            value: value.to_owned(),
            allowed: "a non-empty string without '/' or control characters",
        });
    }
    Ok(())
}

pub(crate) fn allocations(raw: &dyn RawRead, network: &str) -> Result<Vec<Allocation>> {
    check_id("network", network)?;
    let mut rows: Vec<Allocation> = list_prefix::<AddrRow>(raw, &format!("addr/{network}/"))?
        .into_iter()
        .map(|row| row.0)
        .collect();
    rows.sort_by_key(|a| a.ip);
    Ok(rows)
}

impl WriteTxn<'_> {
    /// Creates the address pool of `network` over `subnet`; `gateway`, if
    /// given, must be in the subnet and is never allocated.
    pub fn create_pool(
        &mut self,
        network: &str,
        subnet: Subnet,
        gateway: Option<IpAddr>,
    ) -> Result<()> {
        check_id("network", network)?;
        if let Some(existing) = self.get::<Pool>(&pool_key(network))? {
            return Err(StoreError::PoolExists {
                network: network.to_owned(),
                subnet: existing.subnet,
            });
        }
        self.put(&Pool::new(network, subnet, gateway)?)?;
        Ok(())
    }

    /// Removes the pool of `network` and every allocation in it; whether
    /// there was a pool.
    pub fn delete_pool(&mut self, network: &str) -> Result<bool> {
        for allocation in self.allocations(network)? {
            self.drop_rows(&allocation)?;
        }
        for chunk in list_prefix::<Chunk>(self.raw(), &format!("bits/{network}/"))? {
            self.delete::<Chunk>(&chunk.key())?;
        }
        self.delete::<Pool>(&pool_key(network))
    }

    /// Allocates an address in `network` for `owner`: `hint` if given (it
    /// must be in the subnet, not reserved and free), otherwise the next
    /// free address after the last one handed out.
    pub fn allocate(&mut self, network: &str, hint: Option<IpAddr>, owner: &str) -> Result<IpAddr> {
        check_id("owner", owner)?;
        let mut pool = self.pool(network)?;
        let offset = match hint {
            Some(ip) => self.check_requested(&pool, ip)?,
            None => {
                let offset = self.next_free(&pool)?;
                pool.cursor = pool.subnet.at(offset);
                offset
            }
        };
        let ip = pool.subnet.at(offset);
        self.mark(&pool, offset, true)?;
        if hint.is_none() {
            self.put(&pool)?;
        }
        let allocation = Allocation {
            network: network.to_owned(),
            ip,
            owner: owner.to_owned(),
        };
        self.put(&OwnerRow(allocation.clone()))?;
        self.put(&AddrRow(allocation))?;
        Ok(ip)
    }

    /// Returns `ip` to the pool of `network`.
    pub fn release(&mut self, network: &str, ip: IpAddr) -> Result<()> {
        let pool = self.pool(network)?;
        let not_allocated = || StoreError::NotAllocated {
            ip,
            network: network.to_owned(),
        };
        let offset = pool.subnet.offset_of(ip).ok_or_else(not_allocated)?;
        let row = self
            .get::<AddrRow>(&addr_key(network, ip))?
            .ok_or_else(not_allocated)?;
        self.drop_rows(&row.0)?;
        self.mark(&pool, offset, false)
    }

    /// Releases every address `owner` holds, in every network; returns them.
    pub fn release_owner(&mut self, owner: &str) -> Result<Vec<Allocation>> {
        check_id("owner", owner)?;
        let held: Vec<Allocation> =
            list_prefix::<OwnerRow>(self.raw(), &format!("owner/{owner}/"))?
                .into_iter()
                .map(|row| row.0)
                .collect();
        for allocation in &held {
            self.release(&allocation.network, allocation.ip)?;
        }
        Ok(held)
    }

    fn pool(&self, network: &str) -> Result<Pool> {
        check_id("network", network)?;
        self.get::<Pool>(&pool_key(network))?
            .ok_or_else(|| StoreError::NoPool {
                network: network.to_owned(),
            })
    }

    /// Whether `offset` is allocated; `chunk` caches the last bitmap chunk
    /// read, so a scan reads each chunk once.
    fn is_taken(&self, pool: &Pool, offset: u128, chunk: &mut Option<Chunk>) -> Result<bool> {
        if !pool.bitmap {
            let key = addr_key(&pool.network, pool.subnet.at(offset));
            return Ok(self.raw().get(Kind::Ipam, &key)?.is_some());
        }
        let (index, bit) = chunk_of(offset);
        let cached = match chunk.take() {
            Some(c) if c.index == index => c,
            _ => self.chunk(pool, index)?,
        };
        Ok(chunk.insert(cached).get(bit))
    }

    fn chunk(&self, pool: &Pool, index: u32) -> Result<Chunk> {
        let stored = self.get::<Chunk>(&chunk_key(&pool.network, index))?;
        Ok(stored.unwrap_or_else(|| Chunk::empty(&pool.network, index)))
    }

    /// Records `offset` as taken or free in the bitmap (sparse pools have none).
    fn mark(&mut self, pool: &Pool, offset: u128, taken: bool) -> Result<()> {
        if pool.bitmap {
            let (index, bit) = chunk_of(offset);
            let mut chunk = self.chunk(pool, index)?;
            chunk.set(bit, taken);
            self.put(&chunk)?;
        }
        Ok(())
    }

    fn next_free(&self, pool: &Pool) -> Result<u128> {
        let mut chunk = None;
        for offset in pool.candidates() {
            if !self.is_taken(pool, offset, &mut chunk)? {
                return Ok(offset);
            }
        }
        Err(StoreError::Exhausted {
            subnet: pool.subnet,
        })
    }

    fn check_requested(&self, pool: &Pool, ip: IpAddr) -> Result<u128> {
        let subnet = pool.subnet;
        let offset = subnet
            .offset_of(ip)
            .ok_or(StoreError::NotInSubnet { ip, subnet })?;
        if let Some(what) = pool.reserved(offset) {
            return Err(StoreError::Reserved { ip, subnet, what });
        }
        if self.is_taken(pool, offset, &mut None)? {
            let owner = self
                .get::<AddrRow>(&addr_key(&pool.network, ip))?
                .map_or_else(|| "an unknown owner".to_owned(), |row| row.0.owner);
            return Err(StoreError::AddressInUse {
                ip,
                network: pool.network.clone(),
                owner,
            });
        }
        Ok(offset)
    }

    fn drop_rows(&mut self, allocation: &Allocation) -> Result<()> {
        let owner_key = OwnerRow(allocation.clone()).key();
        self.delete::<OwnerRow>(&owner_key)?;
        self.delete::<AddrRow>(&addr_key(&allocation.network, allocation.ip))?;
        Ok(())
    }
}
