//! The one writer of responses: every byte geosteer sends in a DNS
//! response is written here, straight into the transport's buffer,
//! without allocating.
//!
//! - [`writer`]: the cursor (bounds, name compression, RDATA);
//! - [`message`]: header, question and OPT record, the reply to a packet
//!   that could not be parsed, and the [`Summary`] of what was sent;
//! - [`answer`]: an authoritative [`crate::dns::answer::Answer`] and its
//!   RRSIGs, with truncation (the general path);
//! - [`prerendered`]: the fast paths' copies (a pre-rendered body, a
//!   steered A/AAAA, a zone's negative tail).

mod answer;
mod message;
mod prerendered;
mod writer;

pub(crate) use answer::answer;
pub use message::Summary;
pub(crate) use message::error_reply;
pub(crate) use prerendered::{Body, body, negative, patch_pointers, steered};
pub(crate) use writer::COMPRESS_SLOTS;
