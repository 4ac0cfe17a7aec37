"""Directory change notification: Linux inotify through ctypes, or nothing (the agent then polls on a timer).

Events only say *which directory* changed; the agent then looks at that directory's streams. An overflowed
event queue means "anything may have changed".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import select
import struct
import time
from pathlib import Path

from psc.common.log import get_logger

_log = get_logger("singer.watch")

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_Q_OVERFLOW, IN_IGNORED = 0x400, 0x800, 0x4000, 0x8000
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
_MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
_MASK |= IN_DELETE_SELF | IN_MOVE_SELF
_EVENT = struct.Struct("iIII")


class Everything:
    """Stands for "every directory may have changed" (queue overflow, or no inotify)."""


EVERYTHING = Everything()


class Watcher:
    """inotify on the stream directories; ``available`` is False where inotify cannot be used."""

    def __init__(self, enabled: bool = True) -> None:
        self._fd = -1
        self._dirs: dict[int, Path] = {}
        self._wds: dict[Path, int] = {}
        if not enabled:
            return
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            self._add = libc.inotify_add_watch
            self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            self._rm = libc.inotify_rm_watch
            self._rm.argtypes = [ctypes.c_int, ctypes.c_int]
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        except (OSError, AttributeError) as exc:
            _log.warning("inotify unavailable, polling directories", error=str(exc))
            return
        if fd < 0:
            _log.warning("inotify unavailable, polling directories", error=os.strerror(ctypes.get_errno()))
            return
        self._fd = fd

    @property
    def available(self) -> bool:
        return self._fd >= 0

    def watch(self, directory: Path) -> None:
        if not self.available or directory in self._wds:
            return
        wd = self._add(self._fd, os.fsencode(directory), _MASK)
        if wd < 0:
            _log.warning("cannot watch directory", path=str(directory), error=os.strerror(ctypes.get_errno()))
            return
        self._wds[directory] = wd
        self._dirs[wd] = directory

    def unwatch(self, directory: Path) -> None:
        wd = self._wds.pop(directory, None)
        if wd is not None:
            self._dirs.pop(wd, None)
            self._rm(self._fd, wd)

    def wait(self, timeout: float) -> None:
        """Block until an event is pending or ``timeout`` passes (without inotify: sleep ``timeout``)."""
        if self.available:
            select.select([self._fd], [], [], timeout)
        else:
            time.sleep(timeout)

    def changes(self) -> set[Path] | Everything:
        """Directories with events since the last call (without blocking)."""
        if not self.available:
            return EVERYTHING
        changed: set[Path] = set()
        while True:
            try:
                data = os.read(self._fd, 64 * 1024)
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    return changed
                raise
            pos = 0
            while pos + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, pos)
                pos += _EVENT.size + length
                if mask & IN_Q_OVERFLOW:
                    return EVERYTHING
                directory = self._dirs.get(wd)
                if directory is not None:
                    changed.add(directory)
                if mask & IN_IGNORED and directory is not None:  # the directory itself went away
                    self._dirs.pop(wd, None)
                    self._wds.pop(directory, None)

    def close(self) -> None:
        if self.available:
            os.close(self._fd)
            self._fd = -1
