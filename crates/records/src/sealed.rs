//! Record content as the ledger stores it once encrypted: `"MCR1" || key epoch (u32 LE) ||
//! envelope`, the envelope sealed (medchain-seal, XChaCha20-Poly1305) under a sub-key of
//! the patient's data key for that epoch and bound to the patient and the record id. The
//! block commits to the hash of these bytes, so guessing a diagnosis and hashing it
//! matches nothing. The data key itself is on the ledger only sealed to organisations
//! (`SharePatientKey`); this module names the formats and associated data both the writing
//! and the reading node use, and the reader's hook (`ContentOpener`).

use medchain_seal::{DataKey, OrgPublicKey, OrgSecretKey, SealError, SealedKey};
use medchain_store::rusqlite::Connection;
use medchain_types::Hash32;

use serde::{Deserialize, Serialize};

use crate::tx::{normalise_code, Medication, RecordContent};

/// The first bytes of encrypted record content.
pub const RECORD_MAGIC: &[u8; 4] = b"MCR1";
/// The first bytes of encrypted content of a record that prescribes: `"MCR2" || epoch ||
/// length of the record's envelope (u32 LE) || that envelope || the prescription's
/// envelope`, the last sealed under the prescription code's key
/// (`medchain_seal::prescription`), so that a pharmacy given the code opens the
/// medication lines and nothing else.
pub const PRESCRIBING_MAGIC: &[u8; 4] = b"MCR2";
/// Purpose of the data key's sub-key for record content (HKDF info).
const RECORD_CONTENT_PURPOSE: &[u8] = b"medchain/v1/record-content";

/// Associated data of a patient's data key for `epoch` sealed to an organisation: a
/// sealed key moved to another patient or epoch does not open.
pub fn key_aad(patient: &str, epoch: u32) -> Vec<u8> {
    format!("medchain/v1/patient-key\0{patient}\0{epoch}").into_bytes()
}

/// Associated data of a record's content: a ciphertext moved to another record or
/// patient does not open.
fn record_aad(patient: &str, record_id: &str) -> Vec<u8> {
    format!("medchain/v1/record\0{patient}\0{record_id}").into_bytes()
}

/// Associated data of a prescription's medication lines under its code's key.
fn prescription_aad(patient: &str, record_id: &str) -> Vec<u8> {
    format!("medchain/v1/prescription\0{patient}\0{record_id}").into_bytes()
}

/// What a prescription code opens: the lines a pharmacy dispenses, never the diagnosis
/// or the notes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PrescriptionLines {
    pub prescription: String,
    #[serde(default)]
    pub medications: Vec<Medication>,
}

/// Encrypt a record's content under the patient's data key of `epoch`, and, when the
/// record prescribes with `prescription_code`, its medication lines again under that
/// code's key.
pub fn seal_record(
    key: &DataKey,
    epoch: u32,
    patient: &str,
    record_id: &str,
    content: &RecordContent,
    prescription_code: Option<&str>,
) -> Result<Vec<u8>, SealError> {
    let envelope = medchain_seal::seal(
        &key.derive(RECORD_CONTENT_PURPOSE),
        &record_aad(patient, record_id),
        &content.to_bytes(),
    )?;
    let Some(code) = prescription_code else {
        return Ok(with_header(epoch, &envelope));
    };
    let lines = PrescriptionLines {
        prescription: content.prescription.clone(),
        medications: content.medications.clone(),
    };
    let rx_key = medchain_seal::prescription::prescription_key(&normalise_code(code), record_id);
    let rx = medchain_seal::seal(
        &rx_key,
        &prescription_aad(patient, record_id),
        &serde_json::to_vec(&lines).unwrap_or_default(),
    )?;
    let length = u32::try_from(envelope.len()).map_err(|_| SealError::Key("content too long"))?;
    let mut out = Vec::with_capacity(12 + envelope.len() + rx.len());
    out.extend_from_slice(PRESCRIBING_MAGIC);
    out.extend_from_slice(&epoch.to_le_bytes());
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&envelope);
    out.extend_from_slice(&rx);
    Ok(out)
}

/// Decrypt a prescription's medication lines with the code the patient presented
/// (`None` for a wrong code, as for damaged bytes).
pub fn open_prescription(
    code: &str,
    patient: &str,
    record_id: &str,
    envelope: &[u8],
) -> Option<PrescriptionLines> {
    let rx_key = medchain_seal::prescription::prescription_key(&normalise_code(code), record_id);
    let plain =
        medchain_seal::open(&rx_key, &prescription_aad(patient, record_id), envelope).ok()?;
    serde_json::from_slice(&plain).ok()
}

