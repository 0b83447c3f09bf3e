//! A per-user budget on audited reads. Every read of a patient's data is first a ledger
//! write (its audit entry, `crate::audit`), so one signed-in account reading in a loop
//! would fill every replica's disk; a token bucket per user bounds it to a rate the UI
//! never reaches, and answers 429 with `Retry-After` beyond it.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{ApiError, ApiResult};

/// Audited reads per user per minute (a page of the UI costs one to a few).
pub const READS_PER_MINUTE: u32 = 600;
/// Most users tracked at once; full buckets are dropped first (they hold no state).
const MAX_TRACKED_USERS: usize = 100_000;
/// One read costs this many units; a bucket refills `per_minute` units per millisecond,
/// so integer arithmetic is exact.
const UNITS_PER_READ: u64 = 60_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    units: u64,
    updated_ms: u64,
}

/// Token buckets, one per user, in memory (a restart refills them; sign-in throttling is
/// the persistent one).
#[derive(Debug)]
pub struct ReadBudget {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl ReadBudget {
    pub fn new(per_minute: u32) -> ReadBudget {
        ReadBudget {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn capacity(&self) -> u64 {
        u64::from(self.per_minute) * UNITS_PER_READ
    }

    fn refilled(&self, b: Bucket, now: u64) -> u64 {
        let gained = now.saturating_sub(b.updated_ms) * u64::from(self.per_minute);
        b.units.saturating_add(gained).min(self.capacity())
    }

    /// Spend one read of `user` at `now`, or refuse (429) with the time until one is back.
    pub fn take(&self, user: &str, now: u64) -> ApiResult<()> {
        let mut map = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_TRACKED_USERS && !map.contains_key(user) {
            self.evict(&mut map, now);
        }
        let cap = self.capacity();
        let b = map.entry(user.to_string()).or_insert(Bucket {
            units: cap,
            updated_ms: now,
        });
        let units = self.refilled(*b, now);
        if units < UNITS_PER_READ {
            let wait_ms = (UNITS_PER_READ - units).div_ceil(u64::from(self.per_minute));
            return Err(ApiError::throttled_for(
                format!("more than {} reads a minute; slow down", self.per_minute),
                wait_ms,
            ));
        }
        *b = Bucket {
            units: units - UNITS_PER_READ,
            updated_ms: now.max(b.updated_ms),
        };
        Ok(())
    }

    fn evict(&self, map: &mut HashMap<String, Bucket>, now: u64) {
        let cap = self.capacity();
        map.retain(|_, b| self.refilled(*b, now) < cap);
        if map.len() >= MAX_TRACKED_USERS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, b)| b.updated_ms)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_the_budget_then_waits_for_refill() {
        let b = ReadBudget::new(60);
        for _ in 0..60 {
            assert!(b.take("d001", 0).is_ok());
        }
        let e = b.take("d001", 0).err();
        assert_eq!(e.as_ref().map(|e| e.status.as_u16()), Some(429));
        assert_eq!(e.and_then(|e| e.retry_after_ms), Some(1_000));
        assert!(b.take("d002", 0).is_ok(), "budgets are per user");
        assert!(b.take("d001", 999).is_err());
        assert!(b.take("d001", 1_000).is_ok());
    }
}
