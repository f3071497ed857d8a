//! The web site: server-rendered Leptos pages, the built client assets, and the models.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

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
    pages.merge(assets).layer(CompressionLayer::new()).merge(crate::models::router(models_dir)).layer(axum::middleware::from_fn(crate::access_log::log))
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
    axum::serve(listener, app).await
}
