"""Revoked SSH certificates: a journal of revoked serials and the OpenSSH KRL built from it.

sshd's ``RevokedKeys`` reads a KRL file on every authentication, so revoking a certificate is: add
its serial to the journal, write the KRL again. The journal (``<krl file>.serials``, one
``serial valid_before`` line each) is the durable record, flushed to disk before ``revoke`` returns;
the KRL is derived from it, again at start, so it lists every revoked certificate that has not
expired yet even after a crash or restart. Serials drop out once their certificate has been expired
for ``keep_after_expiry_seconds`` (margin for a server whose clock is behind).

Several broker processes may share the files: every change reads and rewrites the journal under an
exclusive ``flock``. The KRL format is OpenSSH's PROTOCOL.krl (header, one certificates section
scoped to the CA's key, one serial list).
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
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
    serial_list = b"".join(ssh_uint64(serial) for serial in ordered)
    section = b"".join((ssh_string(ca_public_blob), ssh_string(b""),  # the CA's key, reserved
                        bytes((CERT_SERIAL_LIST,)), ssh_string(serial_list)))
    return header + bytes((SECTION_CERTIFICATES,)) + ssh_string(section)


class RevokedSerials:
    """The journal and the KRL file. Thread-safe, and safe across processes sharing the files (they
    serialise on an ``flock`` of ``<krl file>.lock``, a file that is never replaced)."""

    def __init__(self, krl_file: Path, ca_public_blob: bytes, *, keep_after_expiry_seconds: float = 600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.krl_file = krl_file
        self.journal = krl_file.with_name(krl_file.name + ".serials")
        self._lock_file = krl_file.with_name(krl_file.name + ".lock")
        self._ca = ca_public_blob
        self._keep = keep_after_expiry_seconds
        self._clock = clock
        self._lock = threading.Lock()

    def add(self, serial: int, valid_before: int) -> bool:
        """Revoke one serial; False when it was revoked already or its certificate is long expired."""
        with self._entries() as entries:
            if serial in entries or valid_before + self._keep <= self._clock():
                return False
            entries[serial] = valid_before
            return True

    def rebuild(self) -> int:
        """Prune expired serials and write the KRL again; how many serials it lists."""
        with self._entries() as entries:
            return len(entries)

    def krl(self) -> bytes:
        """The KRL as it should be now (built from the journal, not read from the KRL file)."""
        with self._entries(write=False) as entries:
            return self._encode(entries)

    def _encode(self, entries: dict[int, int]) -> bytes:
        return encode_krl(self._ca, entries, version=time.time_ns() // 1000, generated_at=int(self._clock()))

    @contextmanager
    def _entries(self, write: bool = True) -> Iterator[dict[int, int]]:
        """The journal's live entries, under both locks; written back with the KRL unless the block
        raised or ``write`` is False."""
        with self._lock:
            self.krl_file.parent.mkdir(parents=True, exist_ok=True)
            handle = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX)
                entries = self._read()
                yield entries
                if write:
                    text = "".join(f"{serial} {before}\n" for serial, before in sorted(entries.items()))
                    _replace(self.journal, text.encode("ascii"), 0o600, durable=True)
                    _replace(self.krl_file, self._encode(entries), 0o644, durable=False)
            finally:
                os.close(handle)  # releases the flock

    def _read(self) -> dict[int, int]:
        try:
            text = self.journal.read_text("ascii", "replace")
        except FileNotFoundError:
            return {}
        horizon = self._clock() - self._keep
        entries: dict[int, int] = {}
        for line in text.splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit() and int(fields[1]) > horizon:
                entries[int(fields[0])] = int(fields[1])
        return entries


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
