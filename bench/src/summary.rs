//! `summary`: the figures of a suite run (scripts/bench.sh's results JSON) as Markdown, each
//! beside its target of the performance issue; `--update BENCHMARKS.md` puts them between the
//! file's suite markers, leaving everything else in it as written. The rows of the run with the
//! defaults come with the rows of the same scenarios on the other jetchats the suite ran
//! (`passes`: `AUTO_DELIVERED=false`, PostgreSQL) beneath them, and a table of CPU per message.

mod cpu;

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// The section `--update` replaces starts with this line and ends with [`END`].
pub const BEGIN: &str =
    "<!-- suite:begin (written by scripts/bench.sh: edit the text outside these markers) -->";
pub const END: &str = "<!-- suite:end -->";

/// The targets, from the performance issues (#14; #23 set `pairs`, `fanout` and `idle` anew).
const MIN_CEILING_SHARE: f64 = 0.08;
/// `rate_target` runs at this share of the same run's ceiling (scripts/bench.sh), and its p99
/// must stay within [`MAX_P99_MS`].
const TARGET_RATE_SHARE: f64 = 0.07;
const MAX_P99_MS: f64 = 25.0;
/// `fanout`'s deliveries per second over the ceiling's publishes per second.
const MIN_FANOUT_OVER_CEILING: f64 = 4.0;
/// As many as the open-file limit here (20,000) lets one process hold beside its other files.
const MIN_SOCKETS: f64 = 19_000.0;
const MAX_BYTES_PER_SOCKET: f64 = 6_144.0;

/// The rows of the table, in its order.
const SCENARIOS: [&str; 15] = [
    "ceiling",
    "pairs",
    "rate_private",
    "rate_target",
    "rate_steps",
    "fanout",
    "idle",
    "slow",
    "reconnect",
    "reconnect_across",
    "order_across",
    "rate_live",
    "rate_mix",
    "many_chats",
    "soak",
];

#[derive(clap::Args, Debug)]
pub struct SummaryArgs {
    /// The results JSON of scripts/bench.sh (bench/results/<stamp>.json).
    #[arg(long)]
    results: PathBuf,
    /// Replace the suite section of this Markdown file (BENCHMARKS.md) instead of printing it.
    #[arg(long)]
    update: Option<PathBuf>,
}

pub fn run(args: &SummaryArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.results)
        .with_context(|| format!("reading {}", args.results.display()))?;
    let results: Value = serde_json::from_str(&text).context("the results are not JSON")?;
    let section = render(&results, &args.results.display().to_string());
    match &args.update {
        None => println!("{section}"),
        Some(path) => {
            let doc = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            std::fs::write(path, replace_section(&doc, &section)?)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("jetchat-load: updated {}", path.display());
        }
    }
    Ok(())
}

/// `doc` with the text between its markers (markers included) replaced by `section`.
pub fn replace_section(doc: &str, section: &str) -> anyhow::Result<String> {
    let (Some(start), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
        bail!("no suite section: the file needs the lines\n{BEGIN}\n{END}");
    };
    if end < start {
        bail!("the suite markers are in the wrong order");
    }
    Ok(format!(
        "{}{}{}",
        &doc[..start],
        section,
        &doc[end + END.len()..]
    ))
}

/// The jetchat a row's figures come from: the one with the defaults, or a pass of the suite.
#[derive(Clone, Debug)]
pub struct Variant {
    /// Whether the targets are judged on it: they are the defaults' (SQLite or PostgreSQL).
    judged: bool,
    /// What sets it apart from the defaults, in the row's name.
    label: Option<String>,
}

impl Variant {
    fn defaults() -> Variant {
        Variant {
            judged: true,
            label: None,
        }
    }

    /// A pass of the results, from its `settings`.
    fn of_pass(settings: &Value) -> Variant {
        let auto_delivered = settings
            .get("auto_delivered")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let mut parts = Vec::new();
        if settings.get("database").and_then(Value::as_str) == Some("postgresql") {
            parts.push("PostgreSQL");
        }
        if !auto_delivered {
            parts.push("`AUTO_DELIVERED=false`");
        }
        Variant {
            judged: auto_delivered,
            label: Some(parts.join(", ")),
        }
    }

    /// The row's first cell.
    fn name(&self, scenario: &str) -> String {
        match &self.label {
            None => format!("`{scenario}`"),
            Some(label) => format!("`{scenario}` · {label}"),
        }
    }
}

