//! dnstap end to end: a file written by a running server is read by
//! Debian's `dnstap-ldns` (and decoded by hand: message types, client
//! address, the ECS option as sent, whole wire messages, START … STOP), and
//! a Frame Streams reader on a Unix socket that goes away and comes back
//! gets messages again, while answers never wait for it.

use crate::support;

use std::io::Write as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use geosteer::ServerConfig;
use geosteer::dnstap_proto as proto;
use geosteer::fstrm::{self, Control, Frame};
use hickory_proto::rr::{Name, RecordType};
use prost::Message as _;
use support::dns::{tcp_raw, udp_raw};
use support::http::metric;
use support::server::AppServer;
use support::tools::{need_tools, tool};
use support::wait::until;

/// Patience on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(20);

/// The servers of this file's tests share the process's metrics (one
/// global recorder), and the tests count dnstap messages: one at a time.
static ONE_SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_server() -> std::sync::MutexGuard<'static, ()> {
    ONE_SERVER.lock().unwrap_or_else(|p| p.into_inner())
}

/// The demo zone and DB from the repository, with `extra` config lines.
fn config(dir: &Path, extra: &str) -> ServerConfig {
    let root = support::repo();
    let cfg = dir.join("geosteer.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: [127.0.0.1:0]\nzones: {}\ngeodb: {}\nhttp: 127.0.0.1:0\nworkers: 1\nwatch: false\n{extra}",
            root.join("zones").display(),
            root.join("geodb/demo-city.mmdb").display()
        ),
    )
    .unwrap();
    ServerConfig::load(&cfg).unwrap()
}

/// `www.cdn.example A` with ECS `ecs`, as bytes.
fn query(ecs: &str) -> Vec<u8> {
    geosteer::query_bytes(
        &Name::from_str("www.cdn.example.").unwrap(),
        RecordType::A,
        Some(ecs.parse().unwrap()),
    )
}

