//! A lean serde `Deserializer` over the MMDB data section, for reading every
//! distinct record once at open: it starts at a record's data offset (which
//! the tree walk already has), so nothing walks the search tree again, and
//! it keeps no budgets or error text. It only ever says "this record is
//! plain": anything it does not expect (an unknown or oversized type, a
//! pointer to a pointer, nesting past [`MAX_DEPTH`], bytes past the section,
//! text that is not UTF-8) is an error, on which the caller reads the record
//! the careful way (maxminddb's decoder), which decides whether the record
//! locates nothing or the database is refused. So what a record says is
//! decided by the same visitors ([`super::record`]) either way.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Maps and arrays inside each other (pointers followed count as a level).
/// GeoIP2 records nest four deep.
const MAX_DEPTH: u32 = 16;

/// Entries in one map (keys and values counted apart) or array: GeoIP2
/// maps hold a dozen; past this the careful decoder (with its own limits)
/// decides.
const MAX_ENTRIES: usize = 4096;

/// "Not a plain record": no reason is kept, the careful path finds it.
#[derive(Debug)]
pub(crate) struct NotPlain;

impl std::fmt::Display for NotPlain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a plain record")
    }
}

impl std::error::Error for NotPlain {}

impl de::Error for NotPlain {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        NotPlain
    }
}

type Result<T> = std::result::Result<T, NotPlain>;

/// The data section, read from one position.
pub(crate) struct Decoder<'de> {
    data: &'de [u8],
    pos: usize,
    depth: u32,
}

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

impl<'de> Decoder<'de> {
    /// A decoder of `data` (the data section) at `offset`.
    pub(crate) fn new(data: &'de [u8], offset: usize) -> Decoder<'de> {
        Decoder {
            data,
            pos: offset,
            depth: 0,
        }
    }

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

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(NotPlain);
        }
        Ok(())
    }

    /// Passes over one value without following pointers: one loop over
    /// the values inside it, counting what is left per level, since most
    /// of a City record is names no one reads.
    fn skip(&mut self) -> Result<()> {
        let mut left = [0usize; MAX_DEPTH as usize + 1];
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
                if depth > MAX_DEPTH as usize {
                    return Err(NotPlain);
                }
                left[depth] = n;
            }
        }
    }

    /// A container of `n` entries: no more than [`MAX_ENTRIES`], nor than
    /// the bytes left (each entry takes one at least).
    fn entries(&self, n: usize) -> Result<()> {
        if n > MAX_ENTRIES || n > self.data.len() - self.pos {
            return Err(NotPlain);
        }
        Ok(())
    }

    /// A number of `kind` and `size` bytes, read.
    fn number(&mut self, kind: u8, size: usize) -> Result<Number> {
        Ok(match (kind, size) {
            (DOUBLE, 8) => Number::F64(f64::from_bits(self.be(8)?)),
            (FLOAT, 4) => Number::F32(f32::from_bits(self.be(4)? as u32)),
            (UINT16, 0..=2) | (UINT32, 0..=4) | (UINT64, 0..=8) => Number::U64(self.be(size)?),
            _ => return Err(NotPlain),
        })
    }

    fn text(&mut self, size: usize) -> Result<&'de str> {
        let b = self.take(size)?;
        if b.is_ascii() {
            // SAFETY: ASCII is UTF-8.
            Ok(unsafe { std::str::from_utf8_unchecked(b) })
        } else {
            std::str::from_utf8(b).map_err(|_| NotPlain)
        }
    }

    /// A map's or array's `n` entries (keys and values counted apart) read
    /// by `f`; those it leaves are passed over, so the position is after
    /// the container whatever the visitor read.
    fn container<T>(
        &mut self,
        n: usize,
        f: impl FnOnce(Entries<'_, 'de>) -> Result<T>,
    ) -> Result<T> {
        self.entries(n)?;
        self.enter()?;
        let mut left = n;
        let r = f(Entries {
            de: self,
            left: &mut left,
        })?;
        for _ in 0..left {
            self.skip()?;
        }
        self.depth -= 1;
        Ok(r)
    }

    /// Runs `f` on the value at the position (a pointer followed), then
    /// goes on after the value.
    fn with_value<T>(&mut self, f: impl FnOnce(&mut Self, u8, usize) -> Result<T>) -> Result<T> {
        let (kind, size, back) = self.value_head()?;
        if back.is_some() {
            self.enter()?;
        }
        let r = f(self, kind, size)?;
        if let Some(b) = back {
            self.pos = b;
            self.depth -= 1;
        }
        Ok(r)
    }
}

enum Number {
    F64(f64),
    F32(f32),
    U64(u64),
}

impl<'de> de::Deserializer<'de> for &mut Decoder<'de> {
    type Error = NotPlain;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.with_value(|de, kind, size| match kind {
            STRING => visitor.visit_borrowed_str(de.text(size)?),
            BYTES => visitor.visit_borrowed_bytes(de.take(size)?),
            BOOLEAN if size <= 1 => visitor.visit_bool(size == 1),
            MAP => de.container(2 * size, |e| visitor.visit_map(e)),
            ARRAY => de.container(size, |e| visitor.visit_seq(e)),
            _ => match de.number(kind, size)? {
                Number::F64(v) => visitor.visit_f64(v),
                Number::F32(v) => visitor.visit_f32(v),
                Number::U64(v) => visitor.visit_u64(v),
            },
        })
    }

    /// A map, or not plain.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.with_value(|de, kind, size| {
            if kind != MAP {
                return Err(NotPlain);
            }
            de.container(2 * size, |e| visitor.visit_map(e))
        })
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip()?;
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct struct enum identifier
    }
}

/// A map's keys and values (`left` counts both) or an array's items.
struct Entries<'a, 'de> {
    de: &'a mut Decoder<'de>,
    left: &'a mut usize,
}

impl<'de> Entries<'_, 'de> {
    /// The next entry (a key, or an item), if any is left.
    fn next<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if *self.left == 0 {
            return Ok(None);
        }
        *self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }
}

impl<'de> MapAccess<'de> for Entries<'_, 'de> {
    type Error = NotPlain;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        self.next(seed)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value> {
        *self.left = self.left.checked_sub(1).ok_or(NotPlain)?;
        seed.deserialize(&mut *self.de)
    }
}

impl<'de> SeqAccess<'de> for Entries<'_, 'de> {
    type Error = NotPlain;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        self.next(seed)
    }
}