/// The section, markers included: when and where it ran and with which settings, one row per
/// scenario and variant with its target, the CPU per message, the ratios to the ceiling, the
/// database check and the plot.
pub fn render(results: &Value, results_path: &str) -> String {
    let scenarios = results.pointer("/scenarios").unwrap_or(&Value::Null);
    let ceiling = scenarios
        .pointer("/ceiling/figures/publish_per_s")
        .and_then(Value::as_f64);
    let mut variants = vec![(Variant::defaults(), scenarios)];
    if let Some(passes) = results.pointer("/passes").and_then(Value::as_object) {
        for pass in passes.values() {
            variants.push((
                Variant::of_pass(pass.get("settings").unwrap_or(&Value::Null)),
                pass.get("scenarios").unwrap_or(&Value::Null),
            ));
        }
    }
    let mut out = format!("{BEGIN}\n{}", header(results, results_path));
    out += "| scenario | setup | result | target | met |\n|---|---|---|---|---|\n";
    let mut cpu_rows = Vec::new();
    for name in SCENARIOS {
        for (variant, of) in &variants {
            let row = match of.get(name) {
                Some(scenario) => Row::of(name, scenario, ceiling, variant.judged),
                // A pass runs some of the scenarios only.
                None if variant.label.is_some() => continue,
                None => Row::not_run(name),
            };
            out += &format!(
                "| {} | {} | {} | {} | {} |\n",
                variant.name(name),
                row.setup,
                row.result,
                row.target,
                row.met
            );
            if let Some(scenario) = of.get(name).filter(|_| cpu::SCENARIOS.contains(&name)) {
                cpu_rows.push((variant.name(name), scenario, variant.clone()));
            }
        }
    }
    out += &format!("\n{}", cpu::table(scenarios.get("ceiling"), &cpu_rows));
    let shares: Vec<String> = [
        ("pairs", "messages_per_s"),
        ("rate_private", "acked_per_s"),
        ("rate_target", "acked_per_s"),
        ("rate_steps", "acked_per_s"),
    ]
    .into_iter()
    .filter_map(|(name, key)| {
        let rate = scenarios
            .pointer(&format!("/{name}/figures/{key}"))
            .and_then(Value::as_f64);
        Some(format!("{name} {}", percent(share(rate, ceiling)?)))
    })
    .collect();
    if !shares.is_empty() {
        out += &format!(
            "\nEnd-to-end throughput (persisted and delivered) relative to the `ceiling`'s \
             publish rate, with the defaults: {} (target: `pairs` ≥ {}).\n",
            shares.join(", "),
            percent(MIN_CEILING_SHARE)
        );
    }
    let checked: Vec<(String, &Value)> = variants
        .iter()
        .flat_map(|(variant, of)| {
            of.as_object()
                .into_iter()
                .flatten()
                .map(|(name, scenario)| (variant.name(name), scenario))
        })
        .collect();
    out += &format!("\n{}\n", integrity_line(&checked));
    if let Some(table) = results.get("scaling").and_then(scaling_table) {
        out += &table;
    }
    let plot = results_path
        .strip_suffix(".json")
        .map(|stem| format!("{stem}.png"));
    if let Some(plot) = plot {
        out += &format!("\n![latency percentiles of the run with the defaults]({plot})\n");
    }
    out += END;
    out
}

/// When and where the suite ran, and the settings of each jetchat it ran on.
fn header(results: &Value, results_path: &str) -> String {
    let at = |path: &str| results.pointer(path).unwrap_or(&Value::Null);
    let text = |path: &str| at(path).as_str().unwrap_or("?").to_owned();
    let mut out = format!(
        "The last suite run, {date}: {cpus} CPUs ({cpu}), {memory} GiB, {os}, kernel {kernel}; \
         jetchat {commit}{dirty}, {rustc}, {nats}. Raw figures: `{results_path}`.\n\n",
        date = text("/date"),
        cpus = at("/machine/cpus"),
        cpu = text("/machine/cpu"),
        memory = at("/machine/memory_gib"),
        os = text("/machine/os"),
        kernel = text("/machine/kernel"),
        commit = text("/versions/jetchat_commit"),
        dirty = if at("/versions/jetchat_dirty").as_bool() == Some(true) {
            " (with uncommitted changes)"
        } else {
            ""
        },
        rustc = text("/versions/rustc"),
        nats = text("/versions/nats_server"),
    );
    let lifted: Vec<String> = at("/settings/lifted_limits")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|setting| Some(format!("`{}=0`", setting.as_str()?)))
        .collect();
    out += &format!(
        "jetchat ran with the settings users run: the defaults ({database}, `AUTO_DELIVERED={auto}`, \
         `RUST_LOG=warn`) but for the per-user limits the scenarios go past, lifted: {lifted} \
         — they send thousands of messages and marks a second per user, far past what a person \
         types, and `reconnect` opens a user's next socket before the server has seen the last \
         one close.",
        database = text("/settings/database"),
        auto = at("/settings/auto_delivered"),
        lifted = if lifted.is_empty() {
            "?".to_owned()
        } else {
            lifted.join(", ")
        },
    );
    let passes = at("/passes").as_object();
    for pass in passes.into_iter().flatten().map(|(_, pass)| pass) {
        let settings = pass.get("settings").unwrap_or(&Value::Null);
        let variant = Variant::of_pass(settings);
        let label = variant.label.as_deref().unwrap_or("?");
        out += &if settings.get("database").and_then(Value::as_str) == Some("postgresql") {
            format!(
                " Rows marked {label}: the same on PostgreSQL {} (a throwaway cluster of \
                 Debian's postgresql on loopback, started as `scripts/test.sh` starts one, \
                 its server settings at their defaults).",
                settings
                    .get("postgresql")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
            )
        } else {
            format!(" Rows marked {label}: the same jetchat with that setting.")
        };
        if !variant.judged {
            out += " Targets are judged with the defaults only: those rows are for comparison.";
        }
    }
    if !passes.is_some_and(|p| p.contains_key("postgres")) {
        out += " No PostgreSQL pass in this run.";
    }
    out += "\n\n";
    out
}

/// `rate` over the ceiling's publish rate.
fn share(rate: Option<f64>, ceiling: Option<f64>) -> Option<f64> {
    rate.zip(ceiling.filter(|&c| c > 0.0)).map(|(r, c)| r / c)
}

/// One scenario's row of the table.
struct Row {
    setup: String,
    result: String,
    target: String,
    met: String,
}

impl Row {
    fn not_run(name: &str) -> Row {
        Row {
            setup: "—".into(),
            result: format!("not in this run (`{name}` missing from the results)"),
            target: "—".into(),
            met: "—".into(),
        }
    }

    /// The row of `name` (whose scenario ran `scenario`); `ceiling`: the run's raw publish
    /// rate; `judged`: whether its targets apply (not on a jetchat run for comparison).
    fn of(name: &str, scenario: &Value, ceiling: Option<f64>, judged: bool) -> Row {
        if scenario.get("failed").and_then(Value::as_bool) == Some(true) {
            return Row {
                setup: "—".into(),
                result: "**FAILED** (no figures: see the suite's log)".into(),
                target: "—".into(),
                met: "no".into(),
            };
        }
        let mut row = Row::measured(name, scenario, ceiling);
        if !judged && row.met != "—" {
            row.met = "— (for comparison)".into();
        }
        row
    }

