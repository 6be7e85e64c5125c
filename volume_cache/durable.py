"""Durable file-system steps shared by every store: fsync of files, folders and trees.

A rename or a new folder entry survives power loss only once its parent folder is fsynced;
these helpers make that explicit wherever VoxCast publishes something (archived instances,
quarantined files, volumes).
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """fsync a folder, making its entries (new names, renames) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """fsync every file, then every folder bottom-up, under ``path``."""
    for dirpath, _dirnames, filenames in os.walk(path, topdown=False):
        for filename in filenames:
            fd = os.open(os.path.join(dirpath, filename), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def ensure_dir(path: Path) -> None:
    """Create ``path`` and missing parents, fsyncing each new entry's parent folder."""
    if path.is_dir():
        return
    ensure_dir(path.parent)
    try:
        path.mkdir()
    except FileExistsError:
        return
    fsync_dir(path.parent)
