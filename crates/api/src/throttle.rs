//! Login throttling that holds against concurrency and restarts: a guess reserves its
//! attempt in the node's database, in one transaction, before Argon2 runs (so forty
//! guesses sent at once are counted as forty, not checked as forty), and a correct
//! password then gives the reservation back. Per account, failures beyond a few free ones
//! make each further attempt wait twice as long since the last failure, capped, instead of
//! a hard lock anyone could trigger; per client address a larger budget, so that one
//! address guessing across accounts is stopped without one user's typos locking out
//! everyone behind the same proxy.

use std::net::IpAddr;

use medchain_store::rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::{ApiError, ApiResult};

/// Failures per account before attempts are delayed.
pub const ACCOUNT_FREE_FAILURES: u32 = 5;
/// The first delay after the free failures; each further failure doubles it.
pub const ACCOUNT_FIRST_DELAY_MS: u64 = 2_000;
/// The longest an account's next attempt is delayed.
pub const ACCOUNT_MAX_DELAY_MS: u64 = 15 * 60 * 1000;
/// An account's failures are forgotten this long after its last one (longer than the
/// longest delay, so waiting out one delay does not also reset the count).
pub const ACCOUNT_MEMORY_MS: u64 = 60 * 60 * 1000;
/// Failures per client address within `ADDRESS_WINDOW_MS`, across all accounts.
pub const ADDRESS_MAX_FAILURES: u32 = 100;
pub const ADDRESS_WINDOW_MS: u64 = 15 * 60 * 1000;
/// Most rows kept (stale ones are pruned first, then the oldest), so that guesses at
/// made-up account names cannot grow the database without bound.
const MAX_ROWS: i64 = 100_000;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS login_throttle (
    key TEXT PRIMARY KEY, failures INTEGER NOT NULL,
    first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS login_throttle_last ON login_throttle (last_ms);
";

/// The keys one login attempt is counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    account: String,
    address: Option<String>,
}

impl Attempt {
    pub fn new(user_id: &str, addr: Option<IpAddr>) -> Attempt {
        Attempt {
            account: format!("u:{user_id}"),
            address: addr.map(address_key),
        }
    }
}

/// An IPv6 client is counted by its /64: one host usually holds a whole /64, and
/// counting single addresses would give it 2^64 budgets.
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("a:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("a:{v4}"),
            None => {
                let s = v6.segments();
                format!("a:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    failures: u32,
    first_ms: u64,
    last_ms: u64,
}

/// How long the account must still wait before an attempt at `now`, and its row once
/// the attempt is reserved.
fn account_rule(row: Option<Row>, now: u64) -> (u64, Row) {
    let fresh = Row {
        failures: 0,
        first_ms: now,
        last_ms: now,
    };
    let row = row
        .filter(|r| now < r.last_ms.saturating_add(ACCOUNT_MEMORY_MS))
        .unwrap_or(fresh);
    let wait = match row.failures.checked_sub(ACCOUNT_FREE_FAILURES) {
        None => 0,
        Some(extra) => {
            let delay = ACCOUNT_FIRST_DELAY_MS
                .saturating_mul(1u64 << extra.min(20))
                .min(ACCOUNT_MAX_DELAY_MS);
            row.last_ms.saturating_add(delay).saturating_sub(now)
        }
    };
    let next = Row {
        failures: row.failures.saturating_add(1),
        last_ms: now,
        ..row
    };
    (wait, next)
}

/// How long the address must still wait, and its row once the attempt is reserved.
fn address_rule(row: Option<Row>, now: u64) -> (u64, Row) {
    let row = row
        .filter(|r| now < r.first_ms.saturating_add(ADDRESS_WINDOW_MS))
        .unwrap_or(Row {
            failures: 0,
            first_ms: now,
            last_ms: now,
        });
    let wait = if row.failures >= ADDRESS_MAX_FAILURES {
        row.first_ms
            .saturating_add(ADDRESS_WINDOW_MS)
            .saturating_sub(now)
    } else {
        0
    };
    let next = Row {
        failures: row.failures.saturating_add(1),
        last_ms: now,
        ..row
    };
    (wait, next)
}

fn read_row(conn: &Connection, key: &str) -> ApiResult<Option<Row>> {
    Ok(conn
        .prepare_cached("SELECT failures, first_ms, last_ms FROM login_throttle WHERE key = ?1")?
        .query_row(params![key], |r| {
            Ok(Row {
                failures: r.get::<_, i64>(0)?.clamp(0, i64::from(u32::MAX)) as u32,
                first_ms: r.get::<_, i64>(1)?.max(0) as u64,
                last_ms: r.get::<_, i64>(2)?.max(0) as u64,
            })
        })
        .optional()?)
}

fn write_row(conn: &Connection, key: &str, row: Row) -> ApiResult<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO login_throttle (key, failures, first_ms, last_ms)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        key,
        i64::from(row.failures),
        row.first_ms as i64,
        row.last_ms as i64
    ])?;
    Ok(())
}

