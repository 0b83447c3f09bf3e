//! Maps a [`PatientExport`] onto FHIR R4 resources and assembles the Bundle. Kept apart
//! from the input types so the mapping decisions (which code systems, which references)
//! sit in one place next to the reasons for them.

use crate::ids::IdAllocator;
use crate::time::instant;
use crate::{ConsentEntry, Medication, PatientExport, Person, Record};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Systems for MedChain's own identifiers. URNs rather than URLs: they name a namespace
/// and promise nothing resolvable.
const SYS_USER: &str = "urn:medchain:user";
const SYS_ORG: &str = "urn:medchain:organisation";
const SYS_DEPT: &str = "urn:medchain:department";
const SYS_RECORD: &str = "urn:medchain:record";
const SYS_BLOCK: &str = "urn:medchain:block";
const SYS_AUDIT_ACTION: &str = "urn:medchain:audit-action";

const V3_ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const PROV_PARTICIPANT: &str = "http://terminology.hl7.org/CodeSystem/provenance-participant-type";
const V3_DATA_OPERATION: &str = "http://terminology.hl7.org/CodeSystem/v3-DataOperation";

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [coding(system, code, display)] })
}

/// `Some(s)` unless `s` is blank: FHIR strings may not be empty, and a whitespace-only
/// diagnosis says nothing worth an element.
fn text(s: &str) -> Option<&str> {
    (!s.trim().is_empty()).then_some(s)
}

/// Removes nulls, empty strings, `{}` and `[]` (FHIR JSON forbids all four) left behind by
/// optional inputs. Returns whether `v` itself should be kept.
fn prune(v: &mut Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => {
            a.retain_mut(prune);
            !a.is_empty()
        }
        Value::Object(o) => {
            o.retain(|_, x| prune(x));
            !o.is_empty()
        }
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// The resource type a MedChain role would have, for references to users who are not in
/// the export; `None` (no type claimed) for roles it does not know.
fn type_for_role(role: &str) -> Option<&'static str> {
    match role {
        "doctor" => Some("Practitioner"),
        "patient" => Some("Patient"),
        "pharmacy" | "department" => Some("Organization"),
        _ => None,
    }
}

/// The medication requests made from one record: their references and medication texts
/// (a dispense names what was handed over from these).
type Requests = Vec<(String, String)>;

/// The lines of a record's prescription as (medication text, MedicationRequest body
/// without the fields every request of the record shares).
fn medication_lines(rec: &Record) -> Vec<(String, Value)> {
    // One request per structured line; free text alone becomes one request. Deliberately
    // no reasonReference/diagnosis here: a pharmacy may see prescriptions but not
    // diagnoses, so a MedicationRequest must stand on its own without them.
    let prescription = text(&rec.prescription);
    let mut lines: Vec<(String, Value)> = rec
        .medications
        .iter()
        .map(|m| medication_line(m, prescription))
        .collect();
    if lines.is_empty() {
        if let Some(p) = prescription {
            lines.push((p.to_owned(), json!({})));
        }
    }
    lines
}

fn medication_line(m: &Medication, prescription: Option<&str>) -> (String, Value) {
    let name = text(&m.name)
        .or(prescription)
        .unwrap_or("Unspecified medication");
    let mut parts: Vec<String> = [&m.dose, &m.route, &m.frequency]
        .iter()
        .filter_map(|s| text(s).map(str::to_owned))
        .collect();
    if let Some(d) = text(&m.duration) {
        parts.push(format!("for {d}"));
    }
    let dosage = json!([{
        "text": parts.join(", "),
        "timing": { "code": { "text": text(&m.frequency) } },
        "route": { "text": text(&m.route) },
    }]);
    // Quantities are free text ("2 boxes"); SimpleQuantity needs a number, so the text
    // goes in a note rather than into a guessed dispenseRequest.
    let mut notes = Vec::new();
    if let Some(q) = text(&m.quantity) {
        notes.push(json!({ "text": format!("Quantity to dispense: {q}") }));
    }
    if let Some(p) = prescription {
        notes.push(json!({ "text": format!("Prescription as written: {p}") }));
    }
    (
        name.to_owned(),
        json!({ "dosageInstruction": dosage, "note": notes }),
    )
}

struct Builder<'a> {
    x: &'a PatientExport,
    ids: IdAllocator,
    /// (`Type/id`, resource without `id`) in bundle order.
    entries: Vec<(String, Value)>,
    patient: String,
    people: BTreeMap<&'a str, (String, &'a Person)>,
    orgs: BTreeMap<&'a str, (String, &'a str)>,
    conditions: BTreeMap<&'a str, String>,
    requests: BTreeMap<&'a str, Requests>,
}

