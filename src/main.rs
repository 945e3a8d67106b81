//! The `jetchat` binary: `serve` (the default) or `migrate`.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use jetchat::{app::App, config::Config, shutdown, store};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(version, about = "Real-time chat on NATS JetStream")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = dotenvy::dotenv();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Config::from_env().context("invalid configuration")?;
    match cli.command.unwrap_or(Cmd::Serve) {
        Cmd::Serve => {
            let token = CancellationToken::new();
            shutdown::cancel_on_signal(token.clone());
            App::build(config, token).await?.run_until_stopped().await
        }
        Cmd::Migrate => {
            let db = store::connect(&config.database_url)
                .await
                .context("DATABASE_URL")?;
            store::migrate(&db).await.context("applying migrations")?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}
