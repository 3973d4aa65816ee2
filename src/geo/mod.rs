//! Locating a client: MaxMind-format database reader and writer.
//!
//! [`GeoDb`] opens a `.mmdb` file (GeoIP2/GeoLite2 nested schema or the flat DB-IP /
//! ip-location-db schema, with or without a `geodb_asn:` ASN database merged in) into
//! the database stage of steering: one pass over its search tree ([`tree`]) gives every
//! network as an address range of one location ([`table`]), and the distinct locations
//! with their points on the sphere. Lookups are allocation-free range searches; the file
//! is not kept. [`build`] and [`synth`] write databases for tests, demos and benchmarks.

mod code;
mod decoder;
mod load;
mod location;
mod reader;
mod record;
mod reference;
pub(crate) mod table;
mod tree;
mod writer;

pub use code::{Code, continent_of, is_continent};
pub use location::{Coords, GeoError, GeoMatch, Location, describe, normalize};
pub(crate) use reader::network;
pub use reader::{GeoDb, RecordSchema};
#[doc(hidden)]
pub use reference::Reference;
pub use table::LocId;
pub use writer::{Schema, build, synth, synth_dense};