fn decode(frame: &[u8]) -> proto::Message {
    let d = proto::Dnstap::decode(frame).expect("a Dnstap message");
    assert_eq!(d.r#type, proto::DnstapType::Message as i32);
    assert!(d.version.unwrap().starts_with(b"geosteer "));
    d.message.expect("a message")
}

#[test]
fn file_is_read_by_dnstap_ldns() {
    let _one = one_server();
    let dir = tempfile::tempdir().unwrap();
    let tap = dir.path().join("tap.fstrm");
    let srv = AppServer::start(config(dir.path(), "dnstap: { file: tap.fstrm }\n"));
    let udp = srv.dns();
    let tcp = srv.tcp();
    let q = query("77.88.8.0/24");
    let answer = udp_raw(udp, &q).expect("a UDP answer");
    tcp_raw(tcp, &query("203.0.113.0/24")).expect("a TCP answer");

    // Flushed within a second or so, while the server runs.
    let have_tool = need_tools(&["dnstap-ldns"]);
    if have_tool {
        let text = until("dnstap-ldns to show all four messages", PATIENCE, || {
            let out = std::process::Command::new(tool("dnstap-ldns"))
                .arg("-r")
                .arg(&tap)
                .output()
                .unwrap();
            let s = String::from_utf8_lossy(&out.stdout).into_owned();
            (s.lines().count() >= 4).then_some(s)
        });
        let lines: Vec<_> = text.lines().collect();
        assert!(lines[0].contains(" AQ 127.0.0.1 UDP "), "{text}");
        assert!(lines[1].contains(" AR 127.0.0.1 UDP "), "{text}");
        assert!(lines[2].contains(" AQ 127.0.0.1 TCP "), "{text}");
        assert!(lines[3].contains(" AR 127.0.0.1 TCP "), "{text}");
        assert!(text.contains("\"www.cdn.example.\" IN A"), "{text}");
    }
    srv.shutdown();

    // The writer ends the stream with STOP once the server is gone.
    let bytes = until("the STOP frame", PATIENCE, || {
        let b = std::fs::read(&tap).unwrap();
        b.ends_with(&[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3])
            .then_some(b)
    });
    let mut r = &bytes[..];
    assert_eq!(
        fstrm::read_frame(&mut r).unwrap(),
        Frame::Control(Control::Start, vec![fstrm::CONTENT_TYPE.to_vec()])
    );
    let mut msgs = Vec::new();
    loop {
        match fstrm::read_frame(&mut r).unwrap() {
            Frame::Data(d) => msgs.push(decode(&d)),
            Frame::Control(Control::Stop, _) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(r.is_empty());
    assert_eq!(msgs.len(), 4);
    let (aq, ar) = (&msgs[0], &msgs[1]);
    assert_eq!(aq.r#type, proto::MessageType::AuthQuery as i32);
    assert_eq!(ar.r#type, proto::MessageType::AuthResponse as i32);
    assert_eq!(aq.query_address.as_deref(), Some(&[127, 0, 0, 1][..]));
    assert_eq!(aq.socket_family, Some(proto::SocketFamily::Inet as i32));
    assert_eq!(aq.socket_protocol, Some(proto::SocketProtocol::Udp as i32));
    assert_eq!(
        msgs[2].socket_protocol,
        Some(proto::SocketProtocol::Tcp as i32)
    );
    // The whole query as sent, ECS option included; the whole response.
    assert_eq!(aq.query_message.as_deref(), Some(&q[..]));
    let ecs_option = [0u8, 8, 0, 7, 0, 1, 24, 0, 77, 88, 8];
    assert!(q.windows(ecs_option.len()).any(|w| w == ecs_option));
    assert_eq!(ar.response_message.as_deref(), Some(&answer[..]));
    assert!(ar.response_time_sec.unwrap() >= aq.query_time_sec.unwrap());

    if have_tool {
        // And the YAML view shows the ECS and the answer.
        let out = std::process::Command::new(tool("dnstap-ldns"))
            .args(["-y", "-r"])
            .arg(&tap)
            .output()
            .unwrap();
        let y = String::from_utf8_lossy(&out.stdout);
        assert!(y.contains("type: AUTH_QUERY"), "{y}");
        assert!(y.contains("type: AUTH_RESPONSE"), "{y}");
        assert!(y.contains("query_address: \"127.0.0.1\""), "{y}");
        assert!(y.contains("192.0.2.20"), "{y}");
    }
}

/// A Frame Streams reader: accepts one connection at a time, does the
/// bidirectional handshake and forwards decoded messages until told to go.
struct Reader {
    msgs: mpsc::Receiver<proto::Message>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reader {
    fn start(path: &Path) -> Reader {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let (tx, msgs) = mpsc::channel();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                let conn = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                };
                Self::serve(conn, &tx, &stop2);
            }
        });
        Reader {
            msgs,
            stop,
            thread: Some(thread),
        }
    }

    fn serve(
        mut c: UnixStream,
        tx: &mpsc::Sender<proto::Message>,
        stop: &std::sync::atomic::AtomicBool,
    ) {
        c.set_nonblocking(false).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let ready = fstrm::read_frame(&mut c).unwrap();
        assert_eq!(
            ready,
            Frame::Control(Control::Ready, vec![fstrm::CONTENT_TYPE.to_vec()])
        );
        fstrm::write_control(&mut c, Control::Accept).unwrap();
        c.flush().unwrap();
        let start = fstrm::read_frame(&mut c).unwrap();
        assert!(
            matches!(start, Frame::Control(Control::Start, _)),
            "{start:?}"
        );
        let mut pending = Vec::new();
        loop {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return; // drops the connection: the reader goes away
            }
            // Read with a timeout, keeping partial frames.
            let mut chunk = [0u8; 4096];
            match std::io::Read::read(&mut c, &mut chunk) {
                Ok(0) => return,
                Ok(n) => pending.extend_from_slice(&chunk[..n]),
                Err(_) => continue,
            }
            loop {
                let mut r = &pending[..];
                match fstrm::read_frame(&mut r) {
                    Ok(Frame::Data(d)) => {
                        let _ = tx.send(decode(&d));
                    }
                    Ok(Frame::Control(Control::Stop, _)) => {
                        fstrm::write_control(&mut c, Control::Finish).unwrap();
                        return;
                    }
                    Ok(other) => panic!("unexpected {other:?}"),
                    Err(_) => break, // incomplete
                }
                let used = pending.len() - r.len();
                pending.drain(..used);
            }
        }
    }

    /// Disconnects and stops listening.
    fn go_away(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

#[test]
fn socket_reader_that_goes_away_and_comes_back() {
    let _one = one_server();
    let dir = tempfile::tempdir().unwrap();
    let sock: PathBuf = dir.path().join("tap.sock");
    let reader = Reader::start(&sock);
    let srv = AppServer::start(config(dir.path(), "dnstap: { socket: tap.sock }\n"));
    let udp = srv.dns();
    let http = srv.http();

    let q = query("77.88.8.0/24");
    udp_raw(udp, &q).expect("an answer");
    let first = reader.msgs.recv_timeout(PATIENCE).expect("AUTH_QUERY");
    assert_eq!(first.r#type, proto::MessageType::AuthQuery as i32);
    assert_eq!(first.query_message.as_deref(), Some(&q[..]));
    let second = reader.msgs.recv_timeout(PATIENCE).expect("AUTH_RESPONSE");
    assert_eq!(second.r#type, proto::MessageType::AuthResponse as i32);

    // The reader goes away: answers keep coming at once, messages are
    // dropped and counted.
    reader.go_away();
    let _ = std::fs::remove_file(&sock);
    let before = metric(http, "geosteer_dnstap_dropped_total");
    until("dropped messages counted", PATIENCE, || {
        let t = Instant::now();
        udp_raw(udp, &q).expect("answers go on without a reader");
        assert!(t.elapsed() < Duration::from_secs(2), "an answer waited");
        (metric(http, "geosteer_dnstap_dropped_total") > before).then_some(())
    });

    // It comes back: the writer reconnects and redoes the handshake.
    let reader = Reader::start(&sock);
    let got = until("messages on the new connection", PATIENCE, || {
        udp_raw(udp, &query("203.0.113.0/24")).expect("an answer");
        reader.msgs.recv_timeout(Duration::from_millis(300)).ok()
    });
    assert_eq!(got.query_address.as_deref(), Some(&[127, 0, 0, 1][..]));
    assert!(metric(http, "geosteer_dnstap_messages_total") >= 3.0);
    srv.shutdown();
    reader.go_away();
}

/// fstrm_capture (the Frame Streams reference library's reader), started on
/// `sock`, writing `out`. Stopped with SIGINT, which makes it flush.
struct Capture(std::process::Child);

impl Capture {
    fn start(sock: &Path, out: &Path) -> Capture {
        let _ = std::fs::remove_file(sock);
        let child = std::process::Command::new(tool("fstrm_capture"))
            .args(["-t", "protobuf:dnstap.Dnstap", "-u"])
            .arg(sock)
            .arg("-w")
            .arg(out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        until("fstrm_capture's socket", PATIENCE, || {
            sock.exists().then_some(())
        });
        Capture(child)
    }

    /// Stops it once it has read everything sent to `sock` (its file is
    /// written only on the way out, so the socket's receive queue is what
    /// shows it has the messages).
    fn stop_when_read(self, sock: &Path) {
        until("fstrm_capture to read what was sent", PATIENCE, || {
            unread(sock).is_some_and(|n| n == 0).then_some(())
        });
        self.stop();
    }

    /// SIGINT, then wait for it to exit (it writes its file on the way out).
    fn stop(mut self) {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGINT) };
        let _ = self.0.wait();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Bytes sent to the reader's end of the connection at `sock` and not yet
/// read (`ss`'s Recv-Q), `None` while there is no connection.
fn unread(sock: &Path) -> Option<u64> {
    let out = std::process::Command::new(tool("ss"))
        .args(["-x", "-H", "state", "established"])
        .output()
        .unwrap();
    let path = sock.to_str()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && f[3] == path)
        .and_then(|f| f[1].parse().ok())
}

fn ldns_lines(file: &Path) -> Vec<String> {
    let out = std::process::Command::new(tool("dnstap-ldns"))
        .arg("-r")
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The same with the reference reader: it leaves (SIGINT) and a new one
/// comes back on the same path; both files read back with dnstap-ldns.
#[test]
fn fstrm_capture_reader_comes_back() {
    if !need_tools(&["fstrm_capture", "dnstap-ldns", "ss"]) {
        return;
    }
    let _one = one_server();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("tap.sock");
    let (out1, out2) = (dir.path().join("one.fstrm"), dir.path().join("two.fstrm"));
    let cap = Capture::start(&sock, &out1);
    let srv = AppServer::start(config(dir.path(), "dnstap: { socket: tap.sock }\n"));
    let udp = srv.dns();
    let http = srv.http();
    let written = || metric(http, "geosteer_dnstap_messages_total");

    let before = written();
    udp_raw(udp, &query("77.88.8.0/24")).expect("an answer");
    until("two messages written", PATIENCE, || {
        (written() >= before + 2.0).then_some(())
    });
    // Counted once flushed to the socket; stopped once read from it.
    cap.stop_when_read(&sock);
    let one = ldns_lines(&out1);
    assert_eq!(one.len(), 2, "{one:?}");
    assert!(one[0].contains(" AQ 127.0.0.1 UDP "), "{one:?}");
    assert!(one[1].contains(" AR 127.0.0.1 UDP "), "{one:?}");

    // Away: answers go on, messages are dropped.
    let dropped = metric(http, "geosteer_dnstap_dropped_total");
    until("drops while the reader is away", PATIENCE, || {
        udp_raw(udp, &query("203.0.113.0/24")).expect("an answer");
        (metric(http, "geosteer_dnstap_dropped_total") > dropped).then_some(())
    });

    // Back: the writer reconnects within a second or two.
    let cap = Capture::start(&sock, &out2);
    let before = written();
    until("messages to the new reader", PATIENCE, || {
        udp_raw(udp, &query("198.18.7.0/24")).expect("an answer");
        (written() >= before + 2.0).then_some(())
    });
    cap.stop_when_read(&sock);
    let two = ldns_lines(&out2);
    assert!(two.len() >= 2, "{two:?}");
    assert!(
        two.iter().any(|l| l.contains(" AQ 127.0.0.1 UDP ")),
        "{two:?}"
    );
    srv.shutdown();
}
