//! RUM ingest benchmark: a `geosteer serve` (the release binary, pinned to
//! one CPU) takes beacons over keep-alive HTTP connections from many
//! loopback /24s while a prober measures the DNS path's latency; the same
//! prober runs first without beacons.
//!
//! ```sh
//! cargo build --release && cargo build --release --example rum_ingest
//! taskset -c 1 target/release/examples/rum_ingest [SECONDS] [CONNECTIONS]
//! ```
//!
//! The server runs under `taskset -c 0` (its UDP worker, HTTP runtime and
//! aggregator share that one core; `PIN=0` leaves it unpinned, for a
//! machine with cores to spare). `RUM_CPUS=1` puts `cpus: [1]` in its
//! `rum:` section, as an operator keeps the RUM threads off the DNS
//! workers' core: the listener and the aggregator then run on CPU 1 with
//! the beacon senders, the DNS worker alone on CPU 0. `RATE=<beacons/s>` paces the beacons
//! instead of sending them as fast as the server takes them. Reported: beacons per second of wall
//! time and per second of the server's CPU time (utime + stime from
//! /proc), which is the "per core" figure even on a shared machine; and
//! the same for the RUM threads alone (the listener and the aggregator:
//! the server's CPU also counts the DNS worker answering the prober); and
//! the DNS p50/p99/p99.9 before, with and after the beacon load, with the
//! machine's load average beside each (the prober runs SCHED_FIFO when
//! allowed, so its own CPU's queue of beacon senders does not count).
//! Every beacon must be accepted (204) and none dropped. `PORTS=<first>`
//! sets the server's DNS, admin and RUM ports (25100-25102 by default;
//! `PORTS=0`: free ones).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server's DNS, admin and RUM ports: `PORTS=<first>` and the two
/// after it (25100 by default), else free ones the system picks
/// (`PORTS=0`).
fn ports() -> (u16, u16, u16) {
    let first: u16 = std::env::var("PORTS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(25100);
    if first > 0 {
        return (first, first + 1, first + 2);
    }
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    (free(), free(), free())
}

/// A keep-alive HTTP/1.1 connection from a chosen source address.
struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn open(from: IpAddr, to: SocketAddr) -> Conn {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::new(from, 0).into()).unwrap();
        s.connect(&to.into()).unwrap();
        let s: TcpStream = s.into();
        s.set_nodelay(true).unwrap();
        Conn {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    /// Sends one request, returns (status, body).
    fn call(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: rum\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut req = head.into_bytes();
        req.extend_from_slice(body);
        self.w.write_all(&req).unwrap();
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let code: u16 = line.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            self.r.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut b = vec![0u8; len];
        self.r.read_exact(&mut b).unwrap();
        (code, b)
    }
}

/// CPU seconds (user + system) a process has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// CPU seconds of the process's threads whose name starts with `prefix`.
fn thread_cpu_secs(pid: u32, prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let f: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
            Some((f[11].parse::<f64>().ok()? + f[12].parse::<f64>().ok()?) / 100.0)
        })
        .sum()
}

