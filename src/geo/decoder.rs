//! Reading GeoIP2 (nested) records where they lie in the data section, once
//! each at open: the tree walk already has a record's data offset, so
//! nothing walks the search tree again. Only what steering reads is read
//! (the continent, country and first subdivision codes, the coordinates,
//! the ASN); everything else, mostly names in eight languages, is passed
//! over by its sizes alone, no string built or checked. A City record is
//! a handful of pointers to values records share (its continent, country,
//! subdivisions, location), so those are read once each and remembered by
//! their offset.
//!
//! It only ever says "this record is plain": anything it does not expect
//! (an unknown or oversized type, a pointer to a pointer, nesting past
//! [`MAX_DEPTH`], bytes past the section, text that is not UTF-8, a field
//! steering reads holding another type than GeoIP2 gives it, a key of the
//! flat schema) is [`NotPlain`], on which the caller reads the record the
//! careful way (maxminddb's decoder and [`super::record`]'s visitors),
//! which decides whether the record locates nothing or the database is
//! refused. Where it reads a record, it reads what the careful way reads
//! (`plain_records_read_as_maxminddb_reads_them` checks every record of a
//! real City database).

use super::record::RawRecord;

/// Maps and arrays inside each other in a value passed over. GeoIP2
/// records nest four deep.
const MAX_DEPTH: usize = 16;

/// Entries in one map (keys and values counted apart) or array: GeoIP2
/// maps hold a dozen; past this the careful decoder (with its own limits)
/// decides.
const MAX_ENTRIES: usize = 4096;

/// Remembered shared values: a direct-mapped table of this many slots (a
/// power of two). A City database's records point to ~250 countries, a
/// few thousand subdivision lists and ~100,000 locations; a slot lost to
/// another value only costs reading that value again.
const MEMO_SLOTS: usize = 4096;

/// "Not a plain record": no reason is kept, the careful path finds it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NotPlain;

type Result<T> = std::result::Result<T, NotPlain>;

// MMDB type numbers (MaxMind DB spec, "Output Data Section").
const POINTER: u8 = 1;
const STRING: u8 = 2;
const DOUBLE: u8 = 3;
const BYTES: u8 = 4;
const UINT16: u8 = 5;
const UINT32: u8 = 6;
const MAP: u8 = 7;
const UINT64: u8 = 9;
const ARRAY: u8 = 11;
const BOOLEAN: u8 = 14;
const FLOAT: u8 = 15;

/// What one of a record's maps says that steering reads. Key names are
/// distinct across the continent, country, location, traits and
/// subdivision maps, so one struct serves them all (as
/// [`super::record`]'s `Sub` does); for the subdivisions array, `code` is
/// its first map's.
#[derive(Clone, Copy, Default)]
struct Fields<'de> {
    code: Option<&'de str>,
    lat: Option<f64>,
    lon: Option<f64>,
    asn: Option<u64>,
}

/// A remembered value: its offset ([`EMPTY`] in a free slot), its type and
/// what it says.
#[derive(Clone, Copy)]
struct Memo<'de> {
    offset: u32,
    kind: u8,
    fields: Fields<'de>,
}

const EMPTY: u32 = u32::MAX;

/// The records of one data section, read where they are.
pub(crate) struct Plain<'de> {
    data: &'de [u8],
    memo: Box<[Memo<'de>]>,
}

impl<'de> Plain<'de> {
    /// A reader of `data` (the data section).
    pub(crate) fn new(data: &'de [u8]) -> Plain<'de> {
        let free = Memo {
            offset: EMPTY,
            kind: 0,
            fields: Fields::default(),
        };
        Plain {
            data,
            memo: vec![free; MEMO_SLOTS].into_boxed_slice(),
        }
    }

    /// The record at `offset`, as [`super::record`]'s nested visitor reads
    /// it, if it is plain.
    pub(crate) fn record(&mut self, offset: usize) -> Result<RawRecord<'de>> {
        let mut c = Cursor {
            data: self.data,
            pos: offset,
        };
        let (kind, size, _) = c.value_head()?;
        if kind != MAP {
            return Err(NotPlain);
        }
        c.entries(2 * size)?;
        let mut r = RawRecord::default();
        for _ in 0..size {
            match c.text()? {
                "continent" => r.continent = self.shared(&mut c, MAP)?.code,
                "country" => r.country = self.shared(&mut c, MAP)?.code,
                "subdivisions" => r.subdivision = self.shared(&mut c, ARRAY)?.code,
                "location" => {
                    let f = self.shared(&mut c, MAP)?;
                    (r.lat, r.lon) = (f.lat, f.lon);
                }
                "traits" => r.asn = r.asn.or(self.shared(&mut c, MAP)?.asn),
                "autonomous_system_number" => r.asn = Some(c.uint()?),
                // Flat-schema keys: how they mix with nested ones is the
                // careful path's to say.
                "country_code" | "continent_code" | "state1" | "latitude" | "longitude" => {
                    return Err(NotPlain);
                }
                _ => c.skip()?,
            }
        }
        Ok(r)
    }