/// Reserve one attempt for `a` at `now`, counted as a failure until `succeeded` gives it
/// back; or refuse it (429 with the wait) without reserving anything. One immediate
/// transaction: no other attempt, in this process or another, reads the counts between
/// this one's read and write.
pub fn reserve(conn: &mut Connection, a: &Attempt, now: u64) -> ApiResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (account_wait, account_row) = account_rule(read_row(&tx, &a.account)?, now);
    let address = match &a.address {
        Some(k) => Some((k, address_rule(read_row(&tx, k)?, now))),
        None => None,
    };
    let address_wait = address.as_ref().map_or(0, |(_, (w, _))| *w);
    if account_wait > 0 || address_wait > 0 {
        // Nothing reserved: a refused attempt does not prolong the wait.
        return Err(ApiError::throttled_for(
            "too many failed sign-ins; wait before trying again",
            account_wait.max(address_wait),
        ));
    }
    write_row(&tx, &a.account, account_row)?;
    if let Some((k, (_, row))) = address {
        write_row(&tx, k, row)?;
    }
    prune(&tx, now)?;
    tx.commit()?;
    Ok(())
}

/// The password was right: the account's failures are cleared and the address gets its
/// reserved attempt back (a user who signs in is no evidence against their address).
pub fn succeeded(conn: &mut Connection, a: &Attempt) -> ApiResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM login_throttle WHERE key = ?1",
        params![a.account],
    )?;
    if let Some(k) = &a.address {
        tx.execute(
            "UPDATE login_throttle SET failures = MAX(failures - 1, 0) WHERE key = ?1",
            params![k],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Drop rows that no rule looks at any more, then the oldest beyond `MAX_ROWS`.
fn prune(conn: &Connection, now: u64) -> ApiResult<()> {
    let stale = now.saturating_sub(ACCOUNT_MEMORY_MS.max(ADDRESS_WINDOW_MS));
    conn.prepare_cached("DELETE FROM login_throttle WHERE last_ms < ?1")?
        .execute(params![stale as i64])?;
    let rows: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM login_throttle")?
        .query_row([], |r| r.get(0))?;
    if rows > MAX_ROWS {
        conn.execute(
            "DELETE FROM login_throttle WHERE key IN
             (SELECT key FROM login_throttle ORDER BY last_ms LIMIT ?1)",
            params![rows - MAX_ROWS],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_delay_doubles_after_the_free_failures_and_is_capped() {
        let mut row = None;
        for _ in 0..ACCOUNT_FREE_FAILURES {
            let (wait, next) = account_rule(row, 0);
            assert_eq!(wait, 0);
            row = Some(next);
        }
        let mut t = 0;
        let mut delays = Vec::new();
        for _ in 0..12 {
            let (wait, _) = account_rule(row, t);
            delays.push(wait);
            t += wait;
            row = Some(account_rule(row, t).1);
        }
        assert_eq!(&delays[..4], &[2_000, 4_000, 8_000, 16_000]);
        assert_eq!(delays[11], ACCOUNT_MAX_DELAY_MS);
    }

    #[test]
    fn the_address_budget_is_per_window() {
        let mut row = None;
        for _ in 0..ADDRESS_MAX_FAILURES {
            let (wait, next) = address_rule(row, 10);
            assert_eq!(wait, 0);
            row = Some(next);
        }
        assert_eq!(address_rule(row, 10).0, ADDRESS_WINDOW_MS);
        assert_eq!(address_rule(row, 10 + ADDRESS_WINDOW_MS).0, 0);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "2001:db8:1:2:bbbb::9"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(address_key(a), address_key(b));
        let v4: IpAddr = "::ffff:192.0.2.1".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(address_key(v4), "a:192.0.2.1");
    }
}
