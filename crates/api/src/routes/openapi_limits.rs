//! The request limits as the OpenAPI schema publishes them (`maxLength`), taken from the
//! same constants the handlers and the ledger check (`medchain_records::limits`), so a
//! client generated from the schema refuses what the server would refuse.

use medchain_records::limits::{
    CODE_MAX_CHARS, DIAGNOSIS_MAX_CHARS, DISPLAY_NAME_MAX_CHARS, NOTES_MAX_CHARS,
    PRESCRIPTION_MAX_CHARS, REASON_MAX_CHARS, RECORD_ID_MAX_BYTES, USER_ID_MAX_CHARS,
};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;

/// (request schema, field, longest value).
pub const FIELD_LIMITS: &[(&str, &str, usize)] = &[
    ("AddRecordRequest", "patient_id", USER_ID_MAX_CHARS),
    ("AddRecordRequest", "diagnosis", DIAGNOSIS_MAX_CHARS),
    ("AddRecordRequest", "prescription", PRESCRIPTION_MAX_CHARS),
    ("AddRecordRequest", "notes", NOTES_MAX_CHARS),
    ("AddRecordRequest", "consent_code", CODE_MAX_CHARS),
    ("AddRecordRequest", "amends", RECORD_ID_MAX_BYTES),
    ("GetChainRequest", "patient_id", USER_ID_MAX_CHARS),
    ("BreakGlassRequest", "patient_id", USER_ID_MAX_CHARS),
    ("BreakGlassRequest", "reason", REASON_MAX_CHARS),
    ("ConsentRequest", "grantee_id", USER_ID_MAX_CHARS),
    ("RevokeRequest", "grantee_id", USER_ID_MAX_CHARS),
    ("RegisterRequest", "user_id", USER_ID_MAX_CHARS),
    ("RegisterRequest", "display_name", DISPLAY_NAME_MAX_CHARS),
    ("DispenseRequest", "code", CODE_MAX_CHARS),
];

/// Adds `maxLength` to every field of [`FIELD_LIMITS`].
#[derive(Debug)]
pub struct PublishLimits;

impl utoipa::Modify for PublishLimits {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for &(schema, field, max) in FIELD_LIMITS {
            let prop = components.schemas.get_mut(schema).and_then(|s| match s {
                RefOr::T(Schema::Object(o)) => o.properties.get_mut(field),
                _ => None,
            });
            match prop {
                Some(RefOr::T(Schema::Object(p))) => p.max_length = Some(max),
                // A renamed field or schema must fail the schema test, not vanish.
                _ => debug_assert!(false, "no field {schema}.{field} in the schema"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    use super::*;

    #[test]
    fn every_limit_is_published_as_max_length() {
        let doc = serde_json::to_value(crate::routes::ApiDoc::openapi()).expect("serialises");
        for &(schema, field, max) in FIELD_LIMITS {
            let got = &doc["components"]["schemas"][schema]["properties"][field]["maxLength"];
            assert_eq!(got.as_u64(), Some(max as u64), "{schema}.{field}");
        }
        assert_eq!(
            doc["components"]["schemas"]["AddRecordRequest"]["properties"]["diagnosis"]
                ["maxLength"],
            2_000
        );
    }
}
