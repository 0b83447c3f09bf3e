//! The builder must keep reproducing, byte for byte, the genesis each suite had before it
//! switched to the kit: the suites' fixtures and the simulator's trace hashes depend on
//! them. The hashes were taken from the hand-written genesis functions at the switch.

use medchain_testkit::{GenesisBuilder, TestKeys};
use medchain_types::{Genesis, KeyPair, UserRole};

fn hash_hex(g: &Genesis) -> String {
    g.hash().to_hex()
}

#[test]
fn the_defaults_are_the_pbft_tests_genesis() {
    let g = GenesisBuilder::new("medchain-pbft-tests", TestKeys::new("pbft-test-")).build();
    assert_eq!(
        hash_hex(&g),
        "76d14491c26da0c97b09986df94f84b211f301221eb7c852b900970c299d82d7"
    );
}

#[test]
fn the_simulator_genesis_is_unchanged() {
    let sim = |n: usize| {
        GenesisBuilder::new(format!("medchain-sim-{n}"), TestKeys::new("sim-"))
            .replicas(n)
            .clients(4)
            .build()
    };
    assert_eq!(
        hash_hex(&sim(4)),
        "db1923e5898505cb187c8a642ef412480c3ad51579a46cc98d9471eff18e132c"
    );
    assert_eq!(
        hash_hex(&sim(7)),
        "ce360aafa3ea1b74e075aa108acd0553117a210295365035802515dbaca4fdde"
    );
}

#[test]
fn names_addresses_and_users_reproduce_the_types_tests_genesis() {
    let g = GenesisBuilder::new("medchain-test", TestKeys::new(""))
        .organisations(|i| format!("hospital-{i}"))
        .addresses(|i| {
            (
                format!("127.0.0.1:{}", 7000 + i),
                format!("127.0.0.1:{}", 8000 + i),
            )
        })
        .client_names(|i| format!("gateway-{i}"))
        .user_in("admin-0", UserRole::Department, "general", "Admin")
        .build();
    assert_eq!(
        hash_hex(&g),
        "f3c0a46c00ff8273c2cf24bc9c79c62cd9cd556dd991c0a8c7b691f0579ff1fa"
    );
}

/// The API tests have not switched yet (their crate is being reworked); this proves the
/// builder can give them exactly their genesis when they do.
#[test]
fn named_clients_and_consents_reproduce_the_api_tests_genesis() {
    let users = [
        ("d001", UserRole::Doctor, "cardiology"),
        ("d002", UserRole::Doctor, "cardiology"),
        ("d003", UserRole::Doctor, "oncology"),
        ("p001", UserRole::Patient, "cardiology"),
        ("p002", UserRole::Patient, "cardiology"),
        ("ph001", UserRole::Pharmacy, "pharmacy"),
        ("ph002", UserRole::Pharmacy, "pharmacy"),
        ("dep001", UserRole::Department, "cardiology"),
        ("dep002", UserRole::Department, "oncology"),
    ];
    let mut b = GenesisBuilder::new("api-test", TestKeys::new("api-"))
        .clients(0)
        .client("gateway", KeyPair::for_test("api-gateway").public())
        .organisations(|i| format!("Org {i}"))
        .addresses(|i| {
            (
                format!("127.0.0.1:{}", 7000 + i),
                format!("127.0.0.1:{}", 5000 + i),
            )
        });
    for (id, role, department) in users {
        b = b.user_in(id, role, department, &format!("User {id}"));
    }
    let g = b
        .consent("p001", "d001")
        .consent("p002", "d001")
        .consent("p002", "d002")
        .build();
    assert_eq!(
        hash_hex(&g),
        "4a505172a10278ead3fe17e9cb89a93ba59fcdb67049e0da613b5e7c49fd0cdf"
    );
}
