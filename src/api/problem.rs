//! RFC 9457 problem details: every refusal the API gives is `application/problem+json` with a
//! stable `type` (a URN per kind of refusal), a `title`, the `status`, and a `detail` in the
//! same words as the CLI's refusal; an input refused names its field in `field`. So are the
//! errors answered before a handler runs (the listener's 413 and 503, the router's 405, a path
//! or body that cannot be read).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::app::AppError;
use crate::core::model::Scope;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip)]
    retry_after: Option<u64>,
}

impl Problem {
    fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: String) -> Problem {
        Problem {
            type_: kind,
            title,
            status: status.as_u16(),
            detail,
            field: None,
            retry_after: None,
        }
    }

    pub fn not_found(detail: String) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "urn:subsave:problem:not-found",
            "Not found",
            detail,
        )
    }

    pub fn unauthorized(detail: &str) -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "urn:subsave:problem:unauthorized",
            "Unauthorized",
            detail.to_owned(),
        )
    }

    pub fn forbidden(has: Scope, needed: Scope) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "urn:subsave:problem:forbidden",
            "Forbidden",
            format!(
                "this key's scope is {}; this needs {} (create a key with --scope {})",
                has.as_str(),
                needed.as_str(),
                needed.as_str()
            ),
        )
    }

    pub fn rate_limited(wait: Duration) -> Problem {
        let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
        Problem {
            retry_after: Some(secs),
            ..Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "urn:subsave:problem:rate-limited",
                "Too many requests",
                format!("this key sent too many requests; retry in {secs} s"),
            )
        }
    }

    /// A value refused at the door, naming its field.
    pub fn invalid(field: &'static str, detail: String) -> Problem {
        Problem {
            field: Some(field.to_owned()),
            ..Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "urn:subsave:problem:invalid-input",
                "Invalid input",
                format!("{field}: {detail}"),
            )
        }
    }

    pub fn idempotency_reuse(key: &str) -> Problem {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "urn:subsave:problem:idempotency-key-reused",
            "Idempotency key reused",
            format!(
                "the Idempotency-Key \"{key}\" was used with another request (route or body); use a new key for a new request"
            ),
        )
    }

    pub fn idempotency_in_flight(key: &str) -> Problem {
        Problem::new(
            StatusCode::CONFLICT,
            "urn:subsave:problem:idempotency-key-in-flight",
            "Request in flight",
            format!(
                "a request with the Idempotency-Key \"{key}\" is still being answered; retry in a moment"
            ),
        )
    }

    /// A method the endpoint does not take (the `Allow` header lists those it does).
    pub fn method_not_allowed(method: &str, path: &str) -> Problem {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "urn:subsave:problem:method-not-allowed",
            "Method not allowed",
            format!(
                "{method} is not allowed on {path}: the Allow header lists the methods it takes (the endpoints are listed in docs/api.md)"
            ),
        )
    }

    /// A body larger than the listener takes (`http.max_body_bytes`).
    pub fn too_large(limit: usize) -> Problem {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "urn:subsave:problem:too-large",
            "Body too large",
            format!(
                "the body is larger than {limit} bytes (http.max_body_bytes); send a smaller one"
            ),
        )
    }

    /// A request not answered within the request timeout: its handler was stopped, and what it
    /// had not committed was rolled back (its idempotency key is given back).
    pub fn timed_out(after: Duration) -> Problem {
        Problem {
            retry_after: Some(5),
            ..Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "urn:subsave:problem:unavailable",
                "Unavailable",
                format!(
                    "the request took longer than {} s (http.request_timeout_secs) and was stopped; retry it (with the same Idempotency-Key for a write: a change that committed is replayed, never made twice)",
                    after.as_secs()
                ),
            )
        }
    }

    /// An error of `status` that the framework answered before a handler ran (a path that is
    /// not UTF-8, a body that cannot be read), as a problem with `detail`.
    pub fn unreadable(status: StatusCode, detail: &str) -> Problem {
        let detail = format!("the request cannot be read: {detail}");
        if status.is_server_error() {
            Problem {
                detail,
                ..Problem::unavailable()
            }
        } else {
            Problem {
                status: status.as_u16(),
                ..Problem::bad_request(None, detail)
            }
        }
    }

    /// A request that could not be read: a parameter or body that does not parse.
    pub fn bad_request(field: Option<&str>, detail: String) -> Problem {
        Problem {
            field: field.map(str::to_owned),
            ..Problem::new(
                StatusCode::BAD_REQUEST,
                "urn:subsave:problem:bad-request",
                "Bad request",
                detail,
            )
        }
    }

    /// A use case's refusal or failure as a problem. Only for use cases that never ask the
    /// database (the catalog's): the others go through `Api::database`, which also reports
    /// the database's state to the outage log (this logs no database outage).
    pub(super) fn of(error: AppError) -> Problem {
        let detail = error.to_string();
        match error {
            AppError::NotFound(_) => Problem::not_found(detail),
            AppError::InvalidState(_) => Problem::new(
                StatusCode::CONFLICT,
                "urn:subsave:problem:invalid-state",
                "Invalid state",
                detail,
            ),
            AppError::InvalidInput { field, .. } => Problem {
                field: field.map(str::to_owned),
                ..Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "urn:subsave:problem:invalid-input",
                    "Invalid input",
                    detail,
                )
            },
            AppError::Conflict(_) => Problem::new(
                StatusCode::CONFLICT,
                "urn:subsave:problem:conflict",
                "Conflict",
                detail,
            ),
            AppError::Store(error) if error.is_retryable() => Problem::unavailable(),
            AppError::Unavailable(_) | AppError::Store(_) => {
                // A peer's failure (Stripe), or the database refusing one statement: rare, and
                // each says something of its own.
                tracing::warn!(error = %detail, "an API request failed");
                Problem::unavailable()
            }
        }
    }

    /// 503: retry in a few seconds.
    fn unavailable() -> Problem {
        Problem {
            retry_after: Some(5),
            ..Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "urn:subsave:problem:unavailable",
                "Unavailable",
                "subsave cannot answer right now; retry in a few seconds".into(),
            )
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The refusals every endpoint may give, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Refusals {
    /// A query parameter, body or Idempotency-Key that cannot be read.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(#[to_schema] Problem),
    /// No key, or an unknown or revoked one.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The key's scope is too low.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such object.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// The operation makes no sense now, a duplicate, or a request in flight with the key.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// The body is larger than the listener accepts (`http.max_body_bytes`).
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// A value refused, or an idempotency key reused with another request.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
    /// Too many requests from this key; see Retry-After.
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(Problem),
    /// The database is unreachable, or the request took too long; retry.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}