    fn measured(name: &str, scenario: &Value, ceiling: Option<f64>) -> Row {
        let get = |path: &str| scenario.pointer(path).and_then(Value::as_f64);
        let param = |key: &str| get(&format!("/params/{key}"));
        let figure = |key: &str| get(&format!("/figures/{key}"));
        let latency = |which: &str, field: &str| get(&format!("/latency_ms/{which}/{field}"));
        let p50_p99 = |which: &str| {
            format!(
                "p50 {} ms, p99 {} ms",
                ms(latency(which, "p50_ms")),
                ms(latency(which, "p99_ms"))
            )
        };
        match name {
            "ceiling" => Row {
                setup: format!(
                    "{} messages of {} B, one file stream, one durable pull consumer",
                    number(param("messages")),
                    number(param("payload_bytes"))
                ),
                result: format!(
                    "**{} publish/s**, {} consume/s; publish → ack {}",
                    number(figure("publish_per_s")),
                    number(figure("consume_per_s")),
                    p50_p99("publish_to_ack")
                ),
                target: "— (the reference)".into(),
                met: "—".into(),
            },
            "pairs" => {
                let share = share(figure("messages_per_s"), ceiling);
                Row {
                    setup: format!(
                        "{} sender/receiver pairs, closed loop, {} s",
                        number(param("pairs")),
                        number(param("duration_s"))
                    ),
                    result: format!(
                        "**{} msg/s** ({} of the ceiling); send → `new_message` {}",
                        number(figure("messages_per_s")),
                        share.map_or("?".into(), percent),
                        p50_p99("send_to_new_message")
                    ),
                    target: format!("≥ {} of the ceiling", percent(MIN_CEILING_SHARE)),
                    met: verdict(share.map(|s| s >= MIN_CEILING_SHARE)),
                }
            }
            "rate_private" | "rate_target" => {
                let offered = param("rate");
                let delivered = figure("deliveries_per_s");
                let p99 = latency("send_to_new_message", "p99_ms");
                let at = ceiling.map(|c| c * TARGET_RATE_SHARE);
                let row = Row {
                    setup: format!(
                        "{} connections in private chats, {} msg/s open loop{}, {} s",
                        number(param("connections")),
                        number(offered),
                        share(offered, ceiling).map_or(String::new(), |s| format!(
                            " ({} of the ceiling)",
                            percent(s)
                        )),
                        number(param("duration_s"))
                    ),
                    result: format!(
                        "delivered **{}/s**; send → `message_accepted` p99 {} ms; \
                         send → `new_message` {}",
                        number(delivered),
                        ms(latency("send_to_accepted", "p99_ms")),
                        p50_p99("send_to_new_message")
                    ),
                    target: "— (10,000 msg/s as in earlier rounds; the latency target is \
                             `rate_target`'s)"
                        .into(),
                    met: "—".into(),
                };
                if name == "rate_private" {
                    return row;
                }
                // Offered within a message of the target rate (bench.sh rounds it), all of it
                // delivered, and the p99 within bounds.
                let met = offered
                    .zip(at)
                    .zip(delivered)
                    .zip(p99)
                    .map(|(((o, a), d), p)| o + 1.0 >= a && d >= 0.99 * o && p <= MAX_P99_MS);
                Row {
                    target: format!(
                        "p99 send → `new_message` ≤ {} ms at {} of the ceiling ({} msg/s)",
                        number(Some(MAX_P99_MS)),
                        percent(TARGET_RATE_SHARE),
                        number(at)
                    ),
                    met: verdict(met),
                    ..row
                }
            }
            "rate_mix" => {
                let p99 = latency("send_to_new_message", "p99_ms");
                Row {
                    setup: format!(
                        "{} connections in private chats, {} msg/s, each also editing its newest \
                         message {}/s and reacting to the other's {}/s, {} s",
                        number(param("connections")),
                        number(param("rate")),
                        param("edits_per_sec").map_or("?".into(), |s| s.to_string()),
                        param("reactions_per_sec").map_or("?".into(), |s| s.to_string()),
                        number(param("duration_s"))
                    ),
                    result: format!(
                        "delivered **{}/s**, send → `new_message` {}; {} edits/s, {} of \
                         `message_edited` received; {} reactions/s, {} of `reaction_added` received",
                        number(figure("deliveries_per_s")),
                        p50_p99("send_to_new_message"),
                        number(figure("edits_sent_per_s")),
                        figure("edits_received_share").map_or("?".into(), percent),
                        number(figure("reactions_sent_per_s")),
                        figure("reactions_received_share").map_or("?".into(), percent),
                    ),
                    target: "p99 send → `new_message` ≤ 25 ms with edits and reactions beside \
                             the messages"
                        .into(),
                    met: verdict(p99.map(|p| p <= MAX_P99_MS)),
                }
            }
            "rate_live" => {
                let p99 = latency("send_to_new_message", "p99_ms");
                Row {
                    setup: format!(
                        "{} connections in private chats, {} msg/s, each also refreshing \
                         `typing` {}/s; {} more users coming and going (online {} s, away {} s), \
                         {} s",
                        number(param("connections")),
                        number(param("rate")),
                        param("typing_per_sec").map_or("?".into(), |s| s.to_string()),
                        number(param("churn")),
                        param("churn_online_s").map_or("?".into(), |s| s.to_string()),
                        param("churn_offline_s").map_or("?".into(), |s| s.to_string()),
                        number(param("duration_s"))
                    ),
                    result: format!(
                        "delivered **{}/s**, send → `new_message` {}; `typing` {}/s, {} told \
                         to the other member; {} presence changes, {} `presence` frames",
                        number(figure("deliveries_per_s")),
                        p50_p99("send_to_new_message"),
                        number(figure("typing_sent_per_s")),
                        figure("typing_received_share").map_or("?".into(), percent),
                        number(figure("presence_changes")),
                        number(figure("presence_received"))
                    ),
                    target: "p99 send → `new_message` ≤ 25 ms with typing and presence beside \
                             the messages"
                        .into(),
                    met: verdict(p99.map(|p| p <= MAX_P99_MS)),
                }
            }
            "many_chats" => {
                let p99 = latency("send_to_new_message", "p99_ms");
                let missing = figure("membership_frames_missing");
                Row {
                    setup: format!(
                        "{} users in {} chats each ({} private, groups of {}), {} online, {} msg/s, \
                         {} s; chats created over REST in {} s",
                        number(param("users")),
                        number(param("chats_per_user")),
                        number(param("private_per_user")),
                        number(param("group_size")),
                        number(param("online")),
                        number(param("rate")),
                        number(param("duration_s")),
                        number(figure("setup_create_s"))
                    ),
                    result: format!(
                        "{} router subscriptions, **{} B of RSS each**; delivered **{}/s**, \
                         send → `new_message` {}; handshake → `unread` {}; `POST /chats/` → \
                         `chat_created` {}, `add_members` → `member_added` {}; {} of {} \
                         membership frames missing",
                        number(figure("router_subscriptions")),
                        number(figure("jetchat_rss_per_subscription_bytes")),
                        number(figure("deliveries_per_s")),
                        p50_p99("send_to_new_message"),
                        p50_p99("handshake_to_unread"),
                        p50_p99("post_chats_to_chat_created"),
                        p50_p99("add_members_to_member_added"),
                        number(missing),
                        number(figure("membership_frames_expected"))
                    ),
                    target: "p99 send → `new_message` ≤ 25 ms with tens of thousands of chats \
                             routed; every membership frame told"
                        .into(),
                    met: verdict(p99.zip(missing).map(|(p, m)| p <= MAX_P99_MS && m == 0.0)),
                }
            }
            "soak" => Row {
                setup: format!(
                    "{} clients ({} in private chats, the others in groups of {}), {} msg/s (half \
                     of what `rate_steps` kept up with), `typing` {}/s, an edit {}/s and a \
                     reaction {}/s each, {} of them dropping and resuming with `?since=`, {} \
                     more users coming and going; {} s, the first {} s warm-up",
                    number(param("connections")),
                    number(param("private_clients")),
                    number(param("group_size")),
                    number(param("rate")),
                    param("typing_per_sec").map_or("?".into(), |s| s.to_string()),
                    param("edits_per_sec").map_or("?".into(), |s| s.to_string()),
                    param("reactions_per_sec").map_or("?".into(), |s| s.to_string()),
                    number(figure("flaky_clients")),
                    number(param("churn")),
                    number(param("duration_s")),
                    number(param("warmup_s"))
                ),
                result: format!(
                    "**{} msg/s**, {} deliveries/s; after the warm-up: RSS {} → {} KiB, open \
                     files {} → {}, p99 send → `new_message` {} → {} ms (first third → last \
                     third of the windows); {} of {} deliveries missing, {} doubled beyond the \
                     overlap; {} catch-ups",
                    number(figure("messages_per_s")),
                    number(figure("deliveries_per_s")),
                    number(figure("rss_first_kib")),
                    number(figure("rss_worst_kib")),
                    number(figure("fds_first")),
                    number(figure("fds_worst")),
                    ms(figure("p99_early_ms")),
                    ms(figure("p99_late_ms")),
                    number(figure("missing_deliveries")),
                    number(figure("owed_deliveries")),
                    number(figure("duplicates_beyond_overlap")),
                    number(figure("catchups"))
                ),
                target: "RSS and open files within 10 % after the warm-up, p99 within 2× (or \
                         +10 ms), nothing lost"
                    .into(),
                met: verdict(
                    scenario
                        .pointer("/figures/soak_ok")
                        .and_then(Value::as_bool),
                ),
            },
            "rate_steps" => {
                let best = figure("max_rate_under_p99");
                let at = ceiling.map(|c| c * TARGET_RATE_SHARE);
                Row {
                    setup: format!(
                        "{} connections in groups of {}, from {} msg/s up ×{} per step",
                        number(param("connections")),
                        number(param("group_size")),
                        number(param("rate")),
                        param("step_factor").map_or("?".into(), |f| f.to_string())
                    ),
                    result: format!(
                        "highest rate with p99 send → `new_message` under {} ms: **{} msg/s** \
                         ({} deliveries/s; {})",
                        number(param("find_max_under_p99_ms")),
                        best.map_or("none".into(), count),
                        number(figure("deliveries_per_s")),
                        p50_p99("send_to_new_message")
                    ),
                    target: format!(
                        "p99 ≤ {} ms at {} of the ceiling ({} msg/s), in groups",
                        number(Some(MAX_P99_MS)),
                        percent(TARGET_RATE_SHARE),
                        number(at)
                    ),
                    met: verdict(at.map(|a| best.is_some_and(|b| b >= a))),
                }
            }
            "fanout" => {
                let rate = figure("deliveries_per_s");
                Row {
                    setup: format!(
                        "one group of {} members, all connected, {} messages",
                        number(param("members")),
                        number(param("messages"))
                    ),
                    result: format!(
                        "**{} deliveries/s**; send → last member's `new_message` {}",
                        number(rate),
                        p50_p99("send_to_last_member")
                    ),
                    target: format!(
                        "≥ {} × the ceiling ({} deliveries/s)",
                        number(Some(MIN_FANOUT_OVER_CEILING)),
                        number(ceiling.map(|c| c * MIN_FANOUT_OVER_CEILING))
                    ),
                    met: verdict(share(rate, ceiling).map(|s| s >= MIN_FANOUT_OVER_CEILING)),
                }
            }
            "idle" => {
                let held = figure("still_open_after_hold");
                let bytes = figure("jetchat_rss_per_connection_bytes");
                let limit = figure("loadgen_nofile_limit");
                Row {
                    setup: format!(
                        "{} sockets opened and held (open-file limit here: {})",
                        number(param("connections")),
                        number(limit)
                    ),
                    result: format!(
                        "**{} held, {} B of jetchat RSS per socket**",
                        number(held),
                        number(bytes)
                    ),
                    target: "≥ 19,000 sockets, ≤ 6 KiB each".into(),
                    met: match (held, bytes) {
                        (Some(h), Some(b)) => format!(
                            "memory {}, sockets {}",
                            verdict(Some(b <= MAX_BYTES_PER_SOCKET)),
                            verdict(Some(h >= MIN_SOCKETS))
                        ),
                        _ => verdict(None),
                    },
                }
            }
            "slow" => Row {
                setup: format!(
                    "a group of {}, {} members stop reading, {} msg/s of {} B",
                    number(param("members")),
                    number(param("slow")),
                    number(param("rate")),
                    number(param("content_bytes"))
                ),
                result: format!(
                    "{} of {} slow sockets closed with 4008; the others' p99 {} ms → {} ms, \
                     {} of their deliveries missing; jetchat RSS {} KiB more",
                    number(figure("slow_closed_4008")),
                    number(param("slow")),
                    ms(figure("fast_p99_ms_baseline")),
                    ms(figure("fast_p99_ms_slow")),
                    number(figure("fast_deliveries_missing")),
                    number(figure("jetchat_rss_growth_during_kib"))
                ),
                target: "slow sockets closed, the others' latency unchanged, memory flat".into(),
                met: verdict(
                    scenario
                        .pointer("/figures/backpressure_ok")
                        .and_then(Value::as_bool),
                ),
            },
            "reconnect" | "reconnect_across" => Row {
                setup: format!(
                    "{} clients in groups of {}, {} of them dropping every ~{} s (away ~{} s), \
                     {} msg/s, {} s{}",
                    number(param("clients")),
                    number(param("group_size")),
                    number(figure("flaky_clients")),
                    param("online_s").map_or("?".into(), |s| s.to_string()),
                    param("offline_s").map_or("?".into(), |s| s.to_string()),
                    number(param("rate")),
                    number(param("duration_s")),
                    match param("instances") {
                        Some(n) if n > 1.0 => format!(
                            "; {} instances, each resume on the next one",
                            number(Some(n))
                        ),
                        _ => String::new(),
                    }
                ),
                result: format!(
                    "{} catch-ups: reconnect → `synced` {}, frames replayed p50 {} / p99 {}; \
                     **{} msg/s**; {} of {} deliveries missing, {} doubled beyond the overlap, \
                     {} out of their sender's order, {} `resync_required`",
                    number(figure("catchups")),
                    p50_p99("reconnect_to_synced"),
                    number(figure("replayed_frames_p50")),
                    number(figure("replayed_frames_p99")),
                    number(figure("messages_per_s")),
                    number(figure("missing_deliveries")),
                    number(figure("owed_deliveries")),
                    number(figure("duplicates_beyond_overlap")),
                    number(figure("out_of_order")),
                    number(figure("resync_required"))
                ),
                target: "nothing missed, nothing twice beyond the overlap, each sender in order, \
                         no `resync_required`"
                    .into(),
                met: verdict(
                    scenario
                        .pointer("/figures/delivery_ok")
                        .and_then(Value::as_bool),
                ),
            },
            "order_across" => Row {
                setup: format!(
                    "{} senders on {} instances, {} groups, {} messages each into each, {} \
                     listeners with a socket on every instance",
                    number(param("senders")),
                    number(param("instances")),
                    number(param("groups")),
                    number(param("messages")),
                    number(param("listeners"))
                ),
                result: format!(
                    "**{} msg/s**; {} of {} deliveries out of their sender's order, {} missing, \
                     {} doubled",
                    number(figure("messages_per_s")),
                    number(figure("out_of_order")),
                    number(figure("deliveries")),
                    number(figure("missing")),
                    number(figure("doubled"))
                ),
                target: "every chat in send order on every socket, nothing missed or twice".into(),
                met: verdict(Some(
                    figure("out_of_order") == Some(0.0)
                        && figure("missing") == Some(0.0)
                        && figure("doubled") == Some(0.0),
                )),
            },
            _ => Row::not_run(name),
        }
    }
}

