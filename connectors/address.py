"""One way to name a source on the command line and in daemon configs, and to open it.

========================================  =============================================================
address                                   source
========================================  =============================================================
``PATH`` (a file)                         the file; followed like ``tail -F`` when ``follow``
``PATH`` (a directory)                    every file below it; watched with watchdog when ``follow``
``-``                                     standard input (line by line when ``follow``)
``git:PATH``                              every blob in the history of the repository at PATH, all refs;
                                          then each new commit on any ref when ``follow``
``kafka://HOST:PORT/TOPIC[,TOPIC]?group=G``  a Kafka consumer group (connectors.sources.kafka; with
                                          ``&client=confluent``, sources.kafka_confluent)
``elasticsearch://HOST:PORT/INDEX_PATTERN``  documents of an index pattern (connectors.sources.elasticsearch)
========================================  =============================================================

A file whose name starts with ``git:`` can still be named as ``./git:…``. Opening a source does no
I/O beyond checking that it can exist; reading starts with ``chunks()``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from jitsec.connectors.errors import SourceAddressError
from jitsec.connectors.sources.files import FilesSource, PathSkip
from jitsec.connectors.sources.git import (
    DEFAULT_POLL_INTERVAL,
    GIT_POLL_ENV,
    GitError,
    GitHistorySource,
    check_repository,
)

from jitsec.kernel.ports import Source

GIT_PREFIX = "git:"
KAFKA_PREFIX = "kafka://"
ELASTICSEARCH_PREFIX = "elasticsearch://"
_SCHEMES = (GIT_PREFIX, KAFKA_PREFIX, ELASTICSEARCH_PREFIX)


def is_source_address(arg: str) -> bool:
    """Whether ``arg`` names a non-path source (``git:``, ``kafka://``, ``elasticsearch://``).

    ``jitsec scan`` hands such arguments to ``open_source``; plain paths and ``-`` it reads itself.
    """
    return arg.startswith(_SCHEMES)


def open_source(
    address: str,
    *,
    follow: bool,
    checkpoint_dir: Path | None = None,
    from_end: bool = False,
    skip: PathSkip | None = None,
) -> Source:
    """The source an address names. ``follow`` keeps reading new data until ``close``;
    ``checkpoint_dir`` lets a followed file, directory or index resume where a previous run stopped;
    ``from_end`` starts followed files at their current end when there is no checkpoint; ``skip``
    leaves paths out of a directory (``--exclude``)."""
    if not address:
        raise SourceAddressError("empty source address")
    if address.startswith(GIT_PREFIX):
        return _open_git(address[len(GIT_PREFIX) :], follow=follow, checkpoint_dir=checkpoint_dir)
    if address.startswith(KAFKA_PREFIX):
        if parse_qs(urlsplit(address).query).get("client") == ["confluent"]:  # the jitsec[confluent] extra
            opener = _optional_opener("jitsec.connectors.sources.kafka_confluent", "open_kafka_source",
                                      "Kafka client=confluent", "confluent")
        else:
            opener = _optional_opener(
                "jitsec.connectors.sources.kafka", "open_kafka_source", "Kafka", "streams"
            )
        return opener(address, follow=follow)
    if address.startswith(ELASTICSEARCH_PREFIX):
        opener = _optional_opener(
            "jitsec.connectors.sources.elasticsearch", "open_elasticsearch_source", "Elasticsearch", "streams"
        )
        return opener(address, follow=follow, checkpoint_dir=checkpoint_dir)
    if address == "-":
        # the readers are imported where they are opened: a hook that only asks whether an argument
        # is an address does not pay for them
        from jitsec.connectors.sources.stdin import StdinSource  # noqa: PLC0415
        from jitsec.connectors.sources.stdin_follow import StdinFollowSource  # noqa: PLC0415

        return StdinFollowSource() if follow else StdinSource()
    return _open_path(Path(address), follow=follow, checkpoint_dir=checkpoint_dir, from_end=from_end,
                      skip=skip)


def _open_git(path: str, *, follow: bool, checkpoint_dir: Path | None) -> Source:
    """The history once, or (``follow``) the history and then every commit any ref comes to reach,
    polled every ``JITSEC_GIT_POLL_INTERVAL`` seconds (default 2)."""
    if not path:
        raise SourceAddressError("git: needs a repository path, e.g. git:. or git:/srv/repo")
    try:
        check_repository(Path(path))
    except GitError as exc:
        raise SourceAddressError(str(exc)) from exc
    if not follow:
        return GitHistorySource(Path(path))
    raw = os.environ.get(GIT_POLL_ENV, "").strip()
    try:
        interval = float(raw) if raw else DEFAULT_POLL_INTERVAL
    except ValueError:
        interval = -1.0
    if not 0 < interval < float("inf"):
        raise SourceAddressError(f"{GIT_POLL_ENV}={raw!r} is not a positive number of seconds")
    from jitsec.connectors.checkpoints import CheckpointStore  # noqa: PLC0415 - see the stdin readers

    checkpoints = CheckpointStore(checkpoint_dir) if checkpoint_dir is not None else None
    return GitHistorySource(Path(path), follow=True, checkpoints=checkpoints, poll_interval=interval)


def _open_path(path: Path, *, follow: bool, checkpoint_dir: Path | None, from_end: bool,
               skip: PathSkip | None = None) -> Source:
    if not follow:  # read what is there once: the scanner's file walker (recursive, skips binaries)
        if not path.exists():
            raise SourceAddressError(f"{path}: no such file or directory")
        return FilesSource([path], skip=skip)
    from jitsec.connectors.checkpoints import CheckpointStore  # noqa: PLC0415 - see the stdin readers

    checkpoints = CheckpointStore(checkpoint_dir) if checkpoint_dir is not None else None
    if path.is_dir():
        # watchdog starts its machinery on import; only a directory watch pays for it.
        from jitsec.connectors.sources.watch import DirectoryWatchSource  # noqa: PLC0415

        return DirectoryWatchSource(path, checkpoints=checkpoints, from_end=from_end, skip=skip)
    # A followed file that does not exist yet is waited for, like `tail -F`.
    from jitsec.connectors.sources.tail import TailSource  # noqa: PLC0415 - see the stdin readers

    return TailSource(path, follow=follow, checkpoints=checkpoints, from_end=from_end)


def _optional_opener(module_name: str, attribute: str, system: str, extra: str) -> Callable[..., Source]:
    """The opener of a source whose client library comes with the ``extra`` of the package."""
    try:
        module = importlib.import_module(module_name)
        opener: Callable[..., Source] = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise SourceAddressError(
            f"{system} sources are not available in this installation ({exc}): "
            f"pip install 'jitsec[{extra}]'"
        ) from exc
    return opener
