"""A seeded generator of realistic logs with planted secrets and a ground truth, for the scan benchmark.

Five files, each a kind of text scanners meet in practice: JSON application logs, nginx access logs,
HTTP header dumps, Java/Python stack traces and configuration dumps (YAML, .env, .properties, lock
files). The filler is what makes log scanning hard: hex trace ids, UUIDs, digests, ETags, base64
payloads, git SHAs and lock-file integrity hashes. About one line in 2,000 carries a planted secret in
a realistic position (JSON-escaped PEM, URL-encoded password, Basic auth, ...); about one in 400 carries
a hard negative (placeholders, vendor example keys, ``${VAR}``, ``<redacted>``, wrong-checksum broker
tokens, public keys, unsigned JWTs).

``truth.jsonl`` lists every planted line: ``{"path", "line", "family", "positive"}`` (1-based line,
the first line of a multi-line block). Same size and seed, same bytes.

    python -m benchmarks.corpus --size-mb 50 --seed 7 --out DIR
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import string
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from jitsec.kernel.credential_format import ALPHABET, checksum, mint

POSITIVE_EVERY = 2000  # one planted secret per this many lines, on average
NEGATIVE_EVERY = 400  # one hard negative per this many lines, on average
MANIFEST = "manifest.json"
TRUTH = "truth.jsonl"

_HEX = "0123456789abcdef"
_B32 = string.ascii_uppercase + "234567"
_B64 = string.ascii_letters + string.digits + "+/"
_URLSAFE = string.ascii_letters + string.digits + "-_"
_PASSWORD = string.ascii_letters + string.digits + "!*-_.~"


@dataclass(frozen=True, slots=True)
class Plant:
    """Lines to insert; ``flagged`` are the lines findings belong to (a PEM's BEGIN line; both lines of
    an AWS key pair)."""

    lines: tuple[str, ...]
    family: str
    positive: bool
    flagged: tuple[int, ...] = (0,)


@dataclass(frozen=True, slots=True)
class CorpusInfo:
    out: Path
    files: tuple[str, ...]
    size_bytes: int
    lines: int
    positives: int
    negatives: int


class Random(random.Random):
    """``random.Random`` with the few draws the generators need (seeded, never for real secrets)."""

    def text(self, length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        return "".join(self.choices(alphabet, k=length))

    def hex(self, length: int) -> str:
        return self.text(length, _HEX)

    def uuid(self) -> str:
        h = self.hex(32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def b64(self, size: int) -> str:
        return base64.b64encode(self.randbytes(size)).decode()

    def password(self) -> str:
        while True:
            value = self.text(self.randint(14, 22), _PASSWORD)
            if value[0].isalnum() and len(set(value)) >= 10:
                return value


def _b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# -- secrets, one generator per family -------------------------------------------------------------


def _github(rng: Random, prefix: str = "ghp_") -> str:
    body = rng.text(30)
    return prefix + body + checksum(body)


def _jwt(rng: Random) -> str:
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": rng.hex(16)}))
    claims = _b64url(
        json.dumps({"sub": str(rng.randint(10**6, 10**9)), "aud": "orders-api", "exp": 1767225600})
    )
    return f"{header}.{claims}.{rng.text(342, _URLSAFE)}"


def _pem(rng: Random, label: str, size: int = 1190, lead: str = "MII") -> list[str]:
    body = lead + rng.text(size * 4 // 3 - len(lead), _B64)
    return [
        f"-----BEGIN {label}-----",
        *(body[i : i + 64] for i in range(0, len(body), 64)),
        f"-----END {label}-----",
    ]


def _b64_lines(lines: list[str]) -> str:
    """A PEM block as Kubernetes stores it in a Secret's data: base64 of the whole text."""
    return base64.b64encode(("\n".join(lines) + "\n").encode()).decode()


def _mint(rng: Random, prefix: str) -> str:
    """A broker-format credential drawn from the seeded generator (valid checksum, reproducible)."""
    return mint(prefix, randbelow=rng.randrange)


def _tampered(credential: str) -> str:
    last = credential[-1]
    return credential[:-1] + ALPHABET[(ALPHABET.index(last) + 7) % 62]


# -- filler -----------------------------------------------------------------------------------------

