//! The disk is what restarted replicas and state transfer read back, in the PBFT tests
//! and the simulator alike: block reads must clamp like the store's, and the host-contract
//! check must name the block that breaks the chain.

use medchain_pbft::Output;
use medchain_testkit::{Disk, GenesisBuilder, TestKeys};
use medchain_types::{CommittedBlock, Genesis, PeerMessage, Proposal, ReplicaId};

const KEYS: TestKeys = TestKeys::new("disk-test-");

fn chain(genesis: &Genesis, len: u64) -> Vec<CommittedBlock> {
    let mut prev = genesis.hash();
    (1..=len)
        .map(|height| {
            let p = Proposal {
                height,
                view: 0,
                proposer: ReplicaId(0),
                timestamp_ms: height,
                requests: vec![KEYS.request(0, height, b"payload")],
            };
            let block = KEYS.commit_block(&p, prev, 0, &[0, 1, 2]);
            prev = block.hash();
            block
        })
        .collect()
}

fn disk_with(genesis: &Genesis, blocks: &[CommittedBlock]) -> Disk {
    let mut disk = Disk::new(genesis);
    for b in blocks {
        assert!(disk.apply(&Output::Commit(b.clone())).is_none());
    }
    disk
}

#[test]
fn reads_clamp_to_the_chain_and_empty_reads_send_nothing() {
    let g = GenesisBuilder::new("disk-test", KEYS).build();
    let disk = disk_with(&g, &chain(&g, 5));
    let heights = |from: u64, max: usize| -> Vec<u64> {
        disk.blocks(from, max).iter().map(|b| b.height()).collect()
    };
    assert_eq!(heights(1, 2), vec![1, 2]);
    assert_eq!(
        heights(0, 2),
        vec![1, 2],
        "height 0 reads from the first block"
    );
    assert_eq!(heights(4, 8), vec![4, 5]);
    assert!(heights(6, 8).is_empty());
    let read = |from_height| Output::ReadBlocks {
        to: ReplicaId(3),
        from_height,
        max_blocks: 8,
    };
    let mut disk = disk;
    assert!(disk.apply(&read(6)).is_none());
    match disk.apply(&read(5)) {
        Some((to, PeerMessage::Blocks(b))) => assert_eq!((to, b.len()), (ReplicaId(3), 1)),
        other => panic!("expected one block for r3, got {other:?}"),
    }
}

#[test]
fn the_chain_check_names_the_block_that_breaks_it() {
    let g = GenesisBuilder::new("disk-test", KEYS).build();
    let blocks = chain(&g, 4);
    assert_eq!(disk_with(&g, &blocks).check_chain(&g, 0), Ok(()));
    let skipped = [&blocks[..1], &blocks[2..]].concat();
    let err = disk_with(&g, &skipped).check_chain(&g, 0).unwrap_err();
    assert!(err.contains("block 3"), "{err}");
    let other_genesis = GenesisBuilder::new("another chain", KEYS).build();
    let err = disk_with(&g, &blocks)
        .check_chain(&other_genesis, 0)
        .unwrap_err();
    assert!(err.contains("block 1 broke the hash chain"), "{err}");
    assert_eq!(
        disk_with(&g, &blocks).check_chain(&other_genesis, 1),
        Ok(()),
        "only blocks from the given index on are checked"
    );
}

#[test]
fn a_restart_sees_only_the_most_recent_block_hashes_asked_for() {
    let g = GenesisBuilder::new("disk-test", KEYS).build();
    let blocks = chain(&g, 5);
    let disk = disk_with(&g, &blocks);
    let state = disk.chain_state(&g, 2);
    assert_eq!(state.last_executed, 5);
    assert_eq!(state.last_hash, blocks[4].hash());
    let heights: Vec<u64> = state.recent_hashes.iter().map(|(h, _)| *h).collect();
    assert_eq!(heights, vec![4, 5]);
    assert_eq!(disk.chain_state(&g, usize::MAX).recent_hashes.len(), 5);
}
