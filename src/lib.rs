//! geosteer: a geo-aware authoritative DNS server for CDN request steering.
//!
//! One query's path through the modules:
//!
//! 1. [`net`] receives a packet (UDP worker threads or a TCP connection) and
//!    hands the bytes to [`server::Responder`], which loads the current
//!    [`snapshot`] and calls [`dns::respond`] with the client's address
//!    ([`rrl`] may then limit the UDP response; [`metrics`] count it).
//! 2. [`wire`] parses the header, the question and the OPT record (ECS
//!    included) without building a `Message`.
//! 3. [`dns::fast`] answers the common queries from the snapshot's
//!    pre-rendered answers (one hash probe and a copy; a steered A/AAAA asks
//!    [`steer`] and writes its edges). The rest goes to [`dns::answer`], which
//!    finds the closest enclosing zone in the [`snapshot`] and applies
//!    authoritative semantics (NXDOMAIN/NODATA, referral, CNAME, wildcard)
//!    over its [`zone::tree`]. For a steered name it asks [`steer`].
//! 4. [`steer`] locates the client with [`geo`] (ECS address, else source),
//!    takes the candidates in distance order for that place (cached per
//!    GeoIP record), puts those with a measured RTT for the client first
//!    (`<zone>.rtt.csv`), filters them by [`health`] state, and applies
//!    partner split, cost margin and capacity shares.
//! 5. [`dns::render`] writes general-path responses straight into the output
//!    buffer.
//!
//! Beside that flow: [`reload`] builds new snapshots from [`config`] and
//! [`zone`] files and swaps them in; [`health`] probes edges; [`rum`]
//! learns RTTs from real users' browsers into each zone's live learned
//! table, which [`steer`] reads beside the RTT file; [`fleet`]
//! shares overrides, load and probe verdicts with other instances through
//! etcd (feeding [`health`]); [`http`] serves metrics, the admin API and the
//! [`status`] page (a world map of where each country's clients go, computed
//! by [`steer::decide`], and what-ifs); [`querylog`] writes sampled queries
//! as JSON lines and [`dnstap`] as dnstap messages.
//!
//! At the edge: [`cli`] parses the command line, [`app`] starts a server with
//! everything around it, and [`explain`] runs one question through the
//! answer core for `geosteer explain`.
//!
//! Imports go one way (`tests/layers.rs`): [`wire`], [`zone`] and
//! [`protocol`] at the bottom; the [`snapshot`] is data built from them;
//! [`dns`] reads it; [`metrics`] observe the answers (through
//! [`metrics::Answered`], filled by [`server`]) and import neither.

pub mod app;
pub mod cli;
pub mod config;
pub mod dns;
pub mod dnssec;
pub mod dnstap;
pub mod duration;
pub mod explain;
pub mod fleet;
pub mod geo;
pub mod health;
pub mod http;
pub mod hugepage;
pub mod metrics;
pub mod net;
pub mod protocol;
pub mod querylog;
pub mod reload;
pub mod rrl;
pub mod rum;
pub mod server;
pub mod snapshot;
pub mod status;
pub mod steer;
pub mod wire;
pub mod zone;
