//! Wires everything: NATS (embedded or external), the database, the streams, the router, the
//! persister and the HTTP server, all under one shutdown token.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::routing::{get, post};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    auth::JwtKeys,
    bus::{Bus, Subjects, embedded::EmbeddedNats, streams},
    config::Config,
    gateway::{self, delivered::DeliveredMarksGatherer},
    health::Pipeline,
    http,
    limits::Limits,
    media::Media,
    metrics::Metrics,
    openapi::ApiDoc,
    persister, presence,
    state::{AppState, Services},
    store, supervisor,
};

/// A built, not yet serving, jetchat.
pub struct App {
    listener: TcpListener,
    state: AppState,
    /// One persister per partition of `CHAT_IN`.
    persisters: Vec<JoinHandle<()>>,
    /// Yields why the router died, if it did before shutdown.
    router: JoinHandle<Option<String>>,
    nats: Option<EmbeddedNats>,
}

impl App {
    /// Connects to everything and binds the listener; serving starts with
    /// [`App::run_until_stopped`]. Cancelling `shutdown` stops it gracefully.
    pub async fn build(config: Config, shutdown: CancellationToken) -> anyhow::Result<App> {
        let keys = JwtKeys::new(&config.jwt).context("JWT_PUBLIC_KEY: not a valid PEM key")?;
        let media = Media::open(&config)
            .await
            .with_context(|| format!("MEDIA_DIR: cannot use {}", config.media_dir.display()))?;
        let nats = match &config.nats_url {
            Some(_) => None,
            None => Some(
                EmbeddedNats::start(
                    config.nats_server_bin.as_deref(),
                    &config.data_dir.join("nats"),
                )
                .await
                .context("starting the embedded nats-server")?,
            ),
        };
        let url = config
            .nats_url
            .as_ref()
            .map(|url| url.expose().to_owned())
            .or_else(|| nats.as_ref().map(|n| n.url().to_owned()))
            .unwrap_or_default();
        let shown = crate::config::redact_url(&url);
        let subjects = Subjects::new(&config.subject_prefix);
        let bus = tokio::time::timeout(
            Duration::from_secs(30),
            Bus::connect(&url, subjects, shutdown.clone()),
        )
        .await
        .with_context(|| format!("NATS_URL: no NATS server answered at {shown} within 30 s"))?
        .with_context(|| format!("NATS_URL: cannot connect to {shown}"))?;
        let db = store::connect(config.database_url.expose())
            .await
            .with_context(|| format!("DATABASE_URL: cannot open {}", config.database_url))?;
        store::migrate(&db)
            .await
            .context("applying database migrations")?;
        let writer = store::connect_writer(config.database_url.expose())
            .await
            .with_context(|| format!("DATABASE_URL: cannot open {}", config.database_url))?;
        let topology = streams::Topology::from_config(&config);
        let consumers: Arc<[_]> = streams::ensure(&bus, topology).await?.into();
        persister::agreement::check(&bus, &writer).await?;
        store::spawn_checkpointer(db.clone(), shutdown.clone());
        persister::journal::spawn_pruner(db.clone(), config.sync_retention, shutdown.clone());
        crate::push::spawn_scanner(
            bus.with_own_acks(),
            db.clone(),
            config.push_after,
            shutdown.clone(),
        );
        let delivered_marks = Arc::new(DeliveredMarksGatherer::default());
        if config.auto_delivered {
            gateway::delivered::spawn(
                bus.with_own_acks(),
                delivered_marks.clone(),
                shutdown.clone(),
            );
        }
        let pipeline = Arc::new(Pipeline::default());
        let metrics = Arc::new(Metrics::new());
        let instance = config.instance_id.clone();
        let (router_handle, router) = gateway::router::spawn(
            bus.clone(),
            db.clone(),
            media.signer.clone(),
            &instance,
            config.max_sockets_per_user,
            metrics.clone(),
            shutdown.clone(),
        )
        .await
        .context("subscribing to membership events")?;
        let presence = presence::start(
            &bus,
            db.clone(),
            instance.clone(),
            &config,
            pipeline.clone(),
            shutdown.clone(),
        )
        .await?;
        let limits = Arc::new(Limits::from_config(&config));
        limits.spawn_sweeper(shutdown.clone());
        let router = supervisor::router(router, pipeline.clone(), shutdown.clone());
        let holdings = Arc::new(persister::partition::Holdings::new(consumers.len() as u16));
        let persisters = consumers
            .iter()
            .zip(0..)
            .map(|(consumer, partition)| {
                let persister = persister::Persister {
                    // Its events never wait for acknowledgement room behind the sockets'
                    // commands.
                    bus: bus.with_own_acks(),
                    db: writer.clone(),
                    partition,
                    consumer: consumer.clone(),
                    handover: topology.handover,
                    // The previous holder's commands come back after the ack wait.
                    patience: topology.ack_wait * 2 + Duration::from_secs(5),
                    holdings: holdings.clone(),
                    batching: persister::Batching {
                        size: config.persist_batch,
                        linger: config.persist_linger,
                    },
                    rules: persister::batch::Rules::from_config(&config),
                    pipeline: pipeline.clone(),
                    metrics: metrics.clone(),
                    storage: media.storage.clone(),
                };
                supervisor::restarting(
                    "persister",
                    pipeline.clone(),
                    shutdown.clone(),
                    move |shutdown| persister.clone().run(shutdown),
                )
            })
            .collect();
        let listener = TcpListener::bind(config.bind_addr)
            .await
            .with_context(|| format!("BIND_ADDR: cannot listen on {}", config.bind_addr))?;
        let state = AppState::new(Services {
            config: Arc::new(config),
            db,
            bus,
            keys: Arc::new(keys),
            media,
            router: router_handle,
            instance,
            shutdown,
            tracker: TaskTracker::new(),
            pipeline,
            limits,
            presence,
            metrics,
            delivered_marks,
            consumers,
        });
        Ok(App {
            listener,
            state,
            persisters,
            router,
            nats,
        })
    }

