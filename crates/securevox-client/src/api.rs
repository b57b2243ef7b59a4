//! The HTTP layer: requests to the SecureVox API and its error shape.

use crate::error::{Error, Result};
use reqwest::{Method, Response};
use serde::Deserialize;
use serde_json::Value;

/// A request body.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    None,
    Json(Value),
    Bytes(Vec<u8>),
}

/// The server's error body: `{"error": {"code", "message", "details"?}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
    details: Option<Value>,
}

pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub(crate) fn new(server: &str) -> Result<Self> {
        let base = server.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::other(format!(
                "server URL must start with http:// or https://: {server}"
            )));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("securevox-client/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, base })
    }

    /// Sends a request; a non-2xx answer becomes [`Error::Api`].
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        device: Option<&str>,
        body: Body,
    ) -> Result<Response> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(device) = device {
            request = request.header("x-device-id", device);
        }
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(&value),
            Body::Bytes(bytes) => {
                request.header("content-type", "application/octet-stream").body(bytes)
            }
        };
        let response = request.send().await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => Error::Api {
                status: status.as_u16(),
                code: body.error.code,
                message: body.error.message,
                details: body.error.details,
            },
            Err(_) => Error::Api {
                status: status.as_u16(),
                code: "http_error".into(),
                message: if text.is_empty() { status.to_string() } else { text },
                details: None,
            },
        })
    }
}
