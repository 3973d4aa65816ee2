//! The answer core's two paths, for tests that compare them: the
//! pre-rendered tables (the fast path) and the general lookup.

use std::net::{IpAddr, SocketAddr};

use geosteer::{Snapshot, Transport};

/// The general path's answer: the same snapshot with its pre-rendered
/// tables taken out for the call (a snapshot without them answers
/// everything by lookup, with the same bytes).
pub fn respond_general(
    snap: &mut Snapshot,
    q: &[u8],
    source: SocketAddr,
    transport: Transport,
    out: &mut [u8],
) -> Option<usize> {
    let tables = std::mem::take(&mut snap.fast);
    let n = geosteer::respond(snap, q, source, transport, out);
    snap.fast = tables;
    n
}

/// The answer's length if the pre-rendered tables gave it, `None` if it
/// was looked up (or the packet got no answer).
pub fn fast_respond(
    snap: &Snapshot,
    q: &[u8],
    source: IpAddr,
    transport: Transport,
    out: &mut [u8],
) -> Option<usize> {
    geosteer::respond_traced(snap, q, source, transport, out, &mut ())
        .filter(|s| s.prerendered)
        .map(|s| s.len)
}