_SERVICES = ("orders", "billing", "auth", "search", "inventory", "gateway", "notifier")
_PATHS = (
    "/api/v1/orders",
    "/api/v1/items",
    "/healthz",
    "/api/v2/search",
    "/static/app.js",
    "/api/v1/users/me",
    "/metrics",
    "/api/v1/invoices",
    "/login",
    "/api/v1/carts",
)
_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "Go-http-client/2.0",
    "kube-probe/1.30",
)
_MESSAGES = (
    "request completed",
    "order created",
    "cache miss",
    "retrying upstream call",
    "payment authorized",
    "user session refreshed",
    "published event",
    "slow query",
    "connection pool resized",
)


def _ts(rng: Random) -> str:
    return (
        f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
        f"{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z"
    )


def _app_line(rng: Random) -> str:
    record: dict[str, object] = {
        "ts": _ts(rng),
        "level": rng.choice(("info", "info", "info", "debug", "warn")),
        "service": rng.choice(_SERVICES),
        "trace_id": rng.hex(32),
        "span_id": rng.hex(16),
        "request_id": rng.uuid(),
        "msg": rng.choice(_MESSAGES),
        "duration_ms": round(rng.random() * 300, 2),
    }
    extra = rng.random()
    if extra < 0.25:
        record["payload"] = rng.b64(rng.randint(48, 240))
    elif extra < 0.40:
        record["etag"] = f'W/"{rng.hex(32)}"'
        record["sha256"] = rng.hex(64)
    elif extra < 0.50:
        record["commit"] = rng.hex(40)
        record["image"] = f"registry.acme-corp.test/{rng.choice(_SERVICES)}@sha256:{rng.hex(64)}"
    elif extra < 0.56:
        record["next_page_token"] = rng.b64(48)
    elif extra < 0.62:
        record["session_id"] = rng.hex(32)
        record["user_id"] = rng.uuid()
    return json.dumps(record, separators=(",", ":"))


def _access_line(rng: Random) -> str:
    path = rng.choice(_PATHS)
    query = rng.random()
    if query < 0.2:
        path += f"?page={rng.randint(1, 40)}&trace={rng.hex(16)}"
    elif query < 0.25:
        path += f"?page_token={quote(rng.b64(36), safe='')}"
    elif query < 0.3:
        path += f"?id={rng.uuid()}&sig_ts={rng.randint(1_700_000_000, 1_800_000_000)}"
    ip = ".".join(str(rng.randint(1, 254)) for _ in range(4))
    return (
        f"{ip} - - [{rng.randint(1, 28):02d}/Nov/2026:{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
        f'{rng.randint(0, 59):02d} +0000] "{rng.choice(("GET", "GET", "POST", "PUT"))} {path} HTTP/1.1" '
        f'{rng.choice((200, 200, 200, 201, 204, 304, 404, 500))} {rng.randint(0, 90000)} "-" '
        f'"{rng.choice(_AGENTS)}" rt={rng.random():.3f} req_id={rng.hex(32)}'
    )


def _header_line(rng: Random) -> str:
    return rng.choice(
        (
            lambda: f"> {rng.choice(('GET', 'POST'))} {rng.choice(_PATHS)} HTTP/1.1",
            lambda: f"> Host: {rng.choice(_SERVICES)}.internal:8080",
            lambda: f"> User-Agent: {rng.choice(_AGENTS)}",
            lambda: "> Accept: application/json",
            lambda: f"> X-Request-Id: {rng.uuid()}",
            lambda: f"> traceparent: 00-{rng.hex(32)}-{rng.hex(16)}-01",
            lambda: f"< HTTP/1.1 {rng.choice((200, 201, 304, 401, 503))}",
            lambda: f'< ETag: "{rng.hex(32)}"',
            lambda: f"< Content-Length: {rng.randint(0, 90000)}",
            lambda: f"< X-Amz-Cf-Id: {rng.text(56, _URLSAFE)}==",
            lambda: f"< Set-Cookie: __cf_bm={rng.text(43, _URLSAFE)}; path=/; HttpOnly",
            lambda: f"< Digest: sha-256={rng.b64(32)}",
        )
    )()


