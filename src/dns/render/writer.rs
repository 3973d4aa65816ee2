//! The cursor every response is written with: bounds-checked writes
//! straight into the caller's buffer, with name compression, without
//! allocating.

use crate::wire::HEADER;
use crate::zone::tree::Rdata;

/// Name compression remembers at most this many label positions; past it,
/// names are written in full, which is always correct.
pub(crate) const COMPRESS_SLOTS: usize = 48;

/// The buffer ran out before the item fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// A cursor over the output buffer that never writes past `limit`.
pub struct Writer<'b> {
    buf: &'b mut [u8],
    pub pos: usize,
    limit: usize,
    slots: [u16; COMPRESS_SLOTS],
    nslots: usize,
}

impl<'b> Writer<'b> {
    pub fn new(buf: &'b mut [u8], limit: usize) -> Writer<'b> {
        let limit = limit.min(buf.len());
        Writer {
            buf,
            pos: 0,
            limit,
            slots: [0; COMPRESS_SLOTS],
            nslots: 0,
        }
    }

    /// A writer continuing at `pos` of a buffer whose first `pos` bytes
    /// were written elsewhere; compresses against nothing before `pos`.
    pub fn at(buf: &'b mut [u8], pos: usize) -> Writer<'b> {
        let mut w = Writer::new(buf, usize::MAX);
        w.pos = pos;
        w
    }

    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.min(self.buf.len());
    }

    /// Rewinds to `pos`, forgetting compression targets written after it.
    pub fn truncate(&mut self, pos: usize) {
        self.pos = pos;
        while self.nslots > 0 && self.slots[self.nslots - 1] as usize >= pos {
            self.nslots -= 1;
        }
    }

    #[inline]
    pub fn bytes(&mut self, b: &[u8]) -> Result<(), Full> {
        let end = self.pos + b.len();
        if end > self.limit {
            return Err(Full);
        }
        self.buf[self.pos..end].copy_from_slice(b);
        self.pos = end;
        Ok(())
    }

    #[inline]
    pub fn u16(&mut self, v: u16) -> Result<(), Full> {
        self.bytes(&v.to_be_bytes())
    }

    #[inline]
    pub fn u32(&mut self, v: u32) -> Result<(), Full> {
        self.bytes(&v.to_be_bytes())
    }

    pub fn put_u16_at(&mut self, at: usize, v: u16) {
        self.buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }

    /// Registers the labels of a name already in the buffer at `at` (the
    /// question) as compression targets.
    pub fn remember_name(&mut self, at: usize) {
        let mut p = at;
        while p < self.pos && self.buf[p] != 0 && self.buf[p] & 0xC0 == 0 {
            self.remember(p);
            p += 1 + self.buf[p] as usize;
        }
    }

    fn remember(&mut self, at: usize) {
        if at < 0x3FFF && self.nslots < COMPRESS_SLOTS {
            self.slots[self.nslots] = at as u16;
            self.nslots += 1;
        }
    }

    /// Does the name in the buffer at `at` equal `name` (uncompressed wire),
    /// ignoring ASCII case?
    fn equals_at(&self, mut at: usize, name: &[u8]) -> bool {
        let mut i = 0;
        let mut hops = 0;
        loop {
            let Some(&len) = self.buf.get(at) else {
                return false;
            };
            if len & 0xC0 == 0xC0 {
                hops += 1;
                if hops > 16 {
                    return false;
                }
                at = (((len & 0x3F) as usize) << 8) | self.buf[at + 1] as usize;
                continue;
            }
            let len = len as usize;
            if name.get(i) != Some(&(len as u8)) {
                return false;
            }
            if len == 0 {
                return true;
            }
            let (a, b) = (&self.buf[at + 1..at + 1 + len], &name[i + 1..i + 1 + len]);
            if !a.eq_ignore_ascii_case(b) {
                return false;
            }
            at += 1 + len;
            i += 1 + len;
        }
    }

    /// Writes a name, compressed against what is already in the buffer.
    pub fn name(&mut self, name: &[u8], compress: bool) -> Result<(), Full> {
        let mut i = 0;
        while i < name.len() && name[i] != 0 {
            if compress
                && let Some(&at) = self.slots[..self.nslots]
                    .iter()
                    .find(|&&at| self.equals_at(at as usize, &name[i..]))
            {
                return self.u16(0xC000 | at);
            }
            let len = name[i] as usize;
            let here = self.pos;
            self.bytes(&name[i..i + 1 + len])?;
            if compress {
                self.remember(here);
            }
            i += 1 + len;
        }
        self.bytes(&[0])
    }

    /// Writes RDATA with its length prefix.
    pub fn rdata(&mut self, rd: &Rdata) -> Result<(), Full> {
        let len_at = self.pos;
        self.u16(0)?;
        match rd {
            Rdata::Opaque(b) => self.bytes(b)?,

            Rdata::Name(n) => self.name(n, true)?,
            Rdata::Mx(pref, n) => {
                self.u16(*pref)?;
                self.name(n, true)?;
            }
            Rdata::Srv(head, n) => {
                self.bytes(head)?;
                self.name(n, false)?;
            }
            Rdata::Soa { mname, rname, tail } => {
                self.name(mname, true)?;
                self.name(rname, true)?;
                self.bytes(tail)?;
            }
        }
        let len = self.pos - len_at - 2;
        self.put_u16_at(len_at, len as u16);
        Ok(())
    }

    /// Pointer to the question name, which keeps the client's letter case.
    pub fn qname_ptr(&mut self) -> Result<(), Full> {
        self.u16(0xC000 | HEADER as u16)
    }
}
