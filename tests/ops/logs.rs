//! Logs: plain text when stderr is a file (systemd's `StandardError=file:`,
//! `2>>geosteer.log`), colour only on a terminal — a real pseudo-terminal
//! here, as an operator's shell would give — and none with `NO_COLOR`.

use crate::support;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::KillOnDrop;
use support::server::{MINIMAL_ZONE, write_zone_dir};

const ESC: &str = "\x1b[";
/// A line every start logs.
const STARTED: &str = "snapshot built";

fn config(dir: &Path) -> std::path::PathBuf {
    let cfg = write_zone_dir(
        dir,
        "example",
        "edges:\n  a: { addresses: [192.0.2.1], location: [50, 8] }\nhosts:\n  www: {}\n",
        "listen: [127.0.0.1:0]\nzones: zones\nworkers: 1\nwatch: false\n",
    );
    support::write_file(dir, "zones/example.zone", MINIMAL_ZONE);
    cfg
}

fn serve(cfg: &Path, stderr: Stdio, no_color: bool) -> KillOnDrop {
    let mut c = Command::new(env!("CARGO_BIN_EXE_geosteer"));
    c.args(["serve", "--config"])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(stderr)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG");
    if no_color {
        c.env("NO_COLOR", "1");
    }
    KillOnDrop(c.spawn().unwrap())
}

#[test]
fn a_log_file_gets_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let log = dir.path().join("geosteer.log");
    let _child = serve(
        &cfg,
        Stdio::from(std::fs::File::create(&log).unwrap()),
        false,
    );
    let text = support::wait::until("the start-up log line", Duration::from_secs(30), || {
        let t = std::fs::read_to_string(&log).unwrap();
        t.contains(STARTED).then_some(t)
    });
    assert!(!text.contains(ESC), "ANSI codes in a log file:\n{text:?}");
    assert!(text.contains("INFO"), "{text}");
}

/// Reads the terminal's side until the start-up line shows.
fn terminal_output(no_color: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let (mut master, mut slave) = (0, 0);
    // SAFETY: both pointers are valid for writes; the name, termios and
    // window size are optional and passed as null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty returned two fresh descriptors we now own.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let _child = serve(&cfg, Stdio::from(slave), no_color);
    let (tx, rx) = std::sync::mpsc::channel();
    // A blocking reader; it ends with EIO once the child is killed.
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen).into_owned();
            if text.contains(STARTED) {
                let _ = tx.send(text);
                return;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the start-up log line on the terminal")
}

#[test]
fn a_terminal_gets_colour_unless_no_color() {
    let coloured = terminal_output(false);
    assert!(
        coloured.contains(ESC),
        "no colour on a terminal:\n{coloured:?}"
    );
    let plain = terminal_output(true);
    assert!(!plain.contains(ESC), "colour despite NO_COLOR:\n{plain:?}");
}
