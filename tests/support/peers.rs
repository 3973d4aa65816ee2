//! Authoritative peers as children on loopback: BIND's `named` and Knot's
//! `knotd`, each in its own temp dir on a free port, killed on drop. Each
//! takes the zones it serves and config text of its own syntax, so tests
//! can make them primaries, secondaries or comparisons.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::dns::{raw_query, tcp_raw};
use super::tools::tool;
use super::{KillOnDrop, free_port};

/// Waits until `addr` answers an SOA query for `zone` over TCP with an
/// answer (the zone is loaded), or panics with `log()`.
fn wait_zone(addr: SocketAddr, zone: &str, child: &mut KillOnDrop, log: impl Fn() -> String) {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let q = raw_query(0x5151, 0, [1, 0, 0, 0], zone, 6, &[]);
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            && let Some(r) = tcp_raw(addr, &q)
            && r.len() > 7
            && u16::from_be_bytes([r[6], r[7]]) > 0
        {
            return;
        }
        if let Ok(Some(st)) = child.0.try_wait() {
            panic!("{zone}: peer exited ({st}):\n{}", log());
        }
        assert!(Instant::now() < end, "{zone} not served:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// BIND 9's `named` in the foreground.
pub struct Named {
    child: KillOnDrop,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Named {
    /// Serves `zones` (name, text) as primaries; `options` goes inside
    /// `options { }` and `conf` after it (keys, more zones). Waits for the
    /// first zone. No control channel, no recursion.
    pub fn start(zones: &[(&str, &str)], options: &str, conf: &str) -> Named {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let port = free_port();
        let mut zone_conf = String::new();
        for (name, text) in zones {
            std::fs::write(dir.path().join(format!("{name}.zone")), text).unwrap();
            zone_conf += &format!(
                "zone \"{name}\" {{ type primary; file \"{d}/{name}.zone\"; check-names ignore; }};\n"
            );
        }
        std::fs::write(
            dir.path().join("named.conf"),
            format!(
                r#"options {{
  directory "{d}";
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  pid-file "{d}/named.pid";
  session-keyfile "{d}/session.key";
  recursion no;
  dnssec-validation no;
  notify no;
{options}
}};
controls {{ }};
{zone_conf}{conf}"#
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("named.log")).unwrap();
        let child = Command::new(tool("named"))
            .args(["-g", "-c"])
            .arg(dir.path().join("named.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start named");
        let mut n = Named {
            child: KillOnDrop(child),
            addr: ([127, 0, 0, 1], port).into(),
            dir,
        };
        if let Some((first, _)) = zones.first() {
            let log = n.dir.path().join("named.log");
            wait_zone(n.addr, first, &mut n.child, || {
                std::fs::read_to_string(&log).unwrap_or_default()
            });
        }
        n
    }
}

/// Knot DNS's `knotd`.
pub struct Knot {
    child: KillOnDrop,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Knot {
    /// Writes `files` (name, text) into `<dir>/zones` and starts knotd
    /// with `conf` appended after its `server`, `database`, `control` and
    /// `log` sections (`key:`, `remote:`, `acl:`, `template:`, `zone:`).
    /// `{zones}` in `conf` stands for the zones directory. Waits until
    /// `ready` (a zone) answers its SOA, unless it is empty.
    pub fn start(files: &[(&str, &str)], conf: &str, ready: &str) -> Knot {
        Self::start_on(free_port(), files, conf, ready)
    }

    /// [`Knot::start`] on a port chosen beforehand (a peer's config names it).
    pub fn start_on(port: u16, files: &[(&str, &str)], conf: &str, ready: &str) -> Knot {
        Self::start_with(port, files, "", conf, ready)
    }

    /// [`Knot::start_on`] with more `server:` lines (`nsid: ...`), indented
    /// four spaces.
    pub fn start_with(
        port: u16,
        files: &[(&str, &str)],
        server: &str,
        conf: &str,
        ready: &str,
    ) -> Knot {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["zones", "run", "db"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        for (name, text) in files {
            std::fs::write(d.join("zones").join(name), text).unwrap();
        }
        let conf = conf.replace("{zones}", &d.join("zones").display().to_string());
        let text = format!(
            r#"server:
    rundir: "{run}"
    pidfile: "{run}/knot.pid"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    udp-max-payload: 1232
{server}
database:
    storage: "{db}"
control:
    listen: "{run}/knot.sock"
log:
  - target: "{log}"
    any: info
{conf}"#,
            run = d.join("run").display(),
            db = d.join("db").display(),
            log = d.join("knot.log").display(),
        );
        std::fs::write(d.join("knot.conf"), text).unwrap();
        let child = Command::new(tool("knotd"))
            .arg("-c")
            .arg(d.join("knot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn knotd");
        let mut k = Knot {
            child: KillOnDrop(child),
            addr: ([127, 0, 0, 1], port).into(),
            dir,
        };
        if !ready.is_empty() {
            let log = k.dir.path().join("knot.log");
            wait_zone(k.addr, ready, &mut k.child, || {
                std::fs::read_to_string(&log).unwrap_or_default()
            });
        }
        k
    }

    pub fn zones(&self) -> PathBuf {
        self.dir.path().join("zones")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knot.log")).unwrap_or_default()
    }

    /// `knotc <args>` on this server's control socket; its output.
    pub fn knotc(&self, args: &[&str]) -> String {
        let out = Command::new(tool("knotc"))
            .arg("-s")
            .arg(self.dir.path().join("run/knot.sock"))
            .args(args)
            .output()
            .expect("run knotc");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

/// The answer records of a response as (type, RDATA with names
/// uncompressed), in message order.
pub fn answer_rdata(msg: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let skip_name = |mut p: usize| -> usize {
        loop {
            let l = msg[p];
            if l == 0 {
                return p + 1;
            }
            if l & 0xC0 == 0xC0 {
                return p + 2;
            }
            p += 1 + l as usize;
        }
    };
    let an = u16::from_be_bytes([msg[6], msg[7]]);
    let mut p = skip_name(12) + 4;
    let mut out = Vec::new();
    for _ in 0..an {
        p = skip_name(p);
        let t = u16::from_be_bytes([msg[p], msg[p + 1]]);
        let len = u16::from_be_bytes([msg[p + 8], msg[p + 9]]) as usize;
        let rd = geosteer::rdata_from_wire(t, msg, p + 10, len)
            .unwrap_or_else(|e| panic!("type {t}: {e}"));
        out.push((t, rd));
        p += 10 + len;
    }
    out
}

/// A file's text, for messages.
pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}
