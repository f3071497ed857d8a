//! The web site: server-rendered Leptos pages, the built client assets, and the models.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use app::{shell, App};
use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method},
    response::Response,
    Router,
};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::compression::CompressionLayer;

use crate::files::{self, Caching};

async fn site_file(State(root): State<Arc<PathBuf>>, method: Method, headers: HeaderMap, request: Request) -> Response {
    match files::resolve(&root, request.uri().path()) {
        Some(p) => files::serve(&p, &method, &headers, Caching::Revalidate).await,
        None => files::not_found(),
    }
}

pub fn router(site_root: PathBuf, models_dir: PathBuf, addr: SocketAddr) -> Router {
    let options = LeptosOptions::builder()
        .output_name("eddy")
        .site_root(site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    let routes = generate_route_list(App);
    let pages = Router::new()
        .leptos_routes(&options, routes, {
            let options = options.clone();
            move || shell(options.clone())
        })
        .with_state(options);
    let assets = Router::new().fallback(site_file).with_state(Arc::new(site_root));
    // Pages and assets are compressed; model shards are served as stored (Range requests).
    pages
        .merge(assets)
        .layer(CompressionLayer::new())
        .merge(crate::models::router(models_dir))
        .layer(axum::middleware::from_fn(security_headers))
        // A response must start within this time (bodies may stream for longer).
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .layer(axum::middleware::from_fn(crate::access_log::log))
}

/// The site's policy, on every response: it connects to itself only (no
/// link can point the app at another server), is never framed, never sniffs
/// types, and sends no Referer (a link's parameters stay out of other
/// requests). Scripts are limited further by the page's own nonce-based
/// policy (a <meta> in the shell: the nonce is made while rendering).
async fn security_headers(request: Request, next: axum::middleware::Next) -> Response {
    use axum::http::{header, HeaderValue};
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("connect-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// What one client may hold of the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Time to send a request's headers (also an idle connection's lifetime):
    /// a client that opens connections and sends nothing (slowloris) loses them.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_connections: 1024, header_timeout: Duration::from_secs(10) }
    }
}

/// Serves `app` on `listener` within `limits`, until the listener fails.
pub async fn serve_with_limits(listener: tokio::net::TcpListener, app: Router, limits: Limits) -> std::io::Result<()> {
    use hyper_util::{
        rt::{TokioIo, TokioTimer},
        service::TowerToHyperService,
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            // Out of file descriptors and the like: wait, and go on serving.
            Err(e) if is_transient(&e) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            // The first request must begin within the timeout (hyper's header
            // timeout runs from its first byte); later ones are hyper's.
            let mut first = [0u8; 1];
            if !matches!(tokio::time::timeout(limits.header_timeout, stream.peek(&mut first)).await, Ok(Ok(n)) if n > 0) {
                return;
            }
            // HTTP/1.1 only: browsers speak HTTP/2 over TLS, which a proxy in front terminates.
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
            let _ = builder.serve_connection(TokioIo::new(stream), service).with_upgrades().await;
            drop(slot);
        });
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::Interrupted)
        || e.raw_os_error().is_some_and(|c| c == 23 || c == 24) // ENFILE, EMFILE
}

pub async fn serve(addr: SocketAddr, site_root: PathBuf, models_dir: PathBuf) -> std::io::Result<()> {
    if !site_root.join("pkg").is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} has no pkg/ folder: build the client first (scripts/build.sh)", site_root.display()),
        ));
    }
    std::fs::create_dir_all(&models_dir)?;
    let app = router(site_root, models_dir, addr);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("Eddy is serving on http://{}", listener.local_addr()?);
    serve_with_limits(listener, app, Limits::default()).await
}
