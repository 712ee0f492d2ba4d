"""Revoked SSH certificates: a journal of revoked serials and the OpenSSH KRL built from it.

sshd's ``RevokedKeys`` reads a KRL file on every authentication, so revoking a certificate is: add
its serial to the journal, write the KRL again. The journal (``<krl file>.serials``, one
``serial valid_before`` line each) is the durable record, flushed to disk before ``revoke`` returns;
the KRL is derived from it, again at start, so it lists every revoked certificate that has not
expired yet even after a crash or restart. Serials drop out once their certificate has been expired
for ``keep_after_expiry_seconds`` (margin for a server whose clock is behind); the journal sheds them
when it is compacted (at start and on every reconciler pass).

Several broker processes may share the files: every change happens under an exclusive ``flock``.
The KRL format is OpenSSH's PROTOCOL.krl (header, one certificates section scoped to the CA's key,
one serial list).
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from jitsec.broker.engines.ssh_wire import ssh_string, ssh_uint64

KRL_MAGIC = b"SSHKRL\n\x00"
KRL_FORMAT_VERSION = 1
SECTION_CERTIFICATES = 1
CERT_SERIAL_LIST = 0x20


def encode_krl(ca_public_blob: bytes, serials: Iterable[int], *, version: int, generated_at: int) -> bytes:
    """A KRL revoking ``serials`` of certificates signed by the CA whose public key blob is given."""
    ordered = sorted(set(serials))
    header = b"".join((
        KRL_MAGIC,
        struct.pack(">I", KRL_FORMAT_VERSION),
        ssh_uint64(version),
        ssh_uint64(generated_at),
        ssh_uint64(0),  # flags
        ssh_string(b""),  # reserved
        ssh_string("jitsec broker: revoked leases"),
    ))
    if not ordered:
        return header
    serial_list = struct.pack(f">{len(ordered)}Q", *ordered)
    section = b"".join((ssh_string(ca_public_blob), ssh_string(b""),  # the CA's key, reserved
                        bytes((CERT_SERIAL_LIST,)), ssh_string(serial_list)))
    return header + bytes((SECTION_CERTIFICATES,)) + ssh_string(section)


@dataclass(slots=True)
class _Batch:
    """Serials waiting for the next journal append; ``results`` set once it is written."""

    wanted: dict[int, int] = field(default_factory=dict)
    results: dict[int, bool] | None = None


class RevokedSerials:
    """The journal and the KRL file. Thread-safe, and safe across processes sharing the files: they
    serialise on an ``flock`` of ``<krl file>.lock`` (a file never replaced). The journal is append-only
    between compactions (``rebuild``), so a revocation costs one appended line and one ``fdatasync``;
    each process reads only what others appended since it last looked."""

    def __init__(self, krl_file: Path, ca_public_blob: bytes, *, keep_after_expiry_seconds: float = 600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.krl_file = krl_file
        self.journal = krl_file.with_name(krl_file.name + ".serials")
        self._lock_file = krl_file.with_name(krl_file.name + ".lock")
        self._ca = ca_public_blob
        self._keep = keep_after_expiry_seconds
        self._clock = clock
        self._lock = threading.Lock()  # held while the files are read or written
        self._queue_lock = threading.Lock()  # held only to join or swap the open batch
        self._batch = _Batch()
        self._entries: dict[int, int] = {}  # serial -> valid_before, as far as the journal was read
        self._read_to: tuple[int, int] = (-1, 0)  # (inode, offset) of the journal read so far

    def add(self, serial: int, valid_before: int) -> bool:
        """Revoke one serial (durable when this returns); False when it was revoked already or its
        certificate is long expired. Concurrent calls share one append, one ``fdatasync`` and one
        KRL write: the first to get the lock writes every serial queued by then (group commit)."""
        with self._queue_lock:
            batch = self._batch
            repeated = serial in batch.wanted  # the same serial twice in one batch: the first one revokes
            batch.wanted.setdefault(serial, valid_before)
        with self._lock:
            if batch.results is None:
                with self._queue_lock:
                    self._batch = _Batch()
                with self._flocked():
                    batch.results = self._append(batch.wanted)
        return batch.results[serial] and not repeated

    def _append(self, wanted: dict[int, int]) -> dict[int, bool]:
        horizon = self._clock() - self._keep
        results = {serial: serial not in self._entries and before > horizon
                   for serial, before in wanted.items()}
        lines = "".join(f"{serial} {wanted[serial]}\n" for serial, new in results.items() if new)
        if lines:
            handle = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(handle, lines.encode("ascii"))
                os.fdatasync(handle)
            finally:
                os.close(handle)
            self._catch_up()
            self._write_krl()
        return results

    def rebuild(self) -> int:
        """Compact the journal (drop expired serials) and write the KRL again; how many it lists."""
        with self._exclusive():
            live = self._live()
            text = "".join(f"{serial} {before}\n" for serial, before in sorted(live.items()))
            _replace(self.journal, text.encode("ascii"), 0o600, durable=True)
            self._entries, self._read_to = {}, (-1, 0)
            self._catch_up()
            self._write_krl()
            return len(self._entries)

    def krl(self) -> bytes:
        """The KRL as it should be now (from the journal, not read back from the KRL file)."""
        with self._exclusive():
            return self._encode()

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Both locks held and the journal read up to date."""
        with self._lock, self._flocked():
            yield

    @contextmanager
    def _flocked(self) -> Iterator[None]:
        """The other processes' lock (the caller holds this process's) and the journal read up to date."""
        self.krl_file.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._catch_up()
            yield
        finally:
            os.close(handle)  # releases the flock

    def _catch_up(self) -> None:
        """Read what was appended since the last look; everything again when the journal was replaced
        (a compaction by any process) or is gone."""
        try:
            handle = os.open(self.journal, os.O_RDONLY)
        except FileNotFoundError:
            self._entries, self._read_to = {}, (-1, 0)
            return
        try:
            inode, offset = os.fstat(handle).st_ino, self._read_to[1]
            if inode != self._read_to[0]:
                self._entries, offset = {}, 0
            os.lseek(handle, offset, os.SEEK_SET)
            chunks = []
            while chunk := os.read(handle, 1 << 16):
                chunks.append(chunk)
        finally:
            os.close(handle)
        data = b"".join(chunks)
        complete = data.rfind(b"\n") + 1  # lines are appended whole under the lock; be safe anyway
        for line in data[:complete].decode("ascii", "replace").splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
                self._entries[int(fields[0])] = int(fields[1])
        self._read_to = (inode, offset + complete)

    def _live(self) -> dict[int, int]:
        horizon = self._clock() - self._keep
        return {serial: before for serial, before in self._entries.items() if before > horizon}

    def _encode(self) -> bytes:
        return encode_krl(self._ca, self._live(), version=time.time_ns() // 1000,
                          generated_at=int(self._clock()))

    def _write_krl(self) -> None:
        _replace(self.krl_file, self._encode(), 0o644, durable=False)


def _replace(path: Path, data: bytes, mode: int, *, durable: bool) -> None:
    """Write ``data`` to ``path`` atomically (a reader sees the old file or the new one, never half)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(handle, data)
        if durable:
            os.fsync(handle)
    finally:
        os.close(handle)
    os.chmod(temporary, mode)
    os.replace(temporary, path)