/// Each thread of the process: (name, the CPUs it may run on).
fn thread_cpus(pid: u32) -> Vec<(String, String)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = tasks
        .flatten()
        .filter_map(|t| {
            let name = std::fs::read_to_string(t.path().join("comm")).ok()?;
            let status = std::fs::read_to_string(t.path().join("status")).ok()?;
            let cpus = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
            Some((name.trim().to_string(), cpus.trim().to_string()))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Queries `www.cdn.example` with ECS at ~`qps` until `stop`; latencies in µs.
fn probe(dns: SocketAddr, qps: u64, stop: Arc<AtomicBool>) -> Vec<u64> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut q = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    for l in ["www", "cdn", "example"] {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q.extend_from_slice(&[
        0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 11, 0, 8, 0, 7, 0, 1, 24, 0, 77, 88, 8,
    ]);
    // The instrument must not wait behind the beacon senders on its own
    // CPU: real-time priority when allowed (root), else as it comes.
    // SAFETY: a plain syscall on the calling thread.
    let fifo = unsafe {
        let p = libc::sched_param { sched_priority: 10 };
        libc::sched_setscheduler(0, libc::SCHED_FIFO, &p) == 0
    };
    if !fifo {
        eprintln!("prober: SCHED_FIFO refused, latencies include its own CPU's queue");
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    let gap = Duration::from_micros(1_000_000 / qps);
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        s.send_to(&q, dns).unwrap();
        if s.recv_from(&mut buf).is_ok() {
            out.push(t.elapsed().as_micros() as u64);
        }
        next += gap;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    out
}

/// [`probe`] alone for `secs`: the latencies and the load average after.
fn probe_quiet(dns: SocketAddr, secs: u64) -> (Vec<u64>, String) {
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let prober = std::thread::spawn(move || probe(dns, 2000, s2));
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    (prober.join().unwrap(), loadavg())
}

fn pct(v: &mut [u64], p: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let conns: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = root.join("target/release/geosteer");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("zones")).unwrap();
    for f in ["cdn.example.zone", "cdn.example.pools.yaml"] {
        std::fs::copy(root.join("zones").join(f), d.join("zones").join(f)).unwrap();
    }
    let (dns_port, http_port, rum_port) = ports();
    let rum_cpus = std::env::var("RUM_CPUS").ok();
    std::fs::write(
        d.join("geosteer.yaml"),
        format!(
            "listen: [127.0.0.1:{dns_port}]\nzones: zones\ngeodb: {}\nhttp: 127.0.0.1:{http_port}\nworkers: 1\nwatch: false\nstate_file: state.json\nrum:\n  listen: 127.0.0.1:{rum_port}\n  rate: 100000000\n{}",
            root.join("geodb/demo-city.mmdb").display(),
            rum_cpus
                .as_ref()
                .map(|c| format!("  cpus: [{c}]\n"))
                .unwrap_or_default()
        ),
    )
    .unwrap();
    let pinned = std::env::var("PIN").as_deref() != Ok("0")
        && Command::new("taskset").arg("-V").output().is_ok();
    let rate: f64 = std::env::var("RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0.0);
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0"]).arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    let child = cmd
        .args(["serve", "--config"])
        .arg(d.join("geosteer.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start geosteer (cargo build --release first)");
    let server = Kill(child);
    let pid = server.0.id();
    let rum: SocketAddr = ([127, 0, 0, 1], rum_port).into();
    let dns: SocketAddr = ([127, 0, 0, 1], dns_port).into();
    let t = Instant::now();
    while TcpStream::connect(rum).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "server pid {pid}{}",
        if pinned { " on CPU 0 (taskset)" } else { "" }
    );
    for (thread, cpus) in thread_cpus(pid) {
        println!("  thread {thread:<20} may run on CPUs {cpus}");
    }

    // DNS latency without beacons.
    let (mut quiet, load_quiet) = probe_quiet(dns, secs.min(5));

    // Tokens: per connection a /24 of its own, as many as it will post.
    let per_conn = (25_000 * secs as usize).div_ceil(conns);
    let t = Instant::now();
    let tokens: Vec<(IpAddr, Vec<String>)> = (0..conns)
        .map(|i| {
            let from = IpAddr::V4(Ipv4Addr::new(127, 40 + (i / 250) as u8, (i % 250) as u8, 1));
            (from, Vec::new())
        })
        .collect();
    let tokens = Arc::new(Mutex::new(tokens));
    std::thread::scope(|s| {
        for i in 0..conns {
            let tokens = tokens.clone();
            s.spawn(move || {
                let from = tokens.lock().unwrap()[i].0;
                let mut c = Conn::open(from, rum);
                let mut mine = Vec::with_capacity(per_conn);
                for _ in 0..per_conn {
                    let (code, body) = c.call("GET", "/rum/config?host=www.cdn.example", b"");
                    assert_eq!(code, 200);
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    mine.push(v["token"].as_str().unwrap().to_string());
                }
                tokens.lock().unwrap()[i].1 = mine;
            });
        }
    });
    let fetched = conns * per_conn;
    println!(
        "fetched {fetched} configs in {:.1?} ({:.0}/s)",
        t.elapsed(),
        fetched as f64 / t.elapsed().as_secs_f64()
    );

    // Beacons for `secs`, with the prober running.
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let prober = std::thread::spawn(move || probe(dns, 2000, s2));
    let sent = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_secs(pid);
    let (rum0, udp0) = (
        thread_cpu_secs(pid, "geosteer-rum"),
        thread_cpu_secs(pid, "geosteer-udp"),
    );
    let t = Instant::now();
    let deadline = t + Duration::from_secs(secs);
    let tokens = Arc::try_unwrap(tokens).unwrap().into_inner().unwrap();
    std::thread::scope(|s| {
        for (from, list) in tokens {
            let sent = sent.clone();
            s.spawn(move || {
                let mut c = Conn::open(from, rum);
                let gap = (rate > 0.0).then(|| Duration::from_secs_f64(conns as f64 / rate));
                let mut next = Instant::now();
                for tok in list {
                    if Instant::now() >= deadline {
                        break;
                    }
                    if let Some(g) = gap {
                        next += g;
                        if let Some(d) = next.checked_duration_since(Instant::now()) {
                            std::thread::sleep(d);
                        }
                    }
                    let body = format!(r#"{{"token":"{tok}","rtt":{{"lhr":23.5,"fra":31.0,"cdg":28.2,"nrt":240.0}}}}"#);
                    let (code, _) = c.call("POST", "/rum/beacon", body.as_bytes());
                    assert_eq!(code, 204);
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid) - cpu0;
    let rum_cpu = thread_cpu_secs(pid, "geosteer-rum") - rum0;
    let udp_cpu = thread_cpu_secs(pid, "geosteer-udp") - udp0;
    stop.store(true, Ordering::Relaxed);
    let mut loaded = prober.join().unwrap();
    let load_loaded = loadavg();
    // The DNS path again without beacons: how much the machine moves.
    let (mut after, load_after) = probe_quiet(dns, secs.min(5));
    let n = sent.load(Ordering::Relaxed);
    // Let the aggregator catch up, then check nothing was dropped.
    std::thread::sleep(Duration::from_secs(2));
    let mut api = Conn::open(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        ([127, 0, 0, 1], http_port).into(),
    );
    let (_, body) = api.call("GET", "/api/rum", b"");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let (_, metrics) = api.call("GET", "/metrics", b"");
    let metrics = String::from_utf8_lossy(&metrics);
    let dropped = metrics
        .lines()
        .find_map(|l| l.strip_prefix("geosteer_rum_dropped_total{queue=\"beacons\"} "))
        .unwrap_or("0");
    println!(
        "beacons: {n} in {wall:.2} s = {:.0}/s wall; server CPU {cpu:.2} s = {:.0} beacons per CPU-second ({:.1} µs each, configs excluded)",
        n as f64 / wall,
        n as f64 / cpu,
        cpu * 1e6 / n as f64
    );
    println!(
        "of which RUM threads (listener, aggregator) {rum_cpu:.2} s = {:.0} beacons per CPU-second ({:.1} µs each); DNS worker (the prober's queries) {udp_cpu:.2} s",
        n as f64 / rum_cpu,
        rum_cpu * 1e6 / n as f64
    );
    println!(
        "aggregator took {} beacons, {} samples; dropped on a full queue: {dropped}",
        v["beacons"], v["samples"]
    );
    let row = |name: &str, v: &mut Vec<u64>, load: &str| {
        println!(
            "{name:<16} {:>7} {:>7} {:>7} {:>8}   {load}",
            pct(v, 0.5),
            pct(v, 0.99),
            pct(v, 0.999),
            v.len()
        )
    };
    println!(
        "DNS latency, µs (2,000 qps ECS A; RUM threads {}; load average 1/5/15 min at the end of each phase)",
        match &rum_cpus {
            Some(c) => format!("on CPUs {c}, DNS worker on CPU 0"),
            None if pinned => "on CPU 0 with the DNS worker".into(),
            None => "unpinned".into(),
        }
    );
    println!(
        "{:<16} {:>7} {:>7} {:>7} {:>8}   load",
        "phase", "p50", "p99", "p99.9", "answers"
    );
    row("before beacons", &mut quiet, &load_quiet);
    row("with beacons", &mut loaded, &load_loaded);
    row("after beacons", &mut after, &load_after);
}