/// Purpose of the data key's sub-key for an erasure request's reason.
const ERASURE_REASON_PURPOSE: &[u8] = b"medchain/v1/erasure-reason";

fn erasure_aad(patient: &str, request_id: &str) -> Vec<u8> {
    format!("medchain/v1/erasure\0{patient}\0{request_id}").into_bytes()
}

/// Encrypt the reason of `patient`'s erasure request `request_id` (shredded with the
/// patient's keys once the erasure executes).
pub fn seal_erasure_reason(
    key: &DataKey,
    epoch: u32,
    patient: &str,
    request_id: &str,
    reason: &str,
) -> Result<Vec<u8>, SealError> {
    seal_under(
        key,
        epoch,
        ERASURE_REASON_PURPOSE,
        &erasure_aad(patient, request_id),
        reason.as_bytes(),
    )
}

/// Decrypt an erasure request's reason with the patient's data key of its epoch.
pub fn open_erasure_reason(
    key: &DataKey,
    patient: &str,
    request_id: &str,
    envelope: &[u8],
) -> Option<String> {
    let sub = key.derive(ERASURE_REASON_PURPOSE);
    let plain = medchain_seal::open(&sub, &erasure_aad(patient, request_id), envelope).ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

/// How a break-glass reason sealed to organisations is named in its transaction and in
/// the state: this prefix and the hex SHA-256 of the reason's piece, content carried
/// beside the transaction (so an erasure deletes it).
pub const SEALED_REASON_PREFIX: &str = "sealed-reason:";
/// The first bytes of a sealed reason piece: `"MCB1" || n (u8) || n times (organisation
/// u16 LE || the reason's key sealed to it) || envelope`.
pub const REASON_MAGIC: &[u8; 4] = b"MCB1";
/// The length of a data key sealed to an organisation (HPKE encapsulation, key, tag).
const SEALED_KEY_LEN: usize = 80;

fn reason_key_aad(patient: &str) -> Vec<u8> {
    format!("medchain/v1/reason-key\0{patient}").into_bytes()
}

fn reason_aad(patient: &str) -> Vec<u8> {
    format!("medchain/v1/reason\0{patient}").into_bytes()
}

/// What a transaction says in place of a sealed reason: the piece's hash.
pub fn reason_ref(piece: &[u8]) -> String {
    format!("{SEALED_REASON_PREFIX}{}", Hash32::sha256(piece).to_hex())
}

/// The hash a sealed reason's name refers to (`None`: a reason in clear).
pub fn parse_reason_ref(stored: &str) -> Option<Hash32> {
    let bytes = hex::decode(stored.strip_prefix(SEALED_REASON_PREFIX)?).ok()?;
    Some(Hash32(bytes.try_into().ok()?))
}

/// Seal a free-text reason about `patient` to each of `recipients` (organisation and its
/// current encryption key): a fresh key encrypts the text and is sealed to each.
pub fn seal_reason(
    recipients: &[(u16, OrgPublicKey)],
    patient: &str,
    reason: &str,
) -> Result<Vec<u8>, SealError> {
    let count = u8::try_from(recipients.len()).map_err(|_| SealError::Key("recipients"))?;
    let key = DataKey::random();
    let mut out = Vec::new();
    out.extend_from_slice(REASON_MAGIC);
    out.push(count);
    for (organisation, public) in recipients {
        let sealed = medchain_seal::sealed::seal_key(public, &reason_key_aad(patient), &key)?;
        out.extend_from_slice(&organisation.to_le_bytes());
        out.extend_from_slice(&sealed.0);
    }
    out.extend_from_slice(&medchain_seal::seal(
        &key,
        &reason_aad(patient),
        reason.as_bytes(),
    )?);
    Ok(out)
}

/// Open a sealed reason piece as `organisation`, with one of its secrets (`None`: not
/// sealed to it, or damaged).
pub fn open_reason(
    piece: &[u8],
    organisation: u16,
    secrets: &[&OrgSecretKey],
    patient: &str,
) -> Option<String> {
    let rest = piece.strip_prefix(REASON_MAGIC)?;
    let (&count, mut rest) = rest.split_first()?;
    let mut mine = Vec::new();
    for _ in 0..count {
        let (org, after) = rest.split_first_chunk::<2>()?;
        if after.len() < SEALED_KEY_LEN {
            return None;
        }
        let (sealed, after) = after.split_at(SEALED_KEY_LEN);
        if u16::from_le_bytes(*org) == organisation {
            mine.push(SealedKey(sealed.to_vec()));
        }
        rest = after;
    }
    let key = mine.iter().find_map(|sealed| {
        secrets.iter().find_map(|sk| {
            medchain_seal::sealed::open_key(sk, &reason_key_aad(patient), sealed).ok()
        })
    })?;
    let plain = medchain_seal::open(&key, &reason_aad(patient), rest).ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

/// How a patient's sealed display name starts in the ledger's `display_name` field; the
/// rest is the hex of `"MCR1" || epoch || envelope` under the patient's data key.
pub const SEALED_NAME_PREFIX: &str = "sealed:";
/// Purpose of the data key's sub-key for the patient's name.
const NAME_PURPOSE: &[u8] = b"medchain/v1/display-name";

fn name_aad(patient: &str) -> Vec<u8> {
    format!("medchain/v1/display-name\0{patient}").into_bytes()
}

/// `patient`'s display name as the ledger stores it: sealed under their data key.
pub fn seal_name(
    key: &DataKey,
    epoch: u32,
    patient: &str,
    name: &str,
) -> Result<String, SealError> {
    let bytes = seal_under(
        key,
        epoch,
        NAME_PURPOSE,
        &name_aad(patient),
        name.as_bytes(),
    )?;
    Ok(format!("{SEALED_NAME_PREFIX}{}", hex::encode(bytes)))
}

/// The key epoch and envelope of a sealed display name (`None`: stored in clear).
pub fn sealed_name_parts(stored: &str) -> Option<(u32, Vec<u8>)> {
    let bytes = hex::decode(stored.strip_prefix(SEALED_NAME_PREFIX)?).ok()?;
    let (epoch, envelope) = sealed_parts(&bytes)?;
    Some((epoch, envelope.to_vec()))
}

/// Decrypt a sealed display name with the patient's data key of its epoch.
pub fn open_name(key: &DataKey, patient: &str, envelope: &[u8]) -> Option<String> {
    let sub = key.derive(NAME_PURPOSE);
    let plain = medchain_seal::open(&sub, &name_aad(patient), envelope).ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

/// `"MCR1" || epoch || envelope` of `plain` under the `purpose` sub-key of `key`.
fn seal_under(
    key: &DataKey,
    epoch: u32,
    purpose: &[u8],
    aad: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, SealError> {
    let envelope = medchain_seal::seal(&key.derive(purpose), aad, plain)?;
    Ok(with_header(epoch, &envelope))
}

/// `"MCR1" || epoch || envelope`.
fn with_header(epoch: u32, envelope: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + envelope.len());
    out.extend_from_slice(RECORD_MAGIC);
    out.extend_from_slice(&epoch.to_le_bytes());
    out.extend_from_slice(envelope);
    out
}

/// The key epoch and envelope of sealed bytes (`None`: not sealed).
pub fn sealed_parts(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let rest = bytes.strip_prefix(RECORD_MAGIC)?;
    let (epoch, envelope) = rest.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*epoch), envelope))
}