/// The `order` scenario on PostgreSQL by partitions (rows) and instances (columns):
/// messages/s, and whether every delivery kept its order.
fn scaling_table(scaling: &Value) -> Option<String> {
    let runs = scaling.as_object().filter(|runs| !runs.is_empty())?;
    let mut partitions = std::collections::BTreeSet::new();
    let mut instances = std::collections::BTreeSet::new();
    for name in runs.keys() {
        let (p, i) = name.strip_prefix('p')?.split_once("_i")?;
        partitions.insert(p.parse::<u32>().ok()?);
        instances.insert(i.parse::<u32>().ok()?);
    }
    let mut out = String::from(
        "\nWrite path by partitions and instances (`order` on PostgreSQL, messages/s persisted \
         and delivered to every listener; ✗ marks a run with a message out of order, missing or \
         doubled):\n\n| partitions |",
    );
    for i in &instances {
        out += &format!(" {i} instance{} |", if *i == 1 { "" } else { "s" });
    }
    out += "\n|---|";
    out += &"---|".repeat(instances.len());
    out += "\n";
    for p in &partitions {
        out += &format!("| {p} |");
        for i in &instances {
            let run = runs.get(&format!("p{p}_i{i}"));
            let figure = |key: &str| {
                run.and_then(|r| r.pointer(&format!("/figures/{key}")))
                    .and_then(Value::as_f64)
            };
            let exact = figure("out_of_order") == Some(0.0)
                && figure("missing") == Some(0.0)
                && figure("doubled") == Some(0.0);
            out += &match figure("messages_per_s") {
                Some(rate) => format!(" {}{} |", number(Some(rate)), if exact { "" } else { " ✗" }),
                None => " — |".into(),
            };
        }
        out += "\n";
    }
    Some(out)
}