pub(crate) fn build(x: &PatientExport, base_url: &str, next_url: Option<&str>) -> Value {
    let mut b = Builder::new(x);
    // Ids first, resources second: a dispense or an amendment may refer to a record that
    // comes later in the input, and every reference must already know its target's id.
    b.allocate_ids();
    b.add_people();
    for rec in &x.records {
        b.add_record(rec);
    }
    b.add_dispenses();
    b.add_consents();
    b.add_audits();
    b.into_bundle(base_url, next_url)
}

impl<'a> Builder<'a> {
    fn new(x: &'a PatientExport) -> Self {
        Builder {
            x,
            ids: IdAllocator::default(),
            entries: Vec::new(),
            patient: String::new(),
            people: BTreeMap::new(),
            orgs: BTreeMap::new(),
            conditions: BTreeMap::new(),
            requests: BTreeMap::new(),
        }
    }

    /// The ids of the patient, organisations, practitioners and conditions, in that
    /// order; the allocator's answers depend on it, so the order is part of the output.
    fn allocate_ids(&mut self) {
        let x = self.x;
        self.patient = self.ids.alloc("Patient", &x.patient.user_id);
        for o in &x.organizations {
            if !self.orgs.contains_key(o.id.as_str()) {
                let r = self.ids.alloc("Organization", &o.id);
                self.orgs.insert(&o.id, (r, &o.name));
            }
        }
        for p in &x.practitioners {
            if !self.people.contains_key(p.user_id.as_str()) {
                let r = self.ids.alloc("Practitioner", &p.user_id);
                self.people.insert(&p.user_id, (r, p));
            }
        }
        for rec in &x.records {
            if !self.conditions.contains_key(rec.record_id.as_str()) {
                let r = self
                    .ids
                    .alloc("Condition", &format!("cond-{}", rec.record_id));
                self.conditions.insert(&rec.record_id, r);
            }
        }
    }

    /// Every resource added so far as entries of the searchset Bundle, each given its id
    /// and stripped of the empty elements FHIR JSON forbids.
    fn into_bundle(self, base_url: &str, next_url: Option<&str>) -> Value {
        let x = self.x;
        let patient = self.patient;
        let base = base_url.trim_end_matches('/');
        let entries: Vec<Value> = self
            .entries
            .into_iter()
            .map(|(reference, mut resource)| {
                let (_, id) = reference.split_once('/').unwrap_or(("", &reference));
                resource["id"] = json!(id);
                prune(&mut resource);
                // $everything answers a search on one Patient: it is the match, the rest are
                // included because they belong to it.
                let mode = if reference == patient {
                    "match"
                } else {
                    "include"
                };
                json!({
                    "fullUrl": format!("{base}/{reference}"),
                    "resource": resource,
                    "search": { "mode": mode },
                })
            })
            .collect();
        let mut links =
            vec![json!({ "relation": "self", "url": format!("{base}/{patient}/$everything") })];
        if let Some(next) = next_url {
            links.push(json!({ "relation": "next", "url": next }));
        }
        let mut bundle = json!({
            "resourceType": "Bundle",
            "id": crate::ids::fhir_id(&format!("everything-{}", x.patient.user_id)),
            // The operation's definition says its response is a "searchset" Bundle, and only
            // a searchset may carry entry.search (invariant bdl-2), so not "collection".
            "type": "searchset",
            "timestamp": instant(x.generated_at_ms),
            "link": links,
            "entry": entries,
        });
        prune(&mut bundle);
        bundle
    }

    fn push(&mut self, reference: &str, resource: Value) {
        self.entries.push((reference.to_owned(), resource));
    }

    /// A reference to a user: the bundle's Practitioner or Patient when it has one, else an
    /// identifier-only reference (valid without a target in the bundle) typed `fallback`.
    fn user_ref(&self, user_id: &str, fallback: Option<&str>) -> Value {
        if let Some((r, p)) = self.people.get(user_id) {
            json!({ "reference": r, "display": p.display_name })
        } else if user_id == self.x.patient.user_id {
            json!({ "reference": self.patient, "display": self.x.patient.display_name })
        } else if let Some((r, name)) = self.orgs.get(user_id) {
            json!({ "reference": r, "display": name })
        } else {
            json!({ "type": fallback, "identifier": { "system": SYS_USER, "value": user_id } })
        }
    }

    fn org_ref(&self, org_id: &str) -> Value {
        match self.orgs.get(org_id) {
            Some((r, name)) => json!({ "reference": r, "display": name }),
            None => json!({
                "type": "Organization",
                "identifier": { "system": SYS_ORG, "value": org_id },
            }),
        }
    }