def _trace_line(rng: Random) -> str:
    cls = rng.choice(("OrderService", "PaymentClient", "InvoiceRepository", "SessionFilter"))
    return rng.choice(
        (
            lambda: f"\tat com.acme.{rng.choice(_SERVICES)}.{cls}.handle({cls}.java:{rng.randint(20, 900)})",
            lambda: (
                "\tat org.springframework.web.servlet.FrameworkServlet.service("
                f"FrameworkServlet.java:{rng.randint(500, 900)})"
            ),
            lambda: (
                f"java.lang.IllegalStateException: request {rng.uuid()} failed after "
                f"{rng.randint(1, 5)} retries"
            ),
            lambda: f"Caused by: java.net.SocketTimeoutException: Read timed out (trace {rng.hex(32)})",
            lambda: (
                f'  File "/app/{rng.choice(_SERVICES)}/service.py", line {rng.randint(10, 400)}, in handle'
            ),
            lambda: (
                f"    result = client.call(order_id={rng.randint(1, 10**6)}, idempotency_key='{rng.uuid()}')"
            ),
            lambda: f"ValueError: checksum mismatch: expected {rng.hex(64)}",
            lambda: (
                f"{_ts(rng)} ERROR [{rng.choice(_SERVICES)}] unhandled exception in "
                f"worker-{rng.randint(1, 16)}"
            ),
        )
    )()


def _config_line(rng: Random) -> str:
    return rng.choice(
        (
            lambda: f"  image: registry.acme-corp.test/{rng.choice(_SERVICES)}@sha256:{rng.hex(64)}",
            lambda: f"  replicas: {rng.randint(1, 12)}",
            lambda: f"  secretName: {rng.choice(_SERVICES)}-db-credentials",
            lambda: f"GIT_COMMIT={rng.hex(40)}",
            lambda: f"LOG_LEVEL={rng.choice(('info', 'debug', 'warn'))}",
            lambda: (
                f"spring.datasource.url=jdbc:postgresql://{rng.choice(_SERVICES)}-db:5432/{rng.choice(_SERVICES)}"
            ),
            lambda: f"server.port={rng.randint(8000, 9000)}",
            lambda: f'    "integrity": "sha512-{rng.b64(64)}",',
            lambda: (
                f'  resolved "https://registry.yarnpkg.com/lib-{rng.hex(4)}/-/'
                f'lib-1.{rng.randint(0, 9)}.0.tgz#{rng.hex(40)}"'
            ),
            lambda: f"  checksum: {rng.hex(64)}",
            lambda: f"  uid: {rng.uuid()}",
        )
    )()


# -- planted secrets (positives) --------------------------------------------------------------------


def _one(family: str, line: str) -> Plant:
    return Plant((line,), family, True)


def _json(rng: Random, **fields: object) -> str:
    record: dict[str, object] = {
        "ts": _ts(rng),
        "level": "info",
        "service": rng.choice(_SERVICES),
        "trace_id": rng.hex(32),
    }
    record.update(fields)
    return json.dumps(record, separators=(",", ":"))


Generator = Callable[[Random], Plant]

_APP_POSITIVES: tuple[Generator, ...] = (
    lambda r: _one(
        "github", _json(r, msg="cloning", url=f"https://x-access-token:{_github(r)}@github.com/acme/app.git")
    ),
    lambda r: _one(
        "slack",
        _json(
            r,
            msg="notify",
            webhook=f"https://hooks.slack.com/services/T{r.text(10, _B32)}/B{r.text(10, _B32)}/{r.text(24)}",
        ),
    ),
    lambda r: _one("stripe", _json(r, msg="config loaded", stripe_key="sk_live_51" + r.text(97))),
    lambda r: _one(
        "pem", _json(r, level="error", msg="bad key", key="\n".join(_pem(r, "RSA PRIVATE KEY")) + "\n")
    ),
    lambda r: _one(
        "mongodb-uri",
        _json(r, msg=f"connecting to mongodb+srv://events:{r.password()}@cluster0.ab1cd.mongodb.net/events"),
    ),
    lambda r: _one("generic-password", _json(r, msg="db config", db_password=r.password())),
    lambda r: _one("generic-api-key", _json(r, msg="upstream call", api_key=r.text(32))),
    lambda r: _one("broker", _json(r, msg="agent tool output", output=f"export TOKEN={_mint(r, 'jit_')}")),
    lambda r: _one("jwt", _json(r, msg="login", id_token=_jwt(r))),
    lambda r: _one(
        "openai",
        _json(
            r,
            level="error",
            msg="OpenAI request failed",
            error=f"Incorrect API key provided: sk-proj-{r.text(74, _URLSAFE)}T3BlbkFJ{r.text(74, _URLSAFE)}",
        ),
    ),
    lambda r: _one(
        "aws",
        _json(
            r,
            msg="assumed role",
            AccessKeyId="ASIA" + r.text(16, _B32),
            SecretAccessKey=r.text(40, _B64),
            Expiration=_ts(r),
        ),
    ),
    lambda r: _one(
        "gcp",
        _json(
            r,
            msg="geocode",
            url="https://maps.googleapis.com/maps/api/geocode/json?address=x&key=AIzaSy"
            + r.text(33, _URLSAFE),
        ),
    ),
)