/// Whether every message scenario's database check passed: `scenarios` by their rows' names.
fn integrity_line(scenarios: &[(String, &Value)]) -> String {
    let checked: Vec<(&str, bool)> = scenarios
        .iter()
        .filter_map(|(name, s)| Some((name.as_str(), s.pointer("/integrity/ok")?.as_bool()?)))
        .collect();
    let failed: Vec<&str> = checked
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| *name)
        .collect();
    if checked.is_empty() {
        "No database check in this run.".into()
    } else if failed.is_empty() {
        format!(
            "Database check after each of the {} message scenarios: every message that got \
             `message_accepted` stored exactly once.",
            checked.len()
        )
    } else {
        format!(
            "**Database check FAILED** for: {} (accepted messages missing or doubled).",
            failed.join(", ")
        )
    }
}

fn verdict(met: Option<bool>) -> String {
    match met {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => "?".into(),
    }
}

/// A count with thousands separators, `?` when the figure is missing.
fn number(value: Option<f64>) -> String {
    value.map_or("?".into(), count)
}

/// A count with thousands separators: 147,049.
fn count(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < -0.5 {
        out.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

/// Milliseconds to three significant figures (0.951, 13.2, 48.1, 812).
fn ms(value: Option<f64>) -> String {
    match value {
        None => "?".into(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) if v >= 1.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.3}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn results(fanout_per_s: f64, integrity_ok: bool) -> Value {
        json!({
            "date": "2026-11-25T02:47:03Z",
            "machine": {"cpus": 2, "cpu": "AMD EPYC", "memory_gib": 23.5, "os": "Debian", "kernel": "6.1"},
            "versions": {"jetchat_commit": "abc1234", "jetchat_dirty": false, "rustc": "rustc 1.95.0",
                         "nats_server": "nats-server: v2.15.1"},
            "settings": {"database": "sqlite", "auto_delivered": false},
            "throughput_to_ceiling": {"pairs": 0.036},
            "scenarios": {
                "ceiling": {"params": {"messages": 300000, "payload_bytes": 300},
                            "figures": {"publish_per_s": 147049.4, "consume_per_s": 117244.0},
                            "latency_ms": {"publish_to_ack": {"p50_ms": 6.783, "p99_ms": 15.23}}},
                "pairs": {"params": {"pairs": 50, "duration_s": 15.0},
                          "figures": {"messages_per_s": 5282.9},
                          "latency_ms": {"send_to_new_message": {"p50_ms": 9.151, "p99_ms": 18.815}},
                          "integrity": {"ok": true}},
                "fanout": {"params": {"members": 1000, "messages": 500},
                           "figures": {"deliveries_per_s": fanout_per_s},
                           "latency_ms": {"send_to_last_member": {"p50_ms": 35.8, "p99_ms": 48.9}},
                           "integrity": {"ok": integrity_ok}},
                "idle": {"params": {"connections": 19000},
                         "figures": {"still_open_after_hold": 19000, "jetchat_rss_per_connection_bytes": 6645.9,
                                     "loadgen_nofile_limit": 20000}}
            }
        })
    }

    #[test]
    fn rows_carry_figures_targets_and_verdicts() {
        let section = render(&results(489_934.0, true), "bench/results/x.json");
        assert!(section.starts_with(BEGIN) && section.ends_with(END));
        assert!(section.contains("| `ceiling` |") && section.contains("**147,049 publish/s**"));
        assert!(section.contains("**5,283 msg/s** (3.6 % of the ceiling)"));
        assert!(section.contains("p50 9.15 ms, p99 18.8 ms"));
        assert!(section.contains("**489,934 deliveries/s**"));
        assert!(section.contains("| ≥ 4 × the ceiling (588,198 deliveries/s) | no |"));
        assert!(section.contains("**19,000 held, 6,646 B of jetchat RSS per socket**"));
        assert!(section.contains("| memory no, sockets yes |"));
        assert!(section.contains("not in this run (`rate_private` missing"));
        assert!(section.contains("pairs 3.6 %"));
        assert!(section.contains("the 2 message scenarios"));
        assert!(
            section.contains(
                "![latency percentiles of the run with the defaults](bench/results/x.png)"
            )
        );
        assert!(section.contains("| ≥ 8.0 % of the ceiling | no |"));
        assert!(section.contains("No PostgreSQL pass in this run."));
    }

    #[test]
    fn the_settings_name_the_defaults_and_the_lifted_limits() {
        let mut r = results(526_028.0, true);
        r["settings"] = json!({"database": "sqlite", "auto_delivered": true,
                               "lifted_limits": ["RATE_MESSAGES_PER_SEC", "MAX_SOCKETS_PER_USER"]});
        let section = render(&r, "r.json");
        assert!(section.contains("the defaults (sqlite, `AUTO_DELIVERED=true`, `RUST_LOG=warn`)"));
        assert!(section.contains("lifted: `RATE_MESSAGES_PER_SEC=0`, `MAX_SOCKETS_PER_USER=0`"));
    }

    #[test]
    fn the_passes_rows_follow_their_scenario_and_only_the_defaults_are_judged() {
        let mut r = results(526_028.0, true);
        let pairs = |rate: f64| {
            json!({"scenario": "pairs", "params": {"pairs": 50, "duration_s": 15.0},
                   "figures": {"messages_per_s": rate},
                   "latency_ms": {"send_to_new_message": {"p50_ms": 9.0, "p99_ms": 18.0}},
                   "integrity": {"ok": true, "stored_rows": 80_000},
                   "cpu": {"jetchat_s": 4.0, "nats_server_s": 3.2}})
        };
        r["passes"] = json!({
            "auto_delivered_false": {
                "settings": {"database": "sqlite", "auto_delivered": false},
                "scenarios": {"pairs": pairs(20_000.0)}
            },
            "postgres": {
                "settings": {"database": "postgresql", "postgresql": "15.14",
                             "auto_delivered": true},
                "scenarios": {"pairs": pairs(16_000.0), "fanout": {"failed": true}}
            }
        });
        let section = render(&r, "r.json");
        let defaults = section.find("| `pairs` | 50 sender").unwrap();
        let manual = section
            .find("| `pairs` · `AUTO_DELIVERED=false` | 50 sender")
            .unwrap();
        let postgres = section.find("| `pairs` · PostgreSQL | 50 sender").unwrap();
        assert!(defaults < manual && manual < postgres);
        assert!(section.contains("(13.6 % of the ceiling)"));
        assert!(section.contains("| ≥ 8.0 % of the ceiling | — (for comparison) |"));
        // 16,000 / 147,049: over 8 %, on PostgreSQL with the defaults.
        assert!(section.contains("(10.9 % of the ceiling)"));
        assert!(section.contains("| ≥ 8.0 % of the ceiling | yes |"));
        assert!(section.contains("| `fanout` · PostgreSQL | — | **FAILED**"));
        assert!(section.contains("on PostgreSQL 15.14 (a throwaway cluster"));
        assert!(!section.contains("No PostgreSQL pass"));
        assert!(section.contains("| `pairs` · PostgreSQL | 80,000 | 50 | 40 | 1.25: no |"));
        assert!(section.contains("| `pairs` · `AUTO_DELIVERED=false` | 80,000 | 50 | 40 | 1.25 |"));
        assert!(section.contains("the 4 message scenarios"));
    }

    #[test]
    fn rate_target_is_judged_at_its_share_of_the_ceiling() {
        let mut r = results(526_028.0, true);
        // 7 % of 147,049 publish/s: 10,293 msg/s.
        let rate_target = |rate: f64, delivered: f64, p99: f64| {
            json!({"params": {"connections": 200, "rate": rate, "duration_s": 15.0},
                   "figures": {"deliveries_per_s": delivered},
                   "latency_ms": {"send_to_new_message": {"p50_ms": 4.0, "p99_ms": p99},
                                  "send_to_accepted": {"p99_ms": 3.0}}})
        };
        r["scenarios"]["rate_target"] = rate_target(10_293.0, 10_290.0, 21.0);
        let section = render(&r, "r.json");
        assert!(section.contains("10,293 msg/s open loop (7.0 % of the ceiling), 15 s"));
        assert!(section.contains("≤ 25 ms at 7.0 % of the ceiling (10,293 msg/s) | yes |"));
        for (rate, delivered, p99) in [
            (10_293.0, 10_290.0, 26.0),
            (10_293.0, 9_000.0, 21.0),
            (5_000.0, 5_000.0, 21.0),
        ] {
            r["scenarios"]["rate_target"] = rate_target(rate, delivered, p99);
            let section = render(&r, "r.json");
            assert!(
                section.contains("(10,293 msg/s) | no |"),
                "{rate} offered, {delivered} delivered, p99 {p99}"
            );
        }
    }

    #[test]
    fn a_met_target_and_a_failed_check_show() {
        let section = render(&results(600_028.0, false), "r.json");
        assert!(section.contains("| ≥ 4 × the ceiling (588,198 deliveries/s) | yes |"));
        assert!(section.contains("**Database check FAILED** for: `fanout`"));
    }

    #[test]
    fn the_reconnect_row_shows_catch_up_and_delivery() {
        let mut r = results(526_028.0, true);
        r["scenarios"]["reconnect"] = json!({
            "params": {"clients": 200, "group_size": 10, "rate": 1000.0, "duration_s": 15.0,
                       "online_s": 1.5, "offline_s": 0.5},
            "figures": {"flaky_clients": 50, "catchups": 480, "replayed_frames_p50": 12,
                        "replayed_frames_p99": 40, "messages_per_s": 990.0,
                        "missing_deliveries": 0, "owed_deliveries": 133650,
                        "duplicates_beyond_overlap": 0, "resync_required": 0,
                        "delivery_ok": true},
            "latency_ms": {"reconnect_to_synced": {"p50_ms": 4.2, "p99_ms": 31.0}},
            "integrity": {"ok": true}
        });
        let section = render(&r, "r.json");
        assert!(section.contains("50 of them dropping every ~1.5 s (away ~0.5 s)"));
        assert!(section.contains("480 catch-ups: reconnect → `synced` p50 4.20 ms, p99 31.0 ms"));
        assert!(section.contains("0 of 133,650 deliveries missing"));
        assert!(section.contains("no `resync_required` | yes |"));
        assert!(!section.contains("instances, each resume"));
        r["scenarios"]["reconnect_across"] = r["scenarios"]["reconnect"].clone();
        r["scenarios"]["reconnect_across"]["params"]["instances"] = json!(2);
        let section = render(&r, "r.json");
        assert!(section.contains("| `reconnect_across` |"));
        assert!(section.contains("1,000 msg/s, 15 s; 2 instances, each resume on the next one"));
    }

    #[test]
    fn the_live_traffic_row_shows_typing_and_presence() {
        let mut r = results(526_028.0, true);
        r["scenarios"]["rate_live"] = json!({
            "params": {"connections": 200, "rate": 4000.0, "duration_s": 15.0,
                       "typing_per_sec": 2.0, "churn": 200, "churn_online_s": 2.0,
                       "churn_offline_s": 7.0},
            "figures": {"deliveries_per_s": 3998.0, "typing_sent_per_s": 399.5,
                        "typing_received_share": 0.9995, "presence_changes": 612,
                        "presence_received": 612},
            "latency_ms": {"send_to_new_message": {"p50_ms": 3.1, "p99_ms": 31.0}},
            "integrity": {"ok": true}
        });
        let section = render(&r, "r.json");
        assert!(section.contains("refreshing `typing` 2/s; 200 more users coming and going"));
        assert!(section.contains("`typing` 400/s, 100.0 % told to the other member"));
        assert!(section.contains("612 presence changes, 612 `presence` frames"));
        assert!(
            section.contains("beside the messages | no |"),
            "p99 31 ms is over 25 ms"
        );
    }

    #[test]
    fn the_mix_row_shows_edits_and_reactions() {
        let mut r = results(526_028.0, true);
        r["scenarios"]["rate_mix"] = json!({
            "params": {"connections": 200, "rate": 4000.0, "duration_s": 15.0,
                       "edits_per_sec": 1.0, "reactions_per_sec": 1.0},
            "figures": {"deliveries_per_s": 3998.0, "edits_sent_per_s": 200.0,
                        "edits_received_share": 1.0, "reactions_sent_per_s": 199.0,
                        "reactions_received_share": 0.5},
            "latency_ms": {"send_to_new_message": {"p50_ms": 3.1, "p99_ms": 12.0}},
            "integrity": {"ok": true}
        });
        let section = render(&r, "r.json");
        assert!(section.contains("editing its newest message 1/s and reacting to the other's 1/s"));
        assert!(section.contains("200 edits/s, 100.0 % of `message_edited` received"));
        assert!(section.contains("199 reactions/s, 50.0 % of `reaction_added` received"));
        assert!(section.contains("beside the messages | yes |"));
    }

    #[test]
    fn the_many_chats_row_shows_setup_subscriptions_and_membership() {
        let mut r = results(526_028.0, true);
        r["scenarios"]["many_chats"] = json!({
            "params": {"users": 20000, "chats_per_user": 10, "private_per_user": 5,
                       "group_size": 5, "online": 2000, "rate": 1000.0, "duration_s": 30.0},
            "figures": {"setup_create_s": 61.4, "router_subscriptions": 17712,
                        "jetchat_rss_per_subscription_bytes": 2048.4, "deliveries_per_s": 410.0,
                        "membership_frames_missing": 0, "membership_frames_expected": 420},
            "latency_ms": {"send_to_new_message": {"p50_ms": 3.1, "p99_ms": 12.0},
                           "handshake_to_unread": {"p50_ms": 4.0, "p99_ms": 9.0},
                           "post_chats_to_chat_created": {"p50_ms": 6.0, "p99_ms": 15.0},
                           "add_members_to_member_added": {"p50_ms": 5.0, "p99_ms": 14.0}},
            "integrity": {"ok": true}
        });
        let section = render(&r, "r.json");
        assert!(
            section
                .contains("20,000 users in 10 chats each (5 private, groups of 5), 2,000 online")
        );
        assert!(section.contains("chats created over REST in 61 s"));
        assert!(section.contains("17,712 router subscriptions, **2,048 B of RSS each**"));
        assert!(section.contains("0 of 420 membership frames missing"));
        assert!(section.contains("every membership frame told | yes |"));
        r["scenarios"]["many_chats"]["figures"]["membership_frames_missing"] = json!(3);
        assert!(render(&r, "r.json").contains("every membership frame told | no |"));
    }

    #[test]
    fn the_soak_row_shows_the_verdicts() {
        let mut r = results(526_028.0, true);
        r["scenarios"]["soak"] = json!({
            "params": {"connections": 200, "private_clients": 100, "group_size": 10,
                       "rate": 500.0, "typing_per_sec": 0.5, "edits_per_sec": 0.1,
                       "reactions_per_sec": 0.1, "churn": 50, "duration_s": 1200.0,
                       "warmup_s": 120.0},
            "figures": {"flaky_clients": 20, "messages_per_s": 480.0, "deliveries_per_s": 2400.0,
                        "rss_first_kib": 90_000, "rss_worst_kib": 93_500, "fds_first": 290,
                        "fds_worst": 301, "p99_early_ms": 12.5, "p99_late_ms": 14.1,
                        "missing_deliveries": 0, "owed_deliveries": 2_880_000,
                        "duplicates_beyond_overlap": 0, "catchups": 2100, "soak_ok": true},
            "integrity": {"ok": true}
        });
        let section = render(&r, "r.json");
        assert!(section.contains(
            "| `soak` | 200 clients (100 in private chats, the others in groups of 10), 500 msg/s"
        ));
        assert!(section.contains("20 of them dropping and resuming with `?since=`, 50 more users"));
        assert!(section.contains("1,200 s, the first 120 s warm-up"));
        assert!(section.contains("RSS 90,000 → 93,500 KiB, open files 290 → 301"));
        assert!(section.contains("p99 send → `new_message` 12.5 → 14.1 ms"));
        assert!(section.contains("0 of 2,880,000 deliveries missing"));
        assert!(section.contains("nothing lost | yes |"));
        r["scenarios"]["soak"]["figures"]["soak_ok"] = json!(false);
        assert!(render(&r, "r.json").contains("nothing lost | no |"));
    }

    #[test]
    fn only_the_marked_section_is_replaced() {
        let doc = format!("# title\n\nintro\n\n{BEGIN}\nold figures\n{END}\n\n## analysis\n");
        let updated = replace_section(&doc, &format!("{BEGIN}\nnew\n{END}")).unwrap();
        assert_eq!(
            updated,
            format!("# title\n\nintro\n\n{BEGIN}\nnew\n{END}\n\n## analysis\n")
        );
        assert!(replace_section("# no markers\n", "x").is_err());
        assert!(replace_section(&format!("{END}\n{BEGIN}\n"), "x").is_err());
    }

    #[test]
    fn the_scaling_table_has_a_row_per_partition_count_and_marks_a_broken_order() {
        let scaling = json!({
            "p1_i1": {"figures": {"messages_per_s": 1000.0, "out_of_order": 0, "missing": 0, "doubled": 0}},
            "p2_i2": {"figures": {"messages_per_s": 1500.0, "out_of_order": 1, "missing": 0, "doubled": 0}},
        });
        let table = scaling_table(&scaling).unwrap();
        assert!(
            table.contains("| partitions | 1 instance | 2 instances |"),
            "{table}"
        );
        assert!(table.contains("| 1 | 1,000 | — |"), "{table}");
        assert!(table.contains("| 2 | — | 1,500 ✗ |"), "{table}");
        assert!(scaling_table(&json!({})).is_none());
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(count(147049.4), "147,049");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(1000.0), "1,000");
        assert_eq!(count(0.0), "0");
        assert_eq!(ms(Some(0.951)), "0.951");
        assert_eq!(ms(Some(48.127)), "48.1");
        assert_eq!(ms(Some(811.0)), "811");
        assert_eq!(percent(0.0359), "3.6 %");
    }
}