/// What stored content bytes are.
#[derive(Debug, PartialEq, Eq)]
pub enum StoredContent<'a> {
    /// Content a chain without encryption keys stored in clear (JSON).
    Clear(RecordContent),
    /// Encrypted under the patient's data key of `epoch`; a prescribing record's lines
    /// also under its code's key (`prescription`).
    Sealed {
        epoch: u32,
        envelope: &'a [u8],
        prescription: Option<&'a [u8]>,
    },
    /// Neither: damaged, or of a format this build does not read.
    Unreadable,
}

impl StoredContent<'_> {
    pub fn parse(bytes: &[u8]) -> StoredContent<'_> {
        if bytes.starts_with(RECORD_MAGIC) {
            return match sealed_parts(bytes) {
                Some((epoch, envelope)) => StoredContent::Sealed {
                    epoch,
                    envelope,
                    prescription: None,
                },
                None => StoredContent::Unreadable,
            };
        }
        if let Some(rest) = bytes.strip_prefix(PRESCRIBING_MAGIC) {
            return prescribing_parts(rest).map_or(
                StoredContent::Unreadable,
                |(epoch, envelope, rx)| StoredContent::Sealed {
                    epoch,
                    envelope,
                    prescription: Some(rx),
                },
            );
        }
        RecordContent::from_bytes(bytes).map_or(StoredContent::Unreadable, StoredContent::Clear)
    }
}

