//! A value that writers swap whole, now and then, and every query reads:
//! each reading thread names the value it reads in a hazard of its own
//! (hazard pointers, one per thread), and a writer drops a value it
//! replaced only once no hazard names it. A read is two loads of the slot
//! and two stores to the thread's hazard: no lock, no allocation, no
//! reference count touched, and it never frees anything (the writer,
//! beside the query path, does). arc-swap's guarded load, which this
//! replaces for the learned RTT table, claims and pays a debt slot, about
//! 100 instructions, a tenth of a decision (callgrind,
//! `bench/rum-decide-callgrind.sh`).

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// One thread's hazard: the value it is reading (null: none).
struct Hazard {
    reading: AtomicPtr<()>,
    /// Whether a running thread has it.
    taken: AtomicBool,
}

/// Every hazard made, for writers to scan. A thread that ends hands its
/// hazard on to the next one that reads, so there are as many as threads
/// ever read at once; they are never freed.
static HAZARDS: Mutex<Vec<&'static Hazard>> = Mutex::new(Vec::new());

thread_local! {
    /// This thread's hazard, once it has read.
    static MINE: Cell<Option<&'static Hazard>> = const { Cell::new(None) };
    /// Hands the hazard on when the thread ends.
    static HAND_ON: HandOn = const { HandOn };
}

struct HandOn;

impl Drop for HandOn {
    fn drop(&mut self) {
        // A hazard still naming a value (a read kept past the thread's
        // end, in another thread-local) is never handed on.
        if let Ok(Some(h)) = MINE.try_with(Cell::take)
            && h.reading.load(Ordering::Acquire).is_null()
        {
            h.taken.store(false, Ordering::Release);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// This thread's hazard (taken on its first read).
#[inline]
fn mine() -> &'static Hazard {
    match MINE.with(Cell::get) {
        Some(h) => h,
        None => take_hazard(),
    }
}

#[cold]
fn take_hazard() -> &'static Hazard {
    let h = {
        let mut all = lock(&HAZARDS);
        let free = all.iter().copied().find(|h| {
            h.taken
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        });
        free.unwrap_or_else(|| {
            let h: &'static Hazard = Box::leak(Box::new(Hazard {
                reading: AtomicPtr::new(ptr::null_mut()),
                taken: AtomicBool::new(true),
            }));
            all.push(h);
            h
        })
    };
    MINE.with(|m| m.set(Some(h)));
    // Registers the hand-on; a thread already ending keeps its hazard.
    let _ = HAND_ON.try_with(|_| ());
    h
}

/// An `Option<Arc<T>>` swapped whole by writers and read per query.
pub struct Slot<T> {
    /// From `Arc::into_raw`; null when empty.
    ptr: AtomicPtr<T>,
    /// Writers take turns here, and so does a read that cannot use its
    /// thread's hazard (one already taken by a read in progress).
    write: Mutex<()>,
    _owns: PhantomData<Arc<T>>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            ptr: AtomicPtr::new(ptr::null_mut()),
            write: Mutex::new(()),
            _owns: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Slot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let full = !self.ptr.load(Ordering::Relaxed).is_null();
        f.debug_struct("Slot").field("full", &full).finish()
    }
}

impl<T> Drop for Slot<T> {
    fn drop(&mut self) {
        let p = *self.ptr.get_mut();
        if !p.is_null() {
            // SAFETY: the slot's own count, from `Arc::into_raw`; no read
            // outlives the borrow of the slot it came from.
            drop(unsafe { Arc::from_raw(p) });
        }
    }
}

/// A value read from a [`Slot`]; held briefly (a writer replacing it
/// waits for it), on the thread that read it.
pub struct Read<'a, T> {
    how: How<'a, T>,
    _here: PhantomData<*const ()>,
}

enum How<'a, T> {
    /// Named by this thread's hazard.
    Hazard(&'a T, &'static Hazard),
    /// Counted (a second read while the thread's hazard was taken).
    Counted(Arc<T>),
}

impl<T> std::ops::Deref for Read<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        match &self.how {
            How::Hazard(v, _) => v,
            How::Counted(a) => a,
        }
    }
}

impl<T> Drop for Read<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let How::Hazard(_, h) = self.how {
            h.reading.store(ptr::null_mut(), Ordering::Release);
        }
    }
}

impl<T> Slot<T> {
    /// The value, if any. An empty slot costs one load.
    #[inline]
    pub fn read(&self) -> Option<Read<'_, T>> {
        let mut p = self.ptr.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        let h = mine();
        if !h.reading.load(Ordering::Relaxed).is_null() {
            return self.read_counted();
        }
        loop {
            // Name it, then check it is still the slot's: a writer that
            // swapped it out before seeing the name is seen here.
            h.reading.store(p.cast(), Ordering::SeqCst);
            let now = self.ptr.load(Ordering::SeqCst);
            if now == p {
                // SAFETY: the hazard names `p` and `p` was still in the
                // slot after it did, so the writer that takes it out
                // waits for the hazard to change before dropping it.
                let how = How::Hazard(unsafe { &*p }, h);
                return Some(Read {
                    how,
                    _here: PhantomData,
                });
            }
            if now.is_null() {
                h.reading.store(ptr::null_mut(), Ordering::Release);
                return None;
            }
            p = now;
        }
    }

    /// The value, counted: for holders that keep it a while.
    pub fn load_full(&self) -> Option<Arc<T>> {
        let _turn = lock(&self.write);
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: writers swap only under `write`, so `p` is in the slot,
        // whose count keeps it alive while this one is added.
        (!p.is_null()).then(|| unsafe {
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        })
    }

    #[cold]
    fn read_counted(&self) -> Option<Read<'_, T>> {
        self.load_full().map(|a| Read {
            how: How::Counted(a),
            _here: PhantomData,
        })
    }

    /// A writer's turn: reads and replaces the value with no other writer
    /// in between.
    pub fn write(&self) -> Writer<'_, T> {
        Writer {
            slot: self,
            _turn: lock(&self.write),
        }
    }
}

