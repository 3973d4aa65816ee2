//! Arbitrary bytes as a DNS query → the answer core, over UDP and TCP.
//!
//! The snapshot is built once from the demo zone, pools file and GeoIP
//! source embedded below, so a crash reproduces without the repo's files.
//! Beyond "no panic" it checks what every response must satisfy: it parses,
//! its ID is the query's, its question is the query's, and over UDP it fits
//! the size the client allows (512 without EDNS, else its size up to 1232).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::OnceLock;

use geosteer::ServerConfig;
use geosteer::AlwaysUp;
use geosteer::Transport;
use geosteer::Snapshot;
use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;

const ZONE: &str = include_str!("../../zones/cdn.example.zone");
const POOLS: &str = include_str!("../../zones/cdn.example.pools.yaml");
const GEO: &str = include_str!("../../geodb/demo-city.yaml");

fn snapshot() -> &'static Snapshot {
    static SNAP: OnceLock<Snapshot> = OnceLock::new();
    SNAP.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("geosteer-fuzz-query-{}", std::process::id()));
        let zones = dir.join("zones");
        std::fs::create_dir_all(&zones).unwrap();
        std::fs::write(zones.join("cdn.example.zone"), ZONE).unwrap();
        std::fs::write(zones.join("cdn.example.pools.yaml"), POOLS).unwrap();
        std::fs::write(dir.join("geo.yaml"), GEO).unwrap();
        geosteer::build_geodb(&dir.join("geo.yaml"), &dir.join("geo.mmdb"), geosteer::Schema::City).unwrap();
        let cfg_path: PathBuf = dir.join("geosteer.yaml");
        let cfg = ServerConfig::from_str("zones: zones\ngeodb: geo.mmdb\n", &cfg_path).unwrap();
        let snap = geosteer::build_snapshot(&cfg, &AlwaysUp, 1).unwrap();
        // Everything is in memory now (the DB is a private snapshot).
        let _ = std::fs::remove_dir_all(&dir);
        snap
    })
}

/// The raw question section (name, type, class) at offset 12, if there is
/// one and it is made of plain labels.
fn raw_question(msg: &[u8]) -> Option<&[u8]> {
    if msg.len() < 12 || u16::from_be_bytes([msg[4], msg[5]]) == 0 {
        return None;
    }
    let mut i = 12;
    loop {
        let l = *msg.get(i)? as usize;
        if l == 0 {
            i += 1;
            break;
        }
        if l & 0xC0 != 0 {
            return None;
        }
        i += 1 + l;
    }
    msg.get(12..i + 4)
}

fuzz_target!(|data: &[u8]| {
    let snap = snapshot();
    let client = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)), 5353);
    let parsed = Message::from_vec(data).ok();
    let mut out = vec![0u8; 65_535];
    for transport in [Transport::Udp, Transport::Tcp] {
        let Some(n) = geosteer::respond(snap, data, client, transport, &mut out) else {
            continue;
        };
        let resp = &out[..n];
        let msg = Message::from_vec(resp)
            .unwrap_or_else(|e| panic!("{transport:?} response does not parse: {e}\n{resp:02x?}"));
        assert!(data.len() >= 2 && resp[..2] == data[..2], "{transport:?}: ID differs");
        assert!(msg.metadata.message_type == hickory_proto::op::MessageType::Response, "QR not set");
        // The question, when echoed, is the query's own, byte for byte.
        if let Some(rq) = raw_question(resp) {
            assert_eq!(Some(rq), raw_question(data), "{transport:?}: question differs");
        }
        // A query with one well-formed question that got a real answer
        // (not an error) has its question echoed.
        if let Some(q) = &parsed
            && q.queries.len() == 1
            && matches!(
                msg.metadata.response_code,
                hickory_proto::op::ResponseCode::NoError | hickory_proto::op::ResponseCode::NXDomain
            )
        {
            assert_eq!(msg.queries.len(), 1, "{transport:?}: answer without its question");
            assert_eq!(msg.queries[0], q.queries[0], "{transport:?}: question differs");
        }
        if transport == Transport::Udp {
            let limit = match parsed.as_ref().and_then(|q| q.edns.as_ref()) {
                Some(e) => (e.max_payload().clamp(512, 1232)) as usize,
                None if parsed.is_some() => 512,
                // Unparseable to hickory: our parser may still have seen EDNS.
                None => 1232,
            };
            assert!(n <= limit, "UDP response of {n} bytes, client allows {limit}");
        }
    }
});
