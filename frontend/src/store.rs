//! The model cache in IndexedDB: a record per model (its manifest and state),
//! and the verified chunks, keyed `model/sha256`. A chunk is written only
//! after its hash checked out, so the chunks present are the record of what is
//! complete; chunks keep their keys across manifest versions when their bytes
//! did not change.

use std::collections::HashSet;

use idb::{Database, DatabaseEvent, Factory, KeyRange, ObjectStoreParams, Query, Transaction, TransactionMode};
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};

const DB: &str = "eddy";
const VERSION: u32 = 1;
const MODELS: &str = "models";
const CHUNKS: &str = "chunks";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRecord {
    pub id: String,
    pub manifest_json: String,
    pub manifest_sha256: String,
    pub complete: bool,
    pub updated_ms: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The browser's storage quota is used up (`QuotaExceededError`).
    #[error("the browser's storage for this site is full: free some space (or delete other models) and press Retry; the verified chunks are kept")]
    Quota,
    /// The browser aborted a write transaction (the tab closing, the disk, an
    /// eviction): nothing of it was stored.
    #[error("browser storage (IndexedDB) aborted a write ({0}); nothing of it was stored")]
    Aborted(String),
    #[error("browser storage (IndexedDB): {0}")]
    Other(String),
}

/// What a `DOMException` from IndexedDB means, by its name (its message is
/// the browser's prose and differs between browsers).
fn from_dom(e: &web_sys::DomException) -> StoreError {
    match e.name().as_str() {
        "QuotaExceededError" => StoreError::Quota,
        "AbortError" => StoreError::Aborted(e.message()),
        name => StoreError::Other(format!("{name}: {}", e.message())),
    }
}

fn err(e: idb::Error) -> StoreError {
    match e {
        idb::Error::DomException(d) => from_dom(&d),
        other => StoreError::Other(other.to_string()),
    }
}

/// Waits for a write transaction to commit. An aborted one is an error, with
/// the reason the browser gives (a quota abort names `QuotaExceededError`).
async fn commit(tx: Transaction) -> Result<(), StoreError> {
    let raw: web_sys::IdbTransaction = tx.into();
    let result = Transaction::from(raw.clone()).await.map_err(err)?;
    if result.is_aborted() {
        return Err(match raw.error() {
            Some(e) => match from_dom(&e) {
                StoreError::Other(m) => StoreError::Aborted(m),
                known => known,
            },
            None => StoreError::Aborted("no reason given".into()),
        });
    }
    Ok(())
}

pub struct Store {
    db: Database,
}

fn chunk_key(id: &str, sha: &str) -> JsValue {
    JsValue::from_str(&format!("{id}/{sha}"))
}

fn model_range(id: &str) -> Result<Query, StoreError> {
    let range = KeyRange::bound(&JsValue::from_str(&format!("{id}/")), &JsValue::from_str(&format!("{id}/\u{ffff}")), None, None).map_err(err)?;
    Ok(Query::KeyRange(range))
}

impl Store {
    pub async fn open() -> Result<Self, StoreError> {
        let factory = Factory::new().map_err(err)?;
        let mut request = factory.open(DB, Some(VERSION)).map_err(err)?;
        request.on_upgrade_needed(|event| {
            let Ok(db) = event.database() else { return };
            let names = db.store_names();
            if !names.iter().any(|n| n == MODELS) {
                let _ = db.create_object_store(MODELS, ObjectStoreParams::new());
            }
            if !names.iter().any(|n| n == CHUNKS) {
                let _ = db.create_object_store(CHUNKS, ObjectStoreParams::new());
            }
        });
        Ok(Self { db: request.await.map_err(err)? })
    }

    pub async fn models(&self) -> Result<Vec<ModelRecord>, StoreError> {
        let tx = self.db.transaction(&[MODELS], TransactionMode::ReadOnly).map_err(err)?;
        let values = tx.object_store(MODELS).map_err(err)?.get_all(None, None).map_err(err)?.await.map_err(err)?;
        Ok(values.iter().filter_map(|v| v.as_string()).filter_map(|s| serde_json::from_str(&s).ok()).collect())
    }

