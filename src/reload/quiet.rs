//! Keeping builds from crowding the query path: lower CPU priority for the
//! build threads, and freed build memory handed back to the system.

/// How much nicer than the query threads a build runs. Linux threads
/// inherit the nice value and policy of the thread that creates them, so
/// the threads a build spawns (the ranking's helpers) are just as nice
/// without knowing it.
pub(super) const FILES_NICE: libc::c_int = 10;

/// The database stage is nicer still: an edit (the files stage) is to be
/// served within a second, a new database may take its time. When both
/// build, the files stage gets about three quarters of what is left.
pub(super) const DB_NICE: libc::c_int = 15;

/// The calling thread to `SCHED_BATCH` at a nice value (shared with RUM's
/// threads, so it lives in [`crate::priority`]).
pub(super) use crate::priority::lower_this_thread;

/// Puts every allocation of 256 KiB or more (range tables, ranks, host
/// lists, parse buffers) in a mapping of its own, handed back to the system
/// when freed. glibc otherwise raises that threshold to the size of the
/// first such block freed (up to 32 MiB), so the next builds' tables land
/// in the malloc arenas, where freed memory stays resident, fragmented
/// between what lives on. A fixed threshold turns that adjustment off.
pub(super) fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets glibc's own malloc parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Returns memory freed by builds to the system. glibc keeps freed memory
/// in the arena of the thread that allocated it; a build's many short-lived
/// threads leave it spread over many arenas, where it stays as RSS until
/// trimmed.
pub(super) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lowered_thread_and_its_children_are_nice() {
        let nice_of_this = || unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            *libc::__errno_location() = 0;
            libc::getpriority(libc::PRIO_PROCESS as _, tid)
        };
        let caller = nice_of_this();
        let (own, child) = std::thread::spawn(move || {
            super::lower_this_thread(super::FILES_NICE);
            let own = nice_of_this();
            let child = std::thread::spawn(nice_of_this).join().unwrap();
            (own, child)
        })
        .join()
        .unwrap();
        assert_eq!(own, caller.max(super::FILES_NICE), "nice {own}");
        assert_eq!(child, own, "a thread the build spawns inherits it");
        assert_eq!(nice_of_this(), caller, "the caller is untouched");
    }
}
