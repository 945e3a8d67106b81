//! The `jetchat` binary: `serve` (the default), `migrate`, the operator commands `replay`,
//! `streams`, `dlq`, `continue-stream`, `trim-stream` and `reproject`, `media migrate`, and
//! `token` for development.

use std::{io::IsTerminal as _, time::Duration};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use jetchat::{
    app::App,
    config::{Config, OpsConfig},
    shutdown, store,
};
use tokio_util::sync::CancellationToken;
use tracing::Level;
use tracing_subscriber::{
    EnvFilter, Layer as _, filter::Targets, layer::SubscriberExt as _, util::SubscriberInitExt as _,
};

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
    /// Print a stream's messages (nothing is acked or changed).
    Replay(jetchat::ops::replay::ReplayArgs),
    /// Show the streams and their consumers: counts, pending, redelivered.
    Streams {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show the dead letters (commands refused because no retry could apply them), publish
    /// them to CHAT_IN again once their cause is fixed, or remove them.
    Dlq {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Publish these dead letters (their sequence in CHAT_DLQ) again and remove them.
        #[arg(long, num_args = 1.., value_name = "SEQ", group = "replaying")]
        replay: Vec<u64>,
        /// Publish every dead letter again and remove them.
        #[arg(long, conflicts_with = "replay", group = "replaying")]
        replay_all: bool,
        /// Replay dead letters of code `invalid_command` too (no commands: refused again).
        #[arg(long, requires = "replaying")]
        force: bool,
        /// Remove these dead letters without publishing them (dealt with otherwise); a
        /// rebuild (`reproject`) does not apply them either.
        #[arg(
            long,
            num_args = 1..,
            value_name = "SEQ",
            conflicts_with_all = ["replay", "replay_all"]
        )]
        remove: Vec<u64>,
    },
    /// After CHAT_IN was recreated or truncated under a kept database: continue its numbering
    /// after the database's newest message (the start-up error names the number).
    ContinueStream {
        /// The newest message id in the database.
        #[arg(long)]
        after: u64,
        /// Accept an --after below the newest message id in DATABASE_URL.
        #[arg(long)]
        force: bool,
    },
    /// Change how many partitions CHAT_IN has (one persister at a time writes a partition),
    /// with every instance stopped and no command waiting (docs/operations.md, "Partitions").
    Partitions {
        /// The new partition count (1 to 1024).
        count: u16,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Remove CHAT_IN's commands up to and including --through, behind a database snapshot:
    /// refused unless the database applied them and the snapshot holds them.
    TrimStream {
        /// The last CHAT_IN sequence to remove: the persister's "acked up to", read before
        /// the snapshot was taken (docs/operations.md).
        #[arg(long, value_name = "N")]
        through: u64,
        /// The snapshot (sea-orm URL): the SQLite backup file, or the PostgreSQL snapshot
        /// restored into a database of its own.
        #[arg(long, value_name = "URL")]
        snapshot: String,
    },
    /// Rebuild the database from CHAT_IN into an empty database.
    Reproject {
        /// The empty database to fill (sea-orm URL), or with --from-seq a restored snapshot.
        #[arg(long)]
        into: String,
        /// Replay from this CHAT_IN sequence on, onto a snapshot that holds everything before
        /// it (after CHAT_IN was trimmed; docs/operations.md).
        #[arg(long)]
        from_seq: Option<u64>,
    },
    /// Media storage: `media migrate` copies the local blobs into MEDIA_STORE's bucket.
    Media {
        #[command(subcommand)]
        command: MediaCmd,
    },
    /// Print a Django-style access token for a user, signed with JWT_SECRET (development).
    Token {
        /// The user id to put in the token.
        user_id: i64,
        /// Minutes until it expires.
        #[arg(long, default_value_t = 60)]
        minutes: i64,
        /// A display name claim (`JWT_NAME_CLAIM`), recorded in the user directory when a
        /// socket opens with the token.
        #[arg(long)]
        name: Option<String>,
        /// An avatar URL claim (`JWT_AVATAR_CLAIM`), with `--name`.
        #[arg(long)]
        avatar: Option<String>,
    },
}