/// `epoch || length || envelope || prescription envelope`, split (`None`: truncated).
fn prescribing_parts(rest: &[u8]) -> Option<(u32, &[u8], &[u8])> {
    let (epoch, rest) = rest.split_first_chunk::<4>()?;
    let (length, rest) = rest.split_first_chunk::<4>()?;
    let length = usize::try_from(u32::from_le_bytes(*length)).ok()?;
    if length > rest.len() {
        return None;
    }
    let (envelope, rx) = rest.split_at(length);
    Some((u32::from_le_bytes(*epoch), envelope, rx))
}

/// Decrypt a record's envelope with the patient's data key of its epoch.
pub fn open_record(
    key: &DataKey,
    patient: &str,
    record_id: &str,
    envelope: &[u8],
) -> Option<RecordContent> {
    let sub = key.derive(RECORD_CONTENT_PURPOSE);
    let plain = medchain_seal::open(&sub, &record_aad(patient, record_id), envelope).ok()?;
    RecordContent::from_bytes(&plain)
}

/// Crypto-shredding, the part every copy of a ledger database must undergo for an erased
/// patient: delete their record content and every sealed copy of their data keys (without
/// which no copy of the content anywhere opens) and of the reasons sealed about them,
/// and blank their name. The erasure rule
/// runs it (and records the erasure); `medchain restore` runs it on an older copy.
pub fn shred(conn: &Connection, patient: &str) -> medchain_store::rusqlite::Result<()> {
    for sql in [
        "DELETE FROM content WHERE (height, hash) IN
             (SELECT height, content_hash FROM records WHERE patient = ?1)",
        "DELETE FROM content WHERE (height, hash) IN
             (SELECT height, hash FROM patient_keys WHERE patient = ?1)",
        "DELETE FROM patient_keys WHERE patient = ?1",
        "UPDATE users SET display_name = '' WHERE user_id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([patient])?;
    }
    // A copy from before sealed reasons (records schema 5) has no such table.
    let reasons: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'reason_pieces'",
        [],
        |r| r.get(0),
    )?;
    if reasons > 0 {
        for sql in [
            "DELETE FROM content WHERE (height, hash) IN
                 (SELECT height, hash FROM reason_pieces WHERE patient = ?1)",
            "DELETE FROM reason_pieces WHERE patient = ?1",
        ] {
            conn.prepare_cached(sql)?.execute([patient])?;
        }
    }
    Ok(())
}

/// How a reading node turns stored content into a record's fields: by opening the
/// patient's data key sealed to its organisation. `None` when it cannot (it holds no key
/// for that epoch, or the bytes do not open).
pub trait ContentOpener: Send + Sync {
    fn open(
        &self,
        conn: &Connection,
        patient: &str,
        record_id: &str,
        bytes: &[u8],
    ) -> Option<RecordContent>;

    /// A reason about `patient` sealed to organisations (`seal_reason`), if this node's
    /// organisation is among them.
    fn open_reason(&self, _patient: &str, _piece: &[u8]) -> Option<String> {
        None
    }
}

/// A reader without keys: it reads content stored in clear and nothing else.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClearOnly;

