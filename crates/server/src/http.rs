//! The HTTP API (routes in the crate docs).

use crate::Shared;
use crate::metrics::Endpoint;
use crate::parse::{BodyError, parse_ingest_body, parse_query_params};
use crate::stream::{Encoding, spawn_query};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::BodyExt;
use logstore_engine::StoreError;
use logstore_entry::EntryError;
use serde_json::json;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/logs", get(query).post(ingest))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(middleware::from_fn_with_state(shared.clone(), authenticate_and_measure))
        .with_state(shared)
}

/// An error reply: `{"error": {"code", "message", "line"?}}`.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    line: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), line: None }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(line) = self.line {
            error["line"] = line.into();
        }
        let mut response = json_response(self.status, &json!({ "error": error }));
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still come: the connection cannot carry another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        }
        response
    }
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut body = value.to_string();
    body.push('\n');
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Checks the token (all routes but `/health`), and counts and times every request.
async fn authenticate_and_measure(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let endpoint = match (request.method(), request.uri().path()) {
        (&Method::POST, "/api/v1/logs") => Endpoint::HttpIngest,
        (&Method::GET, "/api/v1/logs") => Endpoint::HttpQuery,
        (&Method::GET, "/health") => Endpoint::HttpHealth,
        (&Method::GET, "/metrics") => Endpoint::HttpMetrics,
        _ => Endpoint::HttpOther,
    };
    let response = match &shared.config.auth_token {
        Some(token)
            if endpoint != Endpoint::HttpHealth && !authorized(request.headers(), token) =>
        {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this server needs an `Authorization: Bearer <token>` header with its token",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            response
        }
        _ => next.run(request).await,
    };
    shared.metrics.observe(endpoint, started.elapsed());
    shared.metrics.http_response(response.status().as_u16());
    response
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) =
        headers.get(header::AUTHORIZATION).and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
    else {
        return false;
    };
    // Compare without an early exit, so the time taken does not reveal the matching prefix.
    let expected = token.as_bytes();
    given.len() == expected.len()
        && given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    match shared.store.poisoned() {
        None => json_response(StatusCode::OK, &json!({"status": "ok"})),
        Some(cause) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "refusing_writes", "cause": &*cause}),
        ),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let stats = shared.store.stats();
    let text = shared.metrics.render(&stats, shared.store.poisoned().is_some());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

async fn ingest(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let config = &shared.config;
    let body = read_body(&headers, body, config.body_bytes_max, config.http_body_timeout).await?;
    let store = shared.store.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let parsed = parse_ingest_body(&body).map_err(body_error)?;
        let keys = store
            .append_batch(&parsed.entries)
            .map_err(|e| store_error(e, &parsed.lines, store.poisoned().is_some()))?;
        Ok::<_, ApiError>(keys)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("write task failed: {e}"),
        )
    })?;
    let keys = outcome?;
    let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the store returned no keys",
        ));
    };
    shared.metrics.http_entries_written.fetch_add(keys.len() as u64, Relaxed);
    Ok(json_response(
        StatusCode::OK,
        &json!({"written": keys.len(), "first": first.to_string(), "last": last.to_string()}),
    ))
}

/// Most bytes of a request body allocated before they arrive: 1 MiB.
const BODY_PREALLOCATE_BYTES_MAX: u64 = 1 << 20;

/// Reads the whole body, refusing it with 413 as soon as it is over `bytes_max`, and with 408
/// (closing the connection) if it has not arrived whole within `timeout` (zero: no limit).
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    bytes_max: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, ApiError> {
    let read = collect_body(headers, body, bytes_max);
    if timeout.is_zero() {
        return read.await;
    }
    tokio::time::timeout(timeout, read).await.unwrap_or_else(|_| {
        Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the request body did not arrive whole within {timeout:?}"),
        ))
    })
}

/// [`read_body`] without the time limit.
async fn collect_body(
    headers: &HeaderMap,
    mut body: Body,
    bytes_max: usize,
) -> Result<Bytes, ApiError> {
    let too_large = |size: String| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body of {size} bytes exceeds the limit of {bytes_max} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|&d| d > bytes_max as u64) {
        return Err(too_large(declared.to_string()));
    }
    // Believe the declared length for at most 1 MiB up front: memory beyond that is taken as
    // bytes arrive, so a client cannot pin the body limit's worth per connection by declaring
    // it and sending nothing.
    let mut collected =
        Vec::with_capacity(declared.unwrap_or(0).min(BODY_PREALLOCATE_BYTES_MAX) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "read_error",
                format!("reading the request body: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > bytes_max {
                return Err(too_large(format!("more than {bytes_max}")));
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(collected))
}

fn body_error(e: BodyError) -> ApiError {
    ApiError { status: StatusCode::BAD_REQUEST, code: e.code, message: e.message, line: e.line }
}

/// The reply to a refused append; `lines[i]` is the body line of entry `i`. A failure that
/// left the store refusing writes (`poisoned`) is a 503, like every write after it.
fn store_error(e: StoreError, lines: &[u64], poisoned: bool) -> ApiError {
    let line_of = |index: usize| lines.get(index).copied();
    let message = e.to_string();
    match e {
        StoreError::InvalidEntry { index, source } => {
            let status = match source {
                EntryError::MessageTooLarge { .. } | EntryError::MetadataTooLarge { .. } => {
                    StatusCode::PAYLOAD_TOO_LARGE
                }
                _ => StatusCode::BAD_REQUEST,
            };
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "entry_too_large"
            } else {
                "invalid_entry"
            };
            ApiError { status, code, message, line: line_of(index) }
        }
        StoreError::TimestampOutOfRange { index, .. } => ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "timestamp_out_of_range",
            message,
            line: line_of(index),
        },
        StoreError::RequestTooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request_too_large", message)
        }
        StoreError::EmptyBatch => ApiError::new(StatusCode::BAD_REQUEST, "empty_request", message),
        StoreError::Poisoned { .. } | StoreError::Closed => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        }
        _ if poisoned => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message),
        _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message),
    }
}

async fn query(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = parse_query_params(raw.as_deref().unwrap_or("")).map_err(|e| ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_parameter",
        message: format!("parameter {:?}: {}", e.param, e.message),
        line: None,
    })?;
    let slot = shared.query_slots.clone().acquire_owned().await.map_err(|_| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the server is stopping")
    })?;
    let mut chunks =
        spawn_query(shared.store.clone(), query, Encoding::Ndjson, shared.metrics.clone(), slot);
    let first = match chunks.recv().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(e @ (StoreError::InvalidQuery(_) | StoreError::InvalidCursor { .. }))) => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", e.to_string()));
        }
        Some(Err(e)) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                e.to_string(),
            ));
        }
        None => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the read stopped",
            ));
        }
    };
    // The first chunk, then the rest; an error cuts the response off (no final chunk).
    let rest = futures_util::stream::unfold(chunks, |mut chunks| async move {
        let item = chunks.recv().await?;
        Some((item.map_err(io::Error::other), chunks))
    });
    let body = futures_util::StreamExt::chain(
        futures_util::stream::iter([Ok::<_, io::Error>(first)]),
        rest,
    );
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(body)).into_response())
}
