//! geosteer: a geo-aware authoritative DNS server for CDN request steering.
//!
//! # One query, one direction
//!
//! ```text
//! net (bytes) -> dns: wire parse -> mandatory checks -> Request
//!   -> fast (pre-rendered tables) | answer (zone lookup -> steer) -> secure -> render -> net
//! ```
//!
//! 1. `net` receives a packet (UDP worker threads, or a TCP connection) and
//!    hands the bytes to `server::Responder`, which loads the current
//!    `snapshot` and calls `dns::respond` with the packet's source; `rrl`
//!    may then limit a UDP response, `metrics`, `querylog` and `dnstap`
//!    observe it.
//! 2. `dns` parses the packet (`wire`: header, question, OPT with ECS and
//!    cookies, no allocation), applies the RFC MUST checks
//!    (`dns::mandatory`), and builds the `dns::request::Request` every later
//!    step reads.
//! 3. `dns::fast` answers the common queries from the snapshot's
//!    pre-rendered tables (one hash probe and a copy; a steered A/AAAA asks
//!    `steer` and writes its edges; `dns::negative` holds each zone's
//!    NXDOMAIN). Everything else goes to `dns::answer`, which finds the
//!    zone (`snapshot`) and applies authoritative semantics over its
//!    `zone::tree` (referral, DNAME, CNAME, wildcard, NXDOMAIN/NODATA), and
//!    `dns::secure` adds what DNSSEC needs (`dnssec` signs).
//! 4. `steer` locates the client with `geo` (ECS address, else source),
//!    orders the candidates by distance and measured RTT, filters them by
//!    `health`, and applies partner split, cost margin and capacity shares.
//! 5. `dns::render` writes every response byte straight into the
//!    transport's buffer.
//!
//! # Beside that flow
//!
//! `reload` builds snapshots from `config` and `zone` files and swaps them
//! in; `health` probes edges; `rum` learns RTTs from real users' browsers
//! into each zone's learned table, which `steer` reads beside the RTT file;
//! `fleet` shares overrides, load and verdicts
//! with other instances through etcd; `http` serves metrics, the admin API
//! and the `status` page; `explain` runs one question through the answer
//! core for `geosteer explain`. At the edge, `cli` parses the command line
//! and `app` starts a server with everything around it.
//!
//! Imports go one way, between modules and between files
//! (`src/layers.rs`); `docs/architecture.md` is the longer tour.
//!
//! # The public API
//!
//! Every module is private; what the binary, the benchmarks, the examples
//! and the integration tests use is re-exported below, by purpose.

mod app;
mod cli;
mod clock;
mod config;
mod dns;
mod dnssec;
mod dnstap;
mod duration;
mod explain;
mod fleet;
mod geo;
mod health;
mod http;
mod hugepage;
mod metrics;
mod net;
mod priority;
mod protocol;
mod querylog;
mod reload;
mod rrl;
mod rum;
mod server;
mod snapshot;
mod status;
mod steer;
mod tsig;
mod wire;
mod xfr;
mod yaml;
mod zone;

#[cfg(test)]
mod layers;

// The binary and a whole server.
pub use app::App;
pub use cli::{Cli, error_text, init_tracing, run};
pub use config::{DnssecConfig, ServerConfig};
pub use metrics::publish_query_counts;
pub use server::{Running, start};

// Snapshots: built from the configuration, answered from.
pub use config::pools::{AlwaysUp, HealthSource, Pools, from_str as parse_pools};
pub use config::rtt::load as load_rtt;
pub use reload::{Reloader, build_snapshot, build_zone};
pub use snapshot::Snapshot;

// The answer core and the transports around it.
pub use dns::{Summary, respond, respond_traced};
pub use explain::query_bytes;
pub use net::{Handler, TcpConfig, Transport, UdpRunning, UdpServer, serve_tcp};
pub use wire::{Rcode, parse_query};

// Zone files.
pub use zone::tree::{Node, Tree};
pub use zone::{
    MAX_INCLUDE_DEPTH, ZoneError, ZoneFile, load_zone_file, origin_from_filename, parse_zone_str,
    validate as validate_zone,
};

// The RDATA layout of every record type (zone files and transfers).
pub use zone::schema::{
    canonical as canonical_rdata, check_rdata, from_wire as rdata_from_wire, type_code, type_name,
};

// TSIG (RFC 8945), zone transfers and PROXY v2.
pub use net::proxy::{Proxies, Verdict as ProxyVerdict};
pub use tsig::{
    Algorithm as TsigAlgorithm, BADKEY, BADSIG, BADTIME, BADTRUNC, Key as TsigKey,
    Keyring as TsigKeyring, Signer as TsigSigner, Verifier as TsigVerifier, find as find_tsig,
    verify_request as verify_tsig,
};
pub use xfr::image::soa_serial_at;

// DNSSEC keys and the signature cache.
pub use dnssec::keys::{format_time, generate as generate_key};
pub use dnssec::sign::{DEFAULT_CACHE_ENTRIES, SigCache};

// GeoIP databases: building and reading them (and, for tests, the tree
// walk over the file that the ranges are checked against).
#[doc(hidden)]
pub use geo::Reference as GeoReference;
pub use geo::{
    Code, Coords, GeoDb, GeoError, GeoMatch, Location, RecordSchema, Schema, build as build_geodb,
    describe as describe_match, normalize, synth as synth_geodb, synth_dense as synth_dense_geodb,
};

// Steering decisions.
pub use steer::{
    AllDown, Client, EdgeIdx, Family, Host, Learned, Live, Located, NetTarget, Outcome, Place,
    Rule, Steering, Trace, decide, locate,
};

// Steering from real users (RUM): cells learned from beacons and their
// state file (the table steering reads is `Learned`, above).
pub use rum::cells::{Beacon, Cell as RumCell, LearnedRow, Rows as LearnedRows, State as RumState};
pub use rum::persist::{
    decode as decode_rum_state, encode as encode_rum_state, write as write_rum_state,
};
pub use rum::token::Net as ClientNet;

// Edge health.
pub use health::{
    AdminState, CheckConfig, CheckSpec, Checker, EdgeHealth, EdgeState, EdgeStatus, Effective,
    HealthError, ProbeTarget, Registry, ensure_crypto_provider,
};

// The dnstap wire format (Frame Streams and the protobuf messages), to read
// what the server writes.
pub use dnstap::{fstrm, proto as dnstap_proto};