    pub async fn model(&self, id: &str) -> Result<Option<ModelRecord>, StoreError> {
        let tx = self.db.transaction(&[MODELS], TransactionMode::ReadOnly).map_err(err)?;
        let v = tx.object_store(MODELS).map_err(err)?.get(JsValue::from_str(id)).map_err(err)?.await.map_err(err)?;
        Ok(v.and_then(|v| v.as_string()).and_then(|s| serde_json::from_str(&s).ok()))
    }

    pub async fn put_model(&self, record: &ModelRecord) -> Result<(), StoreError> {
        let tx = self.db.transaction(&[MODELS], TransactionMode::ReadWrite).map_err(err)?;
        let json = serde_json::to_string(record).expect("record serializes");
        tx.object_store(MODELS).map_err(err)?.put(&JsValue::from_str(&json), Some(&JsValue::from_str(&record.id))).map_err(err)?.await.map_err(err)?;
        commit(tx).await
    }

    /// The sha256s of the chunks stored for `id`.
    pub async fn chunk_hashes(&self, id: &str) -> Result<HashSet<String>, StoreError> {
        let tx = self.db.transaction(&[CHUNKS], TransactionMode::ReadOnly).map_err(err)?;
        let keys = tx.object_store(CHUNKS).map_err(err)?.get_all_keys(Some(model_range(id)?), None).map_err(err)?.await.map_err(err)?;
        let prefix = format!("{id}/");
        Ok(keys.iter().filter_map(|k| k.as_string()).filter_map(|k| k.strip_prefix(&prefix).map(str::to_string)).collect())
    }

    /// Stores a verified chunk of `id`.
    pub async fn put_chunk(&self, id: &str, sha: &str, data: &js_sys::ArrayBuffer) -> Result<(), StoreError> {
        let tx = self.db.transaction(&[CHUNKS], TransactionMode::ReadWrite).map_err(err)?;
        tx.object_store(CHUNKS).map_err(err)?.put(data, Some(&chunk_key(id, sha))).map_err(err)?.await.map_err(err)?;
        commit(tx).await
    }

    pub async fn get_chunk(&self, id: &str, sha: &str) -> Result<Option<js_sys::ArrayBuffer>, StoreError> {
        let tx = self.db.transaction(&[CHUNKS], TransactionMode::ReadOnly).map_err(err)?;
        let v = tx.object_store(CHUNKS).map_err(err)?.get(chunk_key(id, sha)).map_err(err)?.await.map_err(err)?;
        Ok(v.and_then(|v| v.dyn_into::<js_sys::ArrayBuffer>().ok()))
    }

    /// Removes chunks of `id` whose hashes are not in `keep`.
    pub async fn prune_chunks(&self, id: &str, keep: &HashSet<String>) -> Result<(), StoreError> {
        let stored = self.chunk_hashes(id).await?;
        let stale: Vec<&String> = stored.iter().filter(|s| !keep.contains(*s)).collect();
        if stale.is_empty() {
            return Ok(());
        }
        let tx = self.db.transaction(&[CHUNKS], TransactionMode::ReadWrite).map_err(err)?;
        let store = tx.object_store(CHUNKS).map_err(err)?;
        for sha in stale {
            store.delete(chunk_key(id, sha)).map_err(err)?.await.map_err(err)?;
        }
        commit(tx).await
    }

    pub async fn delete_model(&self, id: &str) -> Result<(), StoreError> {
        let tx = self.db.transaction(&[MODELS, CHUNKS], TransactionMode::ReadWrite).map_err(err)?;
        tx.object_store(CHUNKS).map_err(err)?.delete(model_range(id)?).map_err(err)?.await.map_err(err)?;
        tx.object_store(MODELS).map_err(err)?.delete(JsValue::from_str(id)).map_err(err)?.await.map_err(err)?;
        commit(tx).await
    }
}
