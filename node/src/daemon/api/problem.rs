//! Every API error is an `application/problem+json` document (RFC 9457): `status`, `title`,
//! `detail`, and `parameter` where one request parameter or field is at fault.
//!
//! Handlers answer with [`Problem`]; [`normalize`] rewrites every other error response (axum's
//! extractor rejections, tower-http's 408 and 413, 404 for unknown paths, 405, 503 from load
//! shedding) into the same shape, keeping its status and its message as the `detail`.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use crate::daemon::CommandError;

/// The media type of problem documents.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// Longest error text kept from a rewritten response.
const MAX_DETAIL_BYTES: usize = 4096;

/// An error answer (RFC 9457, `application/problem+json`).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct Problem {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    /// The query parameter, path segment or body field at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parameter: Option<String>,
    #[serde(skip)]
    #[schema(ignore)]
    retry_after: Option<u32>,
}

impl Problem {
    /// A problem with `status` and a human `detail`.
    pub(crate) fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            parameter: None,
            retry_after: None,
        }
    }

    /// The HTTP status it was sent with.
    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    /// What was wrong, for people.
    pub(crate) fn detail(&self) -> &str {
        &self.detail
    }

    /// The parameter or field at fault, when one is.
    pub(crate) fn parameter_name(&self) -> Option<&str> {
        self.parameter.as_deref()
    }

    /// Names the parameter or field at fault.
    pub(crate) fn parameter(mut self, name: impl Into<String>) -> Self {
        self.parameter = Some(name.into());
        self
    }

    /// Asks the client to retry after `seconds` (load shedding).
    pub(crate) fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = self.retry_after;
        let mut r = (status, Json(self)).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(s) = retry {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// The one place where a command's failure becomes an HTTP status.
impl From<CommandError> for Problem {
    fn from(e: CommandError) -> Self {
        let status = match &e {
            CommandError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            CommandError::NotFound(_) => StatusCode::NOT_FOUND,
            CommandError::Conflict(_) => StatusCode::CONFLICT,
            CommandError::Busy(_) | CommandError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            CommandError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let p = Self::new(status, e.to_string());
        if matches!(e, CommandError::Busy(_)) {
            p.retry_after(1)
        } else {
            p
        }
    }
}

impl IntoResponse for CommandError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}

/// Rewrites an error response that is not a problem document yet into one.
pub(super) async fn normalize(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_DETAIL_BYTES).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
        Err(_) => String::new(),
    };
    let detail = if text.is_empty() {
        default_detail(status).to_owned()
    } else {
        text
    };
    let mut problem = Problem::new(status, detail);
    if let Some(v) = parts
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.parse().ok())
    {
        problem = problem.retry_after(v);
    }
    let mut out = problem.into_response();
    // Keep what the layers below said about the connection and allowed methods.
    for name in [header::ALLOW, header::CONNECTION, header::WWW_AUTHENTICATE] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

fn default_detail(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "no such API path (see /api/v1/openapi.json)",
        StatusCode::METHOD_NOT_ALLOWED => "this path does not take that method",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than this path accepts",
        StatusCode::REQUEST_TIMEOUT => "the request was not completed in time",
        StatusCode::SERVICE_UNAVAILABLE => "the node is busy; retry shortly",
        _ => "the request failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn json(r: Response) -> (StatusCode, String, serde_json::Value) {
        let status = r.status();
        let ct = r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, ct, serde_json::from_slice(&b).unwrap())
    }

    #[tokio::test]
    async fn plain_text_errors_become_problem_documents() {
        let plain = (StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded").into_response();
        let (status, ct, v) = json(normalize(plain).await).await;
        assert_eq!(status, 413);
        assert_eq!(ct, PROBLEM_JSON);
        assert_eq!(v["status"], 413);
        assert_eq!(v["title"], "Payload Too Large");
        assert_eq!(v["detail"], "length limit exceeded");
        let empty = StatusCode::REQUEST_TIMEOUT.into_response();
        let (_, _, v) = json(normalize(empty).await).await;
        assert_eq!(v["detail"], "the request was not completed in time");
    }

    #[tokio::test]
    async fn problems_and_successes_pass_unchanged() {
        let p = Problem::new(StatusCode::BAD_REQUEST, "q: expected a value at column 3")
            .parameter("q")
            .into_response();
        let (status, _, v) = json(normalize(p).await).await;
        assert_eq!(status, 400);
        assert_eq!(v["parameter"], "q");
        let ok = normalize(Json(serde_json::json!({"ok": true})).into_response()).await;
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[tokio::test]
    async fn command_errors_map_to_statuses_in_one_place() {
        for (e, status) in [
            (CommandError::Invalid("bad".into()), 422),
            (CommandError::NotFound("x".into()), 404),
            (CommandError::Conflict("light".into()), 409),
            (CommandError::Busy("busy".into()), 503),
            (CommandError::Internal("disk".into()), 500),
            (CommandError::ShuttingDown, 503),
        ] {
            let (got, ct, v) = json(e.into_response()).await;
            assert_eq!((got.as_u16(), ct.as_str()), (status, PROBLEM_JSON));
            assert!(!v["detail"].as_str().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn retry_after_survives() {
        let p = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "busy")
            .retry_after(1)
            .into_response();
        assert_eq!(p.headers()[header::RETRY_AFTER], "1");
    }
}
