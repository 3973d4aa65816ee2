//! Frame Streams (the framing dnstap uses): length-prefixed data frames and
//! escaped control frames, for files (START … STOP) and for sockets
//! (READY → ACCEPT → START … STOP → FINISH).

use std::io::{self, Read, Write};

/// dnstap's content type, announced in READY, ACCEPT and START.
pub const CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";

/// Largest frame we accept when reading (control frames are tiny; data
/// frames hold one DNS message pair).
pub const MAX_FRAME: usize = 1 << 20;

/// Control frame types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Accept = 1,
    Start = 2,
    Stop = 3,
    Ready = 4,
    Finish = 5,
}

impl Control {
    fn from_u32(v: u32) -> Option<Control> {
        Some(match v {
            1 => Control::Accept,
            2 => Control::Start,
            3 => Control::Stop,
            4 => Control::Ready,
            5 => Control::Finish,
            _ => return None,
        })
    }
}

/// The control field carrying a content type.
const FIELD_CONTENT_TYPE: u32 = 1;

/// Writes a control frame; READY, ACCEPT and START carry the content type.
pub fn write_control(w: &mut impl Write, kind: Control) -> io::Result<()> {
    let with_type = matches!(kind, Control::Ready | Control::Accept | Control::Start);
    let mut body = (kind as u32).to_be_bytes().to_vec();
    if with_type {
        body.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
        body.extend_from_slice(&(CONTENT_TYPE.len() as u32).to_be_bytes());
        body.extend_from_slice(CONTENT_TYPE);
    }
    w.write_all(&0u32.to_be_bytes())?;
    w.write_all(&(body.len() as u32).to_be_bytes())?;
    w.write_all(&body)
}

/// Writes one data frame.
pub fn write_data(w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    debug_assert!(!payload.is_empty());
    w.write_all(&(payload.len() as u32).to_be_bytes())?;
    w.write_all(payload)
}

/// A frame as read.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Data(Vec<u8>),
    /// A control frame and the content types it names.
    Control(Control, Vec<Vec<u8>>),
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Reads one frame (the writer's handshake, and readers in tests).
pub fn read_frame(r: &mut impl Read) -> io::Result<Frame> {
    let len = read_u32(r)? as usize;
    if len > MAX_FRAME {
        return Err(invalid("frame too long"));
    }
    if len > 0 {
        let mut data = vec![0u8; len];
        r.read_exact(&mut data)?;
        return Ok(Frame::Data(data));
    }
    let clen = read_u32(r)? as usize;
    if !(4..=MAX_FRAME).contains(&clen) {
        return Err(invalid("bad control frame length"));
    }
    let mut body = vec![0u8; clen];
    r.read_exact(&mut body)?;
    let kind = Control::from_u32(u32::from_be_bytes(body[..4].try_into().expect("4 bytes")))
        .ok_or_else(|| invalid("unknown control frame type"))?;
    let mut types = Vec::new();
    let mut rest = &body[4..];
    while !rest.is_empty() {
        if rest.len() < 8 {
            return Err(invalid("truncated control field"));
        }
        let field = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes"));
        let flen = u32::from_be_bytes(rest[4..8].try_into().expect("4 bytes")) as usize;
        if rest.len() < 8 + flen {
            return Err(invalid("truncated control field"));
        }
        if field == FIELD_CONTENT_TYPE {
            types.push(rest[8..8 + flen].to_vec());
        }
        rest = &rest[8 + flen..];
    }
    Ok(Frame::Control(kind, types))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_data_round_trip() {
        let mut buf = Vec::new();
        write_control(&mut buf, Control::Start).unwrap();
        write_data(&mut buf, b"hello").unwrap();
        write_control(&mut buf, Control::Stop).unwrap();
        // START: escape, length 34 = type + field header + 22-byte type.
        assert_eq!(&buf[..8], &[0, 0, 0, 0, 0, 0, 0, 34]);
        let mut r = &buf[..];
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Frame::Control(Control::Start, vec![CONTENT_TYPE.to_vec()])
        );
        assert_eq!(read_frame(&mut r).unwrap(), Frame::Data(b"hello".to_vec()));
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Frame::Control(Control::Stop, vec![])
        );
        assert!(r.is_empty());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &[0u8, 0, 0, 0, 0, 0, 0, 1][..],
            &[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 9],
        ] {
            assert!(read_frame(&mut &bad[..]).is_err());
        }
    }
}
