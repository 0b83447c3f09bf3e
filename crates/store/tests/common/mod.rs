//! Helpers shared by the store's tests.

use medchain_store::Reader;
use medchain_types::{Hash32, Proposal};

/// The proposal of the pre-prepared slot in the vote state `reader` loads.
pub fn loaded_pre_prepare(reader: &Reader) -> Proposal {
    let state = reader
        .durable_state(Hash32::default())
        .expect("the vote state loads");
    state
        .slots
        .values()
        .find_map(|s| s.pre_prepare.as_ref())
        .map(|(_, p)| p.clone())
        .expect("the pre-prepared slot is loaded")
}
