//! Per-client deduplication: each (client, request id) executes at most once, while a
//! client may have many requests outstanding (PBFT section 4.1 keeps one timestamp per
//! client; a gateway submitting many users' records at once needs a window instead).
//! The table is a function of the executed chain, so it is rebuilt from blocks on restart.

use medchain_types::{ClientId, CommittedBlock, SeqNum};
use std::collections::BTreeMap;

/// Request ids must lie in (low, low + CLIENT_WINDOW]; ids beyond are not executed.
pub const CLIENT_WINDOW: u64 = 1 << 16;
/// Executed ids kept with their heights for re-replies (section 4.1: a client whose reply
/// was lost retransmits and must be answered again).
const KEEP_RECENT: usize = 64;
/// Hard bound on remembered ids per client; past it the oldest are folded into `low`
/// even across gaps (those ids can then never execute: the price of a bounded table,
/// paid only by a client with more than this many requests outstanding).
const MAX_RECENT: usize = 16_384;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ClientRecord {
    /// Every id <= low has been executed (or can no longer be).
    low: u64,
    /// Executed ids above `low`, with the height that executed them.
    recent: BTreeMap<u64, SeqNum>,
    /// Every id <= prefix has executed: the client's window is (prefix, prefix + W].
    prefix: u64,
}

/// Which requests each client has had executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTable {
    clients: Vec<ClientRecord>,
}

/// How a request stands against the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    /// Never executed and executable.
    New,
    /// Executed at this height (if still remembered).
    Executed(Option<SeqNum>),
    /// Unknown client or id outside the client's window: will never execute.
    Invalid,
}

impl ClientTable {
    pub fn new(clients: usize) -> Self {
        ClientTable {
            clients: vec![ClientRecord::default(); clients],
        }
    }

    pub fn state(&self, client: ClientId, id: u64) -> RequestState {
        let Some(rec) = self.clients.get(usize::from(client.0)) else {
            return RequestState::Invalid;
        };
        if id <= rec.low {
            RequestState::Executed(None)
        } else if let Some(h) = rec.recent.get(&id) {
            RequestState::Executed(Some(*h))
        } else if id > rec.prefix.saturating_add(CLIENT_WINDOW) {
            RequestState::Invalid
        } else {
            RequestState::New
        }
    }

    /// Record the execution of a request at `height`; false if it was not new (then it
    /// must not take effect).
    pub fn execute(&mut self, client: ClientId, id: u64, height: SeqNum) -> bool {
        if self.state(client, id) != RequestState::New {
            return false;
        }
        let Some(rec) = self.clients.get_mut(usize::from(client.0)) else {
            return false;
        };
        rec.recent.insert(id, height);
        rec.prefix = rec.prefix.max(rec.low);
        while rec.recent.contains_key(&(rec.prefix + 1)) {
            rec.prefix += 1;
        }
        // Fold the executed prefix into `low` once more than KEEP_RECENT are remembered,
        // and anything beyond MAX_RECENT.
        loop {
            let contiguous = rec
                .recent
                .first_key_value()
                .is_some_and(|(k, _)| *k == rec.low + 1);
            let n = rec.recent.len();
            if !((n > KEEP_RECENT && contiguous) || n > MAX_RECENT) {
                break;
            }
            if let Some((k, _)) = rec.recent.pop_first() {
                rec.low = k;
            }
        }
        rec.prefix = rec.prefix.max(rec.low);
        true
    }

    /// Replay a committed block (on restart): which of its requests executed.
    pub fn apply_block(&mut self, block: &CommittedBlock) -> Vec<bool> {
        block
            .requests
            .iter()
            .map(|r| self.execute(r.request.client, r.request.request_id, block.height()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_executes_once_even_out_of_order() {
        let mut t = ClientTable::new(2);
        let c = ClientId(1);
        assert!(t.execute(c, 2, 1));
        assert!(t.execute(c, 1, 2));
        assert!(!t.execute(c, 1, 3));
        assert!(!t.execute(c, 2, 3));
        // Recently executed requests keep their height, to answer retransmissions.
        assert_eq!(t.state(c, 1), RequestState::Executed(Some(2)));
        assert_eq!(t.state(c, 3), RequestState::New);
        assert_eq!(t.state(ClientId(7), 1), RequestState::Invalid);
        assert_eq!(t.state(c, CLIENT_WINDOW + 100), RequestState::Invalid);
    }
}
