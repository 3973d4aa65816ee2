//! Large lookup tables on transparent huge pages. A query reads a few
//! random lines of tables tens of MB big (the flattened RTT table, the RTT
//! rows); on 4 KiB pages nearly every such read also misses the TLB, and
//! the page walk sits on the same dependent chain as the read.

/// A 2 MiB huge page (x86_64 and most aarch64 kernels).
const HUGE: usize = 2 << 20;

/// `items` copied into memory the kernel is asked to back with huge pages
/// (`madvise(MADV_HUGEPAGE)` before the first write, so the faults that
/// fill it take huge pages when the kernel has them). Where it has none,
/// or THP is off, this is a plain copy.
pub fn boxed<T: Copy>(items: &[T]) -> Box<[T]> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    let bytes = std::mem::size_of_val(items);
    if bytes >= 2 * HUGE {
        let start = out.as_mut_ptr() as usize;
        let first = start.next_multiple_of(HUGE);
        let end = (start + bytes) / HUGE * HUGE;
        if end > first {
            // SAFETY: the range lies inside `out`'s allocation, which we
            // own and have not written yet; madvise only sets a hint on it.
            unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
            }
        }
    }
    out.extend_from_slice(items);
    out.into_boxed_slice()
}
