//! Unbound as a resolver in front of geosteer: subnetcache on (it sends
//! ECS to the authority), `cdn.example` stubbed to the geosteer under test,
//! a free loopback port; killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::tools::tool;
use super::{KillOnDrop, free_port};

pub struct Unbound {
    child: KillOnDrop,
    pub port: u16,
    log: PathBuf,
}

impl Unbound {
    /// Writes `<dir>/unbound.conf` and starts Unbound on it. `server` is
    /// more `server:` lines (indented four spaces: `module-config`, trust
    /// anchors, ECS limits...); the stub points at 127.0.0.1@`authority`.
    /// Ready once `dig static.cdn.example A` through it prints `ready`.
    pub fn start(dir: &Path, authority: u16, server: &str, ready: &str) -> Unbound {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let log = dir.join("unbound.log");
        let conf = dir.join("unbound.conf");
        let d = dir.display();
        std::fs::write(
            &conf,
            format!(
                r#"server:
    interface: 127.0.0.1@{port}
    port: {port}
    do-ip6: no
    num-threads: 1
    so-reuseport: no
    do-daemonize: no
    use-syslog: no
    verbosity: 1
    logfile: "{d}/unbound.log"
    username: ""
    chroot: ""
    directory: "{d}"
    pidfile: "{d}/unbound.pid"
    access-control: 127.0.0.0/8 allow
    # Our authority is on loopback; send it ECS and let it see ours.
    send-client-subnet: 127.0.0.1
    client-subnet-always-forward: yes
    do-not-query-localhost: no
    qname-minimisation: no
{server}stub-zone:
    name: "cdn.example"
    stub-addr: 127.0.0.1@{authority}
"#
            ),
        )
        .unwrap();
        let child = Command::new(tool("unbound"))
            .args(["-d", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start unbound");
        let mut u = Unbound {
            child: KillOnDrop(child),
            port,
            log,
        };
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let out = u.dig(&["+time=1", "+tries=1", "static.cdn.example", "A"]);
            if String::from_utf8_lossy(&out.stdout).contains(ready) {
                break;
            }
            if let Ok(Some(st)) = u.child.0.try_wait() {
                panic!("unbound exited ({st}):\n{}", u.log());
            }
            assert!(Instant::now() < end, "unbound not answering:\n{}", u.log());
            std::thread::sleep(Duration::from_millis(200));
        }
        u
    }

    /// What Unbound logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// dig against Unbound (from 127.0.0.1) with `args`.
    pub fn dig(&self, args: &[&str]) -> Output {
        Command::new(tool("dig"))
            .args(["@127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("run dig")
    }
}