impl ContentOpener for ClearOnly {
    fn open(&self, _: &Connection, _: &str, _: &str, bytes: &[u8]) -> Option<RecordContent> {
        match StoredContent::parse(bytes) {
            StoredContent::Clear(c) => Some(c),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content() -> RecordContent {
        RecordContent {
            department: "cardiology".into(),
            diagnosis: "Takotsubo cardiomyopathy".into(),
            notes: "follow up in 2 weeks".into(),
            ..RecordContent::default()
        }
    }

    #[test]
    fn sealed_content_opens_only_with_its_key_patient_and_record() {
        let key = DataKey::random();
        let bytes = seal_record(&key, 3, "p1", "r1", &content(), None).expect("seals");
        let StoredContent::Sealed {
            epoch,
            envelope,
            prescription: None,
        } = StoredContent::parse(&bytes)
        else {
            panic!("not sealed");
        };
        assert_eq!(epoch, 3);
        assert_eq!(open_record(&key, "p1", "r1", envelope), Some(content()));
        assert_eq!(open_record(&key, "p1", "r2", envelope), None);
        assert_eq!(open_record(&key, "p2", "r1", envelope), None);
        assert_eq!(open_record(&DataKey::random(), "p1", "r1", envelope), None);
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("Takotsubo"), "{text}");
        assert_eq!(ClearOnly.open_bytes(&bytes), None);
    }

    #[test]
    fn a_prescription_code_opens_the_lines_and_nothing_else() {
        let key = DataKey::random();
        let mut c = content();
        c.prescription = "Bisoprolol 2.5 mg each morning".into();
        c.medications = vec![Medication {
            name: "bisoprolol".into(),
            dose: "2.5 mg".into(),
            ..Medication::default()
        }];
        let code = "K7QM2-XR4PA-BCDEF-GHJKL-MNPQR";
        let bytes = seal_record(&key, 1, "p1", "r1", &c, Some(code)).expect("seals");
        let StoredContent::Sealed {
            epoch: 1,
            envelope,
            prescription: Some(rx),
        } = StoredContent::parse(&bytes)
        else {
            panic!("not a prescribing envelope");
        };
        // The patient's key still opens the whole record.
        assert_eq!(open_record(&key, "p1", "r1", envelope), Some(c.clone()));
        let lines = open_prescription("k7qm2 xr4pa bcdef ghjkl mnpqr", "p1", "r1", rx);
        assert_eq!(
            lines,
            Some(PrescriptionLines {
                prescription: c.prescription.clone(),
                medications: c.medications.clone(),
            })
        );
        // The code's lines say nothing of the diagnosis.
        let text = String::from_utf8_lossy(rx);
        assert!(!text.contains("Takotsubo"));
        assert_eq!(
            open_prescription("K7QM2-XR4PA-BCDEF-GHJKL-MNPQS", "p1", "r1", rx),
            None
        );
        assert_eq!(open_prescription(code, "p1", "r2", rx), None);
        assert_eq!(open_prescription(code, "p2", "r1", rx), None);
        // The code opens nothing of the record's own envelope.
        assert_eq!(open_prescription(code, "p1", "r1", envelope), None);
        // Truncated anywhere: unreadable or unopenable, never a panic.
        for cut in 0..bytes.len() {
            match StoredContent::parse(&bytes[..cut]) {
                StoredContent::Sealed {
                    envelope,
                    prescription,
                    ..
                } => {
                    let whole = open_record(&key, "p1", "r1", envelope).is_some()
                        && prescription
                            .and_then(|rx| open_prescription(code, "p1", "r1", rx))
                            .is_some();
                    assert!(!whole, "cut at {cut} still opened");
                }
                StoredContent::Unreadable | StoredContent::Clear(_) => {}
            }
        }
    }

    #[test]
    fn a_sealed_reason_opens_for_its_organisations_only() {
        let (home, home_pk) = OrgSecretKey::generate();
        let (doctors, doctors_pk) = OrgSecretKey::generate();
        let (insurer, _) = OrgSecretKey::generate();
        let text = "unconscious, brought in by ambulance";
        let piece = seal_reason(&[(0, home_pk), (2, doctors_pk)], "p1", text).expect("seals");
        assert!(!String::from_utf8_lossy(&piece).contains("ambulance"));
        assert_eq!(
            open_reason(&piece, 0, &[&home], "p1").as_deref(),
            Some(text)
        );
        assert_eq!(
            open_reason(&piece, 2, &[&insurer, &doctors], "p1").as_deref(),
            Some(text)
        );
        assert_eq!(open_reason(&piece, 3, &[&insurer], "p1"), None);
        // Another organisation's secret under a listed number opens nothing either.
        assert_eq!(open_reason(&piece, 0, &[&insurer], "p1"), None);
        assert_eq!(open_reason(&piece, 0, &[&home], "p2"), None);
        for cut in 0..piece.len() {
            assert_eq!(open_reason(&piece[..cut], 0, &[&home], "p1"), None);
        }
        let mut flipped = piece.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(open_reason(&flipped, 0, &[&home], "p1"), None);
        let named = reason_ref(&piece);
        assert_eq!(parse_reason_ref(&named), Some(Hash32::sha256(&piece)));
        assert_eq!(parse_reason_ref(text), None);
    }

    #[test]
    fn clear_content_of_an_older_chain_still_reads() {
        let bytes = content().to_bytes();
        assert_eq!(
            StoredContent::parse(&bytes),
            StoredContent::Clear(content())
        );
        assert_eq!(ClearOnly.open_bytes(&bytes), Some(content()));
        assert_eq!(StoredContent::parse(b"MCR1ab"), StoredContent::Unreadable);
        assert_eq!(StoredContent::parse(b"garbage"), StoredContent::Unreadable);
    }

    impl ClearOnly {
        fn open_bytes(&self, bytes: &[u8]) -> Option<RecordContent> {
            let conn = Connection::open_in_memory().expect("sqlite");
            self.open(&conn, "p1", "r1", bytes)
        }
    }
}
