//! Listing and searching users when patients' names are sealed: the ledger's rows hold
//! only ciphertext for them, so SQL can match ids but not names. Names are opened at this
//! node (kept in the in-memory index of `PatientKeys`) and matched here, over a bounded
//! scan of the candidate rows.

use medchain_records::query::{self, DepartmentRef, Page, Paged, UserView};
use medchain_store::rusqlite::Connection;

use crate::error::{ApiError, ApiResult};
use crate::patient_keys::PatientKeys;

/// Most user rows one search reads to match names in memory.
pub const SEARCH_SCAN_MAX_ROWS: u32 = 20_000;

/// `query::users` with names as this node may show them, and a search that matches
/// names opened in memory as well as ids.
pub fn users(
    conn: &Connection,
    keys: &PatientKeys,
    department: Option<DepartmentRef<'_>>,
    role: Option<&str>,
    search: Option<&str>,
    page: Page,
) -> ApiResult<Paged<UserView>> {
    let open = |mut u: UserView| {
        u.display_name = keys.display_name(conn, &u.user_id, &u.display_name);
        u
    };
    let Some(term) = search.filter(|_| keys.encrypts()) else {
        let found = query::users(conn, department, role, search, page)?;
        return Ok(Paged {
            items: found.items.into_iter().map(open).collect(),
            more: found.more,
        });
    };
    let needle = term.to_lowercase();
    let limit = page.limit.clamp(1, query::MAX_PAGE) as usize;
    let mut skip = page.offset as usize;
    let mut items = Vec::new();
    let mut scanned = 0u32;
    let mut offset = 0u32;
    while scanned < SEARCH_SCAN_MAX_ROWS {
        let batch = query::users(
            conn,
            department,
            role,
            None,
            Page {
                offset,
                limit: query::MAX_PAGE,
            },
        )?;
        let n = batch.items.len() as u32;
        for u in batch.items.into_iter().map(open) {
            let hit = u.user_id.to_lowercase().contains(&needle)
                || u.display_name.to_lowercase().contains(&needle);
            if !hit {
                continue;
            }
            if skip > 0 {
                skip -= 1;
            } else if items.len() < limit {
                items.push(u);
            } else {
                return Ok(Paged { items, more: true });
            }
        }
        scanned += n;
        offset += n;
        if !batch.more {
            return Ok(Paged { items, more: false });
        }
    }
    // Never a silently short answer: past the scan bound, say so.
    Err(ApiError::invalid(format!(
        "search: more than {SEARCH_SCAN_MAX_ROWS} users to match names against; search by id"
    ))
    .with_field("search"))
}
