//! The faulty organisation: on a demo cluster of four real processes, organisation 3
//! (the insurer) uses everything it holds (its own node, its operator command, its
//! operator key, its node's files) to act for St Mary's users, and every attempt is
//! refused. The transactions it signs itself are refused by the ledger on every replica
//! (recorded as `forbidden`), not only by an API pre-check it could skip.

mod common;

use std::time::Duration;

use common::{Cluster, SERIAL};
use medchain_node::client::LedgerClient;
use medchain_node::NodeFiles;
use medchain_records::query::outcome;
use medchain_records::{Actor, Batch, Envelope, Grantee, Outcome, RecordContent, Transaction};
use medchain_types::Hash32;

/// The insurer's replica: organisation 3 of the demo.
const INSURER: usize = 3;

/// What organisation 3 signs with its own operator key, as St Mary's users.
fn forged_batch(content_hash: Hash32) -> Vec<Envelope> {
    let as_user = |id: &str, tx| Envelope {
        actor: Actor::User(id.into()),
        tx,
    };
    vec![
        // Consent on behalf of St Mary's patient, to nobody it should.
        as_user(
            "p001",
            Transaction::GrantConsent {
                grantee: Grantee::Doctor("d002".into()),
                expires_at_ms: None,
            },
        ),
        // A record signed for St Mary's doctor.
        as_user(
            "d001",
            Transaction::AddRecord {
                record_id: "rec-forged-by-3".into(),
                patient: "p001".into(),
                content_hash,
                consent_code: None,
                amends: None,
                prescription_code_hash: None,
            },
        ),
        // Dispensing as St Mary's pharmacy.
        as_user(
            "ph001",
            Transaction::Dispense {
                record_id: "rec-forged-by-3".into(),
                code: None,
            },
        ),
        // Deactivating St Mary's doctor as St Mary's department.
        as_user(
            "dep001",
            Transaction::DeactivateUser {
                user_id: "d002".into(),
            },
        ),
        // Emergency access as St Mary's doctor.
        as_user(
            "d001",
            Transaction::BreakGlass {
                patient: "p002".into(),
                reason: "forged emergency".into(),
                duration_ms: 60_000,
            },
        ),
    ]
}

/// Submit `envs` as one request signed with organisation 3's own operator key, and wait
/// until every replica has executed it; returns the request id.
fn submit_as_insurer(c: &Cluster, envs: Vec<Envelope>, content: Vec<Vec<u8>>) -> u64 {
    let files = NodeFiles::load(&c.config(INSURER)).expect("node3.toml");
    let (client, key) = files.operator().expect("the insurer's operator key");
    let request_id = 1;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let addr = files.config.p2p_listen.parse().expect("p2p address");
        let ledger = LedgerClient::connect(addr, files.id(), client, key, &files.genesis)
            .await
            .expect("the insurer's own replica takes its operator");
        tokio::time::timeout(
            Duration::from_secs(30),
            ledger.submit_with_content(request_id, Batch(envs).encode(), content),
        )
        .await
        .expect("committed in time")
        .expect("committed");
    });
    for i in 0..4 {
        c.wait_same_head(i, INSURER, Duration::from_secs(30));
    }
    request_id
}

#[test]
fn the_insurer_cannot_act_for_st_marys_users() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::start_with(&["--demo"]);

    // Its operator command refuses to set a St Mary's patient's password on its node.
    let out = c.set_password(INSURER, "p001", "insurer-knows-this");
    assert!(
        !out.status.success(),
        "set-password for p001 at node 3 succeeded"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("belongs to organisation 0"), "{stderr}");

    // Writing the hash into its own node's database by hand buys nothing either: the
    // node refuses to sign in another organisation's user.
    let sign_in_db = c.dir.path().join("org3/data/sign-in.sqlite");
    let conn = medchain_api::auth::open_local_db(&sign_in_db).expect("node 3's gateway db");
    let phc = medchain_api::auth::hash_password("insurer-knows-this").expect("hash");
    medchain_api::auth::set_password_hash(&conn, "p001", &phc).expect("write the hash");
    drop(conn);
    let (status, v) = c.try_login(INSURER, "p001", "insurer-knows-this");
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"]["code"], "wrong_organisation", "{v}");

    // Its own key signs transactions for St Mary's users: the ledger refuses each one, on
    // every replica, and nothing of them is in any replica's state.
    let content = RecordContent {
        department: "cardiology".into(),
        diagnosis: "forged diagnosis".into(),
        ..RecordContent::default()
    }
    .to_bytes();
    let envs = forged_batch(Hash32::sha256(&content));
    let n = envs.len();
    let request_id = submit_as_insurer(&c, envs, vec![content]);
    let operator_of_3 = 4 + INSURER as u16;
    for i in 0..4 {
        let db = medchain_store::Reader::open(&c.db(i)).expect("db");
        for index in 0..n as u32 {
            let got = outcome(db.connection(), operator_of_3, request_id, index)
                .expect("read outcome")
                .expect("an outcome is recorded");
            assert_eq!(
                got.0,
                Outcome::Forbidden,
                "replica {i}, transaction {index}: {got:?}"
            );
            assert!(got.1.contains("organisation 3 cannot act"), "{got:?}");
            if i == 0 {
                println!("replica {i}, transaction {index}: {:?} {}", got.0, got.1);
            }
        }
        let conn = db.connection();
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
        assert_eq!(count("SELECT COUNT(*) FROM records"), 0, "replica {i}");
        assert_eq!(count("SELECT COUNT(*) FROM break_glass"), 0, "replica {i}");
        assert_eq!(
            count("SELECT COUNT(*) FROM users WHERE user_id = 'd002' AND active = 1"),
            1,
            "replica {i}: d002 still active"
        );
        assert_eq!(
            count("SELECT COUNT(*) FROM consents WHERE patient = 'p001' AND grantee_id = 'd002'"),
            0,
            "replica {i}"
        );
    }

    // Its operator makes its own "cardiology" administrator: a department of its own
    // organisation, with no say over St Mary's cardiology.
    let out = c.user_add(
        INSURER,
        "card-admin-3",
        "department",
        "cardiology",
        "insurer-admin-pw",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = c.login_changing_password(
        INSURER,
        "card-admin-3",
        "insurer-admin-pw",
        "insurer-own-pw",
    );
    let (status, users) = c.get_with(INSURER, "/api/users", &admin);
    assert_eq!(status, 200, "{users}");
    let ids: Vec<&str> = users
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|u| u["user_id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["card-admin-3"],
        "only its own organisation's cardiology"
    );
    let (status, v) = c.post(INSURER, "/api/users/d002/deactivate", Some(&admin), "");
    assert_eq!(status, 403, "the ledger refuses: {v}");
    for i in 0..4 {
        let (ok, text) = c.verify(i);
        assert!(ok, "verify {i}: {text}");
    }
}
