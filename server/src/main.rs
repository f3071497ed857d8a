#![recursion_limit = "512"]
//! `server`: hosts Eddy's app and model shards, and prepares models for hosting.

mod access_log;
mod files;
mod hub;
mod import;
mod models;
mod site;

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "server", about = "Hosts the Eddy app and its model shards")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the app (server-rendered, hydrated by the wasm client) and the models.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "EDDY_ADDR", default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// The built site: pkg/ (wasm, JS, CSS) and the public assets.
        #[arg(long, env = "EDDY_SITE_ROOT", default_value = "target/site")]
        site_root: PathBuf,
        /// Imported models (see `server import`).
        #[arg(long, env = "EDDY_MODELS_DIR", default_value = "models")]
        models_dir: PathBuf,
        /// Slow every response down to this many bytes per second (to test
        /// interrupted downloads).
        #[arg(long, default_value_t = 0)]
        throttle: u64,
    },
    /// Prepare a model for hosting: a .gguf file, a Hugging Face folder, or
    /// (with internet access) a hub reference such as LiquidAI/LFM2-1.2B-GGUF:Q4_0.
    Import {
        source: String,
        #[arg(long, env = "EDDY_MODELS_DIR", default_value = "models")]
        models_dir: PathBuf,
        /// The model's id in URLs (default: from the file or folder name).
        #[arg(long)]
        id: Option<String>,
        /// The name people see (default: the model's own, from its metadata).
        #[arg(long)]
        name: Option<String>,
        /// Bytes per download chunk.
        #[arg(long, default_value_t = import::DEFAULT_CHUNK_SIZE)]
        chunk_size: u64,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result: Result<(), String> = match cli.command {
        Command::Serve { addr, site_root, models_dir, throttle } => {
            files::set_throttle(throttle);
            site::serve(addr, site_root, models_dir).await.map_err(|e| e.to_string())
        }
        Command::Import { source, models_dir, id, name, chunk_size } => {
            match tokio::task::spawn_blocking(move || import::import(&source, &models_dir, id.as_deref(), name.as_deref(), chunk_size.max(4096))).await {
                Ok(Ok(m)) => {
                    println!("imported {} ({}, {} bytes in {} chunks)", m.id, m.name, m.total_bytes, m.chunk_count());
                    Ok(())
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    if let Err(e) = result {
        eprintln!("server: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests;