_ACCESS_POSITIVES: tuple[Generator, ...] = (
    lambda r: _one(
        "generic-token",
        _access_line(r).replace(" HTTP/1.1", f"?access_token={r.text(40, _URLSAFE)} HTTP/1.1", 1),
    ),
    lambda r: _one(
        "broker", _access_line(r).replace(" HTTP/1.1", f"?token={quote(_mint(r, 'jitt_'))} HTTP/1.1", 1)
    ),
    lambda r: _one("jwt", _access_line(r).replace(" HTTP/1.1", f"?id_token={_jwt(r)} HTTP/1.1", 1)),
    lambda r: _one(
        "azure-sas",
        _access_line(r).replace(
            " HTTP/1.1",
            f"?sv=2022-11-02&ss=b&srt=co&sp=rl&se=2026-12-01T00%3A00%3A00Z&sig={r.text(43)}%3D HTTP/1.1",
            1,
        ),
    ),
    lambda r: _one(
        "telegram",
        f'10.0.4.{r.randint(2, 250)} - - [28/Nov/2026:10:00:00 +0000] "POST https://api.telegram.org/bot'
        f"{r.randint(10**9, 10**10 - 1)}:AA{r.text(33, _URLSAFE)}/sendMessage"
        ' HTTP/1.1" 200 312 "-" "curl/8.5.0"',
    ),
    lambda r: _one(
        "url-basic-auth",
        f'10.0.4.{r.randint(2, 250)} - - [28/Nov/2026:10:00:00 +0000] "GET https://deploy:{quote(r.password())}'
        f'@artifacts.acme-corp.test/simple/ HTTP/1.1" 200 9120 "-" "pip/24.0"',
    ),
)

_HEADER_POSITIVES: tuple[Generator, ...] = (
    lambda r: _one(
        "basic-auth",
        "> Authorization: Basic " + base64.b64encode(f"svc-{r.hex(4)}:{r.password()}".encode()).decode(),
    ),
    lambda r: _one(
        "slack",
        f"> Authorization: Bearer xoxb-{r.text(12, string.digits)}-{r.text(13, string.digits)}-{r.text(24)}",
    ),
    lambda r: _one("broker", f"> Authorization: Bearer {_mint(r, 'jitt_')}"),
    lambda r: _one("vault", f"> X-Vault-Token: hvs.CAESI{r.text(82, _URLSAFE)}"),
    lambda r: _one("generic-api-key", f"> X-Api-Key: {r.text(40)}"),
    lambda r: _one("jwt", f"> Authorization: Bearer {_jwt(r)}"),
)

_TRACE_POSITIVES: tuple[Generator, ...] = (
    lambda r: _one(
        "amqp-uri",
        f"Caused by: java.net.ConnectException: amqp://orders:{r.password()}@rabbit-0.internal:5672/ refused",
    ),
    lambda r: _one(
        "anthropic", f"anthropic.AuthenticationError: invalid x-api-key sk-ant-api03-{r.text(93, _URLSAFE)}AA"
    ),
    lambda r: _one(
        "postgres-uri",
        "psycopg.OperationalError: connection failed: "
        f"postgresql://agent_{r.hex(6)}:{_mint(r, 'jitpg_')}@orders-db.internal:5432/orders",
    ),
    lambda r: _one(
        "mysql-uri",
        f"    engine = create_engine('mysql://billing:{r.password()}@billing-mysql.internal:3306/billing')",
    ),
    lambda r: _one(
        "huggingface", f"    HfApi(token='hf_{r.text(34, string.ascii_letters)}').upload_file(path)"
    ),
)


def _multi(family: str, lines: list[str]) -> Plant:
    return Plant(tuple(lines), family, True)


