//! A resource id in the path. Ids are UUIDs: anything else cannot name a resource, so it is a
//! 404 without a database round trip (and odd bytes such as NUL never reach the database).

use crate::error::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

pub struct IdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
        uuid::Uuid::parse_str(&raw)
            .map(|id| Self(id.hyphenated().to_string()))
            .map_err(|_| ApiError::not_found("resource"))
    }
}
