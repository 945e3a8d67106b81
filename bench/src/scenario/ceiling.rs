//! `ceiling`: this machine's raw JetStream rate with no jetchat in the path, the physical limit
//! jetchat's throughput is compared to. Publishes N messages into a temporary file stream with
//! a window of acks awaited in flight, while one durable pull consumer acks them as jetchat's
//! persister does. The stream is deleted afterwards.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::{StreamExt, stream::FuturesUnordered};
use hdrhistogram::Histogram;
use serde_json::json;

use super::{per_second, seconds};
use crate::{
    client,
    progress::{Monitor, note},
    stats::{Counters, Report, latency_histogram},
    target::loopback_addr,
};

/// How long the consumer waits for a message before it decides the stream is drained.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the consumer looks whether the publisher is done.
const POLL: Duration = Duration::from_millis(100);

#[derive(clap::Args, Debug)]
pub struct CeilingArgs {
    /// The NATS server (JetStream enabled; loopback only).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Messages to publish.
    #[arg(long, default_value_t = 200_000)]
    messages: u64,
    /// Stop publishing after this many seconds (whichever comes first).
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Bytes per message (jetchat's send command is about 300).
    #[arg(long, default_value_t = 300)]
    payload_bytes: usize,
    /// Publishes whose acks are awaited in flight at once.
    #[arg(long, default_value_t = 1024)]
    window: usize,
    /// Messages per pull request (jetchat's PERSIST_BATCH).
    #[arg(long, default_value_t = 500)]
    batch: usize,
}

pub async fn run(args: CeilingArgs) -> anyhow::Result<Report> {
    client::epoch();
    let url =
        url::Url::parse(&args.nats_url).with_context(|| format!("--nats-url {}", args.nats_url))?;
    let addr = loopback_addr(&url)?;
    let duration = seconds("duration", args.duration)?;
    anyhow::ensure!(
        args.window >= 1 && args.batch >= 1,
        "--window and --batch must be at least 1"
    );
    let run = client::run_id();
    let mut report = Report::new(
        "ceiling",
        &run,
        json!({
            "messages": args.messages, "duration_s": args.duration,
            "payload_bytes": args.payload_bytes, "window": args.window, "batch": args.batch,
        }),
    );

    let nats = async_nats::connect(addr.to_string())
        .await
        .with_context(|| format!("connecting to NATS at {addr}"))?;
    let js = jetstream::new(nats);
    let name = format!("JETCHAT_LOAD_CEILING_{}", run.to_uppercase());
    let subject = format!("jetchat_load.{run}.message");
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .context("creating the temporary stream (is JetStream enabled?)")?;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("ceiling".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            max_ack_pending: 20_000,
            ..Default::default()
        })
        .await
        .context("creating the durable consumer")?;

    let counters = Arc::new(Counters::default());
    let published = Arc::new(AtomicU64::new(0));
    let publishing_done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let consume = tokio::spawn({
        let counters = counters.clone();
        let published = published.clone();
        let done = publishing_done.clone();
        let batch = args.batch;
        async move {
            let mut messages = consumer
                .stream()
                .max_messages_per_batch(batch)
                .messages()
                .await?;
            let mut consumed = 0u64;
            let mut last = Instant::now();
            loop {
                if done.load(Ordering::Acquire) && consumed >= published.load(Ordering::Acquire) {
                    break;
                }
                let next = match tokio::time::timeout(POLL, messages.next()).await {
                    Err(_) if last.elapsed() < IDLE_TIMEOUT => continue,
                    Err(_) | Ok(None) => break,
                    Ok(Some(next)) => next,
                };
                next.map_err(|e| anyhow::anyhow!("pulling: {e}"))?
                    .ack()
                    .await
                    .map_err(|e| anyhow::anyhow!("acking: {e}"))?;
                consumed += 1;
                counters.delivered.inc();
                last = Instant::now();
            }
            anyhow::Ok((consumed, last))
        }
    });

    let monitor = Monitor::start(
        "ceiling",
        args.messages,
        "messages",
        counters.clone(),
        |c| c.accepted.get(),
    );
    let payload = Bytes::from(vec![b'x'; args.payload_bytes]);
    let mut in_flight = FuturesUnordered::new();
    let mut ack_latency: Histogram<u64> = latency_histogram();
    let mut record = |ack: (anyhow::Result<()>, Instant)| -> anyhow::Result<()> {
        ack.0?;
        ack_latency.saturating_record(ack.1.elapsed().as_micros() as u64);
        counters.accepted.inc();
        Ok(())
    };
    let deadline = start + duration;
    let mut sent = 0u64;
    while sent < args.messages && Instant::now() < deadline {
        let ack = js
            .publish(subject.clone(), payload.clone())
            .await
            .context("publishing")?;
        let at = Instant::now();
        in_flight.push(async move { (ack.await.map(|_| ()).map_err(anyhow::Error::from), at) });
        sent += 1;
        counters.sent.inc();
        while in_flight.len() >= args.window {
            if let Some(ack) = in_flight.next().await {
                record(ack)?;
            }
        }
    }
    while let Some(ack) = in_flight.next().await {
        record(ack)?;
    }
    let publishing = start.elapsed();
    published.store(sent, Ordering::Release);
    publishing_done.store(true, Ordering::Release);
    let (consumed, last) = consume.await??;
    let consuming = last.saturating_duration_since(start);
    monitor.finish();
    if let Err(error) = js.delete_stream(&name).await {
        note(format!("warning: could not delete stream {name}: {error}"));
    }

    report.figure("published", sent);
    report.figure("publish_per_s", per_second(sent, publishing));
    report.figure("consumed", consumed);
    report.figure("consume_per_s", per_second(consumed, consuming));
    report.figure("publish_s", publishing.as_secs_f64());
    report.figure("consume_s", consuming.as_secs_f64());
    report.latency("publish_to_ack", Some(&ack_latency));
    Ok(report)
}
