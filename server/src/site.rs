//! The web site: server-rendered Leptos pages and the built client assets.

use std::{net::SocketAddr, path::PathBuf};

use app::{shell, App};
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::{compression::CompressionLayer, services::ServeDir};

pub async fn serve(addr: SocketAddr, site_root: PathBuf) -> std::io::Result<()> {
    if !site_root.join("pkg").is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} has no pkg/ folder: build the client first (scripts/build.sh)", site_root.display()),
        ));
    }
    let options = LeptosOptions::builder()
        .output_name("eddy")
        .site_root(site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    let routes = generate_route_list(App);
    let assets = ServeDir::new(&site_root);
    let app = Router::new()
        .leptos_routes(&options, routes, {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback_service(assets)
        .layer(CompressionLayer::new())
        .with_state(options);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("Eddy is serving on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