    fn person(&self, user_id: &str) -> Option<&'a Person> {
        match self.people.get(user_id) {
            Some((_, p)) => Some(p),
            None => (user_id == self.x.patient.user_id).then_some(&self.x.patient),
        }
    }

    fn add_people(&mut self) {
        let p = &self.x.patient;
        let managing = text(&p.organisation).map(|o| self.org_ref(o));
        let resource = json!({
            "resourceType": "Patient",
            "identifier": [{ "system": SYS_USER, "value": p.user_id }],
            "active": p.active,
            "name": [{ "text": p.display_name }],
            "managingOrganization": managing,
        });
        let patient = self.patient.clone();
        self.push(&patient, resource);
        let orgs: Vec<(String, Value)> = self
            .orgs
            .iter()
            .map(|(id, (r, name))| {
                let org = json!({
                    "resourceType": "Organization",
                    "identifier": [{ "system": SYS_ORG, "value": id }],
                    "active": true,
                    "name": name,
                });
                (r.clone(), org)
            })
            .collect();
        let people: Vec<(String, Value)> = self
            .people
            .values()
            .map(|(r, p)| {
                let prac = json!({
                    "resourceType": "Practitioner",
                    "identifier": [{ "system": SYS_USER, "value": p.user_id }],
                    "active": p.active,
                    "name": [{ "text": p.display_name }],
                });
                (r.clone(), prac)
            })
            .collect();
        self.entries.extend(orgs);
        self.entries.extend(people);
    }

    fn add_record(&mut self, rec: &'a Record) {
        // A repeated record id: the first occurrence owns the ids; drop the duplicate.
        let cond = match self.conditions.get(rec.record_id.as_str()) {
            Some(c) if !self.requests.contains_key(rec.record_id.as_str()) => c.clone(),
            _ => return,
        };
        let condition = self.condition(rec);
        self.push(&cond, condition);
        let requests = self.add_requests(rec);
        let mut targets = vec![cond];
        targets.extend(requests.iter().map(|(r, _)| r.clone()));
        self.requests.insert(&rec.record_id, requests);
        self.add_record_provenance(rec, &targets);
    }

    /// The record's diagnosis and notes as a Condition.
    fn condition(&self, rec: &Record) -> Value {
        let recorder = self.user_ref(&rec.doctor_id, Some("Practitioner"));
        json!({
            "resourceType": "Condition",
            "identifier": [{ "system": SYS_RECORD, "value": rec.record_id }],
            "category": [concept(
                "http://terminology.hl7.org/CodeSystem/condition-category",
                "encounter-diagnosis",
                "Encounter Diagnosis",
            )],
            "code": text(&rec.diagnosis).map(|d| json!({ "text": d })),
            "subject": { "reference": self.patient },
            "recordedDate": instant(rec.created_at_ms),
            "recorder": recorder,
            "note": text(&rec.notes).map(|n| json!([{ "text": n }])),
        })
    }

    /// One MedicationRequest per line of the record's prescription; returns them for the
    /// record's Provenance and for dispenses.
    fn add_requests(&mut self, rec: &Record) -> Requests {
        let mut requests = Vec::new();
        for (i, (name, mut body)) in medication_lines(rec).into_iter().enumerate() {
            let r = self.ids.alloc(
                "MedicationRequest",
                &format!("medreq-{}-{i}", rec.record_id),
            );
            let common = json!({
                "resourceType": "MedicationRequest",
                // Lines of one record share a group identifier, like one paper prescription.
                "groupIdentifier": { "system": SYS_RECORD, "value": rec.record_id },
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": { "text": name },
                "subject": { "reference": self.patient },
                "authoredOn": instant(rec.created_at_ms),
                "requester": self.user_ref(&rec.doctor_id, Some("Practitioner")),
            });
            if let (Value::Object(body), Value::Object(common)) = (&mut body, common) {
                body.extend(common);
            }
            self.push(&r, body);
            requests.push((r, name));
        }
        requests
    }

    /// The Provenance of a record's Condition and requests: written by the doctor for
    /// their department, and a revision when it amends an earlier record.
    fn add_record_provenance(&mut self, rec: &Record, targets: &[String]) {
        // The doctor wrote it for their department; the department has no resource of its
        // own, so it is named by identifier.
        let dept = text(&rec.department).map(|d| {
            json!({
                "type": "Organization",
                "identifier": { "system": SYS_DEPT, "value": d },
                "display": d,
            })
        });
        let amended = rec.amends.as_deref().map(|a| {
            let what = match self.conditions.get(a) {
                Some(c) => json!({ "reference": c }),
                None => json!({ "identifier": { "system": SYS_RECORD, "value": a } }),
            };
            json!({ "role": "revision", "what": what })
        });
        let activity = if amended.is_some() {
            ("UPDATE", "revise")
        } else {
            ("CREATE", "create")
        };
        let agents = self.agents(&rec.doctor_id, ("author", "Author"), dept);
        let block = (rec.block_height, rec.block_hash.as_str());
        let extra: Vec<Value> = amended.into_iter().collect();
        self.provenance(targets, rec.created_at_ms, block, activity, agents, extra);
    }

    fn add_dispenses(&mut self) {
        for d in &self.x.dispenses {
            let r = self
                .ids
                .alloc("MedicationDispense", &format!("disp-{}", d.record_id));
            let requests = self.requests.get(d.record_id.as_str());
            let names: Vec<&str> = requests
                .into_iter()
                .flatten()
                .map(|(_, n)| n.as_str())
                .collect();
            // medication[x] is mandatory; a dispense of a record outside this export still
            // says which prescription it was.
            let medication = if names.is_empty() {
                format!("Medication prescribed in MedChain record {}", d.record_id)
            } else {
                names.join("; ")
            };
            let authorizing: Vec<Value> = requests
                .into_iter()
                .flatten()
                .map(|(r, _)| json!({ "reference": r }))
                .collect();
            let resource = json!({
                "resourceType": "MedicationDispense",
                "status": "completed",
                "medicationCodeableConcept": { "text": medication },
                "subject": { "reference": self.patient },
                "performer": [{ "actor": self.user_ref(&d.pharmacy_id, Some("Organization")) }],
                "authorizingPrescription": authorizing,
                "whenHandedOver": instant(d.at_ms),
            });
            self.push(&r, resource);
            let agents = self.agents(&d.pharmacy_id, ("performer", "Performer"), None);
            let block = (d.block_height, d.block_hash.as_str());
            self.provenance(&[r], d.at_ms, block, ("CREATE", "create"), agents, vec![]);
        }
    }

    fn add_consents(&mut self) {
        for c in &self.x.consents {
            let r = self.ids.alloc(
                "Consent",
                &format!(
                    "consent-{}-{}-{}",
                    c.grantee_kind, c.grantee_id, c.block_height
                ),
            );
            let resource = self.consent(c);
            self.push(&r, resource);
            let agents = self.agents(&self.x.patient.user_id, ("author", "Author"), None);
            let block = (c.block_height, c.block_hash.as_str());
            let activity = ("CREATE", "create");
            self.provenance(&[r], c.granted_at_ms, block, activity, agents, vec![]);
        }
    }

    /// A grant as a privacy Consent that permits one grantee access.
    fn consent(&self, c: &ConsentEntry) -> Value {
        let now = self.x.generated_at_ms;
        // The grant stops at whichever comes first, revocation or expiry; status follows
        // from that end relative to when the export was made.
        let end = match (c.revoked_at_ms, c.expires_at_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let status = match end {
            Some(e) if e <= now => "inactive",
            _ => "active",
        };
        let grantee = self.grantee_ref(c);
        json!({
            "resourceType": "Consent",
            "status": status,
            "scope": concept(
                "http://terminology.hl7.org/CodeSystem/consentscope",
                "patient-privacy",
                "Privacy Consent",
            ),
            "category": [concept("http://loinc.org", "59284-0", "Patient Consent")],
            "patient": { "reference": self.patient },
            "dateTime": instant(c.granted_at_ms),
            "performer": [{ "reference": self.patient }],
            // Invariant ppc-1 wants a policy or a policyRule; the patient opts in to
            // sharing with one grantee.
            "policyRule": concept(
                "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "OPTIN",
                "opt-in",
            ),
            "provision": {
                "type": "permit",
                // per-1: start <= end, even if the ledger data disagree.
                "period": {
                    "start": instant(c.granted_at_ms),
                    "end": end.map(|e| instant(e.max(c.granted_at_ms))),
                },
                "actor": [{
                    "role": concept(
                        "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                        "IRCP",
                        "information recipient",
                    ),
                    "reference": grantee,
                }],
                "action": [concept(
                    "http://terminology.hl7.org/CodeSystem/consentaction",
                    "access",
                    "Access",
                )],
            },
        })
    }

    fn grantee_ref(&self, c: &ConsentEntry) -> Value {
        // A department may be a registered account or only a name.
        let known = self.person(&c.grantee_id).is_some();
        if c.grantee_kind == "department" && !known {
            json!({
                "type": "Organization",
                "identifier": { "system": SYS_DEPT, "value": c.grantee_id },
                "display": c.grantee_id,
            })
        } else {
            self.user_ref(&c.grantee_id, type_for_role(&c.grantee_kind))
        }
    }

    fn add_audits(&mut self) {
        for a in &self.x.audits {
            // Two reads by one user in one block get "-2" from the allocator.
            let r = self.ids.alloc(
                "AuditEvent",
                &format!("audit-{}-{}", a.block_height, a.reader_id),
            );
            let mut who = self.user_ref(&a.reader_id, type_for_role(&a.reader_role));
            who["identifier"] = json!({ "system": SYS_USER, "value": a.reader_id });
            // Break-glass is by definition emergency treatment; other reasons are free text.
            let purpose_code = (a.action == "break_glass")
                .then(|| vec![coding(V3_ACT_REASON, "ETREAT", "Emergency Treatment")]);
            let purpose = json!([{ "coding": purpose_code, "text": text(&a.reason) }]);
            // Codes may not hold leading, trailing or doubled whitespace.
            let action = a.action.split_whitespace().collect::<Vec<_>>().join(" ");
            let subtype = (!action.is_empty())
                .then(|| json!([{ "system": SYS_AUDIT_ACTION, "code": action }]));
            let resource = json!({
                "resourceType": "AuditEvent",
                // Every logged action is an access to this patient's record (DICOM 110110);
                // MedChain's own action name goes in subtype.
                "type": coding("http://dicom.nema.org/resources/ontology/DCM", "110110", "Patient Record"),
                "subtype": subtype,
                "action": "R",
                "recorded": instant(a.at_ms),
                "purposeOfEvent": purpose,
                "agent": [{
                    "role": [{ "text": text(&a.reader_role) }],
                    "who": who,
                    "requestor": true,
                }],
                "source": {
                    "site": "MedChain",
                    "observer": { "display": "MedChain ledger" },
                    "type": [coding(
                        "http://terminology.hl7.org/CodeSystem/audit-source-type",
                        "4",
                        "Application Server",
                    )],
                },
                "entity": [{
                    "what": { "reference": self.patient },
                    "type": coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person"),
                    "role": coding("http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient"),
                }],
            });
            self.push(&r, resource);
            let agents = self.agents(&a.reader_id, ("author", "Author"), None);
            let block = (a.block_height, a.block_hash.as_str());
            self.provenance(&[r], a.at_ms, block, ("CREATE", "create"), agents, vec![]);
        }
    }

    /// Provenance agents for a ledger entry: the user who caused it, and as custodian the
    /// user's organisation, whose replica took the request into the ledger.
    fn agents(&self, user_id: &str, role: (&str, &str), on_behalf: Option<Value>) -> Vec<Value> {
        let mut agents = vec![json!({
            "type": concept(PROV_PARTICIPANT, role.0, role.1),
            "who": self.user_ref(user_id, None),
            "onBehalfOf": on_behalf,
        })];
        if let Some(org) = self.person(user_id).and_then(|p| text(&p.organisation)) {
            agents.push(json!({
                "type": concept(PROV_PARTICIPANT, "custodian", "Custodian"),
                "who": self.org_ref(org),
            }));
        }
        agents
    }

    /// One Provenance per ledger entry, tying its resources to the block that committed
    /// them: `entity.what.identifier` = `urn:medchain:block|<height>:<hash>`, which a reader
    /// can check against any replica's chain.
    fn provenance(
        &mut self,
        targets: &[String],
        at_ms: u64,
        (height, hash): (u64, &str),
        activity: (&str, &str),
        agents: Vec<Value>,
        extra_entities: Vec<Value>,
    ) {
        let first = targets
            .first()
            .map_or("", |t| t.split_once('/').map_or(t, |s| s.1));
        let r = self.ids.alloc("Provenance", &format!("prov-{first}"));
        let mut entities = vec![json!({
            "role": "source",
            "what": {
                "identifier": { "system": SYS_BLOCK, "value": format!("{height}:{hash}") },
                "display": format!("MedChain block {height}"),
            },
        })];
        entities.extend(extra_entities);
        let resource = json!({
            "resourceType": "Provenance",
            "target": targets.iter().map(|t| json!({ "reference": t })).collect::<Vec<_>>(),
            "recorded": instant(at_ms),
            "activity": concept(V3_DATA_OPERATION, activity.0, activity.1),
            "agent": agents,
            "entity": entities,
        });
        self.push(&r, resource);
    }
}
