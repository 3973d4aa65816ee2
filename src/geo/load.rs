//! Loading a database file into a private, immutable snapshot (sealed memfd + mmap).
//!
//! Mapping the operator's file directly would let an in-place overwrite or truncation
//! SIGBUS the server or change a live snapshot under a verified reader. Copying into a
//! sealed memfd gives us page-cache-backed memory (not heap) that nobody, including us,
//! can modify or shrink afterwards.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;
use std::time::SystemTime;

use super::location::GeoError;

/// The bytes of one database file, frozen at open time.
pub(crate) enum Snapshot {
    /// A sealed memfd mapped read-only (the normal case on Linux).
    Mapped(memmap2::Mmap),
    /// Plain heap copy, used when memfd/sealing is unavailable (non-Linux, seccomp
    /// sandboxes denying `memfd_create`, kernels without sealing).
    Heap(Vec<u8>),
}

impl Snapshot {
    /// Lets go of the resident pages of `range` (byte offsets): the
    /// mapping is a shared one of a sealed memfd, so the bytes stay in the
    /// memfd and a later read faults them back in, unchanged. What was read
    /// once then stops counting in the process's resident set (the one pass
    /// at open reads a City database's 43 MB tree once).
    pub(crate) fn release(&self, range: std::ops::Range<usize>) {
        let Snapshot::Mapped(m) = self else {
            return;
        };
        const PAGE: usize = 4096;
        let start = range.start.div_ceil(PAGE) * PAGE;
        let end = (range.end / PAGE * PAGE).min(m.len() / PAGE * PAGE);
        if start >= end {
            return;
        }
        // SAFETY: MADV_DONTNEED on a shared mapping only drops page table
        // entries; the contents of a shared (memfd) mapping are kept and
        // read back on the next access, so every slice of it stays valid
        // and unchanged.
        let _ = unsafe {
            m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
    }
}

impl AsRef<[u8]> for Snapshot {
    fn as_ref(&self) -> &[u8] {
        match self {
            Snapshot::Mapped(m) => m,
            Snapshot::Heap(v) => v,
        }
    }
}

/// What we compare before and after the copy to detect a concurrent writer.
#[derive(PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    ctime: (i64, i64),
}

fn fingerprint(file: &File, path: &Path) -> Result<Fingerprint, GeoError> {
    let meta = file.metadata().map_err(|source| GeoError::Io {
        path: path.to_owned(),
        op: "stat",
        source,
    })?;
    if !meta.is_file() {
        return Err(GeoError::Invalid {
            path: path.to_owned(),
            reason: "not a regular file".into(),
        });
    }
    #[cfg(unix)]
    let ctime = {
        use std::os::unix::fs::MetadataExt;
        (meta.ctime(), meta.ctime_nsec())
    };
    Ok(Fingerprint {
        len: meta.len(),
        modified: meta.modified().ok(),
        #[cfg(unix)]
        ctime,
    })
}

/// Copies `path` into a private snapshot. Fails with [`GeoError::Changed`] when the file
/// was modified during the copy, so a half-written file is never used.
pub(crate) fn load(path: &Path) -> Result<(Snapshot, u64), GeoError> {
    let io_err = |op: &'static str| {
        move |source: io::Error| GeoError::Io {
            path: path.to_owned(),
            op,
            source,
        }
    };
    let mut file = File::open(path).map_err(io_err("open"))?;
    let before = fingerprint(&file, path)?;
    if before.len == 0 {
        return Err(GeoError::Invalid {
            path: path.to_owned(),
            reason: "file is empty".into(),
        });
    }
    let snapshot = match sealed_copy(&mut file, before.len) {
        Ok(Some(s)) => s,
        // memfd unavailable: fall back to the heap. Still a private copy, so the
        // consistency argument is unchanged; only the memory accounting differs.
        Ok(None) => {
            // A failed seal may have left the position mid-file.
            file.seek(io::SeekFrom::Start(0)).map_err(io_err("seek"))?;
            let mut buf = Vec::with_capacity(usize::try_from(before.len).unwrap_or(0));
            // Read one byte past the expected length so growth is detected.
            (&mut file)
                .take(before.len.saturating_add(1))
                .read_to_end(&mut buf)
                .map_err(io_err("read"))?;
            Snapshot::Heap(buf)
        }
        Err(CopyError::Io(source)) => return Err(io_err("copy")(source)),
        Err(CopyError::Short) => {
            return Err(GeoError::Changed {
                path: path.to_owned(),
            });
        }
    };
    let after = fingerprint(&file, path)?;
    if before != after || snapshot.as_ref().len() as u64 != before.len {
        return Err(GeoError::Changed {
            path: path.to_owned(),
        });
    }
    Ok((snapshot, before.len))
}

enum CopyError {
    Io(io::Error),
    /// The file did not hold exactly the expected number of bytes.
    Short,
}

/// Copies `len` bytes of `file` into a sealed memfd and maps it. `Ok(None)` means memfd or
/// sealing is unsupported here and the caller should fall back.
#[cfg(target_os = "linux")]
fn sealed_copy(file: &mut File, len: u64) -> Result<Option<Snapshot>, CopyError> {
    use std::os::fd::FromRawFd;

    // SAFETY: the name is a valid NUL-terminated string; the returned fd is checked and
    // immediately owned by a `File`, which closes it.
    let fd = unsafe {
        libc::memfd_create(
            c"geosteer-geodb".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Ok(None);
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let mut memfd = unsafe { File::from_raw_fd(fd) };
    // Copy at most len + 1 bytes: a file that grew is caught by the length check.
    let copied =
        io::copy(&mut file.take(len.saturating_add(1)), &mut memfd).map_err(CopyError::Io)?;
    if copied != len {
        return Err(CopyError::Short);
    }
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: plain fcntl on a descriptor we own.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) } != 0 {
        return Ok(None);
    }
    // SAFETY: the memfd is private to this process and sealed against writes, shrinking
    // and growing, so the mapping can neither change nor lose pages (no SIGBUS).
    let map = unsafe { memmap2::Mmap::map(&memfd) }.map_err(CopyError::Io)?;
    Ok(Some(Snapshot::Mapped(map)))
}

#[cfg(not(target_os = "linux"))]
fn sealed_copy(_file: &mut File, _len: u64) -> Result<Option<Snapshot>, CopyError> {
    Ok(None)
}
