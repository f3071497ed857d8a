//! One line per request on stdout, written when the response body has been
//! sent (or dropped): method, path, Range, status, bytes actually sent.
//! Tests read it to see exactly what a browser fetched and received.

use std::{
    io::Write,
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{header, Method, StatusCode},
    middleware::Next,
    response::Response,
};
use futures::Stream;

struct Logged<S> {
    inner: S,
    head: String,
    bytes: u64,
    /// The Content-Length promised, if any: hyper may drop a body once it
    /// has sent that many bytes, without polling it to its end.
    expected: Option<u64>,
    done: bool,
}

impl<S> Logged<S> {
    fn finish(&mut self, outcome: &str) {
        if !self.done {
            self.done = true;
            let line = format!("access {} bytes={}{outcome}\n", self.head, self.bytes);
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
}

impl<S: Stream<Item = Result<Bytes, axum::Error>> + Unpin> Stream for Logged<S> {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let poll = Pin::new(&mut self.inner).poll_next(cx);
        match &poll {
            Poll::Ready(Some(Ok(chunk))) => self.bytes += chunk.len() as u64,
            Poll::Ready(Some(Err(_))) => self.finish(" error"),
            Poll::Ready(None) => self.finish(""),
            Poll::Pending => {}
        }
        poll
    }
}

impl<S> Drop for Logged<S> {
    fn drop(&mut self) {
        if self.expected == Some(self.bytes) {
            self.finish("");
        } else {
            // The client went away before the body was sent.
            self.finish(" aborted");
        }
    }
}

pub async fn log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let range = request.headers().get(header::RANGE).and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
    let response = next.run(request).await;
    let head = format!("{method} {path} range={range} status={}", response.status().as_u16());
    let (parts, body) = response.into_parts();
    // HEAD, 204 and 304 responses have no body to send, whatever their headers say.
    let bodiless = method == Method::HEAD || parts.status == StatusCode::NO_CONTENT || parts.status == StatusCode::NOT_MODIFIED;
    let expected = if bodiless { Some(0) } else { parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()) };
    let stream = Logged { inner: body.into_data_stream(), head, bytes: 0, expected, done: false };
    Response::from_parts(parts, Body::from_stream(stream))
}