_CONFIG_POSITIVES: tuple[Generator, ...] = (
    lambda r: Plant(
        (f"aws_access_key_id = AKIA{r.text(16, _B32)}", f"aws_secret_access_key = {r.text(40, _B64)}"),
        "aws",
        True,
        (0, 1),
    ),
    lambda r: _one(
        "postgres-uri",
        f"DATABASE_URL=postgresql://orders:{quote(r.password() + '@#', safe='')}"
        "@orders-db.internal:5432/orders",
    ),
    lambda r: _one("redis-uri", f"REDIS_URL=rediss://:{r.password()}@cache.internal:6380/0"),
    lambda r: _one("generic-password", f"spring.datasource.password={r.password()}"),
    lambda r: _one("generic-password", f"  password: {r.password()}"),
    lambda r: _one("npm", f"//registry.npmjs.org/:_authToken={_github(r, 'npm_')}"),
    lambda r: _one("gitlab", f"GITLAB_TOKEN=glpat-{r.text(20, _URLSAFE)}"),
    lambda r: _one("sendgrid", f"SENDGRID_API_KEY=SG.{r.text(22, _URLSAFE)}.{r.text(43, _URLSAFE)}"),
    lambda r: _one("datadog", f"DD_API_KEY={r.hex(32)}"),
    lambda r: _one(
        "azure-storage",
        "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=invoicesprod;"
        f"AccountKey={r.b64(64)};EndpointSuffix=core.windows.net",
    ),
    lambda r: _multi("pem", _pem(r, "PRIVATE KEY")),
    lambda r: _one("pem", "  tls.key: " + _b64_lines(_pem(r, "EC PRIVATE KEY", 121, "MHcC"))),
    lambda r: _multi("openssh", _pem(r, "OPENSSH PRIVATE KEY", 400, "b3BlbnNzaC1rZXktdjEAAAAA")),
    lambda r: _one("twilio", f"TWILIO_AUTH_TOKEN={r.hex(32)}"),
    lambda r: _one("shopify", f"  shopify_access_token: shpat_{r.hex(32)}"),
    lambda r: _one("databricks", f"DATABRICKS_TOKEN=dapi{r.hex(32)}"),
)


# -- hard negatives ---------------------------------------------------------------------------------


def _neg(family: str, line: str) -> Plant:
    return Plant((line,), family, False)


_UNSIGNED_JWT = _b64url('{"alg":"none"}') + "." + _b64url('{"sub":"42"}') + "."

