//! Response rate limiting over real sockets: a UDP flood from one loopback
//! address is cut to the configured rate (the rest dropped or slipped as
//! empty TC answers) while another address is served normally; TCP is never
//! limited; and the reflection amplification factor (bytes out / bytes in)
//! for ANY and for a big TXT answer, with and without RRL.

use crate::support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::dns::{udp_exchange, wire_query as query};
use support::server::Fixture;

const RATE: u64 = 50;

/// What one source sent and got back.
#[derive(Debug, Default)]
struct Flood {
    sent: u64,
    sent_bytes: u64,
    recv_bytes: u64,
    /// Responses with records.
    full: u64,
    /// Empty TC responses (RRL slips).
    stubs: u64,
    secs: f64,
}

impl Flood {
    fn amplification(&self) -> f64 {
        self.recv_bytes as f64 / self.sent_bytes as f64
    }
}

/// Sends `count` copies of `q` (fresh IDs) from `from` at about `per_sec`,
/// and counts what comes back until 300 ms after the last one.
fn flood(to: SocketAddr, from: &str, q: &[u8], count: u64, per_sec: u64) -> Flood {
    let sock = UdpSocket::bind((from, 0)).unwrap();
    let rx = sock.try_clone().unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let reader = {
        let (done, counts) = (done.clone(), counts.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_535];
            loop {
                match rx.recv(&mut buf) {
                    Ok(n) => {
                        counts[0].fetch_add(n as u64, Ordering::Relaxed);
                        let tc = buf[2] & 0x02 != 0;
                        let records = buf[6..12].iter().any(|&b| b != 0);
                        counts[if tc && !records { 2 } else { 1 }].fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) if done.load(Ordering::Relaxed) => break,
                    Err(_) => {}
                }
            }
        })
    };
    let start = Instant::now();
    let mut q = q.to_vec();
    let mut f = Flood::default();
    for i in 0..count {
        // Pace: query i is due at i / per_sec seconds.
        let due = Duration::from_secs_f64(i as f64 / per_sec as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        q[..2].copy_from_slice(&(i as u16).to_be_bytes());
        if sock.send_to(&q, to).is_ok() {
            f.sent += 1;
            f.sent_bytes += q.len() as u64;
        }
    }
    f.secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    f.recv_bytes = counts[0].load(Ordering::Relaxed);
    f.full = counts[1].load(Ordering::Relaxed);
    f.stubs = counts[2].load(Ordering::Relaxed);
    f
}

fn rrl_fixture() -> Fixture {
    Fixture::new(
        "",
        &format!("rrl: {{rate: {RATE}, slip: 2, window: 15s}}\n"),
    )
}

fn big_txt() -> Vec<u8> {
    query(0, "bigtxt.cdn.example", 16, Some(1232), None)
}

