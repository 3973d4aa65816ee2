//! RUM across a fleet on a real etcd: three instances share one token
//! secret and their learned aggregates. Beacons sent to one instance steer
//! all three within 15 s; with etcd gone every instance keeps answering
//! with what it has, a restarted one keeps what it learned (its state
//! file), and what was learned meanwhile spreads once etcd is back; an
//! instance restarted with etcd up gets the fleet's aggregates back.
//!
//! Needs `etcd` (Debian etcd-server); prints SKIPPED without it unless
//! GEOSTEER_REQUIRE_TOOLS=1.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::rum::{Client, site, www_edge};
use support::server::AppServer;
use support::tools::{need_tools, tool};
use support::wait::until_true;
use support::{free_port, write_file};

/// One etcd member on loopback; restartable on its data dir.
struct Etcd {
    dir: tempfile::TempDir,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

impl Etcd {
    fn start() -> Etcd {
        let mut e = Etcd {
            dir: tempfile::tempdir().unwrap(),
            client: free_port(),
            peer: free_port(),
            child: None,
        };
        e.up();
        e
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client)
    }

    fn up(&mut self) {
        let peer = format!("http://127.0.0.1:{}", self.peer);
        let child = Command::new(tool("etcd"))
            .args(["--name", "e0", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &self.url(),
                "--advertise-client-urls",
                &self.url(),
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args([
                "--initial-cluster",
                &format!("e0={peer}"),
                "--log-level",
                "warn",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        self.child = Some(child);
        let url = self.url();
        until_true("etcd up", Duration::from_secs(30), || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut c = etcd_client::Client::connect([url.clone()], None).await?;
                    c.put("/health", "x", None).await.map(drop)
                })
                .is_ok()
        });
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.down();
    }
}

/// Instance `name`'s config: the RUM site, the shared secret, the fleet.
fn instance(root: &Path, name: &str, etcd: &str, secret: &Path) -> PathBuf {
    let dir = root.join(name);
    let cfg = site(&dir, &format!("  secret_file: {}\n", secret.display()), "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    write_file(
        &dir,
        "geosteer.yaml",
        &format!(
            "{text}fleet:\n  etcd: [\"{etcd}\"]\n  instance: {name}\n  prefix: /rum-test/\n  lease_ttl: 3s\n"
        ),
    )
}

fn rum(app: &AppServer) -> std::net::SocketAddr {
    app.app().rum.as_ref().unwrap().addr
}

/// Five page views from `net` (127.1.N) to `to`, saying fra is fast and
/// lhr slow; the configs come from `config_from` (the same secret).
fn views(net: u8, config_from: &AppServer, to: &AppServer) {
    for i in 0..5 {
        let from = format!("127.1.{net}.{}", 10 + i);
        let (code, cfg) = Client::new(&from, rum(config_from)).config("www.cdn.example");
        assert_eq!(code, 200);
        let body = serde_json::json!({"token": cfg["token"], "rtt": {"lhr": 300.0, "fra": 20.0}});
        assert_eq!(
            Client::new(&from, rum(to)).post(body.to_string().as_bytes()),
            204
        );
    }
}

fn app(apps: &[Option<AppServer>], i: usize) -> &AppServer {
    apps[i].as_ref().unwrap()
}

fn edge(app: &AppServer, net: u8) -> String {
    www_edge(
        app.dns(),
        "127.0.0.1",
        Some((&format!("127.1.{net}.0"), 24)),
    )
    .0
}

#[test]
fn beacons_to_one_instance_steer_the_fleet() {
    let _counters = crate::shared_counters();
    if !need_tools(&["etcd"]) {
        return;
    }
    let mut etcd = Etcd::start();
    let root = tempfile::tempdir().unwrap();
    let secret = root.path().join("rum.secret");
    let cfgs: Vec<PathBuf> = ["a", "b", "c"]
        .iter()
        .map(|n| instance(root.path(), n, &etcd.url(), &secret))
        .collect();
    let mut apps: Vec<Option<AppServer>> = cfgs.iter().map(|c| Some(AppServer::load(c))).collect();
    for i in 0..3 {
        assert_eq!(edge(app(&apps, i), 1), "lhr");
    }

    // Beacons to a (configs from b: one secret for the fleet) steer all three.
    let t = Instant::now();
    views(1, app(&apps, 1), app(&apps, 0));
    for i in 0..3 {
        until_true(
            &format!("instance {i} to learn"),
            Duration::from_secs(15),
            || edge(app(&apps, i), 1) == "fra",
        );
    }
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    let s = support::http::get_json(app(&apps, 2).http(), "/api/rum");
    assert_eq!(
        s["cells"], 0,
        "c learned it through etcd, not from beacons: {s}"
    );
    assert_eq!(s["zones"][0]["fleet_instances"], 1, "{s}");

    // etcd gone: everyone keeps answering with what it learned; what b
    // learns now is not shared (yet).
    etcd.down();
    views(2, app(&apps, 1), app(&apps, 1));
    until_true("b to learn on its own", Duration::from_secs(15), || {
        edge(app(&apps, 1), 2) == "fra"
    });
    for i in 0..3 {
        assert_eq!(edge(app(&apps, i), 1), "fra", "instance {i} without etcd");
    }
    assert_eq!(edge(app(&apps, 0), 2), "lhr");

    // a restarted while etcd is down keeps what it learned.
    apps[0].take().unwrap().shutdown();
    apps[0] = Some(AppServer::load(&cfgs[0]));
    assert_eq!(edge(app(&apps, 0), 1), "fra", "a's state file");

    // etcd back: what b learned reaches a and c.
    etcd.up();
    for i in [0, 2] {
        until_true(
            &format!("instance {i} to hear of 127.1.2.0/24"),
            Duration::from_secs(30),
            || edge(app(&apps, i), 2) == "fra",
        );
    }

    // c restarted with etcd up: it learned nothing itself, the fleet tells it.
    apps[2].take().unwrap().shutdown();
    apps[2] = Some(AppServer::load(&cfgs[2]));
    until_true(
        "c to read the fleet's aggregates",
        Duration::from_secs(15),
        || edge(app(&apps, 2), 1) == "fra" && edge(app(&apps, 2), 2) == "fra",
    );
    // Nobody learned anything about a third network.
    for i in 0..3 {
        assert_eq!(edge(app(&apps, i), 3), "lhr");
    }
}
