//! Fetching a GGUF from the Hugging Face hub for `server import owner/repo:QUANT`
//! (needs internet access; offline it fails with a clear error).

use std::path::PathBuf;

use crate::import::ImportError;

const HUB: &str = "https://huggingface.co";

/// Downloads the GGUF of `owner/repo:QUANT` (the file whose name contains QUANT,
/// e.g. `LiquidAI/LFM2-1.2B-GGUF:Q4_0`) into the system's temp folder.
pub fn download(reference: &str) -> Result<PathBuf, ImportError> {
    let fail = |message: String| ImportError::Hub { reference: reference.to_string(), message };
    let (repo, quant) = reference.split_once(':').unwrap_or((reference, ""));
    let info: serde_json::Value = ureq::get(&format!("{HUB}/api/models/{repo}"))
        .call()
        .map_err(|e| fail(format!("{e} (this needs internet access to huggingface.co)")))?
        .into_json()
        .map_err(|e| fail(e.to_string()))?;
    let files: Vec<String> = info["siblings"]
        .as_array()
        .map(|s| s.iter().filter_map(|f| f["rfilename"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let quant_lower = quant.to_lowercase();
    let file = files
        .iter()
        .filter(|f| f.ends_with(".gguf"))
        .find(|f| quant.is_empty() || f.to_lowercase().contains(&quant_lower))
        .ok_or_else(|| fail(format!("the repository has no GGUF file matching \"{quant}\"")))?;
    let dest = std::env::temp_dir().join(file.rsplit('/').next().unwrap_or(file));
    let response = ureq::get(&format!("{HUB}/{repo}/resolve/main/{file}")).call().map_err(|e| fail(e.to_string()))?;
    let mut out = std::fs::File::create(&dest).map_err(|e| fail(e.to_string()))?;
    std::io::copy(&mut response.into_reader(), &mut out).map_err(|e| fail(e.to_string()))?;
    Ok(dest)
}
