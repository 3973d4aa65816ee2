//! The answer core: from query bytes, client and snapshot to response bytes. No I/O.
