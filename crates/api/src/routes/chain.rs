//! The chain explorer: the head (public), blocks and their certificates, and verification
//! of a range of blocks against the genesis keys (the UI verifies the whole chain range
//! by range, showing progress).

use axum::extract::{Path, Query, State};
use medchain_records::query;
use medchain_types::{Limits, Verifier};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::extract::Department;
use crate::state::AppState;

/// Most blocks one explorer page or one verification step covers.
pub const MAX_BLOCKS_PER_CALL: u64 = 500;

#[derive(Debug, Serialize, ToSchema)]
pub struct Head {
    pub height: u64,
    pub hash: String,
    pub view: u64,
}

/// The chain's head at this replica (public: no clinical data).
#[utoipa::path(get, path = "/api/chain/head", responses((status = 200, body = Head)), tag = "chain")]
pub async fn head(State(s): State<AppState>) -> ApiJson<Head> {
    let medchain_node::core_input::Head { height, hash, view } = s.inner.status.head();
    ApiJson(Head {
        height,
        hash: hash.to_hex(),
        view,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub replica: u16,
    pub in_view_change: bool,
}

/// Liveness of this replica.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)), tag = "chain")]
pub async fn health(State(s): State<AppState>) -> ApiJson<Health> {
    ApiJson(Health {
        status: "ok",
        replica: s.inner.replica,
        in_view_change: s.inner.status.in_view_change(),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BlockSummary {
    pub height: u64,
    pub hash: String,
    pub previous_hash: String,
    pub merkle_root: String,
    pub view: u64,
    pub proposer: u16,
    pub timestamp_ms: u64,
    pub transactions: usize,
    pub records: u64,
    pub signers: Vec<u16>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct BlockRange {
    /// Newest block to list (default: the head).
    pub before: Option<u64>,
    pub limit: Option<u64>,
}

fn summary(
    conn: &medchain_store::rusqlite::Connection,
    b: &medchain_types::CommittedBlock,
) -> ApiResult<BlockSummary> {
    Ok(BlockSummary {
        height: b.height(),
        hash: b.hash().to_hex(),
        previous_hash: b.header.prev_hash.to_hex(),
        merkle_root: b.header.tx_root.to_hex(),
        view: b.certificate.view,
        proposer: b.header.proposer.0,
        timestamp_ms: b.header.timestamp_ms,
        transactions: b.requests.len(),
        records: query::records_in_block(conn, b.height())?,
        signers: b.certificate.signers().iter().map(|r| r.0).collect(),
    })
}

/// Blocks, newest first (headers and certificates; transaction contents are not shown).
#[utoipa::path(get, path = "/api/blocks", params(BlockRange),
    responses((status = 200, body = Vec<BlockSummary>)), security(("bearer" = [])), tag = "chain")]
pub async fn blocks(
    State(s): State<AppState>,
    _who: Department,
    Query(q): Query<BlockRange>,
) -> ApiResult<ApiJson<Vec<BlockSummary>>> {
    let limit = q.limit.unwrap_or(20).clamp(1, MAX_BLOCKS_PER_CALL);
    let head = s.inner.status.head().height;
    let top = q.before.unwrap_or(head).min(head);
    let from = top.saturating_sub(limit - 1).max(1);
    let db = s.inner.db_path.clone();
    s.read(move |conn| {
        if top == 0 {
            return Ok(ApiJson(Vec::new()));
        }
        let r = medchain_store::Reader::open(&db).map_err(ApiError::internal)?;
        let list = r
            .blocks(from, (top - from + 1) as usize)
            .map_err(ApiError::internal)?;
        let mut out = list
            .iter()
            .map(|b| summary(conn, b))
            .collect::<ApiResult<Vec<_>>>()?;
        out.reverse();
        Ok(ApiJson(out))
    })
    .await
}

/// One block.
#[utoipa::path(get, path = "/api/blocks/{height}", params(("height" = u64, Path)),
    responses((status = 200, body = BlockSummary), (status = 404, body = ErrorBody)),
    security(("bearer" = [])), tag = "chain")]
pub async fn block(
    State(s): State<AppState>,
    _who: Department,
    Path(height): Path<u64>,
) -> ApiResult<ApiJson<BlockSummary>> {
    let db = s.inner.db_path.clone();
    s.read(move |conn| {
        let r = medchain_store::Reader::open(&db).map_err(ApiError::internal)?;
        match r.block(height).map_err(ApiError::internal)? {
            Some(b) => Ok(ApiJson(summary(conn, &b)?)),
            None => Err(ApiError::not_found(format!("no block {height}"))),
        }
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct VerifyRange {
    pub from: u64,
    pub count: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResult {
    pub from: u64,
    /// Last height checked (links, Merkle root, certificate against the genesis keys).
    pub verified_to: u64,
    pub head: u64,
    pub ok: bool,
    /// The first bad block and why, if any.
    pub error: Option<String>,
}

/// Verify a range of blocks: hash links, Merkle roots and every commit certificate.
#[utoipa::path(get, path = "/api/chain/verify", params(VerifyRange),
    responses((status = 200, body = VerifyResult)), security(("bearer" = [])), tag = "chain")]
pub async fn verify(
    State(s): State<AppState>,
    _who: Department,
    Query(q): Query<VerifyRange>,
) -> ApiResult<ApiJson<VerifyResult>> {
    let from = q.from.max(1);
    let count = q.count.unwrap_or(200).clamp(1, MAX_BLOCKS_PER_CALL);
    let head = s.inner.status.head().height;
    let db = s.inner.db_path.clone();
    let genesis = s.inner.genesis.clone();
    s.read(move |_| {
        let r = medchain_store::Reader::open(&db).map_err(ApiError::internal)?;
        let verifier = Verifier::new(&genesis, Limits::default());
        let mut prev = if from == 1 {
            genesis.hash()
        } else {
            r.block(from - 1)
                .map_err(ApiError::internal)?
                .map(|b| b.hash())
                .ok_or_else(|| ApiError::not_found(format!("no block {}", from - 1)))?
        };
        let mut verified_to = from - 1;
        let mut error = None;
        let blocks = match r.blocks(from, count as usize) {
            Ok(b) => b,
            Err(e) => {
                return Ok(ApiJson(VerifyResult {
                    from,
                    verified_to,
                    head,
                    ok: false,
                    error: Some(e.to_string()),
                }))
            }
        };
        for b in blocks {
            if b.header.prev_hash != prev {
                error = Some(format!("block {}: previous-hash link broken", b.height()));
                break;
            }
            if let Err(e) = verifier.check_block(&b) {
                error = Some(format!("block {}: {e}", b.height()));
                break;
            }
            prev = b.hash();
            verified_to = b.height();
        }
        Ok(ApiJson(VerifyResult {
            from,
            verified_to,
            head,
            ok: error.is_none(),
            error,
        }))
    })
    .await
}
