# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: small file-system helpers (may change without notice).

* :func:`atomic_write` -- replace a file atomically and durably: a new
  temporary file in the same directory (``O_EXCL | O_NOFOLLOW``, mode 0600),
  written, flushed and fsynced, given its final mode, renamed over the target,
  then the directory fsynced.  On any error the temporary file is removed and
  the target is left as it was.  With ``dir_fd`` every name is resolved
  relative to that open directory (the caches open their checked private
  directory once and never follow a symlink inside it).
* :func:`fsync_dir` -- fsync a directory (by path or descriptor), tolerating
  file systems that refuse it.
* :func:`remove_tree` -- delete a file or a directory tree without following
  symlinks (a symlink is unlinked, never entered), also when the tree holds
  read-only directories.

No Ansible imports; Python 3.8+.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat

O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
TEMP_SUFFIX = ".tmp"
# dir_fd support for every call made relative to a directory descriptor
DIR_FD = all(func in os.supports_dir_fd for func in (os.open, os.unlink, os.rename, os.rmdir, os.stat, os.chmod))


def temp_name(name):
    """A fresh temporary name next to ``name``: ``.<name>.<random>.tmp`` (hidden, recognisable as ours)."""
    return ".%s.%s%s" % (name, os.urandom(8).hex(), TEMP_SUFFIX)


def is_temp_of(entry, name):
    """Whether directory entry ``entry`` is a temporary file :func:`atomic_write` made for ``name``."""
    return entry.startswith(".%s." % name) and entry.endswith(TEMP_SUFFIX)


def fsync_dir(directory):
    """fsync a directory given by path or open descriptor; file systems that refuse it are tolerated."""
    if isinstance(directory, int):
        fd, close = directory, False
    else:
        try:
            fd = os.open(directory, os.O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        except OSError:  # pragma: no cover - platforms without directory descriptors
            return
        close = True
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        if close:
            os.close(fd)


def chown_like(path, info):
    """Give ``path`` the owner and group in ``info`` (an ``os.stat`` result) where permitted (EPERM is fine)."""
    try:
        os.chown(path, info.st_uid, info.st_gid)
    except OSError as exc:
        if exc.errno != errno.EPERM:
            raise


@contextlib.contextmanager
def atomic_write(path, mode=None, dir_fd=None, prepare=None, replace=None, sync_dir=True):
    """Replace ``path`` atomically: yield a binary file open on a new temporary file in the same directory.

    After the ``with`` body: the file is flushed and fsynced, given ``mode``
    (None: it stays 0600), ``prepare(temp_path)`` is called (owner, group,
    anything else that must be on the file before it appears), then it is
    renamed over ``path`` (``replace(temp_path, path)`` when given, for a
    caller that moves it its own way) and the directory is fsynced.  An error
    in the body or any step removes the temporary file; ``path`` is untouched.

    ``dir_fd``: ``path`` is a name relative to that open directory, and the
    temporary file is created and renamed relative to it (never through a
    symlink).  The file is opened read-write, so a caller may keep a
    descriptor of it (``os.dup(handle.fileno())``) to read what it wrote.
    """
    directory, name = os.path.split(path)
    at = {"dir_fd": dir_fd} if dir_fd is not None else {}
    while True:
        temp = os.path.join(directory, temp_name(name))
        try:
            fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600, **at)
            break
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        if prepare is not None:
            prepare(temp)
        if replace is not None:
            replace(temp, path)
        elif dir_fd is not None:
            os.rename(temp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        else:
            os.rename(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, **at)
        raise
    if sync_dir:
        fsync_dir(dir_fd if dir_fd is not None else (directory or "."))


def remove_tree(path):
    """Delete ``path``: a file or symlink is unlinked, a directory removed with everything in it.

    Symlinks inside are unlinked, never followed (every directory is opened
    ``O_NOFOLLOW`` relative to its parent's descriptor, so a directory swapped
    for a symlink meanwhile is not entered); read-only directories are made
    writable by their owner first.  A missing ``path`` is not an error.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(path)
        return
    if not DIR_FD:  # pragma: no cover - every POSIX platform this runs on has them
        shutil.rmtree(path)
        return
    parent, name = os.path.split(os.path.normpath(path))
    parent_fd = os.open(parent or ".", os.O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    try:
        _remove_at(parent_fd, name)
    finally:
        os.close(parent_fd)


def _remove_at(parent_fd, name):
    """Remove the directory ``name`` of the open directory ``parent_fd`` and all in it."""
    flags = os.O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=parent_fd)
    except PermissionError:  # a directory we may not read: make it ours to empty (it is no symlink: lstat)
        info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        if not stat.S_ISDIR(info.st_mode):
            raise
        os.chmod(name, stat.S_IMODE(info.st_mode) | stat.S_IRWXU, dir_fd=parent_fd)
        fd = os.open(name, flags, dir_fd=parent_fd)
    try:
        info = os.fstat(fd)
        if stat.S_IMODE(info.st_mode) & stat.S_IRWXU != stat.S_IRWXU:
            os.fchmod(fd, stat.S_IMODE(info.st_mode) | stat.S_IRWXU)  # entries of a read-only directory
        with os.scandir(fd) as entries:
            items = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
        for entry, is_dir in items:
            if is_dir:
                _remove_at(fd, entry)
            else:
                os.unlink(entry, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent_fd)
