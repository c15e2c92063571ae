"""Per-name locks.

s3rver writes object files in place, so without serialisation a reader can
see half an object and two conditional PUTs can both see "absent".  The
proxy therefore holds a lock per (bucket, key) around every forwarded
request that touches a key, and a reader/writer lock per multipart upload
(parts in parallel; abort and complete alone).
"""

import contextlib
import threading


class NamedLocks:
    """Mutexes created on demand and dropped when nobody uses them."""

    def __init__(self):
        self._guard = threading.Lock()
        self._locks = {}  # name -> [lock, users]

    @contextlib.contextmanager
    def hold(self, *names):
        """Hold the locks of all names (in a fixed order: no deadlock)."""
        ordered = sorted(set(names))
        entries = [self._acquire_entry(n) for n in ordered]
        held = []
        try:
            for entry in entries:
                entry[0].acquire()
                held.append(entry[0])
            yield
        finally:
            for lock in reversed(held):
                lock.release()
            for name in ordered:
                self._release_entry(name)

    def _acquire_entry(self, name):
        with self._guard:
            entry = self._locks.setdefault(name, [threading.Lock(), 0])
            entry[1] += 1
            return entry

    def _release_entry(self, name):
        with self._guard:
            entry = self._locks[name]
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[name]


class _ReadWriteLock:
    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    def acquire(self, exclusive):
        with self._cond:
            if exclusive:
                self._cond.wait_for(lambda: not self._writer and
                                    self._readers == 0)
                self._writer = True
            else:
                self._cond.wait_for(lambda: not self._writer)
                self._readers += 1

    def release(self, exclusive):
        with self._cond:
            if exclusive:
                self._writer = False
            else:
                self._readers -= 1
            self._cond.notify_all()


class NamedRWLocks:
    def __init__(self):
        self._guard = threading.Lock()
        self._locks = {}  # name -> [rwlock, users]

    @contextlib.contextmanager
    def hold(self, name, exclusive):
        with self._guard:
            entry = self._locks.setdefault(name, [_ReadWriteLock(), 0])
            entry[1] += 1
        entry[0].acquire(exclusive)
        try:
            yield
        finally:
            entry[0].release(exclusive)
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[name]
