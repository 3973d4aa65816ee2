//! geosteer: a geo-aware authoritative DNS server for CDN request steering.
//!
//! One query's path through the modules:
//!
//! 1. [`net`] receives a packet (UDP worker threads or a TCP connection) and
//!    hands the bytes to [`server::Responder`], which loads the current
//!    [`snapshot`] and calls [`dns::respond`] with the client's address
//!    ([`rrl`] may then limit the UDP response; [`metrics`] count it).
//! 2. [`dns::wire`] parses the header, the question and the OPT record (ECS
//!    included) without building a `Message`.
//! 3. [`dns::fast`] answers the common queries from the snapshot's
//!    pre-rendered answers (one hash probe and a copy; a steered A/AAAA asks
//!    [`steer`] and writes its edges). The rest goes to [`dns::answer`], which
//!    finds the closest enclosing zone in the [`snapshot`] and applies
//!    authoritative semantics (NXDOMAIN/NODATA, referral, CNAME, wildcard).
//!    For a steered name it asks [`steer`].
//! 4. [`steer`] locates the client with [`geo`] (ECS address, else source),
//!    takes the candidates in distance order for that place (cached per
//!    GeoIP record) and filters them by [`health`] state.
//! 5. [`dns::render`] writes general-path responses straight into the output
//!    buffer.
//!
//! Beside that flow: [`reload`] builds new snapshots from [`config`] and
//! [`zone`] files and swaps them in; [`health`] probes edges; [`http`] serves
//! metrics and the admin API; [`querylog`] writes sampled queries.
//!
//! At the edge: [`cli`] parses the command line, [`app`] starts a server with
//! everything around it, and [`explain`] runs one question through the
//! answer core for `geosteer explain`.

pub mod app;
pub mod cli;
pub mod config;
pub mod dns;
pub mod dnssec;
pub mod explain;
pub mod geo;
pub mod health;
pub mod http;
pub mod metrics;
pub mod net;
pub mod querylog;
pub mod reload;
pub mod rrl;
pub mod server;
pub mod snapshot;
pub mod steer;
pub mod zone;
