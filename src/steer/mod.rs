//! Choosing edges: where is the client (override nets and RTT prefixes,
//! then the GeoIP database) → which candidates (override net, rule, host)
//! → in what order (ranked per point of the database, RTT rows first) →
//! which can serve (health, load) → spread by weight.
//!
//! Like gdnsd, three jobs stay apart: *where is the client* ([`locate`]),
//! *which edges are up* ([`crate::health`]), and *failover* (walk the
//! ordered list, skip what can't serve). State comes in three layers, each
//! rebuilt only when its own inputs change:
//!
//! - the database stage, [`crate::geo::GeoDb`]: the database's networks as
//!   address ranges of one location, and the locations' points;
//! - the files stage, [`Steering`] (the pools and RTT files, over one
//!   database stage): the override nets and RTT prefixes merged into one
//!   range table ([`overlay`]), the candidate groups, and the zone's edges
//!   ranked for every point of the database ([`ranks`]);
//! - the live layer ([`live`]): health, load and admin state per edge, and
//!   a slot for learned RTT rows, read per query and never rebuilt.
//!
//! One module per job, each importing only the ones listed before it:
//! [`types`] (the shared vocabulary), [`edge`], [`host`] (a steered name
//! and its rules), [`live`], [`rtt`] (the RTT file's rows), [`overlay`],
//! [`ranks`] (each point's edges, and the candidate groups), [`steering`]
//! (the files stage that holds them all), [`order`] (a group's order at a
//! place, RTT rows first), [`candidates`] (which group, and the health
//! filter), [`scope`] (the ECS scope), [`spread`] (sharing among
//! near-equal edges), and [`decide`], the one decision every caller (the
//! query path, `explain`, the status page) runs. This file only declares
//! them and names what the rest of the crate uses.

mod candidates;
mod decide;
mod edge;
mod host;
pub mod live;
mod order;
mod overlay;
mod ranks;
pub mod rtt;
mod scope;
mod spread;
mod steering;
mod types;

pub use decide::{decide, locate};
pub use edge::Edge;
pub use host::{Host, Rule};
pub use live::{Learned, Live};
pub use overlay::{NetTarget, Nets};
pub use rtt::RttTable;
pub use steering::Steering;
pub use types::{
    AllDown, Class, Client, Decision, EdgeIdx, Family, Located, Outcome, Place, Ranked, RttKey,
    Trace,
};