    /// The next value, a `kind` (map or array) that records may share: a
    /// pointer's target is read once and remembered.
    fn shared(&mut self, c: &mut Cursor<'de>, kind: u8) -> Result<Fields<'de>> {
        let (k, size) = c.head()?;
        if k != POINTER {
            return if k == kind {
                c.fields(k, size)
            } else {
                Err(NotPlain)
            };
        }
        let (target, back) = (size, c.pos);
        // The section is under 4 GiB (pointers reach no further).
        let key = target as u32;
        let slot = (u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) as usize;
        let slot = slot & (MEMO_SLOTS - 1);
        let held = self.memo[slot];
        let fields = if held.offset == key {
            if held.kind != kind {
                return Err(NotPlain);
            }
            held.fields
        } else {
            c.pos = target;
            let (k, size) = c.head()?;
            if k != kind {
                return Err(NotPlain);
            }
            let fields = c.fields(k, size)?;
            self.memo[slot] = Memo {
                offset: key,
                kind,
                fields,
            };
            fields
        };
        c.pos = back;
        Ok(fields)
    }
}

/// A position in the data section.
struct Cursor<'de> {
    data: &'de [u8],
    pos: usize,
}

impl<'de> Cursor<'de> {
    fn byte(&mut self) -> Result<u8> {
        let b = *self.data.get(self.pos).ok_or(NotPlain)?;
        self.pos += 1;
        Ok(b)
    }

    /// `n` (at most 8) bytes as a big-endian number.
    fn be(&mut self, n: usize) -> Result<u64> {
        let b = self.take(n)?;
        Ok(b.iter().fold(0u64, |a, &x| a << 8 | u64::from(x)))
    }