/// A writer's turn at a [`Slot`].
pub struct Writer<'a, T> {
    slot: &'a Slot<T>,
    _turn: MutexGuard<'a, ()>,
}

impl<T> Writer<'_, T> {
    /// The value in the slot.
    pub fn get(&self) -> Option<Arc<T>> {
        let p = self.slot.ptr.load(Ordering::Acquire);
        // SAFETY: as in `Slot::load_full` (this is the writers' turn).
        (!p.is_null()).then(|| unsafe {
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        })
    }

    /// Puts `new` in the slot and ends the turn, then waits until no
    /// reader names the value it replaced, and drops that (freeing it
    /// here, beside the query path, when it was the last count). The turn
    /// ends first: a reader whose thread's hazard names the old value may
    /// need one to read again.
    pub fn set(self, new: Option<Arc<T>>) {
        let new = new.map_or(ptr::null_mut(), |a| Arc::into_raw(a).cast_mut());
        let old = self.slot.ptr.swap(new, Ordering::SeqCst);
        drop(self);
        if old.is_null() {
            return;
        }
        assert!(
            MINE.with(Cell::get)
                .is_none_or(|h| h.reading.load(Ordering::Relaxed) != old.cast()),
            "a slot's value replaced by the thread reading it"
        );
        let mut waits = 0u32;
        while lock(&HAZARDS)
            .iter()
            .any(|h| h.reading.load(Ordering::SeqCst) == old.cast())
        {
            // A read takes microseconds, unless its thread is preempted.
            waits += 1;
            if waits < 100 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        // SAFETY: the slot's count of `old`, from `Arc::into_raw`; no
        // hazard names it, and none can now that it is out of the slot.
        drop(unsafe { Arc::from_raw(old) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts the values alive, and checks each is whole when read.
    struct Value {
        n: usize,
        check: usize,
        alive: Arc<AtomicUsize>,
    }

    impl Value {
        fn new(n: usize, alive: &Arc<AtomicUsize>) -> Arc<Value> {
            alive.fetch_add(1, Ordering::SeqCst);
            Arc::new(Value {
                n,
                check: !n,
                alive: alive.clone(),
            })
        }
    }

    impl Drop for Value {
        fn drop(&mut self) {
            self.check = 0;
            self.alive.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn reads_see_whole_values_while_writers_swap() {
        let alive = Arc::new(AtomicUsize::new(0));
        let slot = Arc::new(Slot::<Value>::default());
        assert!(slot.read().is_none());
        slot.write().set(Some(Value::new(0, &alive)));
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (slot, stop, reads) = (slot.clone(), stop.clone(), reads.clone());
                std::thread::spawn(move || {
                    let mut last = 0;
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(v) = slot.read() {
                            assert_eq!(v.check, !v.n, "a value freed while read");
                            assert!(v.n >= last, "values go forward");
                            last = v.n;
                            reads.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        // Swaps until the readers have read many values meanwhile.
        let t = std::time::Instant::now();
        let mut n = 0;
        while n < 2000 || reads.load(Ordering::Relaxed) < 20_000 {
            assert!(t.elapsed().as_secs() < 60, "the readers never read");
            n += 1;
            let v = (n % 7 != 0).then(|| Value::new(n, &alive));
            slot.write().set(v);
            // What is not in the slot (nor being read) is gone.
            assert!(alive.load(Ordering::SeqCst) <= 1 + 3);
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        slot.write().set(None);
        assert_eq!(alive.load(Ordering::SeqCst), 0);
        drop(slot);
    }

    #[test]
    fn a_read_inside_a_read_is_counted_and_a_writer_waits_for_reads() {
        let alive = Arc::new(AtomicUsize::new(0));
        let slot = Arc::new(Slot::default());
        slot.write().set(Some(Value::new(1, &alive)));
        let outer = slot.read().unwrap();
        assert!(matches!(outer.how, How::Hazard(..)));
        let inner = slot.read().unwrap();
        assert!(matches!(inner.how, How::Counted(_)));
        drop(inner);
        // Another thread replaces the value: it waits for `outer`.
        let (s2, a2) = (slot.clone(), alive.clone());
        let writer = std::thread::spawn(move || s2.write().set(Some(Value::new(2, &a2))));
        let t = std::time::Instant::now();
        while slot.load_full().unwrap().n != 2 {
            assert!(t.elapsed().as_secs() < 20, "the writer never swapped");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!writer.is_finished(), "the writer waits for the read");
        assert_eq!((outer.n, outer.check), (1, !1));
        // Meanwhile this thread reads again: the new value, counted.
        assert_eq!(slot.read().unwrap().n, 2);
        drop(outer);
        writer.join().unwrap();
        assert_eq!(slot.read().unwrap().n, 2);
        assert_eq!(slot.load_full().unwrap().n, 2);
        assert_eq!(alive.load(Ordering::SeqCst), 1);
        // A thread's hazard is handed on when it ends: 32 threads one
        // after the other take no more than the tests running meanwhile.
        let before = lock(&HAZARDS).len();
        for _ in 0..32 {
            let s = slot.clone();
            std::thread::spawn(move || assert_eq!(s.read().unwrap().n, 2))
                .join()
                .unwrap();
        }
        assert!(lock(&HAZARDS).len() < before + 16);
    }
}
