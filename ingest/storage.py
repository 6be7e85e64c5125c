"""Durable file writes for archived instances and quarantined files.

Received bytes are staged under a temporary name in ``incoming/``, flushed and fsynced, then
renamed to their final name and the folder fsynced (:meth:`InstanceFiles.publish`): once that
returns the file survives a crash or power loss, and no reader ever sees a half-written file
under its final name.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from volume_cache.durable import ensure_dir, fsync_dir

TMP_PREFIX = ".tmp-"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def remove_stale_temporaries(root: Path) -> int:
    """Delete temporaries left by a crash (never visible under a final name). Returns count."""
    removed = 0
    if not root.exists():
        return 0
    for tmp in root.rglob(f"{TMP_PREFIX}*"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


class InstanceFiles:
    """Where archived and quarantined bytes live inside the data directory.

    Archived instance: ``dicom/<study>/<series>/<sop>.<sha256[:16]>.dcm`` — the content hash
    in the name means a second version of a SOP Instance UID never overwrites the first.
    Quarantined file: ``quarantine/<sha256>.dcm``.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.dicom_root = data_dir / "dicom"
        self.quarantine_root = data_dir / "quarantine"

    def instance_relpath(self, study_uid: str, series_uid: str, sop_uid: str, sha256: str) -> str:
        return f"dicom/{study_uid}/{series_uid}/{sop_uid}.{sha256[:16]}.dcm"

    def quarantine_relpath(self, sha256: str) -> str:
        return f"quarantine/{sha256}.dcm"

    def absolute(self, relpath: str) -> Path:
        return self.data_dir / relpath

    def stage(self, data: bytes) -> Path:
        """Write ``data`` durably under a temporary name in ``incoming/`` (not yet visible).

        Staging runs while the instance is being parsed and validated; :meth:`publish` then
        only renames, so the costly flush overlaps the parsing.
        """
        incoming = self.data_dir / "incoming"
        ensure_dir(incoming)
        tmp = incoming / f"{TMP_PREFIX}{uuid.uuid4().hex}.dcm"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def publish(self, staged: Path, relpath: str) -> None:
        """Rename a staged file to ``relpath`` and make the new name durable."""
        path = self.absolute(relpath)
        ensure_dir(path.parent)
        os.replace(staged, path)
        fsync_dir(path.parent)

    @staticmethod
    def discard(staged: Path) -> None:
        staged.unlink(missing_ok=True)
