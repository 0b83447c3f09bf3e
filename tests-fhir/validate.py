"""Validates FHIR R4 (4.0.1) Bundle JSON files with an implementation MedChain did not write.

Why: crates/fhir maps ledger data onto FHIR; checking its output only against our own
reading of the spec would prove little. fhir.resources (pinned in requirements.txt) parses
every element against the R4 StructureDefinitions: cardinality, types, primitive formats,
unknown elements. It does *not* enforce required value-set bindings, allowed reference
target types or most invariants, so this script adds strict checks for those (listed in
STRICT_* below and `strict_checks`), taken from the R4 specification.

Usage: validate.py BUNDLE.json [...]; prints "<file>: OK" or "<file>: INVALID" plus the
errors for each file; exits 1 if any file is invalid, 2 on a setup problem.
"""

import json
import re
import sys

import fhir.resources
from fhir.resources import get_fhir_model_class
from fhir.resources.bundle import Bundle
from fhir.resources.core.fhirabstractmodel import FHIRAbstractModel
from fhir.resources.period import Period
from pydantic import ValidationError

EXPECTED_FHIR_VERSION = "4.0.1"

# Required bindings (R4): resource type -> dotted path -> allowed codes. Paths are walked
# through lists. Only bindings of strength "required" belong here.
STRICT_CODES = {
    "Bundle": {
        "type": {"document", "message", "transaction", "transaction-response", "batch",
                 "batch-response", "history", "searchset", "collection"},
        "entry.search.mode": {"match", "include", "outcome"},
    },
    "Patient": {"gender": {"male", "female", "other", "unknown"}},
    "Practitioner": {"gender": {"male", "female", "other", "unknown"}},
    "MedicationRequest": {
        "status": {"active", "on-hold", "cancelled", "completed", "entered-in-error",
                   "stopped", "draft", "unknown"},
        "intent": {"proposal", "plan", "order", "original-order", "reflex-order",
                   "filler-order", "instance-order", "option"},
        "priority": {"routine", "urgent", "asap", "stat"},
    },
    "MedicationDispense": {
        "status": {"preparation", "in-progress", "cancelled", "on-hold", "completed",
                   "entered-in-error", "stopped", "declined", "unknown"},
    },
    "Consent": {
        "status": {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"},
        "provision.type": {"deny", "permit"},
        "provision.provision.type": {"deny", "permit"},
    },
    "AuditEvent": {
        "action": {"C", "R", "U", "D", "E"},
        "outcome": {"0", "4", "8", "12"},
    },
    "Provenance": {
        "entity.role": {"derivation", "revision", "quotation", "source", "removal"},
    },
}

# Required bindings on CodeableConcepts: at least one coding must come from the value set.
STRICT_CONCEPTS = {
    "Condition": {
        "clinicalStatus": ("http://terminology.hl7.org/CodeSystem/condition-clinical",
                           {"active", "recurrence", "relapse", "inactive", "remission",
                            "resolved"}),
        "verificationStatus": ("http://terminology.hl7.org/CodeSystem/condition-ver-status",
                               {"unconfirmed", "provisional", "differential", "confirmed",
                                "refuted", "entered-in-error"}),
    },
    "Consent": {
        "scope": ("http://terminology.hl7.org/CodeSystem/consentscope",
                  {"adr", "research", "patient-privacy", "treatment"}),
    },
}

RELATIVE_REF = re.compile(r"^([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?$")


def values_at(node, path):
    """All values found at a dotted path, flattening lists on the way."""
    nodes = [node]
    for part in path.split("."):
        nxt = []
        for n in nodes:
            if isinstance(n, dict) and part in n:
                v = n[part]
                nxt.extend(v if isinstance(v, list) else [v])
        nodes = nxt
    return nodes


def walk_models(model, path):
    """Yields (path, field, value) for every element of a parsed model, depth first."""
    for name, field in model.__fields__.items():
        value = getattr(model, name, None)
        if value is None:
            continue
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            here = f"{path}.{field.alias}" + (f"[{i}]" if isinstance(value, list) else "")
            yield here, field, item
            if isinstance(item, FHIRAbstractModel):
                yield from walk_models(item, here)


def strict_checks(raw, model):
    errors = []
    resources = [raw] + [e.get("resource", {}) for e in raw.get("entry", [])]
    for res in resources:
        rtype = res.get("resourceType")
        where = f"{rtype}/{res.get('id')}"
        for path, allowed in STRICT_CODES.get(rtype, {}).items():
            for v in values_at(res, path):
                if v not in allowed:
                    errors.append(f"{where} {path}: '{v}' is not in the required value set")
        for path, (system, allowed) in STRICT_CONCEPTS.get(rtype, {}).items():
            for cc in values_at(res, path):
                codings = cc.get("coding", [])
                if not any(c.get("system") == system and c.get("code") in allowed for c in codings):
                    errors.append(f"{where} {path}: no coding from required {system}")
        if rtype == "Consent" and not (res.get("policy") or res.get("policyRule")):
            errors.append(f"{where}: ppc-1 needs policy or policyRule")

    # Reference targets must be of a type the element allows (e.g. Condition.subject is
    # Patient|Group), and Period.start <= Period.end (per-1).
    for path, field, item in walk_models(model, "Bundle"):
        allowed = field.field_info.extra.get("enum_reference_types")
        if allowed and "Resource" not in allowed and isinstance(item, FHIRAbstractModel):
            ref = getattr(item, "reference", None)
            m = RELATIVE_REF.match(ref) if ref else None
            if ref and not m:
                errors.append(f"{path}: reference '{ref}' is not a relative Type/id reference")
            rtype = m.group(1) if m else getattr(item, "type", None)
            if rtype and rtype not in allowed:
                errors.append(f"{path}: reference to {rtype} but only {allowed} allowed")
        if isinstance(item, Period) and item.start and item.end and item.start > item.end:
            errors.append(f"{path}: per-1 start {item.start} after end {item.end}")

    # Bundle invariants bdl-1, bdl-2, bdl-7, and fullUrl must name the entry's resource.
    btype = raw.get("type")
    if "total" in raw and btype not in ("searchset", "history"):
        errors.append("bdl-1: total only in a searchset or history")
    seen = set()
    for i, e in enumerate(raw.get("entry", [])):
        if "search" in e and btype != "searchset":
            errors.append(f"entry[{i}] bdl-2: search only in a searchset")
        url, res = e.get("fullUrl"), e.get("resource", {})
        if url in seen:
            errors.append(f"entry[{i}] bdl-7: duplicate fullUrl {url}")
        seen.add(url)
        if url and not url.startswith("urn:") and not url.endswith(f"/{res.get('resourceType')}/{res.get('id')}"):
            errors.append(f"entry[{i}]: fullUrl {url} does not match the resource")
    return errors


def validate(path):
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    try:
        model = Bundle.parse_file(path)
    except ValidationError as e:
        return [f"Bundle: {e}"]
    errors = []
    # Each entry again with its own class, so an error names the resource it is in.
    for i, entry in enumerate(raw.get("entry", [])):
        res = entry.get("resource", {})
        try:
            get_fhir_model_class(res.get("resourceType")).parse_obj(res)
        except (ValidationError, KeyError) as e:
            errors.append(f"entry[{i}] {res.get('resourceType')}/{res.get('id')}: {e}")
    return errors + strict_checks(raw, model)


def main(argv):
    if fhir.resources.__fhir_version__ != EXPECTED_FHIR_VERSION:
        print(f"fhir.resources {fhir.resources.__version__} models FHIR "
              f"{fhir.resources.__fhir_version__}, expected {EXPECTED_FHIR_VERSION}")
        return 2
    if not argv:
        print(__doc__)
        return 2
    print(f"fhir.resources {fhir.resources.__version__} (FHIR {fhir.resources.__fhir_version__})")
    failed = 0
    for path in argv:
        errors = validate(path)
        if errors:
            failed += 1
            print(f"{path}: INVALID")
            for err in errors:
                print("  " + err.replace("\n", "\n  "))
        else:
            with open(path, encoding="utf-8") as f:
                n = len(json.load(f).get("entry", []))
            print(f"{path}: OK ({n} entries)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
