//! Merkle root of a block's transactions, as in RFC 6962 (Certificate Transparency):
//! leaves and inner nodes hashed with distinct prefixes so that a leaf can never pass
//! for an inner node, and an unbalanced tree split at the largest power of two.

use crate::ids::Hash32;
use sha2::{Digest, Sha256};

/// Hash of one leaf: `SHA-256(0x00 || bytes)`.
pub fn leaf_hash(bytes: &[u8]) -> Hash32 {
    Hash32::tagged(&[0x00], bytes)
}

fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash32(h.finalize().into())
}

/// Root over already-hashed leaves; the empty tree's root is `SHA-256("")`.
pub fn root_of_leaf_hashes(leaves: &[Hash32]) -> Hash32 {
    match leaves.len() {
        0 => Hash32::sha256(b""),
        1 => leaves[0],
        n => {
            let k = n.next_power_of_two() / 2;
            node_hash(
                &root_of_leaf_hashes(&leaves[..k]),
                &root_of_leaf_hashes(&leaves[k..]),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            root_of_leaf_hashes(&[]).to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn order_and_content_change_the_root() {
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        let c = leaf_hash(b"c");
        assert_ne!(root_of_leaf_hashes(&[a, b]), root_of_leaf_hashes(&[b, a]));
        assert_ne!(
            root_of_leaf_hashes(&[a, b]),
            root_of_leaf_hashes(&[a, b, c])
        );
        // A leaf cannot impersonate an inner node (second-preimage resistance).
        let forged = leaf_hash(&[a.0, b.0].concat());
        assert_ne!(root_of_leaf_hashes(&[forged]), root_of_leaf_hashes(&[a, b]));
    }

    #[test]
    fn three_leaves_split_at_two() {
        let l: Vec<_> = [b"x", b"y", b"z"].iter().map(|b| leaf_hash(*b)).collect();
        let expected = node_hash(&node_hash(&l[0], &l[1]), &l[2]);
        assert_eq!(root_of_leaf_hashes(&l), expected);
    }
}
