"""The records that flow through the scanner, one frozen type per stage.

``Chunk`` (bytes from a source, with a typed origin) → matcher → ``Finding`` (redacted, fingerprinted).
Sources build chunks; nothing downstream knows how the bytes were read, only where they came from.
Incidents (one per secret, with occurrences) are the response's business, not the scanner's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True, slots=True)
class FileOrigin:
    path: str


@dataclass(frozen=True, slots=True)
class StreamOrigin:
    """A stream with no path, such as standard input."""

    name: str = "-"


@dataclass(frozen=True, slots=True)
class GitOrigin:
    """A file in one commit. ``commit`` is the full object id and ``path`` is relative to the root of
    ``repository`` (an absolute local path, or "" when unknown). Who wrote the commit and when are
    facts of the commit, not of the place: they are left out of equality and hashing, so that two
    origins naming the same commit and path are equal whether or not the reader asked git for them.
    ``author_date`` is ISO 8601 with the author's offset (git's ``%aI``); ``subject`` is the first
    paragraph of the message on one line (``%s``)."""

    commit: str
    path: str
    author_name: str = field(default="", compare=False)
    author_email: str = field(default="", compare=False)
    author_date: str = field(default="", compare=False)
    subject: str = field(default="", compare=False)
    repository: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class KafkaOrigin:
    topic: str
    partition: int
    offset: int
    field: str | None = None  # JSON field path within the record value, when the value was JSON


@dataclass(frozen=True, slots=True)
class ElasticsearchOrigin:
    index: str
    doc_id: str
    field: str | None = None  # None: the document as a whole (a chunk holding several of its fields)


Origin = FileOrigin | StreamOrigin | GitOrigin | KafkaOrigin | ElasticsearchOrigin


def describe_origin(origin: Origin) -> str:
    """One short human string for an origin, as shown in text output and alerts."""
    match origin:
        case FileOrigin(path=path):
            return path
        case StreamOrigin(name=name):
            return name
        case GitOrigin(commit=commit, path=path):
            return f"{commit[:12]}:{path}"
        case KafkaOrigin(topic=topic, partition=partition, offset=offset, field=field):
            where = f"kafka:{topic}/{partition}@{offset}"
            return f"{where}#{field}" if field else where
        case ElasticsearchOrigin(index=index, doc_id=doc_id, field=field):
            where = f"es:{index}/{doc_id}"
            return f"{where}#{field}" if field is not None else where
    raise TypeError(f"unknown origin type {type(origin).__name__}")


Part = tuple[int, int | str, str | None]
"""One independent text of a chunk that holds several: ``(start, record, field)``, its start in the
chunk's data, the record it belongs to (a Kafka offset, an Elasticsearch document id) and the field
path within that record (None: the record's value itself)."""


def part_origin(origin: Origin, record: int | str, field: str | None) -> Origin:
    """The origin of one record, or one field of it, of a chunk holding several: ``origin`` is the
    chunk's, and gives the topic and partition (Kafka) or the index (Elasticsearch)."""
    match origin:
        case KafkaOrigin(topic=topic, partition=partition):
            return KafkaOrigin(topic, partition, int(record), field)
        case ElasticsearchOrigin(index=index):
            return ElasticsearchOrigin(index, str(record), field)
    raise TypeError(f"{type(origin).__name__} has no records")


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes from one origin. ``offset`` and ``line`` place ``data[0]`` within that origin, so that
    consecutive chunks of one origin can be scanned as a stream (a secret straddling two chunks is
    found once). ``read_at`` is the monotonic time the bytes were read, for leak-to-revocation latency.
    ``whole`` says the chunk is complete in itself and ends with a newline (a Kafka record, a document
    field, or many of them as ``parts``): the scanner may then scan it in one buffer with other whole
    chunks. A whole file without a final newline is ``whole`` too, and is scanned on its own.

    ``parts`` lets one whole chunk carry many small independent texts: consecutive records of one Kafka
    partition, documents of one Elasticsearch index, each JSON string field of them read as
    ``name: value``. Each ``Part`` gives where a text begins in ``data`` (the first at 0, each ends with
    a newline), which record it belongs to and which field. The scanner reads every part as its own
    text: no match spans two, and a finding is located by ``part_origin(origin, record, field)``, its
    offset and line counted within the part. ``origin`` then names the first record. One chunk per poll
    and partition instead of one per field: no Python object per record or field, one stage call and
    one acknowledgement for hundreds of records.
    """

    data: bytes
    origin: Origin
    offset: int = 0
    line: int = 1
    read_at: float | None = None
    whole: bool = False
    parts: tuple[Part, ...] = ()

    def split_parts(self) -> list[Chunk]:
        """The chunk as one whole chunk per part, each located by its own origin (itself when it has
        no ``parts``)."""
        if not self.parts:
            return [self]
        ends = [start for start, _, _ in self.parts[1:]] + [len(self.data)]
        return [Chunk(self.data[start:end], part_origin(self.origin, record, field), read_at=self.read_at,
                      whole=True)
                for (start, record, field), end in zip(self.parts, ends, strict=True)]


class Severity(Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Confidence(Enum):
    """Determinate tiers decide actions; only CONFIRMED ever causes a revocation."""

    CONFIRMED = "confirmed"  # matches a live broker-issued credential by fingerprint
    STRUCTURAL = "structural"  # a format with a checksum, and the checksum holds
    HEURISTIC = "heuristic"  # rule and entropy only


class BrokerStatus(Enum):
    """What the broker said about a broker-format candidate."""

    REVOKED = "revoked"  # it was live; the broker revoked it because of this finding
    DEAD = "dead"  # already expired or revoked
    UNKNOWN = "unknown"  # the broker does not know it, or no broker was asked


@dataclass(frozen=True, slots=True)
class Related:
    """The other half of a pair of secrets that belong together (an AWS key id beside its secret key),
    folded into the finding of the half that must be rotated. Same origin as that finding; a redacted
    preview and a keyed fingerprint only, like any finding."""

    rule_id: str
    line: int
    column: int
    offset: int
    preview: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One occurrence of one secret. Holds no plaintext: a redacted preview and fingerprints only.

    ``fingerprint`` is keyed (HMAC with a deployment-local key) and safe for reports and baselines.
    ``credential_sha256`` is the unkeyed SHA-256 exchanged with the broker, set only for candidates
    in a broker-issued format (whose ~238 random bits make an unkeyed hash safe).
    ``end_line`` and ``end_column`` place the last byte of the match (0: not recorded, as in findings
    written before they existed); ``entropy`` is the secret's Shannon entropy in bits per character.
    ``context`` is a hash of the finding's line with every secret on it masked (no secret material):
    with the rule id and path it names the finding across runs and machines (SARIF).
    ``secret_hash`` is a salted slow hash of the secret (``scrypt:<hex>``), set only where a baseline
    asks for one: every finding while a baseline is made, and findings matching a baseline entry.
    ``related`` holds the partner halves a rule pairs with this finding (``pairs_with``): they are not
    findings of their own.
    """

    rule_id: str
    origin: Origin
    line: int
    column: int
    offset: int
    preview: str
    fingerprint: str
    severity: Severity
    confidence: Confidence
    description: str = ""
    credential_sha256: str | None = None
    broker: BrokerStatus | None = None
    read_at: float | None = None
    end_line: int = 0
    end_column: int = 0
    entropy: float = 0.0
    context: str = ""
    secret_hash: str | None = None
    related: tuple[Related, ...] = ()


class ResponseAction(Enum):
    """What the response did about an incident's secret."""

    REVOKED = "revoked"  # a live broker lease was revoked because of this leak
    ALREADY_DEAD = "already_dead"  # broker-issued, but already expired or revoked
    IRREVOCABLE = "irrevocable"  # broker-issued and live, but revocation failed for good
    PENDING = "pending"  # revocation asked for and not yet confirmed (e.g. broker unreachable)
    ALERT_ONLY = "alert_only"  # not a broker credential we know: alert, never revoke


@dataclass(frozen=True, slots=True)
class Incident:
    """One secret, however often it was seen (keyed by its fingerprint). What sinks deliver.

    ``version`` grows with every update of the same incident, so a receiver can keep the latest.
    Times are UNIX seconds (UTC). ``latency_ms`` is from the moment the leaking bytes were read to the
    broker confirming revocation, when a revocation happened.
    """

    incident_id: str
    version: int
    fingerprint: str
    rule_id: str
    description: str
    severity: Severity
    confidence: Confidence
    preview: str
    occurrences: int
    first_seen: float
    last_seen: float
    locations: tuple[str, ...]
    action: ResponseAction
    broker: BrokerStatus | None = None
    lease_id: str | None = None
    agent: str | None = None
    task: str | None = None
    scopes: tuple[str, ...] = ()
    revoked_at: float | None = None
    latency_ms: float | None = None
    rules_digest: str = ""
    related: tuple[str, ...] = ()  # the partner halves of a paired secret: rule, preview, location
