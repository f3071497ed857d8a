//! One line per request on stdout: method, path, Range, status, bytes.
//! Tests read it to count what a browser fetched.

use std::io::Write;

use axum::{extract::Request, http::header, middleware::Next, response::Response};

pub async fn log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let range = request.headers().get(header::RANGE).and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
    let response = next.run(request).await;
    let bytes = response.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
    let line = format!("access {method} {path} range={range} status={} bytes={bytes}\n", response.status().as_u16());
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
    response
}