#[derive(Subcommand)]
enum MediaCmd {
    /// Copy the blobs of MEDIA_DIR/blobs into the bucket of MEDIA_STORE, checking each
    /// against its SHA-256 before and after; those already there are skipped, so an
    /// interrupted run is run again. The local files stay.
    Migrate,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // `serve` takes SIGINT and SIGTERM on a thread of its own; they are blocked before the
    // runtime starts its threads, which inherit the mask. The one-shot commands keep the
    // default: Ctrl-C ends them (`replay --follow`).
    let signals = match cli.command {
        None | Some(Cmd::Serve) => {
            Some(shutdown::Signals::block().context("blocking SIGINT and SIGTERM")?)
        }
        _ => None,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = runtime.block_on(run(cli, signals));
    // A blocking task still running (a stuck database call) must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn run(cli: Cli, signals: Option<shutdown::Signals>) -> anyhow::Result<()> {
    let _ = dotenvy::dotenv();
    // The service logs at info; the one-shot commands only speak up about problems.
    let quiet = !matches!(cli.command, None | Some(Cmd::Serve));
    let default = if quiet { "warn" } else { "info" };
    let command = cli.command.unwrap_or(Cmd::Serve);
    // `serve` reads its settings before the subscriber exists: traces need a layer of it.
    let serve_config = match command {
        Cmd::Serve => Some(Config::from_env().context("invalid configuration")?),
        _ => None,
    };
    let (traces, traces_layer) = match serve_config.as_ref() {
        Some(Config {
            otlp_endpoint: Some(endpoint),
            instance_id,
            ..
        }) => {
            let (traces, layer) = jetchat::telemetry::Traces::start(endpoint, instance_id)
                .context("OTEL_EXPORTER_OTLP_ENDPOINT")?;
            (Some(traces), Some(layer))
        }
        _ => (None, None),
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour codes only for a terminal: a file or a pipe gets plain text.
                .with_ansi(std::io::stderr().is_terminal())
                // A failed write is dropped. With the default, tracing-subscriber reports it
                // with `eprintln!`, which panics when stderr is a closed pipe (`| tee` after
                // Ctrl-C): the panic took down whichever task logged, the signal handler's
                // included.
                .log_internal_errors(false)
                .with_filter(
                    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
                ),
        )
        // Traces take jetchat's own spans whatever RUST_LOG says (it is about logs), and
        // none of the libraries' (the exporter's HTTP client among them). The filter goes
        // inside the `Option`: around a missing layer it still told the registry that
        // jetchat's info spans were wanted, so without traces every socket's span was made
        // and entered on every poll for nobody (1.5–2.6 % of jetchat's CPU, BENCHMARKS.md).
        .with(
            traces_layer
                .map(|layer| layer.with_filter(Targets::new().with_target("jetchat", Level::INFO))),
        )
        .init();
    if let Some(result) = ops(&command).await {
        return result;
    }
    let config = match serve_config {
        Some(config) => config,
        None => Config::from_env().context("invalid configuration")?,
    };
    match command {
        Cmd::Serve => {
            let token = CancellationToken::new();
            signals
                .expect("blocked for serve")
                .watch(token.clone(), config.shutdown_timeout)
                .context("starting the signal thread")?;
            let result = match App::build(config, token).await {
                Ok(app) => app.run_until_stopped().await,
                Err(error) => Err(error),
            };
            if let Some(traces) = traces {
                traces.shutdown().await;
            }
            result
        }
        Cmd::Token {
            user_id,
            minutes,
            name,
            avatar,
        } => {
            println!(
                "{}",
                jetchat::auth::dev_token_with_profile(
                    &config.jwt,
                    user_id,
                    minutes,
                    name.as_deref(),
                    avatar.as_deref()
                )?
            );
            Ok(())
        }
        Cmd::Media {
            command: MediaCmd::Migrate,
        } => migrate_media(&config).await,
        Cmd::Migrate => {
            let db = store::connect(config.database_url.expose())
                .await
                .context("DATABASE_URL")?;
            store::migrate(&db).await.context("applying migrations")?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Cmd::Replay(_)
        | Cmd::Streams { .. }
        | Cmd::Dlq { .. }
        | Cmd::ContinueStream { .. }
        | Cmd::Partitions { .. }
        | Cmd::TrimStream { .. }
        | Cmd::Reproject { .. } => {
            unreachable!("handled by ops")
        }
    }
}

/// `jetchat media migrate`: the local blobs into the bucket, with a report on stdout.
async fn migrate_media(config: &Config) -> anyhow::Result<()> {
    let jetchat::config::MediaStore::S3(settings) = &config.media_store else {
        anyhow::bail!(
            "MEDIA_STORE is local: set it to the bucket to copy the blobs into (s3://bucket/prefix)"
        );
    };
    let bucket = jetchat::media::BucketStorage::open(settings).context("MEDIA_STORE")?;
    let blobs = config.media_dir.join("blobs");
    let report = jetchat::media::migrate::migrate(&blobs, &bucket)
        .await
        .with_context(|| format!("copying {} into s3://{}", blobs.display(), settings.bucket))?;
    for (key, reason) in &report.failed {
        eprintln!("{key}: {reason}");
    }
    println!(
        "copied {}, already in the bucket {}, failed {}",
        report.copied,
        report.present,
        report.failed.len()
    );
    if !report.failed.is_empty() {
        anyhow::bail!("{} blobs were not copied", report.failed.len());
    }
    Ok(())
}

/// The operator commands, which need NATS but no JWT settings.
async fn ops(command: &Cmd) -> Option<anyhow::Result<()>> {
    let run = async {
        let config = OpsConfig::from_env().context("invalid configuration")?;
        let connection = jetchat::ops::connect(&config).await?;
        if connection.runs_own_server() {
            eprintln!(
                "jetchat is not running: this command started the embedded nats-server on {} \
                 and stops it when it ends",
                config.data_dir.join("nats").display()
            );
        }
        let result = run_ops(command, &config, &connection.bus).await;
        connection.close().await;
        result
    };
    match command {
        Cmd::Replay(_)
        | Cmd::Streams { .. }
        | Cmd::Dlq { .. }
        | Cmd::ContinueStream { .. }
        | Cmd::Partitions { .. }
        | Cmd::TrimStream { .. }
        | Cmd::Reproject { .. } => Some(run.await),
        _ => None,
    }
}

/// Runs one operator command on `bus`.
async fn run_ops(command: &Cmd, config: &OpsConfig, bus: &jetchat::bus::Bus) -> anyhow::Result<()> {
    match command {
        Cmd::Replay(args) => {
            let count = jetchat::ops::replay::run(bus, args, &mut std::io::stdout().lock()).await?;
            if count == 0 {
                // An empty stdout alone does not tell a filter that matched nothing from a hang.
                eprintln!("no messages");
            }
        }
        Cmd::Streams { json } => {
            let reports = jetchat::ops::streams::report(bus).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                print!("{}", jetchat::ops::streams::render(&reports));
            }
        }
        Cmd::Dlq {
            json,
            replay,
            replay_all,
            force,
            remove,
        } => {
            use jetchat::ops::dead_letters;
            if !remove.is_empty() {
                for letter in dead_letters::remove(bus, remove).await? {
                    println!("dead letter {letter} removed");
                }
            } else if *replay_all || !replay.is_empty() {
                let which = (!replay_all).then_some(replay.as_slice());
                for (letter, seq) in dead_letters::replay(bus, which, *force).await? {
                    println!("dead letter {letter} published again as CHAT_IN sequence {seq}");
                }
            } else {
                let letters = dead_letters::list(bus).await?;
                if *json {
                    println!("{}", serde_json::to_string_pretty(&letters)?);
                } else {
                    print!("{}", dead_letters::render(&letters));
                }
            }
        }
        Cmd::ContinueStream { after, force } => {
            let db = store::connect(config.database_url.expose())
                .await
                .with_context(|| format!("DATABASE_URL: cannot open {}", config.database_url))?;
            let report = jetchat::ops::continue_stream::run(bus, &db, *after, *force).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Cmd::Partitions { count, json } => {
            let report = jetchat::ops::partitions::run(bus, *count).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", jetchat::ops::partitions::render(&report));
            }
        }
        Cmd::TrimStream { through, snapshot } => {
            let live = store::connect(config.database_url.expose())
                .await
                .with_context(|| format!("DATABASE_URL: cannot open {}", config.database_url))?;
            let snapshot_db = store::connect(snapshot).await.with_context(|| {
                format!(
                    "--snapshot: cannot open {}",
                    jetchat::config::redact_url(snapshot)
                )
            })?;
            let report = jetchat::ops::trim_stream::run(bus, &live, &snapshot_db, *through).await?;
            eprintln!(
                "{}",
                match report.removed {
                    0 => format!(
                        "nothing removed: CHAT_IN already starts at {}",
                        report.first_seq
                    ),
                    n => format!(
                        "removed {n} commands, CHAT_IN sequences {}..={through}; it now starts \
                         at {} (rebuild: the snapshot, then reproject --from-seq {})",
                        report.first_seq_before, report.first_seq, report.first_seq
                    ),
                }
            );
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Cmd::Reproject { into, from_seq } => {
            let rules = jetchat::persister::batch::Rules::from_ops_config(config);
            let report = jetchat::ops::reproject::run(bus, into, *from_seq, 500, &rules).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        _ => unreachable!("only operator commands"),
    }
    Ok(())
}
