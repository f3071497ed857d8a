//! Conversations kept on this device, in IndexedDB (database `eddy-chats`).
//! Nothing is ever sent to the server. Browser only.

use idb::{DatabaseEvent, Database, Factory, ObjectStoreParams, TransactionMode};
use wasm_bindgen::JsValue;

use crate::state::Conversation;

const DB: &str = "eddy-chats";
const STORE: &str = "conversations";

async fn open() -> Result<Database, String> {
    let factory = Factory::new().map_err(|e| e.to_string())?;
    let mut request = factory.open(DB, Some(1)).map_err(|e| e.to_string())?;
    request.on_upgrade_needed(|event| {
        if let Ok(db) = event.database() {
            if !db.store_names().iter().any(|n| n == STORE) {
                let _ = db.create_object_store(STORE, ObjectStoreParams::new());
            }
        }
    });
    request.await.map_err(|e| e.to_string())
}

pub async fn list() -> Result<Vec<Conversation>, String> {
    let db = open().await?;
    let tx = db.transaction(&[STORE], TransactionMode::ReadOnly).map_err(|e| e.to_string())?;
    let values = tx.object_store(STORE).map_err(|e| e.to_string())?.get_all(None, None).map_err(|e| e.to_string())?.await.map_err(|e| e.to_string())?;
    let mut out: Vec<Conversation> = values.iter().filter_map(|v| v.as_string()).filter_map(|s| serde_json::from_str(&s).ok()).collect();
    out.sort_by(|a, b| b.updated_ms.total_cmp(&a.updated_ms));
    Ok(out)
}

pub async fn save(c: &Conversation) -> Result<(), String> {
    let db = open().await?;
    let tx = db.transaction(&[STORE], TransactionMode::ReadWrite).map_err(|e| e.to_string())?;
    let json = serde_json::to_string(c).map_err(|e| e.to_string())?;
    tx.object_store(STORE).map_err(|e| e.to_string())?.put(&JsValue::from_str(&json), Some(&JsValue::from_str(&c.id))).map_err(|e| e.to_string())?.await.map_err(|e| e.to_string())?;
    tx.await.map_err(|e| e.to_string())?;
    Ok(())
}

pub async fn delete(id: &str) -> Result<(), String> {
    let db = open().await?;
    let tx = db.transaction(&[STORE], TransactionMode::ReadWrite).map_err(|e| e.to_string())?;
    tx.object_store(STORE).map_err(|e| e.to_string())?.delete(JsValue::from_str(id)).map_err(|e| e.to_string())?.await.map_err(|e| e.to_string())?;
    tx.await.map_err(|e| e.to_string())?;
    Ok(())
}
