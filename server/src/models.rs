//! `/models/...`: the catalog, manifests and shards of `--models-dir`.

use std::{path::PathBuf, sync::Arc};

use axum::{
    extract::{Path, State},
    http::{HeaderMap, Method},
    response::Response,
    routing::get,
    Router,
};

use crate::files::{self, Caching};

#[derive(Clone)]
struct ModelsDir(Arc<PathBuf>);

async fn catalog(State(dir): State<ModelsDir>, method: Method, headers: HeaderMap) -> Response {
    match files::resolve(&dir.0, "index.json") {
        Some(p) => files::serve(&p, &method, &headers, Caching::Revalidate).await,
        None => files::not_found(),
    }
}

async fn model_file(State(dir): State<ModelsDir>, Path((id, rest)): Path<(String, String)>, method: Method, headers: HeaderMap) -> Response {
    if !crate::import::valid_id(&id) {
        return files::not_found();
    }
    // Only a model's manifest and its shards are published.
    let caching = match rest.split_once('/') {
        None if rest == "manifest.json" => Caching::Revalidate,
        Some(("shards", name)) if !name.contains('/') => Caching::Immutable,
        _ => return files::not_found(),
    };
    match files::resolve(&dir.0, &format!("{id}/{rest}")) {
        Some(p) => files::serve(&p, &method, &headers, caching).await,
        None => files::not_found(),
    }
}

pub fn router(models_dir: PathBuf) -> Router {
    Router::new()
        .route("/models/index.json", get(catalog).head(catalog))
        .route("/models/{id}/{*rest}", get(model_file).head(model_file))
        .with_state(ModelsDir(Arc::new(models_dir)))
}
