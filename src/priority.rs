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

/// Why [`spawn_beside`] started no thread.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpawnError {
    #[error("thread not started: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("{0}")]
    Pin(#[source] std::io::Error),
}

/// Spawns a thread for work beside the query path: pinned to `cpus` when
/// any are given (an operator keeps it off the DNS workers' cores), then
/// lowered to `SCHED_BATCH` at `nice`. Returns once the thread is pinned,
/// or why it could not be; then `f` never runs.
pub(crate) fn spawn_beside(
    name: &str,
    nice: libc::c_int,
    cpus: &[usize],
    f: impl FnOnce() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, SpawnError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let cpus = cpus.to_vec();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let pinned = pin_this_thread(&cpus);
            let ok = pinned.is_ok();
            let _ = tx.send(pinned);
            if ok {
                lower_this_thread(nice);
                f();
            }
        })
        .map_err(SpawnError::Spawn)?;
    match rx.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(SpawnError::Pin(e))
        }
        Err(_) => Err(SpawnError::Spawn(std::io::Error::other(
            "it ended before it started",
        ))),
    }
}

/// Pins the calling thread to `cpus` (none: leaves it as it is). A CPU
/// that is offline or outside the process's cpuset is an error naming it:
/// the kernel would quietly leave it out.
pub(crate) fn pin_this_thread(cpus: &[usize]) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    if cpus.is_empty() {
        return Ok(());
    }
    if let Some(c) = cpus.iter().find(|&&c| c >= libc::CPU_SETSIZE as usize) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{c} is not a CPU number"),
        ));
    }
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: a cpu_set_t is plain bits (zeroed: empty); CPU_SET and
    // CPU_ISSET get numbers below CPU_SETSIZE (checked above); the
    // syscalls act on the calling thread (pid 0) and touch only the sets,
    // whose size they are given.
    unsafe {
        let mut want: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut want);
        }
        if libc::sched_setaffinity(0, size, &want) != 0 {
            let e = Error::last_os_error();
            let why = if e.raw_os_error() == Some(libc::EINVAL) {
                "none of them is online and in this process's cpuset".to_string()
            } else {
                e.to_string()
            };
            return Err(Error::new(e.kind(), format!("CPUs {cpus:?}: {why}")));
        }
        let mut got: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size, &mut got) != 0 {
            return Err(Error::last_os_error());
        }
        match cpus.iter().find(|&&c| !libc::CPU_ISSET(c, &got)) {
            Some(c) => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("CPU {c} is offline or outside this process's cpuset"),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPUs the calling thread may run on.
    fn affinity() -> Vec<usize> {
        // SAFETY: as in `pin_this_thread`.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
                0
            );
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect()
        }
    }

    #[test]
    fn a_thread_beside_runs_on_the_cpus_given_or_not_at_all() {
        let mine = affinity();
        let last = *mine.last().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = spawn_beside("pin-test", 0, &[last], move || {
            tx.send(affinity()).unwrap();
        })
        .unwrap();
        t.join().unwrap();
        assert_eq!(rx.recv().unwrap(), vec![last]);
        // Unpinned: where its parent may run.
        let (tx, rx) = std::sync::mpsc::channel();
        spawn_beside("pin-test", 0, &[], move || tx.send(affinity()).unwrap())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(rx.recv().unwrap(), mine);
        // No machine here has CPU 1023 online; `f` must not run.
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = ran.clone();
        let e = spawn_beside("pin-test", 0, &[1023], move || {
            r.store(true, std::sync::atomic::Ordering::SeqCst)
        })
        .unwrap_err();
        assert!(e.to_string().contains("[1023]: none of them"), "{e}");
        let e = spawn_beside("pin-test", 0, &[last, 1023], || ()).unwrap_err();
        assert!(e.to_string().contains("CPU 1023 is offline"), "{e}");
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }
}
