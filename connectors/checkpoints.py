"""Where a following source stopped, kept on disk so that a restarted daemon resumes there.

A checkpoint is written only for positions the pipeline has acknowledged (everything found before
it was handled), so a restart neither skips data nor reports it twice. Files are replaced
atomically (write, fsync, rename): a crash leaves the old checkpoint or the new one, never half.
Checkpoints hold positions and hashes of file heads, never file content.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from jitsec.kernel.private_files import private_dir

HEAD_BYTES = 256  # how much of a file's beginning identifies it across restarts


class CheckpointError(Exception):
    """A checkpoint could not be read or written."""


@dataclass(frozen=True, slots=True)
class FilePosition:
    """How far a file was read: its identity (device, inode, a hash of its first bytes) and where
    the next read starts (byte offset and the 1-based line number of that byte)."""

    path: str
    device: int
    inode: int
    offset: int
    line: int
    head_len: int
    head_sha256: str

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FilePosition:
        try:
            return cls(
                path=str(raw["path"]),
                device=int(raw["device"]),
                inode=int(raw["inode"]),
                offset=int(raw["offset"]),
                line=int(raw["line"]),
                head_len=int(raw["head_len"]),
                head_sha256=str(raw["head_sha256"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"malformed file checkpoint: {exc!r}") from exc


def head_digest(handle: BinaryIO, length: int) -> str:
    """SHA-256 of the first ``length`` bytes of an open file, read without moving its position."""
    fd = handle.fileno()
    data = os.pread(fd, length, 0)
    return hashlib.sha256(data).hexdigest()


def is_same_file(position: FilePosition, handle: BinaryIO) -> bool:
    """Whether ``handle`` is the file ``position`` was taken from, and still holds what was read.

    A different inode is another file (a rotation happened); same inode but shorter than the offset
    means it was truncated; a different head means it was rewritten in place. In each case the saved
    offset no longer applies.
    """
    stat = os.fstat(handle.fileno())
    if (stat.st_dev, stat.st_ino) != (position.device, position.inode):
        return False
    if stat.st_size < position.offset or stat.st_size < position.head_len:
        return False
    return head_digest(handle, position.head_len) == position.head_sha256


class CheckpointStore:
    """A directory of small JSON documents, one per key (a source's address).

    Not shared between processes: each daemon owns its directory. Thread-safe for distinct keys.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path_for(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:24]
        return self.directory / f"{digest}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        """The document saved under ``key``, or None when there is none."""
        path = self._path_for(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror}") from exc
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"corrupt checkpoint {path}: {exc.msg}") from exc
        if not isinstance(document, dict) or document.get("key") != key:
            raise CheckpointError(f"checkpoint {path} does not belong to {key!r}")
        value = document.get("value")
        return value if isinstance(value, dict) else None

    def save(self, key: str, value: dict[str, Any], *, durable: bool = False) -> None:
        """Replace the document under ``key`` atomically; ``durable`` also fsyncs it (used on close)."""
        private_dir(self.directory)
        target = self._path_for(key)
        payload = json.dumps({"key": key, "value": value}, sort_keys=True).encode()
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(temporary, target)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise CheckpointError(f"cannot write checkpoint {target}: {exc.strerror}") from exc

    def load_position(self, key: str) -> FilePosition | None:
        raw = self.load(key)
        return None if raw is None else FilePosition.from_dict(raw)

    def save_position(self, key: str, position: FilePosition, *, durable: bool = False) -> None:
        self.save(key, asdict(position), durable=durable)
