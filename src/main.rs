//! The `jetchat` binary: `serve` (the default), `migrate`, and `token` for development.

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
    /// Print a Django-style access token for a user, signed with JWT_SECRET (development).
    Token {
        /// The user id to put in the token.
        user_id: i64,
        /// Minutes until it expires.
        #[arg(long, default_value_t = 60)]
        minutes: i64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = dotenvy::dotenv();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
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
        Cmd::Token { user_id, minutes } => {
            println!(
                "{}",
                jetchat::auth::dev_token(&config.jwt, user_id, minutes)?
            );
            Ok(())
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
