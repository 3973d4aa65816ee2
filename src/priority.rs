//! Thread priority for work beside the query path (reload builds, RUM's
//! listener and aggregator): such threads yield to a waking DNS worker
//! instead of sharing a busy core with it evenly.

/// Moves the calling thread to `SCHED_BATCH` (the scheduler treats it as
/// CPU-bound and never lets it preempt a waking query thread) at `nice`.
/// One-way: an unprivileged thread cannot come back.
pub(crate) fn lower_this_thread(nice: libc::c_int) {
    // SAFETY: plain syscalls on the calling thread (tid from gettid), with
    // a zeroed sched_param as SCHED_BATCH requires.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let param: libc::sched_param = std::mem::zeroed();
        if libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) != 0 {
            tracing::debug!(
                "thread: SCHED_BATCH refused: {}",
                std::io::Error::last_os_error()
            );
        }
        // The `which` parameter's type differs between libc targets.
        #[allow(clippy::useless_conversion)]
        if libc::setpriority(libc::PRIO_PROCESS.try_into().unwrap_or_default(), tid, nice) != 0 {
            tracing::debug!(
                "thread: nice {nice} refused: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}