_NEGATIVES: tuple[Generator, ...] = (
    lambda r: _neg("placeholder", _json(r, msg="db config", db_password="${DB_PASSWORD}")),
    lambda r: _neg("placeholder", _json(r, msg="login", password="<redacted>")),
    lambda r: _neg("placeholder", _json(r, msg="login", password="********")),
    lambda r: _neg("placeholder", "  password: changeme"),
    lambda r: _neg("placeholder", "api_key: YOUR_API_KEY_HERE"),
    lambda r: _neg("placeholder", "token: xxxxxxxxxxxxxxxxxxxxxxxx"),
    lambda r: _neg(
        "placeholder", "DATABASE_URL=postgresql://orders:${PGPASSWORD}@orders-db.internal:5432/orders"
    ),
    lambda r: _neg("placeholder", "> Authorization: Bearer <token>"),
    lambda r: _neg("placeholder", "> Authorization: Bearer ${API_TOKEN}"),
    lambda r: _neg("vendor-example", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE"),
    lambda r: _neg("vendor-example", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    lambda r: _neg(
        "vendor-example",
        "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;",
    ),
    lambda r: _neg(
        "wrong-checksum", _json(r, msg="agent tool output", output=f"token {_tampered(_mint(r, 'jit_'))}")
    ),
    lambda r: _neg("wrong-checksum", f"> Authorization: Bearer {_tampered(_mint(r, 'jitt_'))}"),
    lambda r: _neg("wrong-checksum", f"GITHUB_TOKEN={_tampered(_github(r))}"),
    lambda r: _neg("uuid", _json(r, msg="session", token=r.uuid())),
    lambda r: _neg("k8s-ref", _json(r, msg="mounted", secret=f"{r.choice(_SERVICES)}-db-credentials")),
    lambda r: _neg(
        "hash",
        _json(
            r,
            msg="user updated",
            password_hash="$2b$12$" + r.text(53, string.ascii_letters + string.digits + "./"),
        ),
    ),
    lambda r: _neg("unsigned-jwt", f"> Authorization: Bearer {_UNSIGNED_JWT}"),
    lambda r: _neg("public-key", _json(r, msg="jwks", key="\n".join(_pem(r, "PUBLIC KEY", 270)))),
    lambda r: _neg("digest", f"sha256:{r.hex(64)} pushed registry.acme-corp.test/orders commit {r.hex(40)}"),
    lambda r: _neg("publishable", _json(r, msg="checkout", stripe_publishable_key="pk_live_" + r.text(99))),
    lambda r: _neg(
        "dsn",
        _json(
            r,
            msg="sentry",
            dsn=f"https://{r.hex(32)}@o{r.randint(10**5, 10**6)}.ingest.sentry.io/{r.randint(10**5, 10**6)}",
        ),
    ),
    lambda r: _neg(
        "page-token", _json(r, msg="list", next_page_token=r.text(40, _URLSAFE), csrf_token=r.hex(40))
    ),
    lambda r: _neg("certificate", "  tls.crt: " + _b64_lines(_pem(r, "CERTIFICATE", 900))),
    lambda r: _neg(
        "cursor", _json(r, msg="list", cursor=_b64url(json.dumps({"offset": r.randint(0, 10**6)})))
    ),
)


@dataclass(frozen=True, slots=True)
class _Kind:
    name: str
    share: float
    filler: Callable[[Random], str]
    positives: tuple[Generator, ...]


_KINDS = (
    _Kind("app.jsonl", 0.40, _app_line, _APP_POSITIVES),
    _Kind("access.log", 0.25, _access_line, _ACCESS_POSITIVES),
    _Kind("errors.log", 0.15, _trace_line, _TRACE_POSITIVES),
    _Kind("http-dump.log", 0.10, _header_line, _HEADER_POSITIVES),
    _Kind("config-dump.txt", 0.10, _config_line, _CONFIG_POSITIVES),
)


def _write_kind(
    kind: _Kind, rng: Random, budget: int, out: Path, truth: list[dict[str, object]]
) -> tuple[int, int]:
    """Write one file of about ``budget`` bytes; returns (lines, bytes)."""
    lines = written = 0
    with (out / kind.name).open("w", encoding="utf-8", newline="\n") as handle:
        while written < budget:
            draw = rng.random()
            if draw < 1 / POSITIVE_EVERY:
                plant = rng.choice(kind.positives)(rng)
            elif draw < 1 / POSITIVE_EVERY + 1 / NEGATIVE_EVERY:
                plant = rng.choice(_NEGATIVES)(rng)
            else:
                plant = None
            if plant is not None:
                truth.extend(
                    {
                        "path": kind.name,
                        "line": lines + 1 + index,
                        "family": plant.family,
                        "positive": plant.positive,
                    }
                    for index in plant.flagged
                )
                text = "\n".join(plant.lines) + "\n"
                lines += len(plant.lines)
            else:
                text = kind.filler(rng) + "\n"
                lines += 1
            handle.write(text)
            written += len(text.encode("utf-8"))
    return lines, written


def generate(out: Path, size_mb: float, seed: int) -> CorpusInfo:
    """Write the corpus files, ``truth.jsonl`` and a manifest into ``out``; deterministic in (size, seed)."""
    if size_mb <= 0:
        raise ValueError("size_mb must be positive")
    out.mkdir(parents=True, exist_ok=True)
    total = int(size_mb * 1024 * 1024)
    truth: list[dict[str, object]] = []
    lines = size = 0
    for index, kind in enumerate(_KINDS):
        kind_lines, kind_bytes = _write_kind(
            kind, Random(seed * 1000 + index), int(total * kind.share), out, truth
        )
        lines += kind_lines
        size += kind_bytes
    with (out / TRUTH).open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, sort_keys=True) + "\n" for row in truth)
    positives = sum(1 for row in truth if row["positive"])
    info = CorpusInfo(out, tuple(k.name for k in _KINDS), size, lines, positives, len(truth) - positives)
    manifest = {
        "size_mb": size_mb,
        "seed": seed,
        "files": list(info.files),
        "bytes": size,
        "lines": lines,
        "positives": positives,
        "negatives": info.negatives,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return info


def reuse_or_generate(out: Path, size_mb: float, seed: int) -> CorpusInfo:
    """The corpus in ``out`` if its manifest says same size and seed, else a fresh one."""
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        if (
            manifest["size_mb"] == size_mb
            and manifest["seed"] == seed
            and all((out / f).is_file() for f in manifest["files"])
        ):
            return CorpusInfo(
                out,
                tuple(manifest["files"]),
                manifest["bytes"],
                manifest["lines"],
                manifest["positives"],
                manifest["negatives"],
            )
    except (OSError, ValueError, KeyError):
        pass
    return generate(out, size_mb, seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size-mb", type=float, default=5.0, help="approximate corpus size in MiB (default 5)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the corpus into")
    args = parser.parse_args(argv)
    info = generate(args.out, args.size_mb, args.seed)
    print(
        f"wrote {info.size_bytes / 1e6:.1f} MB, {info.lines} lines, {info.positives} planted secrets, "
        f"{info.negatives} hard negatives into {info.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
