//! A 3-node NATS JetStream cluster with R3 streams: a node dies under load and comes back,
//! and no accepted message is lost.

use std::{path::PathBuf, process::Stdio};

use crate::{
    failures::{assert_stored_exactly_once, send_until_accepted},
    helpers::{eventually, persister_consumer, spawn_app_with},
};

/// Three nats-server processes joined by cluster routes, each with its own store.
struct NatsCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    ports: Vec<(u16, u16)>,
    nodes: Vec<Option<std::process::Child>>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl NatsCluster {
    async fn start() -> NatsCluster {
        let configured = std::env::var_os("NATS_SERVER_BIN").map(PathBuf::from);
        let bin = jetchat::bus::embedded::find_binary(configured.as_deref()).expect("nats-server");
        let ports = (0..3).map(|_| (free_port(), free_port())).collect();
        let mut cluster = NatsCluster {
            bin,
            dir: tempfile::tempdir().unwrap(),
            ports,
            nodes: Vec::new(),
        };
        for node in 0..3 {
            let child = cluster.spawn(node);
            cluster.nodes.push(Some(child));
        }
        // JetStream answers once the cluster elected its meta leader. The leader may not
        // know all three peers yet, so an R3 stream can still be refused for "no suitable
        // peers": jetchat's start-up waits for that itself (`bus::streams::ensure`).
        let client = cluster.client().await;
        let js = async_nats::jetstream::new(client);
        eventually("the cluster has a JetStream meta leader", || async {
            match tokio::time::timeout(std::time::Duration::from_millis(500), js.query_account())
                .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no answer yet".into()),
            }
        })
        .await;
        cluster
    }

    fn spawn(&self, node: usize) -> std::process::Child {
        let (port, cluster_port) = self.ports[node];
        let routes: Vec<String> = self
            .ports
            .iter()
            .map(|(_, c)| format!("nats://127.0.0.1:{c}"))
            .collect();
        std::process::Command::new(&self.bin)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-n",
                &format!("node-{node}"),
            ])
            .args(["-js", "-sd"])
            .arg(self.dir.path().join(format!("node-{node}")))
            .args([
                "--cluster_name",
                "jetchat-test",
                "--cluster",
                &format!("nats://127.0.0.1:{cluster_port}"),
            ])
            .args(["--routes", &routes.join(",")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts")
    }

    /// Every node's client URL, comma-separated (as NATS_URL takes them).
    fn url(&self) -> String {
        self.ports
            .iter()
            .map(|(p, _)| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    async fn client(&self) -> async_nats::Client {
        let url = self.url();
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(jetchat::bus::server_list(&url).as_slice())
            .await
            .expect("cluster reachable")
    }

    fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn restart(&mut self, node: usize) {
        self.nodes[node] = Some(self.spawn(node));
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in 0..self.nodes.len() {
            self.kill(node);
        }
    }
}

#[tokio::test]
async fn a_cluster_node_dying_under_load_loses_nothing_that_was_accepted() {
    let mut cluster = NatsCluster::start().await;
    let url = cluster.url();
    // A generous command timeout: on a loaded machine a fresh cluster's first replicated
    // writes can take seconds, and this test is about losing a node, not about that.
    let app = spawn_app_with(&[
        ("NATS_URL", &url),
        ("NATS_STREAM_REPLICAS", "3"),
        ("COMMAND_TIMEOUT_MS", "30000"),
    ])
    .await;
    // A fresh cluster is still electing the consumer's leader, and a pull sent before that
    // is only renewed seconds later: start once the persister's pull is waiting at the leader
    // (else the first command can outlast COMMAND_TIMEOUT_MS, a 504).
    let js = async_nats::jetstream::new(cluster.client().await);
    eventually(
        "the persister's pull reaches the consumer's leader",
        || async {
            if persister_consumer(&js).await?.num_waiting > 0 {
                Ok(())
            } else {
                Err("no pull waiting".to_owned())
            }
        },
    )
    .await;
    let group = app.create_chat(1, true, &[2]).await;
    let mut alice = app.connect(1).await;
    let mut accepted = Vec::new();
    for i in 0..60 {
        if i == 20 {
            cluster.kill(0);
        }
        if i == 40 {
            cluster.restart(0);
        }
        let id = format!("m{i}");
        send_until_accepted(&mut alice, group, &id).await;
        accepted.push(id);
    }
    assert_stored_exactly_once(&app.database_url, &accepted).await;
    // The streams really are replicated three times.
    let info = js
        .get_stream("CHAT_IN")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.config.num_replicas, 3);
}
