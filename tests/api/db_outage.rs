//! The database goes away for a few seconds under load (PostgreSQL stopped and started):
//! the persister retries and catches up; nothing is acked to JetStream before its commit.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::{
    failures::{assert_stored_exactly_once, send_until_accepted},
    helpers::spawn_app_with,
};

/// Whether the tests run as root (then PostgreSQL runs as the `postgres` user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A PostgreSQL cluster of this test's own, so it can be stopped and started.
struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Postgres {
    /// Runs a PostgreSQL tool, as the `postgres` user when the tests run as root.
    fn run(&self, tool: &str, args: &[&str]) {
        let tool = self.bin.join(tool);
        let as_root = is_root();
        let status = if as_root {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&tool)
                .args(args)
                .status()
        } else {
            Command::new(&tool).args(args).status()
        }
        .expect("PostgreSQL tool runs");
        assert!(status.success(), "{} {args:?} failed", tool.display());
    }

    fn start_server(&self) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("log");
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
    }

    fn stop_server(&self) {
        let data = self.dir.path().join("data");
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
    }

    fn start(bin: &Path) -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = Postgres {
            bin: bin.to_owned(),
            dir,
            port,
        };
        let data = pg.dir.path().join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
            ],
        );
        pg.start_server();
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let pg_ctl = self.bin.join("pg_ctl");
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(pg_ctl);
            c
        } else {
            Command::new(pg_ctl)
        };
        let _ = command
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .status();
    }
}

#[tokio::test]
async fn the_database_going_away_for_seconds_loses_nothing() {
    // scripts/test.sh sets TEST_PG_BIN (it installs PostgreSQL when missing).
    let Some(bin) = std::env::var_os("TEST_PG_BIN").map(PathBuf::from) else {
        eprintln!(
            "TEST_PG_BIN is not set: this test needs PostgreSQL's binaries (scripts/test.sh sets it)"
        );
        return;
    };
    let pg = Postgres::start(&bin);
    let url = pg.url();
    let app = spawn_app_with(&[("DATABASE_URL", &url)]).await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut accepted = Vec::new();
    for i in 0..60 {
        if i == 20 {
            pg.stop_server();
        }
        if i == 40 {
            pg.start_server();
        }
        let id = format!("m{i}");
        // Sending needs no database: JetStream accepts while PostgreSQL is down.
        send_until_accepted(&mut alice, group, &id).await;
        accepted.push(id);
    }
    assert_stored_exactly_once(&url, &accepted).await;
}
