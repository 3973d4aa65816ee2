//! AXFR and IXFR answers (RFC 5936, RFC 1995) from a zone's image: the
//! SOA, every record, the SOA again, packed into messages of at most
//! [`MESSAGE`] bytes, each signed when the request was (RFC 8945 §5.3.1).
//!
//! No journal is kept: an IXFR from an older serial is answered with the
//! whole zone in AXFR form, as RFC 1995 §4 allows; an IXFR from our serial
//! (or a newer one) gets our SOA alone ("up to date").

use super::image::Rr;
use crate::tsig::Signer;
use crate::wire::{CLASS_IN, HEADER};

/// Bytes of records per message before a new one starts (what Knot and
/// BIND use, far below TCP's 64 KiB so a slow reader is not sent huge
/// frames).
pub const MESSAGE: usize = 16 * 1024;

/// Room kept for the TSIG RR at the end of each message.
const TSIG_ROOM: usize = 512;

/// Packs records into transfer messages.
pub struct Packer<'a> {
    id: u16,
    /// The request's question (name, type, class), echoed in the first
    /// message only (RFC 5936 §2.2.1 allows either).
    question: &'a [u8],
    rd: bool,
    signer: Option<Signer>,
    now: u64,
    msg: Vec<u8>,
    count: u16,
    first: bool,
    rcode: u8,
}

impl<'a> Packer<'a> {
    pub fn new(id: u16, question: &'a [u8], rd: bool, signer: Option<Signer>, now: u64) -> Self {
        let mut p = Packer {
            id,
            question,
            rd,
            signer,
            now,
            msg: Vec::with_capacity(MESSAGE + TSIG_ROOM),
            count: 0,
            first: true,
            rcode: 0,
        };
        p.start();
        p
    }

    /// The rcode every message carries (set before the first record).
    pub fn rcode(mut self, rcode: u8) -> Self {
        self.rcode = rcode;
        self.msg[3] = (self.msg[3] & 0xF0) | (rcode & 0x0F);
        self
    }

    fn start(&mut self) {
        self.msg.clear();
        self.msg.extend_from_slice(&self.id.to_be_bytes());
        // QR, AA; RD echoed.
        let flags: u16 = 0x8400 | if self.rd { 0x0100 } else { 0 } | u16::from(self.rcode & 0x0F);
        self.msg.extend_from_slice(&flags.to_be_bytes());
        let qd = u16::from(self.first);
        self.msg.extend_from_slice(&qd.to_be_bytes());
        self.msg.extend_from_slice(&[0; 6]);
        if self.first {
            self.msg.extend_from_slice(self.question);
        }
        self.count = 0;
    }

    /// Adds a record; returns a finished message when the current one is
    /// full (the record then starts the next).
    pub fn push(&mut self, rr: &Rr) -> Option<Vec<u8>> {
        let size = rr.owner.len() + 10 + rr.rdata.len();
        let done = if self.count > 0 && self.msg.len() + size > MESSAGE {
            Some(self.seal())
        } else {
            None
        };
        self.msg.extend_from_slice(&rr.owner);
        self.msg.extend_from_slice(&rr.rtype.to_be_bytes());
        self.msg.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.msg.extend_from_slice(&rr.ttl.to_be_bytes());
        self.msg
            .extend_from_slice(&(rr.rdata.len() as u16).to_be_bytes());
        self.msg.extend_from_slice(&rr.rdata);
        self.count += 1;
        done
    }

    /// The current message, counts set and signed; the next one starts.
    fn seal(&mut self) -> Vec<u8> {
        self.msg[6..8].copy_from_slice(&self.count.to_be_bytes());
        let mut out = std::mem::take(&mut self.msg);
        if let Some(s) = &mut self.signer {
            s.sign_vec(&mut out, self.now);
        }
        self.first = false;
        self.msg = Vec::with_capacity(MESSAGE + TSIG_ROOM);
        self.start();
        out
    }

    /// The last message.
    pub fn finish(mut self) -> Vec<u8> {
        self.seal()
    }
}

/// A one-message answer with `rcode` and these answer records (IXFR up
/// to date, refusals), signed when `signer` is given.
pub fn single(
    id: u16,
    question: &[u8],
    rd: bool,
    rcode: u8,
    answers: &[Rr],
    signer: Option<Signer>,
    now: u64,
) -> Vec<u8> {
    let mut p = Packer::new(id, question, rd, signer, now).rcode(rcode);
    for rr in answers {
        p.push(rr);
    }
    p.finish()
}

/// The header length plus question: where a transfer message's records
/// start (for tests and the secondary's reader).
pub fn records_start(msg: &[u8]) -> Option<usize> {
    let qd = u16::from_be_bytes([*msg.get(4)?, *msg.get(5)?]);
    let mut pos = HEADER;
    for _ in 0..qd {
        pos = crate::wire::name_len(msg.get(pos..)?)? + pos + 4;
    }
    Some(pos)
}
