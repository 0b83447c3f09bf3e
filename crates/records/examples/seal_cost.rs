//! What encryption costs per record, on this machine: sealing and opening a bench-sized
//! record's content under a patient's data key, and sealing and opening a data key for
//! an organisation (HPKE), and deriving a prescription code's key and proof (HKDF), beside
//! what a slow KDF (Argon2id) would cost instead.
//! `cargo run --release -p medchain-records --example seal_cost` prints the median of five
//! rounds of each.

use std::time::Instant;

use medchain_records::sealed::{open_record, seal_record, StoredContent};
use medchain_records::RecordContent;
use medchain_seal::{DataKey, OrgSecretKey, SealedKey};

const ROUNDS: usize = 5;
const RECORDS: usize = 20_000;
const KEYS: usize = 2_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let content = RecordContent {
        department: "cardiology".into(),
        diagnosis: "Essential hypertension, stage 1; ".repeat(8),
        prescription: "Amlodipine 5 mg once daily".into(),
        notes: "Review in four weeks with home blood pressure readings. ".repeat(10),
        medications: Vec::new(),
    };
    println!("record content: {} bytes of JSON", content.to_bytes().len());
    let key = DataKey::random();
    let (mut seal_us, mut open_us) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let sealed: Vec<Vec<u8>> = (0..RECORDS)
            .map(|i| {
                seal_record(&key, 0, "p001", &format!("rec-{i}"), &content, None).expect("seal")
            })
            .collect();
        seal_us.push(t.elapsed().as_secs_f64() * 1e6 / RECORDS as f64);
        let t = Instant::now();
        for (i, s) in sealed.iter().enumerate() {
            let StoredContent::Sealed { envelope, .. } = StoredContent::parse(s) else {
                panic!("not sealed")
            };
            assert!(open_record(&key, "p001", &format!("rec-{i}"), envelope).is_some());
        }
        open_us.push(t.elapsed().as_secs_f64() * 1e6 / RECORDS as f64);
    }
    let (sk, pk) = OrgSecretKey::generate();
    let (mut hpke_seal_us, mut hpke_open_us) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let sealed: Vec<SealedKey> = (0..KEYS)
            .map(|_| medchain_seal::sealed::seal_key(&pk, b"aad", &key).expect("seal key"))
            .collect();
        hpke_seal_us.push(t.elapsed().as_secs_f64() * 1e6 / KEYS as f64);
        let t = Instant::now();
        for s in &sealed {
            medchain_seal::sealed::open_key(&sk, b"aad", s).expect("open key");
        }
        hpke_open_us.push(t.elapsed().as_secs_f64() * 1e6 / KEYS as f64);
    }
    // The prescription code's key and proof (HKDF, what each prescribing write pays), and
    // for comparison what a slow KDF (Argon2id at OWASP's minimum) would cost instead.
    let mut rx_us = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for i in 0..RECORDS {
            let code = "ABCDEFGHJKLMNPQRSTUVWXYZ2";
            let k = medchain_seal::prescription::prescription_key(code, &format!("rec-{i}"));
            let p = medchain_seal::prescription::prescription_proof(code);
            assert!(k.as_bytes() != &[0; 32] && !p.is_empty());
        }
        rx_us.push(t.elapsed().as_secs_f64() * 1e6 / RECORDS as f64);
    }
    let mut kdf_ms = Vec::new();
    for i in 0..ROUNDS {
        let t = Instant::now();
        let params = argon2::Params::new(19 * 1024, 2, 1, Some(32)).expect("params");
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = [0u8; 32];
        let salt = format!("medchain/v1/prescription/rec-{i}");
        argon
            .hash_password_into(b"ABCDEFGHJK", salt.as_bytes(), &mut out)
            .expect("argon2");
        kdf_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "seal one record's content:  {:.1} µs (median of {ROUNDS} rounds of {RECORDS})",
        median(seal_us)
    );
    println!("open one record's content:  {:.1} µs", median(open_us));
    println!(
        "seal a data key (HPKE):     {:.1} µs (median of {ROUNDS} rounds of {KEYS})",
        median(hpke_seal_us)
    );
    println!("open a data key (HPKE):     {:.1} µs", median(hpke_open_us));
    println!(
        "prescription-code key and proof (HKDF): {:.1} µs",
        median(rx_us)
    );
    println!(
        "for comparison, Argon2id (19 MiB, 2 passes) of a short code: {:.1} ms",
        median(kdf_ms)
    );
}
