//! `server`: hosts Eddy's app and model shards.

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
    /// Serve the app (server-rendered, hydrated by the wasm client).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "EDDY_ADDR", default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// The built site: pkg/ (wasm, JS, CSS) and the public assets.
        #[arg(long, env = "EDDY_SITE_ROOT", default_value = "target/site")]
        site_root: PathBuf,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { addr, site_root } => site::serve(addr, site_root).await,
    };
    if let Err(e) = result {
        eprintln!("server: {e:#}");
        std::process::exit(1);
    }
}
