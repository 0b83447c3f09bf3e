//! The one error type of the API: a status, a stable machine-readable code and a message
//! safe to show a user. Internals (SQL, paths, panics) are logged, never returned.

use axum::extract::rejection::JsonRejection;
use axum::extract::FromRequest;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// An error answer: `{"error": {"code": "...", "message": "...", "field": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, for validation errors: the UI marks that input
    /// instead of parsing the message.
    pub field: Option<String>,
    /// For 429: how long the client must wait, sent as `Retry-After` (whole seconds).
    pub retry_after_ms: Option<u64>,
}

/// The code of an error answer, attached to the response so that middleware (the
/// security log) can tell what was refused without parsing the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    /// The request field at fault (validation errors only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after_ms: None,
        }
    }
    /// The same error, naming the request field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", m)
    }
    pub fn invalid(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m)
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", m)
    }
    pub fn throttled(m: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "throttled", m)
    }
    /// 429 that tells the client, in `Retry-After`, how long to wait.
    pub fn throttled_for(m: impl Into<String>, wait_ms: u64) -> Self {
        let mut e = Self::throttled(m);
        e.retry_after_ms = Some(wait_ms);
        e
    }
    /// The token only allows choosing a new password (`POST /api/password`).
    pub fn password_change_required() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "password_change_required",
            "choose a new password first (POST /api/password)",
        )
    }
    /// 403: this node requires two-step sign-in for the user's role, not set up yet.
    pub fn mfa_setup_required() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "mfa_setup_required",
            "set up two-step sign-in first (POST /api/mfa/totp/enroll)",
        )
    }
    /// The patient's data was erased at their request.
    pub fn gone(m: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "erased", m)
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
    }
    /// Something went wrong on our side; the detail goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the event was logged",
        )
    }
}

impl From<medchain_store::rusqlite::Error> for ApiError {
    fn from(e: medchain_store::rusqlite::Error) -> Self {
        ApiError::internal(e)
    }
}

/// The ledger's verdict on a transaction, as an answer: the same rule gives the same
/// status whether the API's pre-check or the ledger itself said no.
impl From<medchain_records::Rejection> for ApiError {
    fn from(r: medchain_records::Rejection) -> Self {
        use medchain_records::Outcome;
        match r.outcome {
            Outcome::Forbidden => ApiError::forbidden(r.message),
            Outcome::Conflict => ApiError::conflict(r.message),
            Outcome::NotFound => ApiError::not_found(r.message),
            Outcome::Invalid => ApiError::invalid(r.message),
            Outcome::Ok => ApiError::internal("an accepted transaction was reported as rejected"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
                field: self.field,
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(ms) = self.retry_after_ms {
            // Whole seconds, rounded up, at least one: a client that waits this long is
            // not refused again for the same reason.
            let secs = ms.div_ceil(1000).max(1);
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp.extensions_mut().insert(ErrorCode(self.code));
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// `Json<T>` whose rejections are our error format: malformed JSON is 400, a body of the
/// wrong shape 422 naming the field, an oversized body 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "request body is larger than the limit",
        );
    }
    match r {
        JsonRejection::JsonDataError(e) => {
            let text = clean_serde(&e.body_text());
            match serde_field(&text) {
                Some(field) => ApiError::invalid(text.clone()).with_field(field),
                None => ApiError::invalid(text),
            }
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::bad_request(format!("malformed JSON: {}", clean_serde(&e.body_text())))
        }
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::bad_request("expected Content-Type: application/json")
        }
        other => ApiError::bad_request(clean_serde(&other.body_text())),
    }
}

/// serde's messages name the field and position; drop axum's prefix.
fn clean_serde(s: &str) -> String {
    let s = s
        .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        .trim_start_matches("Failed to parse the request body as JSON: ");
    s.chars().take(300).collect()
}

/// The field serde names in a data error ("missing field `diagnosis` at line 1 ...",
/// "unknown field `x`, expected ..."; "medications[0].name: ..." paths are not produced by
/// serde_json, so the first backquoted name is the field).
fn serde_field(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("field `")?;
    let (name, _) = rest.split_once('`')?;
    (!name.is_empty() && name.len() <= 64).then(|| name.to_string())
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// Reject text that is too long or empty when required, naming the field.
/// `check_text` for a name (a person's, a department's): also no invisible or
/// text-direction characters (the ledger refuses them too, `medchain_records::names`).
pub fn check_name(field: &str, value: &str, max_chars: usize) -> ApiResult<()> {
    check_text(field, value, max_chars, true)?;
    match medchain_records::names::name_problem(value) {
        Some(problem) => Err(ApiError::invalid(format!("{field}: {problem}")).with_field(field)),
        None => Ok(()),
    }
}

pub fn check_text(field: &str, value: &str, max_chars: usize, required: bool) -> ApiResult<()> {
    let bad = |m: String| Err(ApiError::invalid(m).with_field(field));
    if required && value.trim().is_empty() {
        return bad(format!("{field}: required"));
    }
    if value.chars().count() > max_chars {
        return bad(format!("{field}: at most {max_chars} characters"));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return bad(format!("{field}: control characters are not allowed"));
    }
    Ok(())
}