    fn take(&mut self, n: usize) -> Result<&'de [u8]> {
        let end = self.pos.checked_add(n).ok_or(NotPlain)?;
        let b = self.data.get(self.pos..end).ok_or(NotPlain)?;
        self.pos = end;
        Ok(b)
    }

    /// The next control byte(s): the type, and the size (for a pointer, its
    /// target, checked to be inside the section).
    fn head(&mut self) -> Result<(u8, usize)> {
        let c = self.byte()?;
        let mut kind = c >> 5;
        if kind == POINTER {
            let v = u64::from(c & 7);
            let target = match (c >> 3) & 3 {
                0 => v << 8 | self.be(1)?,
                1 => (v << 16 | self.be(2)?) + 2048,
                2 => (v << 24 | self.be(3)?) + 526_336,
                _ => self.be(4)?,
            };
            let target = usize::try_from(target).map_err(|_| NotPlain)?;
            return if target < self.data.len() {
                Ok((POINTER, target))
            } else {
                Err(NotPlain)
            };
        }
        if kind == 0 {
            kind = self.byte()?.checked_add(7).ok_or(NotPlain)?;
        }
        let size = self.size(c)?;
        Ok((kind, size))
    }

    /// The size a control byte `c` gives, with the bytes after it that
    /// extend it.
    fn size(&mut self, c: u8) -> Result<usize> {
        Ok(match c & 0x1f {
            s @ 0..29 => usize::from(s),
            29 => 29 + self.be(1)? as usize,
            30 => 285 + self.be(2)? as usize,
            _ => 65_821 + self.be(3)? as usize,
        })
    }

    /// The next value's head, a pointer followed (to a value that is not a
    /// pointer itself); with the position to go on from after the value
    /// when it was a pointer.
    fn value_head(&mut self) -> Result<(u8, usize, Option<usize>)> {
        let (kind, size) = self.head()?;
        if kind != POINTER {
            return Ok((kind, size, None));
        }
        let back = self.pos;
        self.pos = size;
        match self.head()? {
            (POINTER, _) => Err(NotPlain),
            (kind, size) => Ok((kind, size, Some(back))),
        }
    }

    /// Runs `f` on the next value's head (a pointer followed), then goes on
    /// after the value.
    fn value<T>(&mut self, f: impl FnOnce(&mut Self, u8, usize) -> Result<T>) -> Result<T> {
        let (kind, size, back) = self.value_head()?;
        let r = f(self, kind, size)?;
        if let Some(b) = back {
            self.pos = b;
        }
        Ok(r)
    }

    /// The next value, a string (a map's key, or a code): UTF-8, as the
    /// careful path checks every key.
    fn text(&mut self) -> Result<&'de str> {
        self.value(|c, kind, size| {
            if kind != STRING {
                return Err(NotPlain);
            }
            let b = c.take(size)?;
            if b.is_ascii() {
                // SAFETY: ASCII is UTF-8. (Keys are ASCII: checked so
                // inline, where `from_utf8`'s call was 8 % of a City open.)
                Ok(unsafe { std::str::from_utf8_unchecked(b) })
            } else {
                std::str::from_utf8(b).map_err(|_| NotPlain)
            }
        })
    }

    /// The next value, an unsigned integer.
    fn uint(&mut self) -> Result<u64> {
        self.value(|c, kind, size| match (kind, size) {
            (UINT16, 0..=2) | (UINT32, 0..=4) | (UINT64, 0..=8) => c.be(size),
            _ => Err(NotPlain),
        })
    }

    /// The next value, a number, as a coordinate: `None` when it is not
    /// finite (the careful path's `Scalar::float`).
    fn float(&mut self) -> Result<Option<f64>> {
        let v = self.value(|c, kind, size| match (kind, size) {
            (DOUBLE, 8) => Ok(f64::from_bits(c.be(8)?)),
            (FLOAT, 4) => Ok(f64::from(f32::from_bits(c.be(4)? as u32))),
            (UINT16, 0..=2) | (UINT32, 0..=4) | (UINT64, 0..=8) => Ok(c.be(size)? as f64),
            _ => Err(NotPlain),
        })?;
        Ok(v.is_finite().then_some(v))
    }

    /// A container of `n` entries: no more than [`MAX_ENTRIES`], nor than
    /// the bytes left (each entry takes one at least).
    fn entries(&self, n: usize) -> Result<()> {
        if n > MAX_ENTRIES || n > self.data.len() - self.pos {
            return Err(NotPlain);
        }
        Ok(())
    }

    /// What the map (`kind` MAP) or the subdivisions array (ARRAY: its
    /// first map's code) of `size` entries here says.
    fn fields(&mut self, kind: u8, size: usize) -> Result<Fields<'de>> {
        let mut f = Fields::default();
        if kind == ARRAY {
            self.entries(size)?;
            if size > 0 {
                f.code = self.value(|c, kind, size| match kind {
                    MAP => Ok(c.fields(MAP, size)?.code),
                    _ => Err(NotPlain),
                })?;
                for _ in 1..size {
                    self.skip()?;
                }
            }
            return Ok(f);
        }
        self.entries(2 * size)?;
        for _ in 0..size {
            match self.text()? {
                "code" | "iso_code" => f.code = Some(self.text()?),
                "latitude" => f.lat = self.float()?,
                "longitude" => f.lon = self.float()?,
                "autonomous_system_number" => f.asn = Some(self.uint()?),
                _ => self.skip()?,
            }
        }
        Ok(f)
    }

    /// Passes over one value without following pointers: one loop over
    /// the values inside it, counting what is left per level, since most
    /// of a City record is names no one reads.
    fn skip(&mut self) -> Result<()> {
        let mut left = [0usize; MAX_DEPTH + 1];
        let mut depth = 0;
        left[0] = 1;
        loop {
            while left[depth] == 0 {
                if depth == 0 {
                    return Ok(());
                }
                depth -= 1;
            }
            left[depth] -= 1;
            let c = self.byte()?;
            let mut kind = c >> 5;
            if kind == POINTER {
                // Not followed: only its 1 to 4 bytes are passed.
                self.take(usize::from((c >> 3) & 3) + 1)?;
                continue;
            }
            if kind == 0 {
                kind = self.byte()?.checked_add(7).ok_or(NotPlain)?;
            }
            let size = self.size(c)?;
            let n = match (kind, size) {
                (STRING | BYTES, _)
                | (DOUBLE, 8)
                | (FLOAT, 4)
                | (UINT16, 0..=2)
                | (UINT32, 0..=4)
                | (UINT64, 0..=8) => {
                    self.take(size)?;
                    continue;
                }
                (BOOLEAN, 0..=1) => continue,
                (MAP, _) => 2 * size,
                (ARRAY, _) => size,
                _ => return Err(NotPlain),
            };
            if n > 0 {
                self.entries(n)?;
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(NotPlain);
                }
                left[depth] = n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-written data section values (MaxMind DB spec encodings); the
    /// project's writer puts no pointers in, so the shared values are
    /// tested here.
    fn text(s: &str) -> Vec<u8> {
        let mut b = vec![STRING << 5 | s.len() as u8];
        b.extend_from_slice(s.as_bytes());
        b
    }

    fn map(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut b = vec![MAP << 5 | entries.len() as u8];
        for (k, v) in entries {
            b.extend(text(k));
            b.extend_from_slice(v);
        }
        b
    }

    fn array(items: &[Vec<u8>]) -> Vec<u8> {
        let mut b = vec![items.len() as u8, ARRAY - 7];
        for i in items {
            b.extend_from_slice(i);
        }
        b
    }

    fn double(v: f64) -> Vec<u8> {
        let mut b = vec![DOUBLE << 5 | 8];
        b.extend_from_slice(&v.to_be_bytes());
        b
    }

    /// A pointer of the one-byte form (targets under 2,048).
    fn pointer(target: usize) -> Vec<u8> {
        vec![POINTER << 5 | (target >> 8) as u8, target as u8]
    }

    /// Appends a record (a map of `entries`) and says where it starts.
    fn push(data: &mut Vec<u8>, entries: &[(&str, Vec<u8>)]) -> usize {
        let at = data.len();
        data.extend(map(entries));
        at
    }

    #[test]
    fn shared_values_read_once_say_what_they_say_inline() {
        let mut data = Vec::new();
        let country = data.len();
        data.extend(map(&[
            ("iso_code", text("GB")),
            ("names", map(&[("en", text("United Kingdom"))])),
        ]));
        let subdivisions = data.len();
        data.extend(array(&[map(&[("iso_code", text("ENG"))])]));
        let first = push(
            &mut data,
            &[
                ("country", pointer(country)),
                ("subdivisions", pointer(subdivisions)),
                (
                    "location",
                    map(&[("latitude", double(51.5)), ("longitude", double(-0.1))]),
                ),
            ],
        );
        let second = push(
            &mut data,
            &[
                ("city", pointer(country)),
                ("country", pointer(country)),
                ("subdivisions", pointer(subdivisions)),
            ],
        );
        // A map where an array is read, through the memo and without.
        let wrong = push(&mut data, &[("subdivisions", pointer(country))]);
        let to_pointer = data.len();
        data.extend(pointer(country));
        let twice = push(&mut data, &[("country", pointer(to_pointer))]);
        let flat = push(&mut data, &[("country_code", text("GB"))]);

        let mut plain = Plain::new(&data);
        for at in [first, second, first] {
            let r = plain.record(at).unwrap();
            assert_eq!((r.country, r.subdivision), (Some("GB"), Some("ENG")));
        }
        let r = plain.record(first).unwrap();
        assert_eq!((r.lat, r.lon), (Some(51.5), Some(-0.1)));
        assert_eq!(plain.record(second).unwrap().lat, None);
        assert_eq!(plain.record(wrong).err(), Some(NotPlain));
        assert_eq!(Plain::new(&data).record(wrong).err(), Some(NotPlain));
        assert_eq!(plain.record(twice).err(), Some(NotPlain));
        assert_eq!(plain.record(flat).err(), Some(NotPlain));
        // Cut short: bytes past the section are not plain either.
        assert_eq!(
            Plain::new(&data[..first + 4]).record(first).err(),
            Some(NotPlain)
        );
    }
}