#[test]
fn flood_from_one_address_is_cut_to_the_rate_and_another_is_unaffected() {
    let fx = rrl_fixture();
    let s = fx.start();
    let to = s.udp;
    let attacker = std::thread::spawn(move || flood(to, "127.0.0.2", &big_txt(), 4000, 2000));
    // A well-behaved client in another /24, at 20 queries a second meanwhile.
    // (127.0.0.3 would share the attacker's /24, and so its limit: below.)
    let sock = UdpSocket::bind("127.0.1.3:0").unwrap();
    let mut answered = 0;
    for i in 0..40u16 {
        let q = query(10_000 + i, "www.cdn.example", 1, Some(1232), None);
        if let Some(r) = udp_exchange(&sock, to, &q) {
            assert_eq!(r[2] & 0x02, 0, "the other client got TC");
            assert!(
                u16::from_be_bytes([r[6], r[7]]) > 0,
                "the other client got no answer"
            );
            answered += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let f = attacker.join().unwrap();
    let per_sec = f.full as f64 / f.secs;
    println!(
        "flood from 127.0.0.2: {} queries in {:.2}s; {} full answers ({per_sec:.0}/s, rate {RATE}/s), {} TC stubs; \
         127.0.1.3: {answered}/40 answered",
        f.sent, f.secs, f.full, f.stubs
    );
    assert_eq!(answered, 40, "the client in another prefix was limited");
    // One second's credit, then the debt keeps the flood limited.
    assert!(
        f.full <= RATE * (f.secs.ceil() as u64 + 1),
        "{} full answers in {:.2}s",
        f.full,
        f.secs
    );
    assert!(
        f.full >= RATE / 2,
        "the first second's credit was not granted: {}",
        f.full
    );
    // slip 2: about every other limited response is a TC stub.
    let limited = f.sent - f.full;
    assert!(
        f.stubs * 3 >= limited && f.stubs * 3 <= limited * 2,
        "{} stubs for {limited} limited",
        f.stubs
    );
    let dropped = s.metrics.sum("geosteer_rrl_dropped_total");
    let slipped = s.metrics.sum("geosteer_rrl_slipped_total");
    println!("metrics: geosteer_rrl_dropped_total {dropped}, geosteer_rrl_slipped_total {slipped}");
    assert_eq!(slipped, f.stubs, "slips counted in metrics");
    assert!(
        dropped >= limited / 3,
        "drops counted in metrics: {dropped}"
    );

    // The limit is per /24: a neighbour of the attacker is limited too.
    let neighbour = UdpSocket::bind("127.0.0.3:0").unwrap();
    neighbour
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for i in 0..4u16 {
        let q = query(20_000 + i, "bigtxt.cdn.example", 16, Some(1232), None);
        neighbour.send_to(&q, to).unwrap();
        if let Ok(n) = neighbour.recv(&mut buf) {
            let r = &buf[..n];
            assert!(
                r[2] & 0x02 != 0 && r[6..12] == [0; 6],
                "127.0.0.3 got a full answer inside a limited /24"
            );
        }
    }

    // TCP from the limited address is answered in full: a real resolver
    // that got a slip retries there.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut c = sock.connect(s.tcp).await.unwrap();
        for i in 0..(RATE as u16 * 2) {
            let mut q = big_txt();
            q[..2].copy_from_slice(&i.to_be_bytes());
            let mut msg = (q.len() as u16).to_be_bytes().to_vec();
            msg.extend_from_slice(&q);
            c.write_all(&msg).await.unwrap();
            let len = c.read_u16().await.unwrap() as usize;
            let mut r = vec![0; len];
            c.read_exact(&mut r).await.unwrap();
            assert_eq!(r[2] & 0x02, 0, "TCP answer {i} truncated");
            assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1, "TCP answer {i} empty");
        }
    });
}

#[test]
fn rrl_cuts_amplification_for_any_and_big_txt() {
    let off = Fixture::new("", "").start();
    let on_fx = rrl_fixture();
    let on = on_fx.start();
    let cases = [
        (
            "ANY cdn.example (EDNS 1232)",
            query(0, "cdn.example", 255, Some(1232), None),
        ),
        ("TXT bigtxt.cdn.example (EDNS 1232)", big_txt()),
    ];
    for (i, (what, q)) in cases.iter().enumerate() {
        // A fresh source /24 per measurement, so one doesn't inherit debt.
        let a = flood(off.udp, &format!("127.0.{}.4", 10 + i), q, 3000, 2000);
        let b = flood(on.udp, &format!("127.0.{}.5", 20 + i), q, 3000, 2000);
        println!(
            "amplification {what}: without RRL {:.2} ({} B out / {} B in, {} answers), \
             with RRL {:.2} ({} B / {} B, {} full, {} TC stubs)",
            a.amplification(),
            a.recv_bytes,
            a.sent_bytes,
            a.full,
            b.amplification(),
            b.recv_bytes,
            b.sent_bytes,
            b.full,
            b.stubs
        );
        assert!(
            a.full >= a.sent * 9 / 10,
            "{what}: unlimited server lost answers: {a:?}"
        );
        assert!(
            b.amplification() < 1.0,
            "{what}: RRL still amplifies: {b:?}"
        );
        assert!(
            b.amplification() * 2.0 < a.amplification(),
            "{what}: RRL did not cut amplification"
        );
    }
}