    /// Where the server listens (port 0 in the config becomes the real port here).
    pub fn address(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until the shutdown token is cancelled, then closes sockets with 1001, lets the
    /// persister finish its batch and stops the embedded nats-server.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let App {
            listener,
            state,
            persisters,
            router,
            nats,
        } = self;
        let address = listener.local_addr()?;
        tracing::info!(%address, "jetchat listening");
        announce_urls(address, &state.config);
        let shutdown = state.shutdown.clone();
        let tracker = state.tracker.clone();
        let bus = state.bus.clone();
        let header_read_timeout = state.config.header_read_timeout;
        crate::server::serve(listener, routes(state), header_read_timeout, shutdown).await;
        tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), tracker.wait()).await;
        futures_util::future::join_all(persisters).await;
        let router_died = router.await.ok().flatten();
        // Bounded: with NATS unreachable a flush would wait for a reconnect that may not come.
        let _ = tokio::time::timeout(Duration::from_secs(2), bus.client.flush()).await;
        if let Some(nats) = nats {
            nats.stop().await;
        }
        if let Some(why) = router_died {
            anyhow::bail!("stopped because {why}");
        }
        tracing::info!("jetchat stopped");
        Ok(())
    }
}

/// Tells whoever started jetchat what to open: the URLs and where a token comes from.
fn announce_urls(address: SocketAddr, config: &Config) {
    // A wildcard bind is reachable on loopback; name that.
    let host = match address.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => format!("127.0.0.1:{}", address.port()),
        ip if ip.is_unspecified() => format!("[::1]:{}", address.port()),
        _ => address.to_string(),
    };
    match (config.web_app, config.dev_login.enabled()) {
        (true, true) => tracing::info!(
            "web app: http://{host}/ (sign in as any user: DEV_LOGIN is on, for development only)"
        ),
        (true, false) => tracing::info!(
            "web app: http://{host}/ (open it from your site with #token=<access token>)"
        ),
        (false, _) => tracing::info!("web app off (WEB_APP=off)"),
    }
    tracing::info!(
        "API documentation: http://{host}/docs (WebSocket protocol: http://{host}/protocol)"
    );
    match config.metrics {
        true => tracing::info!("health: http://{host}/healthz, metrics: http://{host}/metrics"),
        false => tracing::info!("health: http://{host}/healthz (metrics off: METRICS=off)"),
    }
    tracing::info!(
        "WebSocket: ws://{host}/ws/chat?token=<access token>; a development token for user 1: \
         `jetchat token 1` (signed with JWT_SECRET; in production Django issues them)"
    );
}

/// The HTTP routes: REST, the WebSocket, `/openapi.json` and the Swagger UI at `/docs`.
pub fn routes(state: AppState) -> axum::Router {
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(http::router())
        .routes(routes!(http::ws::ws_chat))
        .split_for_parts();
    let cors = http::cors::layer(&state.config.cors_allowed_origins);
    let router = router
        // The same handlers without the trailing slash, for clients that leave it out.
        .route(
            "/chats",
            get(http::chats::list_chats).post(http::chats::create_chat),
        )
        // For people, not API clients: outside the OpenAPI document.
        .route("/protocol", get(http::home::protocol));
    let router = match state.config.web_app {
        true => router
            .route("/", get(http::web::index))
            .route("/assets/{*path}", get(http::web::asset))
            .route("/app-config.json", get(http::web::config)),
        false => router.route("/", get(http::home::home)),
    };
    let router = match state.config.dev_login.enabled() {
        true => router.route("/dev/token", post(http::dev::dev_token)),
        false => router,
    };
    let router = router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::count_refusals,
        ))
        .with_state(state);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}
