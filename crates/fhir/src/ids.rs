//! Turns ledger identifiers (user ids, record ids) into FHIR logical ids, which must match
//! `[A-Za-z0-9\-\.]{1,64}`, deterministically and without two inputs sharing an id.

use std::collections::BTreeSet;

const MAX_LEN: usize = 64;
/// `-` plus 16 hex digits of FNV-1a.
const HASH_SUFFIX_LEN: usize = 17;

/// A valid FHIR id for `raw`. Clean, short inputs are kept as they are so that ids stay
/// readable; anything that had to be rewritten or cut gets a hash of the original text
/// appended, so `a_b` and `a@b` (both `a-b` after rewriting) still get different ids.
pub(crate) fn fhir_id(raw: &str) -> String {
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean == raw && !raw.is_empty() && raw.len() <= MAX_LEN {
        return clean;
    }
    // `clean` is ASCII, so cutting at a byte index cannot split a character.
    let keep = clean.len().min(MAX_LEN - HASH_SUFFIX_LEN);
    format!("{}-{:016x}", &clean[..keep], fnv1a(raw.as_bytes()))
}

/// FNV-1a, 64 bit: stable across platforms and releases (unlike `DefaultHasher`), which is
/// what ids need. It is not collision resistant, so [`IdAllocator`] still checks uniqueness.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Hands out ids that are unique per resource type within one bundle (Bundle invariant
/// bdl-7: no two entries may share a fullUrl). A clash — duplicate input or a hash
/// collision — is resolved with a counter suffix, deterministic for a given input order.
#[derive(Debug, Default)]
pub(crate) struct IdAllocator {
    used: BTreeSet<String>,
}

impl IdAllocator {
    /// Allocates an id for a resource of `rtype` and returns the reference `Type/id`.
    pub(crate) fn alloc(&mut self, rtype: &str, raw: &str) -> String {
        let base = fhir_id(raw);
        let mut id = base.clone();
        let mut n = 2u64;
        while self.used.contains(&format!("{rtype}/{id}")) {
            let suffix = format!("-{n}");
            let keep = base.len().min(MAX_LEN - suffix.len());
            id = format!("{}{suffix}", &base[..keep]);
            n += 1;
        }
        let reference = format!("{rtype}/{id}");
        self.used.insert(reference.clone());
        reference
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(id: &str) -> bool {
        (1..=64).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    }

    #[test]
    fn clean_ids_are_kept() {
        assert_eq!(fhir_id("p001"), "p001");
        assert_eq!(fhir_id("cond-r.1-x"), "cond-r.1-x");
    }

    #[test]
    fn rewritten_ids_are_valid_and_distinct() {
        let inputs = [
            "",
            "a_b",
            "a@b",
            "a b",
            "Zoë 💊",
            "Robert'); DROP TABLE records;--",
            &"x".repeat(64),
            &"x".repeat(65),
            &"y".repeat(300),
        ];
        let ids: BTreeSet<String> = inputs.iter().map(|s| fhir_id(s)).collect();
        assert_eq!(ids.len(), inputs.len());
        assert!(ids.iter().all(|id| valid(id)), "{ids:?}");
        assert_eq!(fhir_id("a_b"), fhir_id("a_b"), "deterministic");
    }

    #[test]
    fn allocator_resolves_clashes() {
        let mut a = IdAllocator::default();
        let long = "z".repeat(64);
        assert_eq!(a.alloc("Patient", "p1"), "Patient/p1");
        assert_eq!(a.alloc("Practitioner", "p1"), "Practitioner/p1");
        assert_eq!(a.alloc("Patient", "p1"), "Patient/p1-2");
        assert_eq!(a.alloc("Patient", "p1"), "Patient/p1-3");
        a.alloc("Patient", &long);
        let second = a.alloc("Patient", &long);
        assert!(valid(second.trim_start_matches("Patient/")), "{second}");
    }
}
