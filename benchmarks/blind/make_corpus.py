#!/usr/bin/env python3
"""Blind, labelled secret-scanner evaluation corpus generator.

Usage:
    python make_corpus.py OUT_DIR      # generate corpus + OUT_DIR/labels.jsonl, print counts and digest
    python make_corpus.py --check      # regenerate into a temp dir, compare with MANIFEST.sha256

Everything is synthetic and deterministic: a single random.Random(20261206) drives all choices.
Standard library only.  No clock, no `secrets`, no network.
"""
import base64
import hashlib
import json
import os
import random
import re
import string
import sys
import tempfile
import time
import zlib

SEED = 20261206
N_FILES = 2400

UP = string.ascii_uppercase
LO = string.ascii_lowercase
DG = string.digits
ALNUM = UP + LO + DG
LODG = LO + DG
UPDG = UP + DG
HEXL = "0123456789abcdef"
HEXU = "0123456789ABCDEF"
B64 = ALNUM + "+/"
B64U = ALNUM + "-_"
B62 = DG + UP + LO
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


class Rnd:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def s(self, n, alpha=ALNUM):
        return "".join(self.r.choice(alpha) for _ in range(n))

    def hex(self, n):
        return self.s(n, HEXL)

    def c(self, seq):
        return self.r.choice(seq)

    def i(self, a, b):
        return self.r.randint(a, b)

    def p(self, x):
        return self.r.random() < x

    def w(self, pairs):
        """weighted choice over [(item, weight), ...]"""
        tot = sum(w for _, w in pairs)
        x = self.r.random() * tot
        for it, wt in pairs:
            x -= wt
            if x <= 0:
                return it
        return pairs[-1][0]

    def sample(self, seq, k):
        return self.r.sample(list(seq), k)

    def shuffle(self, seq):
        self.r.shuffle(seq)
        return seq

    def bytes(self, n):
        return self.r.randbytes(n)

    def b64(self, nbytes):
        return base64.b64encode(self.bytes(nbytes)).decode()

    def b64u(self, nbytes):
        return base64.urlsafe_b64encode(self.bytes(nbytes)).rstrip(b"=").decode()

    def uuid(self):
        h = self.hex(32)
        h = h[:12] + "4" + h[13:16] + self.c("89ab") + h[17:]
        return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])

    def digits(self, n):
        return self.c("123456789") + self.s(n - 1, DG)


R = Rnd(SEED)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64e(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def b62(n):
    out = ""
    while n:
        n, rem = divmod(n, 62)
        out = B62[rem] + out
    return out.rjust(6, "0")


def gh_checksummed(prefix, R):
    """GitHub / npm token: prefix + 30 random base62 + base62(crc32(random)) (documented 2021 format)."""
    body = R.s(30)
    return prefix + body + b62(zlib.crc32(body.encode()) & 0xFFFFFFFF)


def crc24(data):
    crc = 0xB704CE
    for b in data:
        crc ^= b << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def bech32_polymod(values):
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if ((b >> i) & 1) else 0
    return chk


def bech32_encode(hrp, data8):
    acc = bits = 0
    data5 = []
    for b in data8:
        acc = (acc << 8) | b
        bits += 8
        while bits >= 5:
            bits -= 5
            data5.append((acc >> bits) & 31)
    if bits:
        data5.append((acc << (5 - bits)) & 31)
    hv = [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]
    pm = bech32_polymod(hv + data5 + [0] * 6) ^ 1
    chk = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32[d] for d in data5 + chk)


# --------------------------------------------------------------------------------------------
# word lists
# --------------------------------------------------------------------------------------------
NOUNS = ["order", "invoice", "customer", "user", "account", "payment", "report", "session", "cart",
         "product", "shipment", "ticket", "event", "metric", "job", "task", "queue", "batch", "tenant",
         "region", "profile", "audit", "export", "upload", "webhook", "notification", "subscription",
         "plan", "coupon", "ledger", "refund", "catalog", "price", "warehouse", "device", "document"]
VERBS = ["get", "load", "fetch", "build", "parse", "sync", "update", "create", "delete", "validate",
         "render", "process", "handle", "resolve", "compute", "send", "flush", "retry", "schedule",
         "normalize", "archive", "index", "publish", "merge"]
PROJECTS = ["billing-api", "checkout", "data-pipeline", "infra", "mobile-app", "web-frontend",
            "ops-scripts", "analytics", "auth-service", "inventory", "crm-sync", "reporting",
            "platform", "ml-experiments", "support-tools", "notifications", "search", "payments-gw",
            "warehouse-etl", "customer-portal", "legacy-erp", "devops", "api-gateway", "etl-jobs"]
FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
         "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yusuf", "zoe",
         "priya", "kenji", "lucia", "mateo", "fatima", "oskar", "ingrid", "tomas", "amara"]
LAST = ["nguyen", "smith", "garcia", "kowalski", "okafor", "tanaka", "muller", "rossi", "dubois",
        "silva", "johansson", "patel", "kim", "novak", "fischer", "moreau", "santos", "haddad"]
COMPANIES = ["acme", "globex", "initech", "umbrella", "hooli", "vandelay", "stark", "wayne", "tyrell",
             "cyberdyne", "soylent", "wonka", "dunder", "pied", "massive", "oscorp", "aperture"]
PW_WORDS = ["summer", "winter", "autumn", "spring", "dragon", "monkey", "sunshine", "tiger", "falcon",
            "rocket", "coffee", "banana", "orange", "purple", "silver", "golden", "thunder", "shadow",
            "maverick", "phoenix", "mustang", "pepper", "ginger", "cookie", "panther", "kangaroo",
            "lighthouse", "mercury", "jupiter", "saturn", "voyager", "blizzard", "hurricane", "tornado",
            "matrix", "galaxy", "nebula", "horizon", "harbor", "meadow", "canyon", "glacier", "volcano",
            "pirate", "wizard", "knight", "castle", "anchor", "compass", "lantern", "marble", "pebble",
            "walrus", "penguin", "otter", "badger", "raven", "sparrow", "hunter", "ranger", "welcome",
            "letmein", "qwerty", "trustno", "football", "baseball", "hockey", "soccer", "guitar", "piano"]
ENVS = ["prod", "production", "staging", "stage", "dev", "qa", "uat", "preprod", "sandbox", "live"]
DOMAINS = ["example-corp.com", "internal.acme.io", "globex.net", "corp.initech.local", "hooli.dev",
           "vandelay-industries.com", "umbrella-labs.org", "stark.systems", "wayne-ent.co"]


def user_name(R):
    return R.c([
        lambda: R.c(FIRST),
        lambda: R.c(FIRST) + "." + R.c(LAST),
        lambda: R.c(["svc_", "svc-", "app_", ""]) + R.c(NOUNS) + R.c(["", "_rw", "_ro", "_app", "_svc"]),
        lambda: R.c(["admin", "root", "deploy", "ci", "jenkins", "postgres", "app", "backup", "etl",
                     "reporting", "svc_report", "webapp", "api", "readonly", "dbadmin", "sa", "ubuntu"]),
        lambda: R.c(FIRST)[0] + R.c(LAST),
    ])()


def host_name(R, kind="db"):
    env = R.c(ENVS)
    if kind == "db":
        return R.c([
            "db-%s-%02d.internal" % (env, R.i(1, 12)),
            "%s-%s.cluster-c%s.%s.rds.amazonaws.com" % (R.c(NOUNS), env, R.s(12, LODG), R.c(["us-east-1", "eu-west-1", "ap-southeast-2"])),
            "10.%d.%d.%d" % (R.i(0, 255), R.i(0, 255), R.i(1, 254)),
            "%s-db.%s" % (R.c(NOUNS), R.c(DOMAINS)),
            "pg-%s.%s" % (env, R.c(DOMAINS)),
            "localhost",
            "mysql-%s.svc.cluster.local" % env,
        ])
    return R.c(["%s.%s" % (R.c(["api", "app", "internal", "gw", "edge", "svc"]), R.c(DOMAINS)),
                "%s-%s.%s" % (R.c(NOUNS), env, R.c(DOMAINS))])


# --------------------------------------------------------------------------------------------
# passwords
# --------------------------------------------------------------------------------------------
PUNCT = {
    "default": "!@#%^*-_.+=?~",
    "url": "-_.~!*",
    "shell": "-_.@%+=,",
    "xml": "!@#%^*-_.+=?~",
    "yaml": "!@#%^*-_.+=?~",
    "json": "!@#%^*-_.+=?~",
    "none": "",
}


def _cap(w):
    return w[0].upper() + w[1:]


LEET = str.maketrans({"a": "@", "o": "0", "e": "3", "i": "1", "s": "$"})


def human_password(R, safe="default"):
    P = PUNCT[safe] or "_"
    sym = lambda: R.c(P)
    year = lambda: str(R.c([R.i(2015, 2026), R.i(15, 26), R.i(1970, 1999)]))
    style = R.i(0, 11)
    if style == 0:      # Summer2024!
        pw = _cap(R.c(PW_WORDS)) + year() + sym()
    elif style == 1:    # hunter2-prod
        pw = R.c(PW_WORDS) + str(R.i(0, 99)) + R.c(["-", "_", "."]) + R.c(ENVS)
    elif style == 2:    # P@ssw0rd#91
        w = R.c(PW_WORDS + ["password", "admin", "welcome", "letmein"])
        w = _cap(w).translate(LEET)
        w = w.replace("$", "s") if "$" not in P else w
        pw = w + sym() + str(R.i(1, 999))
    elif style == 3:    # dipPr10Gg!
        core = [R.c(LO) for _ in range(R.i(4, 7))] + [R.c(UP) for _ in range(R.i(1, 3))] + [R.c(DG) for _ in range(R.i(1, 3))]
        R.shuffle(core)
        pw = R.c(LO + UP) + "".join(core) + sym()
    elif style == 4:    # BlueHorse42
        pw = _cap(R.c(PW_WORDS)) + _cap(R.c(PW_WORDS)) + str(R.i(1, 999))
    elif style == 5:    # passphrase
        sep = R.c(["-", ".", "_", ""]) if safe != "shell" else R.c(["-", ".", "_"])
        ws = [R.c(PW_WORDS) for _ in range(R.i(3, 4))]
        if sep == "":
            ws = [_cap(x) for x in ws]
        pw = sep.join(ws) + R.c(["", str(R.i(1, 99))])
    elif style == 6:    # pwgen Tahw9eiX
        pw = R.c(UP) + R.s(3, LO) + R.c(DG) + R.s(2, LO) + R.c(UP)
    elif style == 7:    # long random with punctuation
        pw = R.c(ALNUM) + R.s(R.i(14, 31), ALNUM + P * 2)
    elif style == 8:    # random alnum 20-40
        pw = R.s(R.i(20, 40))
    elif style == 9:    # Acme#2023db
        pw = _cap(R.c(COMPANIES)) + sym() + year() + R.c(["db", "!", "", "x", R.c(ENVS)])
    elif style == 10:   # base64-ish generated (openssl rand -base64 24)
        pw = R.b64(R.c([18, 24, 32])).rstrip("=")
        if safe in ("url", "shell"):
            pw = pw.replace("/", "_").replace("+", "-")
    else:               # dictionary word + digits
        pw = R.c(PW_WORDS) + str(R.i(10, 9999)) + R.c(["", sym()])
    if not pw[0].isalnum():
        pw = R.c(LO) + pw
    return pw


# --------------------------------------------------------------------------------------------
# structured credential generators
# --------------------------------------------------------------------------------------------
class Comp:
    """A composite value: only `sec` is the secret; pre/post are surrounding text on the same line."""

    def __init__(self, pre, sec, post=""):
        self.pre, self.sec, self.post = pre, sec, post


def jwt_token(R, alg=None, payload=None, kid=False):
    alg = alg or R.w([("HS256", 5), ("RS256", 4), ("ES256", 1), ("HS512", 1)])
    hdr = {"alg": alg, "typ": "JWT"}
    if kid or R.p(0.3):
        hdr["kid"] = R.c([R.s(8, LODG), R.uuid(), R.b64u(12)])
    if payload is None:
        now = R.i(1700000000, 1790000000)
        payload = {}
        if R.p(0.6):
            payload["iss"] = R.c(["https://auth.%s/" % R.c(DOMAINS), "api", "https://%s.auth0.com/" % R.c(COMPANIES),
                                  "https://login.%s" % R.c(DOMAINS), "supabase"])
        payload["sub"] = R.c([R.uuid(), str(R.i(1000, 99999999)), "auth0|" + R.hex(24), user_name(R)])
        if R.p(0.5):
            payload["name"] = _cap(R.c(FIRST)) + " " + _cap(R.c(LAST))
        if R.p(0.4):
            payload["email"] = "%s@%s" % (R.c(FIRST), R.c(DOMAINS))
        if R.p(0.4):
            payload["role"] = R.c(["admin", "service", "user", "authenticated", "ops"])
        if R.p(0.3):
            payload["scope"] = R.c(["read:all write:all", "openid profile email", "api:admin", "orders:write"])
        payload["iat"] = now
        payload["exp"] = now + R.c([900, 3600, 86400, 604800, 31536000, 315360000])
    siglen = {"HS256": 32, "HS512": 64, "RS256": 256, "ES256": 64}[alg]
    return (b64u(json.dumps(hdr, separators=(",", ":")).encode()) + "." +
            b64u(json.dumps(payload, separators=(",", ":")).encode()) + "." + b64u(R.bytes(siglen)))


def supabase_service_key(R):
    now = R.i(1650000000, 1760000000)
    return jwt_token(R, "HS256", {"iss": "supabase", "ref": R.s(20, LO), "role": "service_role",
                                  "iat": now, "exp": now + 315360000})


def der_len(n):
    if n < 128:
        return bytes([n])
    if n < 256:
        return b"\x81" + bytes([n])
    return b"\x82" + n.to_bytes(2, "big")


def pem_wrap(label, der, width=64, headers=None):
    body = base64.b64encode(der).decode()
    lines = ["-----BEGIN %s-----" % label]
    if headers:
        lines += headers + [""]
    lines += [body[i:i + width] for i in range(0, len(body), width)]
    lines.append("-----END %s-----" % label)
    return "\n".join(lines)


def rsa_der(R, bits=2048):
    nb = bits // 8
    hb = nb // 2

    def integer(nbytes, top=True):
        v = bytearray(R.bytes(nbytes))
        if top:
            v[0] |= 0x80
            v = b"\x00" + bytes(v)
        return b"\x02" + der_len(len(v)) + bytes(v)
    parts = (b"\x02\x01\x00" + integer(nb) + b"\x02\x03\x01\x00\x01" + integer(nb, False) +
             integer(hb) + integer(hb) + integer(hb, False) + integer(hb, False) + integer(hb, False))
    return b"\x30" + der_len(len(parts)) + parts


def pkcs8_wrap(inner, oid=b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01\x05\x00"):
    alg = b"\x30" + der_len(len(oid)) + oid
    octet = b"\x04" + der_len(len(inner)) + inner
    body = b"\x02\x01\x00" + alg + octet
    return b"\x30" + der_len(len(body)) + body


def ec_der(R):
    body = (b"\x02\x01\x01\x04\x20" + R.bytes(32) + b"\xa0\x0a\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07" +
            b"\xa1\x44\x03\x42\x00\x04" + R.bytes(64))
    return b"\x30" + der_len(len(body)) + body


def ssh_string(b):
    if isinstance(b, str):
        b = b.encode()
    return len(b).to_bytes(4, "big") + b


def openssh_ed25519(R, comment):
    pub = R.bytes(32)
    pubblob = ssh_string("ssh-ed25519") + ssh_string(pub)
    chk = R.bytes(4)
    priv = chk + chk + ssh_string("ssh-ed25519") + ssh_string(pub) + ssh_string(R.bytes(32) + pub) + ssh_string(comment)
    pad = 1
    while len(priv) % 8:
        priv += bytes([pad])
        pad += 1
    blob = (b"openssh-key-v1\x00" + ssh_string("none") + ssh_string("none") + ssh_string("") +
            (1).to_bytes(4, "big") + ssh_string(pubblob) + ssh_string(priv))
    return pem_wrap("OPENSSH PRIVATE KEY", blob, 70)


def openssh_rsa(R, comment):
    blob = (b"openssh-key-v1\x00" + ssh_string("none") + ssh_string("none") + ssh_string("") +
            (1).to_bytes(4, "big") + ssh_string(ssh_string("ssh-rsa") + b"\x00\x00\x00\x03\x01\x00\x01" +
                                                ssh_string(b"\x00" + R.bytes(384))) +
            ssh_string(R.bytes(1640) + ssh_string(comment)))
    return pem_wrap("OPENSSH PRIVATE KEY", blob, 70)


def pgp_private(R):
    pkt = (b"\x94\x58\x04" + R.bytes(4) + b"\x16\x09\x2b\x06\x01\x04\x01\xda\x47\x0f\x01\x01\x07\x40" +
           R.bytes(R.i(300, 900)))
    body = base64.b64encode(pkt).decode()
    lines = ["-----BEGIN PGP PRIVATE KEY BLOCK-----", ""]
    if R.p(0.3):
        lines = ["-----BEGIN PGP PRIVATE KEY BLOCK-----", "Comment: %s <%s@%s>" % (_cap(R.c(FIRST)), R.c(FIRST), R.c(DOMAINS)), ""]
    lines += [body[i:i + 64] for i in range(0, len(body), 64)]
    lines.append("=" + base64.b64encode(crc24(pkt).to_bytes(3, "big")).decode())
    lines.append("-----END PGP PRIVATE KEY BLOCK-----")
    return "\n".join(lines)


def putty_ppk(R, comment):
    pub = base64.b64encode(ssh_string("ssh-ed25519") + ssh_string(R.bytes(32))).decode()
    priv = base64.b64encode(ssh_string(R.bytes(32))).decode()
    lines = ["PuTTY-User-Key-File-3: ssh-ed25519", "Encryption: none", "Comment: %s" % comment,
             "Public-Lines: 2", pub[:64], pub[64:], "Private-Lines: 1", priv, "Private-MAC: " + R.hex(64)]
    return "\n".join(lines)


def age_key(R):
    return bech32_encode("age-secret-key-", R.bytes(32)).upper()


def private_key_pem(R, kind=None):
    kind = kind or R.w([("rsa", 4), ("pkcs8", 4), ("ec", 2), ("openssh", 3), ("encrypted", 1),
                        ("pkcs8-enc", 1), ("dsa", 0.5), ("ed25519-pkcs8", 1), ("openssh-rsa", 1)])
    comment = "%s@%s" % (R.c(FIRST + ["deploy", "ci", "root"]), R.c(["laptop", "build-01", "bastion", "MacBook-Pro.local", "jenkins"]))
    if kind == "rsa":
        return "rsa", pem_wrap("RSA PRIVATE KEY", rsa_der(R, R.c([2048, 2048, 3072, 4096])))
    if kind == "pkcs8":
        return "pkcs8", pem_wrap("PRIVATE KEY", pkcs8_wrap(rsa_der(R, R.c([2048, 2048, 4096]))))
    if kind == "ec":
        return "ec", pem_wrap("EC PRIVATE KEY", ec_der(R))
    if kind == "openssh":
        return "openssh", openssh_ed25519(R, comment)
    if kind == "openssh-rsa":
        return "openssh", openssh_rsa(R, comment)
    if kind == "encrypted":
        cipher = R.c(["AES-128-CBC", "AES-256-CBC", "DES-EDE3-CBC"])
        iv = R.s(16 if cipher.startswith("DES") else 32, HEXU)
        return "rsa-encrypted", pem_wrap("RSA PRIVATE KEY", R.bytes(1192), 64,
                                         ["Proc-Type: 4,ENCRYPTED", "DEK-Info: %s,%s" % (cipher, iv)])
    if kind == "pkcs8-enc":
        hdr = bytes.fromhex("3082051c304e06092a864886f70d01050d3041302906092a864886f70d01050c301c0408")
        return "pkcs8-encrypted", pem_wrap("ENCRYPTED PRIVATE KEY", hdr + R.bytes(1248))
    if kind == "dsa":
        return "dsa", pem_wrap("DSA PRIVATE KEY", b"\x30\x82\x01\xbb\x02\x01\x00\x02\x81\x81\x00" + R.bytes(436))
    if kind == "putty":
        return "putty-ppk", putty_ppk(R, comment)
    if kind == "pgp":
        return "pgp-private-key", pgp_private(R)
    if kind == "ed25519-pkcs8":
        return "ed25519", pem_wrap("PRIVATE KEY", bytes.fromhex("302e020100300506032b657004220420") + R.bytes(32))
    raise ValueError(kind)


# public material (hard negatives)
def ssh_public_key(R):
    if R.p(0.5):
        blob = ssh_string("ssh-ed25519") + ssh_string(R.bytes(32))
        t = "ssh-ed25519"
    else:
        blob = ssh_string("ssh-rsa") + b"\x00\x00\x00\x03\x01\x00\x01" + ssh_string(b"\x00" + R.bytes(256))
        t = "ssh-rsa"
    return "%s %s %s@%s" % (t, base64.b64encode(blob).decode(), R.c(FIRST), R.c(["laptop", "workstation", "ci-runner", "mbp"]))


def public_key_pem(R):
    if R.p(0.5):
        der = bytes.fromhex("30820122300d06092a864886f70d01010105000382010f003082010a0282010100") + R.bytes(256) + b"\x02\x03\x01\x00\x01"
        return pem_wrap("PUBLIC KEY", der)
    tbs = b"\xa0\x03\x02\x01\x02\x02\x14" + R.bytes(20) + R.bytes(R.i(700, 1100))
    tbs = b"\x30" + der_len(len(tbs)) + tbs
    sig = b"\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b\x05\x00\x03\x82\x01\x01\x00" + R.bytes(256)
    return pem_wrap("CERTIFICATE", b"\x30" + der_len(len(tbs + sig)) + tbs + sig)


def png_b64(R, n=None):
    data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + R.bytes(n or R.i(60, 400))
    return base64.b64encode(data).decode()


def bcrypt_hash(R):
    return "$2%s$%02d$%s" % (R.c(["a", "b", "y"]), R.c([10, 11, 12, 12, 14]), R.s(53, "./" + ALNUM))


def argon2_hash(R):
    return "$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s" % (R.c([65536, 19456, 47104]), R.c([2, 3]), R.c([1, 4]),
                                                   R.b64(16).rstrip("="), R.b64(32).rstrip("="))


def integrity_hash(R):
    return "sha512-" + R.b64(64)


# --------------------------------------------------------------------------------------------
# provider table: family, provider, key phrases, generator, weight, documented example values
# a generator returns a str, a Comp, or a list [(phrase-or-None, value), ...] (first = primary)
# --------------------------------------------------------------------------------------------
PROV = []


def P(fam, prov, keys, gen, w=1.0, ex=None, px=""):
    PROV.append({"fam": fam, "prov": prov, "keys": keys.split("|"), "gen": gen, "w": w, "ex": ex or [], "px": px})


def _aws(R):
    kid = R.w([("AKIA", 5), ("ASIA", 1)]) + R.s(16, UP + "234567")
    return [(None, kid), ("aws secret access key|secret access key|aws secret key|secret key", R.s(40, ALNUM + "/+"))]


def _aws_sts(R):
    tok = R.c(["IQoJb3JpZ2luX2VjE", "FwoGZXIvYXdzE"]) + R.s(R.i(300, 420), B64)
    return [(None, "ASIA" + R.s(16, UP + "234567")), ("aws secret access key", R.s(40, ALNUM + "/+")),
            ("aws session token|session token|security token", tok)]


def _sas(R):
    sig = R.b64(32).replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    acct = R.c(COMPANIES) + R.c(["prod", "data", "backups", "st", "assets"]) + str(R.i(1, 99))
    return Comp("https://%s.blob.core.windows.net/%s?sv=2022-11-02&ss=%s&srt=sco&sp=rwdlac&se=20%d-%02d-%02dT%02d:00:00Z&st=2024-01-01T00:00:00Z&spr=https&sig="
                % (acct, R.c(["uploads", "exports", "backups", "$web"]), R.c(["b", "bfqt"]), R.i(25, 27), R.i(1, 12), R.i(1, 28), R.i(0, 23)), sig, "")


def _azconn(R):
    acct = R.c(COMPANIES) + R.c(["storage", "prod", "logs", "sa"]) + str(R.i(1, 99))
    return Comp("DefaultEndpointsProtocol=https;AccountName=%s;AccountKey=" % acct, R.b64(64), ";EndpointSuffix=core.windows.net")


def _sb_conn(R):
    return Comp("Endpoint=sb://%s-bus.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=" % R.c(COMPANIES),
                R.b64(32), "")


def _grafana_glc(R):
    inner = json.dumps({"o": str(R.i(100000, 999999)), "n": "stack-%d-%s" % (R.i(100000, 999999), R.c(["hm-read", "write", "logs"])),
                        "k": R.s(24), "m": {"r": R.c(["us", "eu", "prod-us-east-0"])}}, separators=(",", ":"))
    return "glc_" + b64e(inner).rstrip("=")


def _slack_bot(R):
    return "xoxb-%s-%s-%s" % (R.digits(R.i(10, 13)), R.digits(R.i(10, 13)), R.s(24))


def _slack_user(R):
    return "xoxp-%s-%s-%s-%s" % (R.digits(11), R.digits(11), R.digits(13), R.hex(32))


def _slack_hook(R):
    return "https://hooks.slack.com/services/T%s/B%s/%s" % (R.s(R.i(8, 10), UPDG), R.s(R.i(8, 10), UPDG), R.s(24))


def _discord_bot(R):
    uid = str(R.i(10 ** 17, 10 ** 18))
    return b64e(uid).rstrip("=") + "." + R.s(6, B64U) + "." + R.s(R.c([27, 38]), B64U)


def _sentry_dsn(R):
    return Comp("https://", R.hex(32), "@o%d.ingest%s.sentry.io/%d" % (R.i(10000, 999999), R.c(["", ".us", ".de"]), R.i(1000000, 9999999)))


def _sntrys(R):
    inner = json.dumps({"iat": R.i(1700000000, 1760000000) + 0.5, "url": "https://sentry.io", "region_url": "https://us.sentry.io",
                        "org": R.c(COMPANIES)}, separators=(",", ":"))
    return "sntrys_" + b64e(inner).rstrip("=") + "_" + R.s(43, B64U)


def _pg(R, scheme="postgres"):
    u = user_name(R).replace(".", "_")
    return Comp("%s://%s:" % (scheme, u), human_password(R, "url"), "@%s:%d/%s" % (host_name(R), R.c([5432, 5432, 6432]), R.c(NOUNS) + R.c(["", "_db", "db", "_prod"])))


def _mysql(R):
    return Comp("mysql://%s:" % user_name(R).replace(".", "_"), human_password(R, "url"), "@%s:3306/%s" % (host_name(R), R.c(NOUNS) + R.c(["", "_db"])))


def _mongo(R):
    return Comp("mongodb+srv://%s:" % user_name(R).replace(".", "_"), human_password(R, "url"),
                "@cluster%d.%s.mongodb.net/%s?retryWrites=true&w=majority" % (R.i(0, 3), R.s(5, LODG), R.c(NOUNS)))


def _redis(R):
    return Comp("redis://%s:" % R.c(["", "", "default"]), human_password(R, "url"), "@%s:6379/%d" % (host_name(R, "x"), R.i(0, 15)))


def _amqp(R):
    return Comp("amqp%s://%s:" % (R.c(["", "s"]), user_name(R).replace(".", "_")), human_password(R, "url"), "@%s:5672/%s" % (host_name(R, "x"), R.c(["%2F", "vhost", "prod"])))


def _sqla(R):
    return Comp("%s://%s:" % (R.c(["postgresql+psycopg2", "mysql+pymysql", "postgresql+asyncpg", "mssql+pyodbc"]), user_name(R).replace(".", "_")),
                human_password(R, "url"), "@%s/%s" % (host_name(R), R.c(NOUNS)))


def _jdbc(R):
    return Comp("jdbc:%s://%s:%d/%s?user=%s&password=" % (R.c(["postgresql", "mysql"]), host_name(R), R.c([5432, 3306]), R.c(NOUNS), user_name(R).replace(".", "_")),
                human_password(R, "url"), R.c(["", "&ssl=true", "&useSSL=false"]))


def _adonet(R):
    return Comp("Server=%s;Database=%s;User Id=%s;Password=" % (host_name(R), _cap(R.c(NOUNS)) + "Db", user_name(R).replace(".", "_")),
                human_password(R, "url"), ";TrustServerCertificate=True;")


def _snowflake(R):
    return Comp("snowflake://%s:" % user_name(R).replace(".", "_"), human_password(R, "url"),
                "@%s-%s/%s/PUBLIC?warehouse=COMPUTE_WH&role=%s" % (R.s(7, LO), R.s(7, LO), R.c(NOUNS).upper(), R.c(["SYSADMIN", "LOADER", "ANALYST"])))


def _neon(R):
    return Comp("postgresql://%s:" % R.c(["neondb_owner", user_name(R).replace(".", "_")]), "npg_" + R.s(12),
                "@ep-%s-%s-%s.us-east-2.aws.neon.tech/neondb?sslmode=require" % (R.c(PW_WORDS), R.c(PW_WORDS), R.s(8, LODG)))


def _contribsys(R):
    return Comp("https://", "%s:%s" % (R.hex(8), R.hex(8)), "@enterprise.contribsys.com/")


def _gen_hex(n):
    return lambda R: R.hex(n)


def _gen_alnum(a, b):
    return lambda R: R.s(R.i(a, b))


def _gen_b64(nb):
    return lambda R: R.b64(nb)


# ---- cloud
P("cloud", "aws-access-key", "aws access key id|access key id|aws access key|aws key id", _aws, 4,
  ex=["AKIAIOSFODNN7EXAMPLE", "AKIAI44QH8DHBEXAMPLE"], px="AKIA")
P("cloud", "aws-session-token", "aws access key id", _aws_sts, 1, ex=["AKIAIOSFODNN7EXAMPLE"], px="ASIA")
P("cloud", "gcp-api-key", "google api key|gcp api key|maps api key|firebase api key|google maps key|places api key",
  lambda R: "AIza" + R.s(35, B64U), 2, px="AIza")
P("cloud", "azure-storage-key", "azure storage key|storage account key|azure storage account key|storage key",
  _gen_b64(64), 1.5, ex=["Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="])
P("cloud", "azure-connection-string", "azure storage connection string|storage connection string|blob connection string", _azconn, 1.5)
P("cloud", "azure-servicebus-connection-string", "service bus connection string|servicebus connection", _sb_conn, 0.5)
P("cloud", "azure-sas", "sas url|blob sas url|azure sas url|upload url", _sas, 1)
P("cloud", "azure-ad-client-secret", "azure client secret|client secret|aad client secret|arm client secret",
  lambda R: R.s(3) + R.c(DG) + "Q~" + R.s(34, ALNUM + "_.~-"), 1.5)
P("cloud", "alibaba", "alibaba access key id|aliyun access key id|alicloud access key",
  lambda R: [(None, "LTAI" + R.s(R.c([12, 16, 20]))), ("alibaba access key secret|alicloud secret key", R.s(30))], 1, px="LTAI")
P("cloud", "digitalocean", "digitalocean token|do token|digitalocean access token|do api token",
  lambda R: R.w([("dop_v1_", 4), ("doo_v1_", 1), ("dor_v1_", 1)]) + R.hex(64), 1.5, px="dop_v1_")
P("cloud", "heroku", "heroku api key|heroku auth token|heroku token",
  lambda R: R.uuid() if R.p(0.6) else "HRKU-AA" + R.s(58, B64U), 1)
P("cloud", "ibm-cloud", "ibm cloud api key|ibmcloud api key|ic api key", lambda R: R.s(44, B64U), 0.7)
P("cloud", "oracle-oci", "oci auth token|oracle auth token|oci token", lambda R: R.s(20, ALNUM + ".:;()+-_[]"), 0.5)
P("cloud", "tencent", "tencentcloud secret id|tencent secret id",
  lambda R: [(None, "AKID" + R.s(32)), ("tencentcloud secret key|tencent secret key", R.s(32))], 0.7, px="AKID")
P("cloud", "scaleway", "scw access key",
  lambda R: [(None, "SCW" + R.s(17, UPDG)), ("scw secret key|scaleway secret key", R.uuid())], 0.6)
P("cloud", "linode", "linode token|linode api token|linode cli token", _gen_hex(64), 0.6)
P("cloud", "vultr", "vultr api key", lambda R: R.s(36, UPDG), 0.5)
P("cloud", "hetzner", "hcloud token|hetzner api token|hetzner token", lambda R: R.s(64), 0.6)
P("cloud", "ovh", "ovh application key",
  lambda R: [(None, R.s(16)), ("ovh application secret", R.s(32)), ("ovh consumer key", R.s(32))], 0.5)
P("cloud", "flyio", "fly api token|fly access token|fly token",
  lambda R: ("fo1_" + R.s(43, B64U)) if R.p(0.5) else "FlyV1 fm2_" + R.s(R.i(180, 320), B64U) + "," + "fm2_" + R.s(120, B64U), 0.7, px="fo1_")
P("cloud", "vercel", "vercel token|vercel api token|now token", lambda R: R.s(24), 0.7)
P("cloud", "netlify", "netlify auth token|netlify token|netlify access token", lambda R: "nfp_" + R.s(40), 0.7, px="nfp_")
P("cloud", "render", "render api key|render token", lambda R: "rnd_" + R.s(32), 0.5, px="rnd_")
P("cloud", "railway", "railway token|railway api token", lambda R: R.uuid(), 0.4)
P("cloud", "cloudflare-api-token", "cloudflare api token|cf api token|cf token|cloudflare token", lambda R: R.s(40, B64U), 1.2)
P("cloud", "cloudflare-global-key", "cloudflare api key|cf api key|cloudflare global api key|cf auth key", _gen_hex(37), 0.8)
P("cloud", "cloudflare-origin-ca", "cloudflare origin ca key|origin ca key", lambda R: "v1.0-" + R.hex(24) + "-" + R.hex(146), 0.3, px="v1.0-")
P("cloud", "fastly", "fastly api token|fastly api key|fastly token", lambda R: R.s(32, B64U), 0.6)
P("cloud", "akamai", "akamai client secret",
  lambda R: [(None, R.b64(32)), ("akamai access token", "akab-%s-%s" % (R.s(16, LODG), R.s(16, LODG))),
             ("akamai client token", "akab-%s-%s" % (R.s(16, LODG), R.s(16, LODG)))], 0.5)

# ---- vcs / ci / registries
P("vcs-ci", "github-pat", "github token|gh token|github pat|github access token|git token|gh pat",
  lambda R: gh_checksummed("ghp_", R), 3.5, ex=["gho_16C7e42F292c6912E7710c838347Ae178B4a"], px="ghp_")
P("vcs-ci", "github-oauth", "github oauth token|gh oauth token|github token",
  lambda R: gh_checksummed(R.c(["gho_", "ghu_", "ghs_", "ghr_"]), R), 1.5, ex=["gho_16C7e42F292c6912E7710c838347Ae178B4a"], px="gho_")
P("vcs-ci", "github-fine-grained-pat", "github token|github pat|gh token|github fine grained token",
  lambda R: "github_pat_11" + R.s(20, UPDG) + "_" + R.s(59), 2, px="github_pat_")
P("vcs-ci", "gitlab", "gitlab token|gitlab private token|gitlab pat|gl token|gitlab access token",
  lambda R: R.w([("glpat-", 5), ("gldt-", 1), ("glrt-", 1), ("gloas-", 0.5)]) + R.s(20, B64U), 2, px="glpat-")
P("vcs-ci", "gitlab-runner", "runner registration token|gitlab runner token|registration token",
  lambda R: ("GR1348941" + R.s(20, B64U)) if R.p(0.5) else "glptt-" + R.hex(40), 0.7, px="GR1348941")
P("vcs-ci", "bitbucket", "bitbucket app password|bitbucket password|bb app password",
  lambda R: "ATBB" + R.s(28) + R.s(8, HEXU), 0.8, px="ATBB")
P("vcs-ci", "atlassian", "atlassian api token|jira api token|confluence api token|jira token",
  lambda R: "ATATT3xFfGF0" + R.s(R.i(170, 180), B64U) + "=" + R.s(8, HEXU), 1.2, px="ATATT3")
P("vcs-ci", "jira-legacy", "jira api token|jira token|confluence token", lambda R: R.s(24), 0.4)
P("vcs-ci", "npm", "npm token|npm auth token|npm access token|npm publish token", lambda R: gh_checksummed("npm_", R), 1.5, px="npm_")
P("vcs-ci", "pypi", "pypi token|pypi api token|twine password",
  lambda R: "pypi-AgEIcHlwaS5vcmc" + R.s(R.i(140, 200), B64U), 1, px="pypi-")
P("vcs-ci", "rubygems", "rubygems api key|gem host api key|rubygems token", lambda R: "rubygems_" + R.hex(48), 0.5, px="rubygems_")
P("vcs-ci", "nuget", "nuget api key|nuget key", lambda R: "oy2" + R.s(43, LODG), 0.6, px="oy2")
P("vcs-ci", "dockerhub", "docker hub token|dockerhub token|docker token|docker password",
  lambda R: "dckr_pat_" + R.s(27, B64U), 1, px="dckr_pat_")
P("vcs-ci", "jfrog", "artifactory api key|jfrog api key|artifactory token|jfrog access token",
  lambda R: ("AKCp" + R.s(69)) if R.p(0.6) else "cmVmdGtuOjAxOjE3" + R.s(48), 0.8, px="AKCp")
P("vcs-ci", "sonatype", "ossrh token|nexus token|sonatype token password", lambda R: R.s(44, B64U), 0.4)
P("vcs-ci", "circleci", "circleci token|circle token|circleci api token",
  lambda R: ("CCIPAT_" + R.s(22) + "_" + R.hex(40)) if R.p(0.5) else R.hex(40), 0.8, px="CCIPAT_")
P("vcs-ci", "travis", "travis token|travis api token", lambda R: R.s(22), 0.4)
P("vcs-ci", "buildkite", "buildkite api token|buildkite token|buildkite agent token",
  lambda R: ("bkua_" + R.hex(40)) if R.p(0.7) else R.s(50, LODG), 0.6, px="bkua_")
P("vcs-ci", "drone", "drone token|drone server token", lambda R: R.s(32), 0.4)
P("vcs-ci", "jenkins", "jenkins api token|jenkins token|jenkins password", lambda R: "11" + R.hex(32), 0.8)
P("vcs-ci", "sonarqube", "sonar token|sonarqube token|sonar login",
  lambda R: R.c(["squ_", "sqp_", "sqa_"]) + R.hex(40), 0.8, px="squ_")
P("vcs-ci", "snyk", "snyk token|snyk api token", lambda R: R.uuid(), 0.6)
P("vcs-ci", "codecov", "codecov token|codecov upload token", lambda R: R.uuid(), 0.5)
P("vcs-ci", "terraform-cloud", "tfe token|terraform cloud token|atlas token|tf api token",
  lambda R: R.s(14) + ".atlasv1." + R.s(67), 0.8)
P("vcs-ci", "pulumi", "pulumi access token|pulumi token", lambda R: "pul-" + R.hex(40), 0.6, px="pul-")
P("vcs-ci", "vault", "vault token|vault root token|vault auth token",
  lambda R: R.w([("hvs." + R.s(24), 2), ("hvs.CAESI" + R.s(R.i(80, 90), B64U), 2), ("hvb.AAAAAQ" + R.s(R.i(120, 140), B64U), 1)]), 1, px="hvs.")
P("vcs-ci", "doppler", "doppler token|doppler service token",
  lambda R: ("dp.pt." + R.s(43)) if R.p(0.5) else "dp.st.%s.%s" % (R.c(ENVS), R.s(40)), 0.6, px="dp.pt.")
P("vcs-ci", "sourcegraph", "src access token|sourcegraph token",
  lambda R: ("sgp_" + R.hex(40)) if R.p(0.5) else "sgp_%s_%s" % (R.hex(16), R.hex(40)), 0.4, px="sgp_")
P("vcs-ci", "postman", "postman api key|postman key", lambda R: "PMAK-%s-%s" % (R.hex(24), R.hex(34)), 0.6, px="PMAK-")
P("vcs-ci", "grafana", "grafana token|grafana api key|grafana service account token|grafana cloud token",
  lambda R: _grafana_glc(R) if R.p(0.5) else "glsa_%s_%s" % (R.s(32), R.hex(8)), 0.8, px="glsa_")
P("vcs-ci", "shopify", "shopify access token|shopify api secret|shopify admin token|shopify token",
  lambda R: R.c(["shpat_", "shpss_", "shpca_", "shppa_"]) + R.hex(32), 1, px="shpat_")

# ---- saas
P("saas", "slack-bot-token", "slack bot token|slack token|slack api token", _slack_bot, 2.5, px="xoxb-")
P("saas", "slack-user-token", "slack user token|slack token|slack oauth token",
  lambda R: R.c([_slack_user(R), "xoxa-2-%s-%s-%s" % (R.digits(12), R.digits(12), R.hex(32)),
                 "xoxr-%s-%s" % (R.digits(12), R.s(40)), "xoxe.xoxp-1-" + R.s(140, B64U),
                 "xoxs-%s-%s-%s-%s" % (R.digits(11), R.digits(11), R.digits(11), R.hex(64))]), 1, px="xoxp-")
P("saas", "slack-app-token", "slack app token|socket mode token",
  lambda R: "xapp-1-A%s-%s-%s" % (R.s(10, UPDG), R.digits(13), R.hex(64)), 0.6, px="xapp-")
P("saas", "slack-webhook", "slack webhook url|slack webhook|webhook url|alerts webhook",
  _slack_hook, 2, ex=["https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"])
P("saas", "datadog", "datadog api key|dd api key",
  lambda R: [(None, R.hex(32))] + ([("datadog app key|dd app key|dd application key", R.hex(40))] if R.p(0.5) else []), 2)
P("saas", "newrelic", "new relic license key|newrelic license key|nr license key",
  lambda R: R.c([R.hex(36) + "NRAL", R.hex(40)]), 1, px="")
P("saas", "newrelic-api", "new relic api key|newrelic user key|nr api key|new relic insights key|new relic browser key",
  lambda R: R.c(["NRAK-" + R.s(27, UPDG), "NRII-" + R.s(32, B64U), "NRJS-" + R.hex(19)]), 1, px="NRAK-")
P("saas", "sentry", "sentry dsn|sentry url", _sentry_dsn, 1.5)
P("saas", "sentry-token", "sentry auth token|sentry token",
  lambda R: _sntrys(R) if R.p(0.5) else "sntryu_" + R.hex(64), 0.8, px="sntrys_")
P("saas", "dynatrace", "dynatrace api token|dt api token|dynatrace token",
  lambda R: "dt0c01.%s.%s" % (R.s(24, UPDG), R.s(64, UPDG)), 0.6, px="dt0c01.")
P("saas", "sumologic", "sumo access id|sumologic access id",
  lambda R: [(None, "su" + R.s(12)), ("sumo access key|sumologic access key", R.s(64))], 0.5)
P("saas", "splunk-hec", "splunk hec token|hec token|splunk token", lambda R: R.uuid().upper() if R.p(0.3) else R.uuid(), 0.8)
P("saas", "pagerduty", "pagerduty token|pagerduty api key|pd api key|pagerduty integration key",
  lambda R: ("u+" + R.s(18, B64U)) if R.p(0.4) else (R.s(20, B64U) if R.p(0.5) else R.hex(32)), 0.7)
P("saas", "opsgenie", "opsgenie api key|genie key", lambda R: R.uuid(), 0.5)
P("saas", "honeycomb", "honeycomb api key|honeycomb write key",
  lambda R: R.s(22) if R.p(0.5) else ("hcaik_01" + R.s(56, LODG)), 0.5)
P("saas", "lightstep", "lightstep access token|ls access token", lambda R: R.b64(63), 0.3)
P("saas", "posthog", "posthog api key|posthog personal api key|posthog key",
  lambda R: R.c(["phx_", "phx_", "phc_"]) + R.s(43), 0.6, px="phx_")
P("saas", "segment", "segment write key|segment key", lambda R: R.s(32), 0.5)
P("saas", "mixpanel", "mixpanel api secret|mixpanel secret", _gen_hex(32), 0.4)
P("saas", "amplitude", "amplitude api key", lambda R: [(None, R.hex(32)), ("amplitude secret key", R.hex(32))], 0.4)
P("saas", "launchdarkly", "launchdarkly sdk key|ld sdk key|launchdarkly api key",
  lambda R: R.c(["sdk-", "api-"]) + R.uuid(), 0.6, px="sdk-")
P("saas", "algolia", "algolia admin key|algolia api key|algolia admin api key", _gen_hex(32), 0.6)
P("saas", "contentful", "contentful management token|contentful delivery token|contentful access token",
  lambda R: ("CFPAT-" + R.s(43, B64U)) if R.p(0.6) else R.s(43, B64U), 0.5, px="CFPAT-")
P("saas", "notion", "notion token|notion api key|notion secret|notion integration token",
  lambda R: ("secret_" + R.s(43)) if R.p(0.5) else "ntn_" + R.digits(11) + R.s(35), 0.8, px="secret_")
P("saas", "airtable", "airtable token|airtable api key|airtable pat", lambda R: "pat%s.%s" % (R.s(14), R.hex(64)), 0.6)
P("saas", "asana", "asana token|asana pat|asana access token",
  lambda R: "%d/%s/%s:%s" % (R.c([1, 2]), R.digits(16), R.digits(16), R.hex(32)), 0.4)
P("saas", "linear", "linear api key|linear token", lambda R: "lin_api_" + R.s(40), 0.6, px="lin_api_")
P("saas", "clickup", "clickup token|clickup api key", lambda R: "pk_%s_%s" % (R.digits(8), R.s(32, UPDG)), 0.4, px="pk_")
P("saas", "monday", "monday api token|monday token", lambda R: jwt_token(R, "HS256", {"tid": R.i(10 ** 8, 10 ** 9), "aai": 11, "uid": R.i(10 ** 7, 10 ** 8), "iad": "2024-0%d-1%dT10:22:%02d.000Z" % (R.i(1, 9), R.i(0, 9), R.i(0, 59)), "per": "me:write", "actid": R.i(10 ** 6, 10 ** 7), "rgn": "use1"}), 0.3)
P("saas", "trello", "trello api key",
  lambda R: [(None, R.hex(32)), ("trello token", ("ATTA" + R.hex(64) + R.s(8, HEXU)) if R.p(0.5) else R.hex(64))], 0.4)
P("saas", "zendesk", "zendesk api token|zendesk token", lambda R: R.s(40), 0.5)
P("saas", "freshdesk", "freshdesk api key", lambda R: R.s(20), 0.3)
P("saas", "intercom", "intercom access token|intercom token", lambda R: "dG9rOj" + R.s(54, B64 + "=").rstrip("=") + "=", 0.4)
P("saas", "hubspot", "hubspot access token|hubspot private app token|hubspot token",
  lambda R: "pat-%s-%s" % (R.c(["na1", "na1", "eu1"]), R.uuid()), 0.7, px="pat-na1-")
P("saas", "salesforce", "salesforce session id|sf access token|salesforce access token",
  lambda R: "00D%s!%s" % (R.s(12), R.s(96, ALNUM + "._")), 0.6)
P("saas", "salesforce-refresh", "salesforce refresh token|sf refresh token", lambda R: "5Aep861" + R.s(80, ALNUM + "._"), 0.4)
P("saas", "okta", "okta api token|okta token|okta ssws token", lambda R: "00" + R.s(40, B64U), 0.7)
P("saas", "auth0", "auth0 client secret|client secret|auth0 secret", lambda R: R.s(64, B64U), 0.8)
P("saas", "1password-secret-key", "1password secret key|op secret key|onepassword secret key",
  lambda R: "A3-%s-%s-%s-%s-%s-%s" % (R.s(6, UPDG), R.s(6, UPDG), R.s(5, UPDG), R.s(5, UPDG), R.s(5, UPDG), R.s(5, UPDG)), 0.4)
P("saas", "1password-service-account", "op service account token|1password service account token",
  lambda R: "ops_eyJzaWduSW5BZGRyZXNzIjoi" + R.s(R.i(280, 400), B64U), 0.4, px="ops_")
P("saas", "bitwarden", "bws access token|bitwarden access token",
  lambda R: "0.%s.%s:%s==" % (R.uuid(), R.s(30), R.s(22, B64)), 0.3)
P("saas", "figma", "figma token|figma access token|figma pat", lambda R: "figd_" + R.s(40, B64U), 0.5, px="figd_")
P("saas", "mapbox", "mapbox secret token|mapbox token|mapbox access token",
  lambda R: "sk.eyJ1Ijoi" + b64e('%s","a":"%s"}' % (R.c(FIRST + COMPANIES), R.s(25, LODG))).rstrip("=") + "." + R.s(22, B64U), 0.5, px="sk.eyJ")
P("saas", "typeform", "typeform token|typeform api token", lambda R: "tfp_%s_%s" % (R.s(44, B64U), R.s(14)), 0.3, px="tfp_")
P("saas", "sidekiq", "bundle enterprise contribsys com|sidekiq credentials|contribsys",
  lambda R: "%s:%s" % (R.hex(8), R.hex(8)), 0.4)
P("saas", "sidekiq-url", "sidekiq source|gem source url", _contribsys, 0.2)
P("saas", "easypost", "easypost api key|easypost key", lambda R: R.c(["EZAK", "EZTK"]) + R.s(54), 0.4, px="EZAK")
P("saas", "shippo", "shippo api token|shippo token", lambda R: "shippo_live_" + R.hex(40), 0.3, px="shippo_live_")
P("saas", "twitter", "twitter bearer token|x bearer token|twitter api bearer",
  lambda R: "AAAAAAAAAAAAAAAAAAAAA" + R.s(25) + "%3D" + R.s(50), 0.6)
P("saas", "facebook", "facebook access token|fb access token|fb page token|meta access token",
  lambda R: "EAA" + R.c(["G", "B", "J", "CEdEose0cBA"]) + R.s(R.i(150, 200)), 0.6, px="EAA")
P("saas", "google-oauth", "google refresh token|gmail refresh token|refresh token",
  lambda R: "1//0" + R.s(R.i(90, 100), B64U), 0.6, ex=["1/xEoDL4iW3cxlI7yDbSRFYNG01kVKM2C-259HOF2aQbI"])
P("saas", "google-client-secret", "google client secret|oauth client secret", lambda R: "GOCSPX-" + R.s(28, B64U), 0.5, px="GOCSPX-")
P("saas", "dropbox", "dropbox token|dropbox access token", lambda R: "sl." + R.s(R.i(130, 140), B64U), 0.5, px="sl.")
P("saas", "box", "box developer token|box token", lambda R: R.s(32), 0.3)
P("saas", "zoom", "zoom client secret|zoom secret|zoom api secret", lambda R: R.s(32), 0.4)
P("saas", "calendly", "calendly token|calendly api key", lambda R: jwt_token(R, "HS256", kid=True), 0.2)
P("saas", "telegram", "telegram bot token|telegram token|tg bot token|bot token",
  lambda R: "%s:AA%s" % (R.digits(R.i(9, 10)), R.s(33, B64U)), 1)
P("saas", "discord-bot", "discord bot token|discord token", _discord_bot, 0.6)
P("saas", "discord-webhook", "discord webhook url|discord webhook",
  lambda R: "https://discord.com/api/webhooks/%s/%s" % (R.digits(18), R.s(68, B64U)), 0.6)

# ---- chat / messaging / mail
P("chat-mail", "sendgrid", "sendgrid api key|sendgrid key|sg api key|email api key",
  lambda R: "SG.%s.%s" % (R.s(22, B64U), R.s(43, B64U)), 2.5, px="SG.")
P("chat-mail", "mailgun", "mailgun api key|mailgun key|mg api key",
  lambda R: ("key-" + R.hex(32)) if R.p(0.5) else "%s-%s-%s" % (R.hex(32), R.hex(8), R.hex(8)), 1.2, px="key-")
P("chat-mail", "mailchimp", "mailchimp api key|mailchimp key|mc api key",
  lambda R: "%s-us%d" % (R.hex(32), R.i(1, 21)), 1)
P("chat-mail", "postmark", "postmark server token|postmark api token|postmark token", lambda R: R.uuid(), 0.8)
P("chat-mail", "twilio", "twilio account sid",
  lambda R: [(None, "AC" + R.hex(32)), ("twilio auth token|twilio token", R.hex(32))], 1.5,
  ex=["ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"], px="AC")
P("chat-mail", "twilio-api-key", "twilio api key",
  lambda R: [(None, "SK" + R.hex(32)), ("twilio api secret", R.s(32))], 0.7, px="SK")
P("chat-mail", "vonage", "vonage api key|nexmo api key",
  lambda R: [(None, R.hex(8)), ("vonage api secret|nexmo api secret", R.s(16))], 0.5)
P("chat-mail", "messagebird", "messagebird api key|messagebird access key", lambda R: R.s(25), 0.3)
P("chat-mail", "plivo", "plivo auth id",
  lambda R: [(None, R.c(["MA", "SA"]) + R.s(18, UPDG)), ("plivo auth token", R.s(40))], 0.3)
P("chat-mail", "brevo", "brevo api key|sendinblue api key|brevo key|smtp key",
  lambda R: R.c(["xkeysib-", "xsmtpsib-"]) + R.hex(64) + "-" + R.s(16), 0.8, px="xkeysib-")
P("chat-mail", "mandrill", "mandrill api key|mandrill key", lambda R: R.c(["md-", ""]) + R.s(22, B64U), 0.4)
P("chat-mail", "sparkpost", "sparkpost api key|sparkpost key", _gen_hex(40), 0.4)
P("chat-mail", "resend", "resend api key|resend key", lambda R: "re_%s_%s" % (R.s(8), R.s(24)), 0.6, px="re_")

# ---- payment
P("payment", "stripe", "stripe secret key|stripe api key|stripe key|stripe sk",
  lambda R: "sk_live_" + R.s(R.c([24, 99])), 3, ex=["sk_test_4eC39HqLyjWDarjtT1zdp7dc"], px="sk_live_")
P("payment", "stripe-restricted", "stripe restricted key|stripe rk", lambda R: "rk_live_" + R.s(R.c([24, 99])), 0.8, px="rk_live_")
P("payment", "stripe-webhook", "stripe webhook secret|webhook signing secret|stripe endpoint secret",
  lambda R: "whsec_" + R.s(32), 1.2, px="whsec_")
P("payment", "square", "square access token|square token|square secret",
  lambda R: R.c(["EAAA" + R.s(60, B64U), "sq0csp-" + R.s(43, B64U), "sq0atp-" + R.s(22, B64U)]), 0.8, px="EAAA")
P("payment", "braintree", "braintree access token|paypal access token",
  lambda R: "access_token$production$%s$%s" % (R.s(16, LODG), R.hex(32)), 0.6)
P("payment", "paypal", "paypal client secret|paypal secret", lambda R: "E" + R.s(79, B64U), 0.6)
P("payment", "adyen", "adyen api key|adyen key",
  lambda R: "AQE" + R.s(38) + "=-" + R.s(43, B64) + "=-" + R.s(R.i(20, 30)), 0.4, px="AQE")
P("payment", "razorpay", "razorpay key id",
  lambda R: [(None, "rzp_live_" + R.s(14)), ("razorpay key secret|razorpay secret", R.s(24))], 0.5, px="rzp_live_")
P("payment", "flutterwave", "flutterwave secret key|flw secret key", lambda R: "FLWSECK-%s-X" % R.hex(32), 0.4, px="FLWSECK-")
P("payment", "paystack", "paystack secret key|paystack key", lambda R: "sk_live_" + R.hex(40), 0.4, px="sk_live_")
P("payment", "coinbase", "coinbase api key",
  lambda R: [(None, R.s(16)), ("coinbase api secret", R.s(32))], 0.4)
P("payment", "plaid", "plaid secret|plaid secret key", lambda R: R.hex(30), 0.6)
P("payment", "gocardless", "gocardless access token|gocardless token", lambda R: "live_" + R.s(40, B64U), 0.4, px="live_")
P("payment", "checkout-com", "checkout secret key|cko secret key", lambda R: "sk_" + R.uuid(), 0.4, px="sk_")
P("payment", "mollie", "mollie api key|mollie key", lambda R: "live_" + R.s(30), 0.4, px="live_")
P("payment", "klarna", "klarna api password|klarna shared secret|klarna password", lambda R: R.s(16), 0.3)
P("payment", "binance", "binance api key",
  lambda R: [(None, R.s(64)), ("binance api secret|binance secret", R.s(64))], 0.4)
P("payment", "kraken", "kraken api key",
  lambda R: [(None, R.s(56, B64)), ("kraken private key|kraken secret", R.b64(64))], 0.3)

# ---- ai
P("ai", "openai", "openai api key|openai key|openai token|llm api key",
  lambda R: R.w([("sk-proj-" + R.s(156, B64U), 4), ("sk-svcacct-" + R.s(156, B64U), 1), ("sk-admin-" + R.s(156, B64U), 0.5),
                 ("sk-" + R.s(20) + "T3BlbkFJ" + R.s(20), 2)]), 4, px="sk-proj-")
P("ai", "anthropic", "anthropic api key|anthropic key|claude api key",
  lambda R: R.w([("sk-ant-api03-" + R.s(93, B64U) + "AA", 5), ("sk-ant-admin01-" + R.s(93, B64U) + "AA", 1)]), 3, px="sk-ant-api03-")
P("ai", "huggingface", "hf token|huggingface token|hugging face hub token|hf api token", lambda R: "hf_" + R.s(34), 2, px="hf_")
P("ai", "cohere", "cohere api key|co api key", lambda R: R.s(40), 0.6)
P("ai", "mistral", "mistral api key", lambda R: R.s(32), 0.6)
P("ai", "groq", "groq api key", lambda R: "gsk_" + R.s(52), 0.8, px="gsk_")
P("ai", "replicate", "replicate api token|replicate token", lambda R: "r8_" + R.s(37), 0.7, px="r8_")
P("ai", "perplexity", "perplexity api key|pplx api key", lambda R: "pplx-" + R.s(48), 0.5, px="pplx-")
P("ai", "xai", "xai api key|grok api key", lambda R: "xai-" + R.s(80), 0.5, px="xai-")
P("ai", "gemini", "gemini api key|google ai api key|genai api key", lambda R: "AIza" + R.s(35, B64U), 1, px="AIza")
P("ai", "deepseek", "deepseek api key", lambda R: "sk-" + R.hex(32), 0.5, px="sk-")
P("ai", "together", "together api key", lambda R: R.hex(64) if R.p(0.5) else "tgp_v1_" + R.s(43, B64U), 0.4)
P("ai", "fireworks", "fireworks api key", lambda R: "fw_" + R.s(24), 0.4, px="fw_")
P("ai", "pinecone", "pinecone api key", lambda R: "pcsk_%s_%s" % (R.s(R.i(5, 6)), R.s(63)), 0.6, px="pcsk_")
P("ai", "wandb", "wandb api key|wandb key", _gen_hex(40), 0.7)
P("ai", "langsmith", "langsmith api key|langchain api key|langsmith key",
  lambda R: "%s%s_%s" % (R.c(["lsv2_pt_", "lsv2_sk_"]), R.hex(32), R.hex(10)), 0.6, px="lsv2_pt_")
P("ai", "elevenlabs", "elevenlabs api key|xi api key", lambda R: ("sk_" + R.hex(48)) if R.p(0.5) else R.hex(32), 0.5)

# ---- database (one-line credentials used through cred(); richer DB shapes come from templates)
P("database", "postgres-url", "database url|db url|postgres url|pg dsn|database dsn|db connection string", _pg, 3)
P("database", "mysql-url", "mysql url|database url|db url|mysql dsn", _mysql, 1.5)
P("database", "mongodb-url", "mongodb uri|mongo url|mongo uri|mongodb url", _mongo, 2)
P("database", "redis-url", "redis url|cache url|redis uri", _redis, 1.5)
P("database", "amqp-url", "amqp url|rabbitmq url|broker url|celery broker url", _amqp, 1)
P("database", "sqlalchemy-url", "sqlalchemy database uri|database url|sqlalchemy url", _sqla, 1)
P("database", "jdbc-url", "jdbc url|datasource url|jdbc connection", _jdbc, 1)
P("database", "adonet", "connection string|default connection|db connection string", _adonet, 1)
P("database", "snowflake-url", "snowflake url|snowflake dsn", _snowflake, 0.5)
P("database", "neon-url", "database url|neon database url", _neon, 0.5)
P("database", "databricks", "databricks token|databricks pat|databricks access token",
  lambda R: "dapi" + R.hex(32) + R.c(["", "-2", "-3"]), 1, px="dapi")
P("database", "supabase-service-key", "supabase service role key|supabase service key|supabase key", supabase_service_key, 0.8)
P("database", "supabase-pat", "supabase access token|supabase token", lambda R: "sbp_" + R.hex(40), 0.5, px="sbp_")
P("database", "planetscale", "planetscale password|pscale password|planetscale token",
  lambda R: ("pscale_pw_" + R.s(43, B64U)) if R.p(0.6) else "pscale_tkn_" + R.s(43, B64U), 0.6, px="pscale_pw_")

# ---- private key (one-line shape only here; PEM blocks come from pem())
P("private-key", "age", "age secret key|sops age key|age key|age identity", age_key, 1, px="AGE-SECRET-KEY-1")

# ---- jwt
P("jwt", "jwt", "jwt|auth token|access token|bearer token|id token|api jwt|service token", lambda R: jwt_token(R), 1,
  ex=["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"])

# ---- generic secrets: no recognisable prefix
GENERIC_KEYS = ("api key|apikey|api secret|secret|token|auth token|access token|client secret|secret key|app secret|"
                "private token|signing secret|webhook secret|encryption key|hmac secret|session secret|jwt secret|"
                "internal api key|service token|credential|auth key|partner api key|master key|app key|consumer secret|"
                "access key|shared secret|integration token|x api key|bearer")
P("generic-secret", "generic-hex", GENERIC_KEYS, lambda R: R.hex(R.c([32, 40, 48, 64])), 3)
P("generic-secret", "generic-base64", GENERIC_KEYS, lambda R: R.b64(R.c([24, 32, 33, 48])), 2)
P("generic-secret", "generic-alnum", GENERIC_KEYS, lambda R: R.s(R.i(20, 64)), 3)
P("generic-secret", "generic-base64url", GENERIC_KEYS, lambda R: R.s(R.i(32, 64), B64U), 1.5)

FAM_W = {"cloud": 13, "vcs-ci": 12, "saas": 20, "chat-mail": 9, "payment": 12, "ai": 13, "database": 7,
         "private-key": 2, "jwt": 9, "generic-secret": 12}
BY_FAM = {}
for _e in PROV:
    BY_FAM.setdefault(_e["fam"], []).append(_e)
BY_PROV = {e["prov"]: e for e in PROV}

# ---- negatives ---------------------------------------------------------------------------
PLACEHOLDERS = ["changeme", "xxxxxxxx", "********", "your-password-here", "<password>", "REDACTED", "[REDACTED]",
                "example", "CHANGE_ME", "TODO", "dummy", "placeholder", "<YOUR_API_KEY>", "your_api_key_here",
                "replace-me", "<redacted>", "XXXXXXXXXXXXXXXX", "***", "<secret>", "your-token-here", "none",
                "<insert-token>", "fill-me-in", "sample", "<changeme>", "YOUR_SECRET_HERE", "xxx", "*****"]
REF_STYLES = ["${%s}", "$%s", "${env:%s}", "%%(%s)s", "{{ %s }}", "{{ .Values.%s }}", "${{ secrets.%s }}", "#{%s}",
              "__%s__", "@@%s@@", "%%%s%%", "$(cat /run/secrets/%s)", "${var.%s}", "{{ vault_%s }}", "<%s>",
              "{{ env \"%s\" }}", "${%s:?missing}", "${%s:-}", "ENC[%s]"]
POLICY_TEXT = ["Password must be at least 8 characters long.", "password must be 12+ chars, 1 digit, 1 symbol",
               "Passwords expire every 90 days and cannot reuse the last 5 passwords.",
               "The API key must be kept secret; rotate it every 90 days.",
               "Tokens are valid for 1 hour; refresh tokens for 30 days.",
               "Minimum password length: 14 (NIST 800-63B)", "passwords are hashed with bcrypt (cost 12) before storage",
               "Never commit secrets; use the vault or the CI secret store.",
               "Secret keys are rotated automatically by the platform team."]
FIELD_NAMES = ["password_hash", "forgot_password_url", "password_reset_token_ttl", "api_key_id", "token_expiry",
               "secret_name", "password_min_length", "reset_password_path", "key_rotation_days", "auth_method",
               "token_type", "password_policy", "secretRef", "apiKeyHeader", "passwordField", "tokenUrl"]
NEG_WORDS = ["release", "build", "commit", "checksum", "etag", "digest"]


def ref_value(R, name):
    return R.c(REF_STYLES) % name


def up_key(phrase):
    return re.sub(r"[^A-Za-z0-9]+", "_", phrase).upper()


def key_style(phrase, style):
    words = re.split(r"[^A-Za-z0-9]+", phrase.strip())
    words = [w for w in words if w]
    if style == "UPPER":
        return "_".join(w.upper() for w in words)
    if style == "snake":
        return "_".join(w.lower() for w in words)
    if style == "camel":
        return words[0].lower() + "".join(_cap(w.lower()) for w in words[1:])
    if style == "pascal":
        return "".join(_cap(w.lower()) for w in words)
    if style == "kebab":
        return "-".join(w.lower() for w in words)
    if style == "dot":
        return ".".join(w.lower() for w in words)
    if style == "title":
        return " ".join(_cap(w.lower()) for w in words)
    if style == "lower":
        return "".join(w.lower() for w in words)
    raise ValueError(style)


# --------------------------------------------------------------------------------------------
# per-file context: marks secrets (labelled) and hard negatives (counted, never labelled)
# --------------------------------------------------------------------------------------------
AWS_EXAMPLES = [("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                ("AKIAI44QH8DHBEXAMPLE", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY")]
VENDOR_EXAMPLES = [
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AKIAI44QH8DHBEXAMPLE",
    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY", "sk_test_4eC39HqLyjWDarjtT1zdp7dc", "pk_test_TYooMQauvdEDq54NiTphI7jX",
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "gho_16C7e42F292c6912E7710c838347Ae178B4a", "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "1/xEoDL4iW3cxlI7yDbSRFYNG01kVKM2C-259HOF2aQbI", "postgresql://user:secret@localhost",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
]
MARK_RE = re.compile("\x01(\\d+)\x02|\x03(\\d+)\x04")


class Cred:
    def __init__(self, fam, prov, items, positive):
        self.fam, self.prov, self.items, self.pos = fam, prov, items, positive

    @property
    def k(self):
        return self.items[0][0]

    @property
    def v(self):
        return self.items[0][1]

    def ks(self, style):
        return key_style(self.k, style)


class Ctx:
    def __init__(self, R, pos):
        self.r = R
        self.pos = pos
        self.p_slot = R.c([0.35, 0.5, 0.65, 0.8, 1.0]) if pos else 0.0
        self.marks = []
        self.negs = []

    # ---- marking
    def want(self):
        return self.pos and self.r.p(self.p_slot)

    def mark(self, value, fam, prov):
        assert "\x01" not in value and "\x03" not in value
        self.marks.append((value, fam, prov))
        return "\x01%d\x02" % (len(self.marks) - 1)

    def markc(self, val, fam, prov):
        if isinstance(val, Comp):
            return val.pre + self.mark(val.sec, fam, prov) + val.post
        return self.mark(val, fam, prov)

    def neg(self, kind, value):
        self.negs.append((value, kind))
        return "\x03%d\x04" % (len(self.negs) - 1)

    def render(self, text):
        out, labels, negc = [], [], {}
        line, pos = 1, 0
        seen = set()
        for m in MARK_RE.finditer(text):
            seg = text[pos:m.start()]
            out.append(seg)
            line += seg.count("\n")
            if m.group(1) is not None:
                v, fam, prov = self.marks[int(m.group(1))]
                key = (line, v)
                if key not in seen:
                    seen.add(key)
                    labels.append((line, fam, prov, len(v)))
            else:
                v, kind = self.negs[int(m.group(2))]
                negc[kind] = negc.get(kind, 0) + 1
            out.append(v)
            line += v.count("\n")
            pos = m.end()
        out.append(text[pos:])
        res = "".join(out)
        assert "\x01" not in res and "\x03" not in res and "\x02" not in res and "\x04" not in res
        return res, labels, negc

    # ---- credentials
    def entry(self, fam=None, prov=None):
        if prov:
            if isinstance(prov, (list, tuple)):
                prov = self.r.c(prov)
            return BY_PROV[prov]
        if fam is None:
            fam = self.r.w(list(FAM_W.items()))
        elif isinstance(fam, (list, tuple)):
            fam = self.r.c(fam)
        return self.r.w([(e, e["w"]) for e in BY_FAM[fam]])

    def cred(self, fam=None, prov=None, pos=None):
        e = self.entry(fam, prov)
        positive = self.want() if pos is None else (pos and self.pos)
        g = e["gen"](self.r)
        if not isinstance(g, list):
            g = [(None, g)]
        items = []
        for idx, (phrase, val) in enumerate(g):
            phrase = self.r.c((phrase or "|".join(e["keys"])).split("|"))
            if positive:
                items.append((phrase, self.markc(val, e["fam"], e["prov"])))
            else:
                items.append((phrase, self.neg_for(e, phrase, idx, val)))
        return Cred(e["fam"], e["prov"], items, positive)

    def neg_for(self, e, phrase, idx, realval):
        r = self.r
        if e["prov"] in ("aws-access-key", "aws-session-token") and r.p(0.45) and idx < 2:
            ex = AWS_EXAMPLES[0] if r.p(0.7) else AWS_EXAMPLES[1]
            return self.neg("vendor-example", ex[idx])
        if e["ex"] and idx == 0 and r.p(0.35):
            return self.neg("vendor-example", r.c(e["ex"]))
        if isinstance(realval, Comp):
            k = r.c(["ref", "ph"])
            inner = ref_value(r, up_key(phrase) if k == "ref" else "DB_PASSWORD") if k == "ref" else r.c(["changeme", "xxxxxx", "password", "<password>", "****", "PASSWORD"])
            return self.neg("var-ref" if k == "ref" else "placeholder", realval.pre + inner + realval.post)
        kind = r.w([("placeholder", 3), ("var-ref", 4), ("masked", 1)])
        if kind == "var-ref":
            return self.neg("var-ref", ref_value(r, up_key(phrase)))
        px = e["px"] if idx == 0 else ""
        if kind == "masked" and len(realval) > 12:
            keep = px
            return self.neg("masked", keep + "*" * r.i(6, 20) + realval[-4:])
        if px and r.p(0.6):
            return self.neg("placeholder", px + r.c(["x", "X", "*", "0"]) * r.i(8, 32))
        return self.neg("placeholder", r.c(PLACEHOLDERS))

    def pw(self, prov="password", safe="default", fam="password", ref="DB_PASSWORD", pos=None):
        positive = (self.want() and self.r.p(0.5)) if pos is None else (pos and self.pos)
        if positive:
            return self.mark(human_password(self.r, safe), fam, prov)
        return self.neg_pw(ref)

    def neg_pw(self, ref="DB_PASSWORD"):
        r = self.r
        k = r.w([("placeholder", 4), ("var-ref", 5), ("masked", 1)])
        if k == "placeholder":
            return self.neg("placeholder", r.c(PLACEHOLDERS + ["password", "<db-password>"]))
        if k == "masked":
            return self.neg("masked", r.c(["********", "••••••••", "*" * r.i(4, 16), "<hidden>"]))
        return self.neg("var-ref", ref_value(r, ref))

    def pwraw(self, safe="default"):
        """a real password value, not marked: only for composing (e.g. base64 of user:pass)."""
        return human_password(self.r, safe)

    def dburl(self, prov=None):
        return self.cred(fam="database", prov=prov or self.r.w([("postgres-url", 4), ("mysql-url", 2), ("mongodb-url", 2),
                                                                ("redis-url", 2), ("amqp-url", 1), ("sqlalchemy-url", 1)]))

    def jwt(self, pos=None):
        if (self.want() if pos is None else (pos and self.pos)):
            return self.mark(jwt_token(self.r), "jwt", "jwt")
        if self.r.p(0.4):
            return self.neg("vendor-example", VENDOR_EXAMPLES[-1])
        return self.neg("var-ref", ref_value(self.r, self.r.c(["ACCESS_TOKEN", "JWT", "ID_TOKEN", "AUTH_TOKEN"])))

    def pem(self, indent="", escaped=False, kind=None, fam="private-key", prov=None, pos=None, allow_pub=True):
        positive = self.want() if pos is None else (pos and self.pos)
        r = self.r
        if positive:
            k, text = private_key_pem(r, kind)
            prov = prov or (k if k in ("putty-ppk", "pgp-private-key") else "pem-" + k)
        else:
            ch = r.w([("pub", 3 if allow_pub else 0), ("ph", 2)])
            if ch == "pub":
                text = public_key_pem(r)
            else:
                lab = r.c(["PRIVATE KEY", "RSA PRIVATE KEY", "OPENSSH PRIVATE KEY"])
                text = "-----BEGIN %s-----\n%s\n-----END %s-----" % (lab, r.c(["...", "<your key here>", "REDACTED", "MII...snip...", "xxxxxxxx"]), lab)
        if escaped:
            text = text.replace("\n", "\\n") + ("\\n" if r.p(0.7) else "")
        elif indent:
            text = text.replace("\n", "\n" + indent)
        if positive:
            return self.mark(text, fam, prov)
        return self.neg("public-key" if "PUBLIC" in text or "CERTIFICATE" in text else "placeholder", text)

    # ---- misc helpers
    def user(self):
        return user_name(self.r)

    def host(self, kind="db"):
        return host_name(self.r, kind)

    def email(self):
        return "%s.%s@%s" % (self.r.c(FIRST), self.r.c(LAST), self.r.c(DOMAINS))

    def person(self):
        return _cap(self.r.c(FIRST)) + " " + _cap(self.r.c(LAST))

    def ident(self, style="snake"):
        return key_style(self.r.c(VERBS) + " " + self.r.c(NOUNS), style)

    def date(self):
        return "20%d-%02d-%02d" % (self.r.i(22, 26), self.r.i(1, 12), self.r.i(1, 28))

    def ts(self):
        return "%sT%02d:%02d:%02d.%03dZ" % (self.date(), self.r.i(0, 23), self.r.i(0, 59), self.r.i(0, 59), self.r.i(0, 999))

    def ver(self):
        return self.neg("version", self.r.c(["%d.%d.%d" % (self.r.i(0, 9), self.r.i(0, 40), self.r.i(0, 30)),
                                             "v%d.%d.%d" % (self.r.i(1, 5), self.r.i(0, 20), self.r.i(0, 9)),
                                             "%d.%d.%d-rc.%d" % (self.r.i(1, 5), self.r.i(0, 20), self.r.i(0, 9), self.r.i(1, 4))]))

    # ---- hard negatives
    def n_git(self, short=False):
        return self.neg("git-sha", self.r.hex(self.r.c([7, 8, 10, 12])) if short else self.r.hex(40))

    def n_sha256(self):
        return self.neg("digest", self.r.hex(64))

    def n_md5(self):
        return self.neg("digest", self.r.hex(32))

    def n_sha1(self):
        return self.neg("digest", self.r.hex(40))

    def n_uuid(self):
        return self.neg("uuid", self.r.uuid())

    def n_trace(self):
        return self.neg("trace-id", self.r.hex(32))

    def n_span(self):
        return self.neg("trace-id", self.r.hex(16))

    def n_integrity(self):
        return self.neg("integrity", integrity_hash(self.r))

    def n_png(self, n=None):
        return self.neg("base64-image", png_b64(self.r, n))

    def n_bcrypt(self):
        return self.neg("password-hash", bcrypt_hash(self.r) if self.r.p(0.7) else argon2_hash(self.r))

    def n_sshpub(self):
        return self.neg("public-key", ssh_public_key(self.r))

    def n_pk_live(self):
        return self.neg("stripe-publishable", self.r.c(["pk_live_", "pk_live_", "pk_test_"]) + self.r.s(self.r.c([24, 99])))

    def n_ga(self):
        return self.neg("analytics-id", self.r.c(["UA-%d-%d" % (self.r.i(1000000, 99999999), self.r.i(1, 9)),
                                                  "G-" + self.r.s(10, UPDG), "GTM-" + self.r.s(7, UPDG)]))

    def n_minified(self):
        r = self.r
        ids = ["_0x%s" % r.hex(6) for _ in range(3)]
        return self.neg("minified-js", "!function(e,t){var %s=%s(e),%s=\"%s\";t.%s=function(n){return %s[n]||%s}}(window,%s);" % (
            ids[0], ids[1], ids[2], r.s(24, ALNUM), r.s(6, LO), ids[0], ids[2], r.s(3, LO)))

    def n_resurl(self):
        r = self.r
        return self.neg("resource-id-url", "https://%s/api/v%d/%s/%s/%s/%s" % (
            r.c(["api." + r.c(DOMAINS), "console.cloud.example.net", "app.%s" % r.c(DOMAINS)]), r.i(1, 3),
            r.c(NOUNS) + "s", r.uuid(), r.c(NOUNS) + "s", r.c([r.hex(24), r.uuid(), str(r.i(10 ** 6, 10 ** 9))])))

    def n_policy(self):
        return self.neg("policy-text", self.r.c(POLICY_TEXT))

    def n_field(self):
        return self.neg("field-name", self.r.c(FIELD_NAMES))

    def n_example(self):
        return self.neg("vendor-example", self.r.c(VENDOR_EXAMPLES))

    def n_ph(self):
        return self.neg("placeholder", self.r.c(PLACEHOLDERS))

    def n_ref(self, name):
        return self.neg("var-ref", ref_value(self.r, name))

    def n_lit(self, kind, s):
        return self.neg(kind, s)

    def n_fixture(self):
        return self.neg("test-fixture", self.r.c(["password123", "test_password", "secret123", "wrong-password",
                                                  "correct horse", "testpass", "s3cr3t-for-tests", "hunter2", "P@ssw0rd"]))

    def nl(self, cm="#", end=""):
        """one comment line carrying a hard negative"""
        r = self.r
        s = r.c([
            lambda: "checksum: sha256:%s" % self.n_sha256(),
            lambda: "generated from commit %s" % self.n_git(),
            lambda: "fixed in %s (%s)" % (self.n_git(True), self.ver()),
            lambda: "request-id %s" % self.n_uuid(),
            lambda: self.n_policy(),
            lambda: "etag: \"%s\"" % self.n_md5(),
            lambda: "the real key comes from %s, never hardcode it" % self.n_ref(r.c(["API_KEY", "SECRET_KEY", "TOKEN", "DB_PASSWORD"])),
            lambda: "docs example only: %s" % self.n_example(),
            lambda: "resource: %s" % self.n_resurl(),
            lambda: "trace %s span %s" % (self.n_trace(), self.n_span()),
            lambda: "see %s for the %s column" % (r.c(["RFC-%d" % r.i(100, 900), "JIRA-%d" % r.i(100, 9999)]), self.n_field()),
            lambda: "TODO(%s): rotate secrets quarterly" % r.c(FIRST),
            lambda: "last reviewed %s" % self.date(),
            lambda: "deploy key fingerprint SHA256:%s" % self.n_lit("digest", r.b64(32).rstrip("=")),
        ])()
        return ("%s %s %s" % (cm, s, end)).rstrip()


# --------------------------------------------------------------------------------------------
# filler code (plausible surrounding code with sprinkled hard negatives)
# --------------------------------------------------------------------------------------------
def f_py(c, n):
    r, out = c.r, []
    for _ in range(n):
        v, o = r.c(VERBS), r.c(NOUNS)
        k = r.i(0, 5)
        if k == 0:
            out.append('def %s_%s(session, %s_id, timeout=%d):\n    """%s the %s identified by ``%s_id``."""\n'
                       '    resp = session.get(f"{BASE_URL}/%ss/{%s_id}", timeout=timeout)\n    resp.raise_for_status()\n    return resp.json()\n'
                       % (v, o, o, r.c([5, 10, 30]), _cap(v), o, o, o, o))
        elif k == 1:
            out.append("def %s_%ss(items):\n    result = []\n    for item in items:\n        if not item.get(\"%s\"):\n            continue\n"
                       "        result.append({\"id\": item[\"id\"], \"%s\": item[\"%s\"].strip()})\n    log.debug(\"%s %%d %ss\", len(result))\n    return result\n"
                       % (v, o, r.c(NOUNS), o, o, v, o))
        elif k == 2:
            out.append("%s_SCHEMA_VERSION = \"%s\"\n%s_CHECKSUM = \"%s\"  # sha256 of the migration bundle\n"
                       % (o.upper(), c.ver(), o.upper(), c.n_sha256()))
        elif k == 3:
            out.append("class %s%s:\n    def __init__(self, client, retries=%d):\n        self.client = client\n        self.retries = retries\n\n"
                       "    def __call__(self, payload):\n        payload.setdefault(\"request_id\", \"%s\")\n        return self.client.post(\"/%ss\", json=payload)\n"
                       % (_cap(o), _cap(v) + "er", r.i(1, 5), c.n_uuid(), o))
        elif k == 4:
            out.append("@app.route(\"/%ss/<%s_id>\", methods=[\"%s\"])\ndef %s_%s_view(%s_id):\n    obj = %s.query.get_or_404(%s_id)\n    return jsonify(obj.to_dict())\n"
                       % (o, o, r.c(["GET", "POST", "DELETE"]), v, o, o, _cap(o), o))
        else:
            out.append("def test_%s_%s(client):\n    resp = client.get(\"/%ss/%s\")\n    assert resp.status_code == %d\n"
                       % (v, o, o, c.n_uuid(), r.c([200, 404, 401])))
    return "\n\n".join(out)


def f_js(c, n, ts=False):
    r, out = c.r, []
    for _ in range(n):
        v, o = r.c(VERBS), r.c(NOUNS)
        typ = (": string" if ts else "")
        k = r.i(0, 4)
        if k == 0:
            out.append("export async function %s%s(id%s) {\n  const res = await fetch(`${BASE_URL}/%ss/${id}`);\n  if (!res.ok) throw new Error(`%s failed: ${res.status}`);\n  return res.json();\n}\n"
                       % (v, _cap(o), typ, o, v))
        elif k == 1:
            out.append("const %s%sCache = new Map();\nfunction %s%s(key%s) {\n  if (%s%sCache.has(key)) return %s%sCache.get(key);\n  const value = compute%s(key);\n  %s%sCache.set(key, value);\n  return value;\n}\n"
                       % (o, "s", v, _cap(o), typ, o, "s", o, "s", _cap(o), o, "s"))
        elif k == 2:
            out.append("// build %s\nexport const %s_VERSION = '%s';\nexport const %s_SRI = '%s';\n" % (c.n_git(True), o.upper(), c.ver(), o.upper(), c.n_integrity()))
        elif k == 3:
            out.append("router.%s('/%ss/:id', async (req, res) => {\n  const %s = await %sService.%s(req.params.id);\n  res.set('X-Request-Id', '%s');\n  res.json(%s);\n});\n"
                       % (r.c(["get", "post", "put", "delete"]), o, o, o, v, c.n_uuid(), o))
        else:
            out.append("const %sSchema = {\n  type: 'object',\n  required: ['id', '%s'],\n  properties: {\n    id: { type: 'string', format: 'uuid' },\n    %s: { type: 'string', maxLength: %d },\n  },\n};\n"
                       % (o, o, o, r.c([64, 128, 255])))
    return "\n".join(out)


def f_java(c, n):
    r, out = c.r, []
    for _ in range(n):
        v, o = r.c(VERBS), r.c(NOUNS)
        k = r.i(0, 3)
        if k == 0:
            out.append("    public %s %s%s(String id) {\n        log.debug(\"%s {}\", id);\n        return repository.findById(id)\n                .orElseThrow(() -> new NotFoundException(\"%s \" + id));\n    }\n"
                       % (_cap(o), v, _cap(o), v, o))
        elif k == 1:
            out.append("    private static final String %s_CHECKSUM = \"%s\";\n" % (o.upper(), c.n_sha256()))
        elif k == 2:
            out.append("    @Scheduled(fixedDelay = %d)\n    public void %s%ss() {\n        int n = %sService.%sPending();\n        metrics.counter(\"%s.%s\").increment(n);\n    }\n"
                       % (r.c([5000, 30000, 60000]), v, _cap(o), o, v, o, v))
        else:
            out.append("    @Override\n    public String toString() {\n        return \"%s{id=\" + id + \", traceId=%s}\";\n    }\n" % (_cap(o), c.n_trace()))
    return "\n".join(out)


def f_go(c, n):
    r, out = c.r, []
    for _ in range(n):
        v, o = r.c(VERBS), r.c(NOUNS)
        k = r.i(0, 2)
        if k == 0:
            out.append("func (s *Server) %s%s(ctx context.Context, id string) (*%s, error) {\n\tvar x %s\n\tif err := s.db.GetContext(ctx, &x, \"SELECT * FROM %ss WHERE id = $1\", id); err != nil {\n\t\treturn nil, fmt.Errorf(\"%s %s: %%w\", err)\n\t}\n\treturn &x, nil\n}\n"
                       % (_cap(v), _cap(o), _cap(o), _cap(o), o, v, o))
        elif k == 1:
            out.append("// %s is pinned to %s\nconst %sDigest = \"sha256:%s\"\n" % (_cap(o) + "Image", c.n_git(True), o, c.n_sha256()))
        else:
            out.append("func %s%s(items []%s) int {\n\tn := 0\n\tfor _, it := range items {\n\t\tif it.%s != \"\" {\n\t\t\tn++\n\t\t}\n\t}\n\treturn n\n}\n"
                       % (v, _cap(o), _cap(o), _cap(r.c(NOUNS))))
    return "\n".join(out)


def f_cs(c, n):
    r, out = c.r, []
    for _ in range(n):
        v, o = r.c(VERBS), r.c(NOUNS)
        if r.p(0.6):
            out.append("        public async Task<%s> %s%sAsync(Guid id, CancellationToken ct = default)\n        {\n            _logger.LogDebug(\"%s {Id}\", id);\n            var entity = await _db.%ss.FindAsync(new object[] { id }, ct);\n            return entity ?? throw new KeyNotFoundException(id.ToString());\n        }\n"
                       % (_cap(o), _cap(v), _cap(o), v, _cap(o)))
        else:
            out.append("        private static readonly Guid %sNamespace = Guid.Parse(\"%s\");\n" % (_cap(o), c.n_uuid()))
    return "\n".join(out)


def f_rb(c, n):
    r, out = c.r, []
    for _ in range(n):
        v, o = r.c(VERBS), r.c(NOUNS)
        if r.p(0.6):
            out.append("  def %s_%s(id)\n    record = %s.find_by(id: id)\n    return nil unless record\n\n    record.update!(%s_at: Time.current)\n    record\n  end\n"
                       % (v, o, _cap(o), v))
        else:
            out.append("  # %s\n  %s_DIGEST = '%s'.freeze\n" % (c.nl("").strip(), o.upper(), c.n_sha1()))
    return "\n".join(out)


def f_php(c, n):
    r, out = c.r, []
    for _ in range(n):
        v, o = r.c(VERBS), r.c(NOUNS)
        out.append("    public function %s%s(int $id): ?array\n    {\n        $stmt = $this->pdo->prepare('SELECT * FROM %ss WHERE id = ?');\n        $stmt->execute([$id]);\n        return $stmt->fetch() ?: null;\n    }\n"
                   % (v, _cap(o), o))
    return "\n".join(out)


def f_rs(c, n):
    r, out = c.r, []
    for _ in range(n):
        v, o = r.c(VERBS), r.c(NOUNS)
        out.append("pub async fn %s_%s(pool: &PgPool, id: Uuid) -> Result<%s> {\n    let row = sqlx::query_as!(%s, \"SELECT * FROM %ss WHERE id = $1\", id)\n        .fetch_one(pool)\n        .await?;\n    Ok(row)\n}\n"
                   % (v, o, _cap(o), _cap(o), o))
    return "\n".join(out)


def f_kt(c, n):
    r, out = c.r, []
    for _ in range(n):
        v, o = r.c(VERBS), r.c(NOUNS)
        out.append("    suspend fun %s%s(id: String): %s? = withContext(Dispatchers.IO) {\n        api.%s(id).body()\n    }\n" % (v, _cap(o), _cap(o), o))
    return "\n".join(out)


def f_sh(c, n):
    r, out = c.r, []
    for _ in range(n):
        k = r.i(0, 6)
        if k == 0:
            out.append("echo \"[$(date -u +%%FT%%TZ)] %s %s...\"" % (r.c(VERBS), r.c(NOUNS)))
        elif k == 1:
            out.append("if [ ! -d \"$%s_DIR\" ]; then\n  mkdir -p \"$%s_DIR\"\nfi" % ((r.c(NOUNS).upper(),) * 2))
        elif k == 2:
            out.append("echo \"%s  %s.tar.gz\" | sha256sum -c -" % (c.n_sha256(), r.c(NOUNS)))
        elif k == 3:
            out.append("git checkout %s" % c.n_git())
        elif k == 4:
            out.append("rsync -az --delete ./dist/ \"$DEPLOY_HOST:/srv/%s/\"" % r.c(NOUNS))
        elif k == 5:
            out.append("kubectl -n %s rollout status deploy/%s --timeout=%ds" % (r.c(ENVS), r.c(NOUNS), r.c([60, 120, 300])))
        else:
            out.append("curl -fsSL https://%s/releases/%s/install.sh -o /tmp/install.sh" % (r.c(DOMAINS), c.ver()))
    return "\n".join(out)


def f_yaml(c, n, ind=""):
    r, out = c.r, []
    for _ in range(n):
        o = r.c(NOUNS)
        k = r.i(0, 4)
        if k == 0:
            out.append("%s%s:\n%s  enabled: %s\n%s  batch_size: %d\n%s  timeout: %ds" % (ind, o, ind, r.c(["true", "false"]), ind, r.c([50, 100, 500]), ind, r.c([5, 30, 60])))
        elif k == 1:
            out.append("%s%s_image: registry.%s/%s@sha256:%s" % (ind, o, r.c(DOMAINS), o, c.n_sha256()))
        elif k == 2:
            out.append("%s%s_url: https://%s/%s" % (ind, o, c.host("x"), o))
        elif k == 3:
            out.append("%s# %s\n%s%s_id: %s" % (ind, c.nl("").strip(), ind, o, c.n_uuid()))
        else:
            out.append("%sfeature_%s: %s" % (ind, o, r.c(["on", "off", "canary", "50%"])))
    return "\n".join(out)


LOG_LEVELS = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]


def f_log(c, n, style="plain"):
    r, out = c.r, []
    for _ in range(n):
        lvl = r.c(LOG_LEVELS)
        o = r.c(NOUNS)
        msg = r.c([
            lambda: "%s %s completed in %dms" % (o, r.c(VERBS), r.i(3, 4000)),
            lambda: "request_id=%s method=%s path=/api/%ss status=%d" % (c.n_uuid(), r.c(["GET", "POST"]), o, r.c([200, 200, 201, 404, 500])),
            lambda: "trace_id=%s span_id=%s %s.%s" % (c.n_trace(), c.n_span(), o, r.c(VERBS)),
            lambda: "cache miss for key %s:%s" % (o, c.n_md5()),
            lambda: "deployed %s (%s)" % (c.ver(), c.n_git(True)),
            lambda: "retrying %s after %ds (attempt %d/5)" % (o, r.i(1, 30), r.i(1, 5)),
            lambda: "user %s logged in from %d.%d.%d.%d" % (c.user(), r.i(1, 223), r.i(0, 255), r.i(0, 255), r.i(1, 254)),
            lambda: "pulled image sha256:%s" % c.n_sha256(),
        ])()
        if style == "json":
            out.append(jd({"ts": c.ts(), "level": lvl.lower(), "logger": "%s.%s" % (r.c(PROJECTS), o), "msg": msg}, None))
        else:
            out.append("%s %-5s [%s] %s" % (c.ts(), lvl, r.c(["main", "worker-%d" % r.i(1, 8), "http-nio-8080-exec-%d" % r.i(1, 20)]), msg))
    return "\n".join(out)


def f_md(c, n):
    r, out = c.r, []
    for _ in range(n):
        o = r.c(NOUNS)
        k = r.i(0, 4)
        if k == 0:
            out.append("## %s\n\nThe %s service %s %ss every %d minutes and publishes the result to the `%s` topic." % (
                _cap(o), r.c(NOUNS), r.c(VERBS) + "s", o, r.c([5, 10, 15, 60]), o + "-events"))
        elif k == 1:
            out.append("```bash\nmake %s ENV=%s\n```" % (r.c(["deploy", "test", "migrate", "seed"]), r.c(ENVS)))
        elif k == 2:
            out.append("| Field | Type | Notes |\n|---|---|---|\n| id | uuid | e.g. `%s` |\n| %s | string | |\n| `%s` | string | never returned by the API |" % (c.n_uuid(), o, c.n_field()))
        elif k == 3:
            out.append("> **Note**: %s" % c.n_policy())
        else:
            out.append("- Released in %s (commit `%s`)\n- Image digest `sha256:%s`" % (c.ver(), c.n_git(True), c.n_sha256()))
    return "\n\n".join(out)


def f_sql(c, n):
    r, out = c.r, []
    for _ in range(n):
        o = r.c(NOUNS)
        k = r.i(0, 2)
        if k == 0:
            out.append("CREATE TABLE IF NOT EXISTS %ss (\n    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),\n    %s_name TEXT NOT NULL,\n    created_at TIMESTAMPTZ NOT NULL DEFAULT now()\n);" % (o, o))
        elif k == 1:
            out.append("INSERT INTO %ss (id, name, checksum) VALUES ('%s', '%s', '%s');" % (o, c.n_uuid(), r.c(NOUNS), c.n_md5()))
        else:
            out.append("CREATE INDEX idx_%ss_created ON %ss (created_at DESC);" % (o, o))
    return "\n\n".join(out)


def shq(c, s):
    """quote a shell word in a random but valid-looking way"""
    return c.r.c(["'%s'", "\"%s\"", "%s"]) % s


# --------------------------------------------------------------------------------------------
# template machinery
# --------------------------------------------------------------------------------------------
TEMPLATES = []


def T(fmt, neg_only=False):
    def deco(fn):
        TEMPLATES.append({"fmt": fmt, "name": fn.__name__, "fn": fn, "neg_only": neg_only})
        return fn
    return deco


def S(tpl, **kw):
    for k, v in kw.items():
        tpl = tpl.replace("«%s»" % k, str(v))
    assert "«" not in tpl, tpl[:300]
    return tpl


def jd(obj, indent=2):
    s = json.dumps(obj, indent=indent, ensure_ascii=False)
    return s.replace("\\u0001", "\x01").replace("\\u0002", "\x02").replace("\\u0003", "\x03").replace("\\u0004", "\x04")


def q(c):
    return c.r.c(["'", '"'])


def maybe(c, p, s):
    return s if c.r.p(p) else ""


def lines(*parts):
    return "\n".join(p for p in parts if p is not None)


def pick_style(c, *styles):
    return c.r.c(styles)


DJANGO_ALPHA = "abcdefghijklmnopqrstuvwxyz0123456789!@#%^&*(-_=+)"


# ============================================================================================
# python
# ============================================================================================
@T("python")
def py_django_settings(c):
    r = c.r
    sk_pos = c.want()
    if sk_pos:
        sk = c.mark(r.c(["", "django-insecure-"]) + r.s(50, DJANGO_ALPHA), "password", "django-secret-key")
    else:
        sk = c.n_ref("DJANGO_SECRET_KEY") if r.p(0.5) else c.neg("placeholder", "django-insecure-change-me")
    sk_line = r.c([
        "SECRET_KEY = '%s'" % sk,
        "SECRET_KEY = os.environ.get(\"DJANGO_SECRET_KEY\", '%s')" % sk,
        "SECRET_KEY = env(\"SECRET_KEY\", default=\"%s\")" % sk,
    ])
    aws = c.cred(prov="aws-access-key")
    dbpw = c.pw(ref="POSTGRES_PASSWORD")
    mailpw = c.pw(fam="chat-mail", prov="smtp", ref="EMAIL_HOST_PASSWORD")
    return "%s/settings/%s.py" % (r.c(["config", "core", "mysite", "project"]), r.c(["base", "production", "settings", "prod"])), S('''"""
Django settings for «proj» project.

Generated by 'django-admin startproject' using Django «dver».
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# SECURITY WARNING: keep the secret key used in production secret!
«sk_line»

DEBUG = «debug»
ALLOWED_HOSTS = ["«host»", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "storages",
    "«app»",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "«db»",
        "USER": "«user»",
        "PASSWORD": «pwexpr»,
        "HOST": "«dbhost»",
        "PORT": "5432",
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": «minlen»}},
]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
PASSWORD_RESET_TIMEOUT = 259200

EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "smtp.«dom»"
EMAIL_HOST_USER = "«mailuser»"
EMAIL_HOST_PASSWORD = "«mailpw»"
EMAIL_PORT = 587
EMAIL_USE_TLS = True

AWS_STORAGE_BUCKET_NAME = "«bucket»"
AWS_ACCESS_KEY_ID = "«akid»"
AWS_SECRET_ACCESS_KEY = «sakexpr»
AWS_S3_CUSTOM_DOMAIN = "«bucket».s3.amazonaws.com"

STATIC_URL = "/static/"
# «neg»
''', proj=r.c(PROJECTS), dver=r.c(["4.2.11", "5.0.3", "3.2.25"]), sk_line=sk_line, debug=r.c(["False", "True", "os.environ.get('DEBUG') == '1'"]),
        host=c.host("x"), app=r.c(NOUNS) + "s", db=r.c(NOUNS), user=c.user(),
        pwexpr=r.c(['"%s"' % dbpw, 'os.environ.get("POSTGRES_PASSWORD", "%s")' % dbpw]),
        dbhost=c.host(), minlen=r.c([8, 10, 12]), dom=r.c(DOMAINS), mailuser=c.email(), mailpw=mailpw,
        bucket=r.c(COMPANIES) + "-" + r.c(["static", "media", "assets"]), akid=aws.v,
        sakexpr=r.c(['"%s"' % aws.items[1][1], "os.environ[\"AWS_SECRET_ACCESS_KEY\"]"]), neg=c.nl("").strip())


@T("python")
def py_flask_config(c):
    r = c.r
    env = r.c(["Production", "Staging", "Development"])
    k1, k2 = c.cred(), c.cred()
    pwname = r.c(["PASSWORD", "DB_PASSWORD", "DB_PASS", "POSTGRES_PWD", "MYSQL_PASSWD"])
    return r.c(["config.py", "app/config.py", "instance/config.py"]), S('''import os

basedir = os.path.abspath(os.path.dirname(__file__))


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY") or "«sk»"
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    «pwname» = os.environ.get("«pwname»") or "«pw»"
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "smtp.«dom»")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")  # set in the environment
    «k1» = «q»«v1»«q»
    ITEMS_PER_PAGE = «ipp»


class «env»Config(Config):
    DEBUG = «dbg»
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or "sqlite:///" + os.path.join(basedir, "app.db")
    «k2» = «q»«v2»«q»
    # «neg»


config = {"«envl»": «env»Config, "default": «env»Config}
''', sk=c.pw(prov="flask-secret-key", ref="SECRET_KEY"), pwname=pwname, pw=c.pw(ref=pwname), dom=r.c(DOMAINS),
        k1=k1.ks("UPPER"), v1=k1.v, q=q(c), ipp=r.c([20, 25, 50]), env=env, dbg=r.c(["False", "True"]),
        k2=k2.ks("UPPER"), v2=k2.v, neg=c.nl("").strip(), envl=env.lower())


@T("python")
def py_boto_script(c):
    r = c.r
    aws = c.cred(prov=r.c(["aws-access-key", "aws-access-key", "aws-session-token"]))
    sess = ""
    if len(aws.items) > 2:
        sess = '\n    aws_session_token="%s",' % aws.items[2][1]
    style = r.i(0, 2)
    bucket = r.c(COMPANIES) + "-" + r.c(["exports", "backups", "reports", "uploads"])
    head = r.c(["#!/usr/bin/env python3\n", "", "# -*- coding: utf-8 -*-\n"])
    if style == 0:
        client = 'session = boto3.Session(\n    aws_access_key_id="%s",\n    aws_secret_access_key="%s",%s\n    region_name="%s",\n)\ns3 = session.client("s3")' % (
            aws.v, aws.items[1][1], sess, r.c(["us-east-1", "eu-west-1", "eu-central-1"]))
    elif style == 1:
        client = "ACCESS_KEY = '%s'\nSECRET_KEY = '%s'\n\ns3 = boto3.client('s3', aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)" % (aws.v, aws.items[1][1])
    else:
        client = 'os.environ.setdefault("AWS_ACCESS_KEY_ID", "%s")\nos.environ.setdefault("AWS_SECRET_ACCESS_KEY", "%s")\ns3 = boto3.client("s3")' % (aws.v, aws.items[1][1])
    return r.c(["scripts/upload_%s.py", "tools/s3_%s.py", "%s_sync.py"]) % r.c(NOUNS), S('''«head»"""Upload nightly «o» exports to S3."""
import hashlib
import os
import sys

import boto3

BUCKET = "«bucket»"
# expected ETag of the template object: «etag»

«client»


def md5sum(path):
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(8192), b""):
            h.update(chunk)
    return h.hexdigest()


def main(paths):
    for p in paths:
        key = "«o»/" + os.path.basename(p)
        s3.upload_file(p, BUCKET, key, ExtraArgs={"ContentMD5": md5sum(p)})
        print("uploaded", key)


«filler»

if __name__ == "__main__":
    main(sys.argv[1:])
''', head=head, o=r.c(NOUNS), bucket=bucket, etag=c.n_md5(), client=client, filler=f_py(c, r.i(0, 4)))


@T("python")
def py_requests_client(c):
    r = c.r
    cr = c.cred()
    gen = c.cred(fam="generic-secret")
    var = cr.ks(r.c(["UPPER", "UPPER", "snake"]))
    hdr = r.c(['"Authorization": f"Bearer {%s}"' % var, '"Authorization": "Token " + %s' % var, '"X-API-Key": %s' % var])
    return r.c(["clients/%s_client.py", "%s/api.py", "integrations/%s.py"]) % r.c(NOUNS + PROJECTS), S('''import logging
import requests

log = logging.getLogger(__name__)

BASE_URL = "https://«host»/v«ver»"
«var» = «q»«val»«q»
«gk» = «q»«gv»«q»  # «gcomment»
DEFAULT_TIMEOUT = «to»


class «cls»Client:
    def __init__(self, session=None):
        self.session = session or requests.Session()
        self.session.headers.update({«hdr», "User-Agent": "«proj»/«v»"})

    def signed(self, payload):
        import hmac, hashlib
        return hmac.new(«gk».encode(), payload, hashlib.sha256).hexdigest()

    def «meth»(self, resource_id="«rid»"):
        r = self.session.get(f"{BASE_URL}/«o»s/{resource_id}", timeout=DEFAULT_TIMEOUT)
        r.raise_for_status()
        return r.json()


«filler»
''', host=c.host("x"), ver=r.i(1, 3), var=var, q=q(c), val=cr.v, gk=gen.ks(r.c(["UPPER", "snake"])), gv=gen.v,
        gcomment=r.c(["used for webhook signatures", "partner API", "legacy", "do not share"]), to=r.c([5, 10, 30]),
        cls=_cap(r.c(NOUNS)), hdr=hdr, proj=r.c(PROJECTS), v=c.ver(), meth=c.ident(), rid=c.n_uuid(), o=r.c(NOUNS),
        filler=f_py(c, r.c([0, 2, 5, 12, 30])))


@T("python")
def py_db_connect(c):
    r = c.r
    style = r.i(0, 3)
    u, h, db = c.user(), c.host(), r.c(NOUNS)
    if style == 0:
        conn = 'conn = psycopg2.connect(\n    host="%s",\n    dbname="%s",\n    user="%s",\n    password="%s",\n    connect_timeout=10,\n)' % (h, db, u, c.pw())
    elif style == 1:
        conn = "conn = mysql.connector.connect(host='%s', user='%s', passwd='%s', database='%s')" % (h, u, c.pw(), db)
    elif style == 2:
        conn = "conn = psycopg2.connect(\"host=%s dbname=%s user=%s password=%s\")" % (h, db, u, c.pw(safe="url"))
    else:
        conn = "params = config()\nparams.password = '%s'\nconn = psycopg2.connect(**params)" % c.pw()
    imp = "import mysql.connector" if style == 1 else "import psycopg2"
    return r.c(["etl/%s_loader.py", "scripts/migrate_%s.py", "db/%s.py", "jobs/%s_report.py"]) % db, S('''«imp»
import csv
import datetime

# «n1»
«conn»
cur = conn.cursor()

QUERY = """
SELECT id, «col», created_at
FROM «db»s
WHERE created_at >= %s
"""


def run(since):
    cur.execute(QUERY, (since,))
    with open("«db»_export.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        for row in cur.fetchall():
            w.writerow(row)


«filler»

if __name__ == "__main__":
    run(datetime.date.today() - datetime.timedelta(days=«days»))
''', imp=imp, n1=c.nl("").strip(), conn=conn, col=r.c(NOUNS) + "_name", db=db, filler=f_py(c, r.c([0, 2, 5, 15, 35])), days=r.c([1, 7, 30]))


@T("python")
def py_test_auth(c):
    r = c.r
    leak = c.cred(fam=r.c(["payment", "chat-mail", "saas", "ai"]))
    envname = leak.ks("UPPER")
    return r.c(["tests/test_auth.py", "tests/unit/test_passwords.py", "app/tests/test_users.py"]), S('''import pytest

from app.auth import hash_password, verify_password, make_token

BCRYPT_FIXTURE = "«bc»"


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("«envname»", "«leak»")
    monkeypatch.setenv("DATABASE_URL", "sqlite://")


def test_hash_roundtrip():
    h = hash_password("«fx1»")
    assert h != "«fx1»"
    assert verify_password("«fx1»", h)


def test_wrong_password():
    assert not verify_password("«fx2»", BCRYPT_FIXTURE)


def test_policy_message():
    assert "«pol»" in policy_help()


def test_token_shape():
    tok = make_token(user_id="«uid»")
    assert tok.count(".") == 2


«filler»
''', bc=c.n_bcrypt(), envname=envname, leak=leak.v, fx1=c.n_fixture(), fx2=c.n_fixture(), pol=c.n_policy(),
        uid=c.n_uuid(), filler=f_py(c, r.i(0, 3)))


@T("python")
def py_ai_script(c):
    r = c.r
    ai = c.cred(fam="ai")
    ai2 = c.cred(prov=r.c(["huggingface", "wandb", "langsmith", "pinecone"]))
    style = r.i(0, 2)
    if style == 0:
        setup = 'client = OpenAI(api_key="%s")' % ai.v
    elif style == 1:
        setup = 'os.environ["%s"] = "%s"\nclient = OpenAI()' % (ai.ks("UPPER"), ai.v)
    else:
        setup = 'API_KEY = os.getenv("%s", "%s")\nclient = OpenAI(api_key=API_KEY)' % (ai.ks("UPPER"), ai.v)
    return r.c(["scripts/summarize.py", "llm/%s_agent.py" % r.c(NOUNS), "notebooks/%s_eval.py" % r.c(NOUNS), "rag/ingest.py"]), S('''import os
import json
from openai import OpenAI

«setup»
«k2» = "«v2»"

MODEL = "«model»"
PROMPT = """You are a helpful assistant that summarizes «o» records.
Never reveal API keys or passwords in your answer."""


def summarize(text: str) -> str:
    resp = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": PROMPT}, {"role": "user", "content": text}],
        temperature=«temp»,
    )
    return resp.choices[0].message.content


if __name__ == "__main__":
    data = json.load(open("«o»s.json"))
    for item in data[:«n»]:
        print(summarize(item["body"]))
''', setup=setup, k2=ai2.ks("UPPER"), v2=ai2.v, model=r.c(["gpt-4o-mini", "gpt-4.1", "claude-3-5-sonnet", "mistral-large"]),
        o=r.c(NOUNS), temp=r.c(["0", "0.2", "0.7"]), n=r.c([5, 10, 100]))


@T("python")
def py_smtp_mail(c):
    r = c.r
    pw = c.pw(fam="chat-mail", prov="smtp", ref="SMTP_PASSWORD")
    sg = c.cred(prov=r.c(["sendgrid", "mailgun", "postmark", "brevo", "resend"]))
    return r.c(["notify/mailer.py", "utils/email.py", "send_report.py"]), S('''import smtplib
from email.message import EmailMessage

SMTP_HOST = "smtp.«dom»"
SMTP_PORT = 587
SMTP_USER = "«user»"
«pwvar» = «q»«pw»«q»
«sgk» = «q»«sgv»«q»  # fallback provider


def send(to, subject, body):
    msg = EmailMessage()
    msg["From"] = SMTP_USER
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    with smtplib.SMTP(SMTP_HOST, SMTP_PORT) as s:
        s.starttls()
        s.login(SMTP_USER, «pwvar»)
        s.send_message(msg)
''', dom=r.c(DOMAINS), user=c.email(), pwvar=r.c(["SMTP_PASSWORD", "SMTP_PASS", "MAIL_PWD", "smtp_password"]), q=q(c), pw=pw,
        sgk=sg.ks("UPPER"), sgv=sg.v)


@T("python")
def py_celery_config(c):
    r = c.r
    b = c.dburl(prov="amqp-url")
    rb = c.dburl(prov="redis-url")
    return r.c(["celeryconfig.py", "proj/celery_settings.py"]), S('''# Celery configuration («ver»)
broker_url = «q»«b»«q»
result_backend = «q»«rb»«q»
task_serializer = "json"
accept_content = ["json"]
timezone = "UTC"
worker_prefetch_multiplier = «pf»

# flower
flower_basic_auth = ["«u»:«pw»"]

beat_schedule = {
    "«t»-every-«m»-min": {"task": "tasks.«t»", "schedule": «m» * 60},
}
# «neg»
''', ver=c.ver(), q=q(c), b=b.v, rb=rb.v, pf=r.c([1, 4]), u=r.c(["admin", "flower", "ops"]), pw=c.pw(safe="url"),
        t=c.ident(), m=r.c([5, 15, 30]), neg=c.nl("").strip())


@T("python")
def py_argparse_cli(c):
    r = c.r
    tok = c.cred()
    return r.c(["cli.py", "bin/%s-admin" % r.c(NOUNS), "tools/%s.py" % c.ident()]), S('''#!/usr/bin/env python3
import argparse
import getpass


def parse_args():
    p = argparse.ArgumentParser(description="«desc»")
    p.add_argument("--host", default="«host»")
    p.add_argument("--user", default="«user»")
    p.add_argument("--password", default="«pw»", help="«pol»")
    p.add_argument("--«tokflag»", default=«q»«tok»«q»)
    p.add_argument("--ask-pass", action="store_true", help="prompt for the password instead")
    return p.parse_args()


def main():
    args = parse_args()
    if args.ask_pass:
        args.password = getpass.getpass()
    print(f"connecting to {args.host} as {args.user}")


if __name__ == "__main__":
    main()
''', desc="%s %s tool" % (_cap(r.c(VERBS)), r.c(NOUNS)), host=c.host(), user=c.user(), pw=c.pw(), pol=c.n_policy(),
        tokflag=tok.ks("kebab"), q=q(c), tok=tok.v)


@T("python")
def py_pydantic_settings(c):
    r = c.r
    a, b = c.cred(), c.cred(fam="generic-secret")
    d = c.dburl()
    return r.c(["app/core/settings.py", "src/settings.py", "service/config.py"]), S('''from functools import lru_cache
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    app_name: str = "«proj»"
    debug: bool = False
    database_url: str = "«d»"
    db_password: SecretStr = SecretStr("«pw»")
    «ka»: str = "«va»"
    «kb»: SecretStr = SecretStr("«vb»")
    password_reset_url: str = "https://«host»/forgot-password"
    password_min_length: int = «ml»
    build_sha: str = "«sha»"


@lru_cache
def get_settings() -> Settings:
    return Settings()
''', proj=r.c(PROJECTS), d=d.v, pw=c.pw(), ka=a.ks("snake"), va=a.v, kb=b.ks("snake"), vb=b.v, host=c.host("x"),
        ml=r.c([8, 12]), sha=c.n_git())


@T("python")
def py_airflow_dag(c):
    r = c.r
    s = c.cred(prov=r.c(["slack-bot-token", "slack-webhook", "datadog", "snowflake-url"]))
    return "dags/%s_dag.py" % c.ident(), S('''from datetime import datetime, timedelta

from airflow import DAG, settings
from airflow.models import Connection, Variable
from airflow.operators.python import PythonOperator

default_args = {"owner": "«owner»", "retries": «ret», "retry_delay": timedelta(minutes=5)}


def _bootstrap_connections():
    session = settings.Session()
    conn = Connection(
        conn_id="«cid»",
        conn_type="postgres",
        host="«host»",
        login="«user»",
        password="«pw»",
        schema="«db»",
    )
    session.add(conn)
    session.commit()
    Variable.set("«vk»", "«vv»")


with DAG("«dag»", start_date=datetime(20«yy», 1, 1), schedule="@daily", default_args=default_args, catchup=False) as dag:
    PythonOperator(task_id="bootstrap", python_callable=_bootstrap_connections)
''', owner=r.c(FIRST), ret=r.i(0, 3), cid=r.c(NOUNS) + "_db", host=c.host(), user=c.user(), pw=c.pw(), db=r.c(NOUNS),
        vk=s.ks("snake"), vv=s.v, dag=c.ident(), yy=r.i(22, 25))


@T("python")
def py_gcp_inline_sa(c):
    r = c.r
    proj = "%s-%s-%d" % (r.c(COMPANIES), r.c(NOUNS), r.i(100000, 999999))
    pk = c.pem(escaped=True, kind="pkcs8", fam="cloud", prov="gcp-service-account", allow_pub=False)
    return r.c(["gcp/auth.py", "utils/gcs.py", "bigquery_loader.py"]), S('''from google.oauth2 import service_account
from google.cloud import bigquery

SA_INFO = {
    "type": "service_account",
    "project_id": "«proj»",
    "private_key_id": "«pkid»",
    "private_key": "«pk»",
    "client_email": "«sa»@«proj».iam.gserviceaccount.com",
    "client_id": "«cid»",
    "token_uri": "https://oauth2.googleapis.com/token",
}

credentials = service_account.Credentials.from_service_account_info(SA_INFO)
client = bigquery.Client(credentials=credentials, project=SA_INFO["project_id"])

«filler»
''', proj=proj, pkid=c.n_sha1(), pk=pk, sa=r.c(["etl", "loader", "bq-reader", "ci-deployer"]), cid=r.digits(21),
        filler=f_py(c, r.i(1, 4)))


# ============================================================================================
# javascript
# ============================================================================================
@T("javascript")
def js_config_module(c):
    r = c.r
    a, b, g = c.cred(), c.cred(fam=["payment", "chat-mail", "saas"]), c.cred(fam="generic-secret")
    qq = r.c(["'", '"', "`"])
    return r.c(["config/index.js", "config/production.js", "src/config.js", "server/config.js"]), S('''// «neg»
'use strict';

module.exports = {
  env: process.env.NODE_ENV || '«envn»',
  port: process.env.PORT || «port»,
  db: {
    host: process.env.DB_HOST || '«host»',
    user: '«user»',
    «pwk»: «qq»«pw»«qq»,
    database: '«db»',
    pool: { min: 2, max: «pmax» },
  },
  «ak»: «qq»«av»«qq»,
  «bgroup»: {
    «bk»: «qq»«bv»«qq»,
    «bk2»: process.env.«bk2u»,
  },
  session: { «gk»: «qq»«gv»«qq», maxAge: «age» },
  analytics: { trackingId: '«ga»' },
};
''', neg=c.nl("//").lstrip("/ ").strip(), envn=r.c(ENVS), port=r.c([3000, 8080, 4000]), host=c.host(), user=c.user(),
        pwk=r.c(["password", "pass", "pwd", "passwd"]), qq=qq, pw=c.pw(), db=r.c(NOUNS), pmax=r.c([10, 20]),
        ak=a.ks("camel"), av=a.v, bgroup=r.c(["payments", "mail", "integrations", "thirdParty"]), bk=b.ks("camel"), bv=b.v,
        bk2=r.c(["webhookSecret", "publicKey"]), bk2u=r.c(["WEBHOOK_SECRET", "PUBLIC_KEY"]), gk=r.c(["secret", "secretKey", "cookieSecret"]),
        gv=g.v, age=r.c([86400000, 3600000]), ga=c.n_ga())


@T("javascript")
def js_express_mongoose(c):
    r = c.r
    m = c.dburl(prov="mongodb-url")
    jw = c.cred(fam="generic-secret")
    return r.c(["server.js", "app.js", "src/index.js"]), S('''const express = require('express');
const mongoose = require('mongoose');
const session = require('express-session');
const jwt = require('jsonwebtoken');

const app = express();
const MONGO_URI = process.env.MONGO_URI || «q»«m»«q»;
const «jwk» = «q»«jwv»«q»;

mongoose.connect(MONGO_URI, { useNewUrlParser: true }).then(() => console.log('mongo connected'));

app.use(express.json());
app.use(session({ secret: «q»«sess»«q», resave: false, saveUninitialized: false }));

app.post('/login', async (req, res) => {
  const user = await User.findOne({ email: req.body.email });
  if (!user || !(await user.comparePassword(req.body.password))) {
    return res.status(401).json({ error: 'invalid credentials' });
  }
  const token = jwt.sign({ sub: user.id }, «jwk», { expiresIn: '«exp»' });
  res.json({ token });
});

«filler»

app.listen(«port», () => console.log('listening'));
''', q=q(c), m=m.v, jwk=r.c(["JWT_SECRET", "jwtSecret", "TOKEN_SECRET"]), jwv=jw.v, sess=c.pw(prov="session-secret", ref="SESSION_SECRET"),
        exp=r.c(["1h", "7d", "15m"]), filler=f_js(c, r.c([0, 2, 5, 12, 25])), port=r.c([3000, 8080]))


@T("javascript")
def js_next_config(c):
    r = c.r
    a, b = c.cred(), c.cred()
    return r.c(["next.config.js", "next.config.mjs"]), S('''/** @type {import('next').NextConfig} */
const nextConfig = {
  reactStrictMode: true,
  images: { domains: ['cdn.«dom»'] },
  env: {
    NEXT_PUBLIC_GA_ID: '«ga»',
    NEXT_PUBLIC_STRIPE_KEY: '«pk»',
    «ak»: '«av»',
    «bk»: "«bv»",
  },
  async headers() {
    return [{ source: '/(.*)', headers: [{ key: 'X-Build', value: '«sha»' }] }];
  },
};

module.exports = nextConfig;
''', dom=r.c(DOMAINS), ga=c.n_ga(), pk=c.n_pk_live(), ak=a.ks("UPPER"), av=a.v, bk=b.ks("UPPER"), bv=b.v, sha=c.n_git(True))


@T("javascript")
def js_axios_client(c):
    r = c.r
    t = c.cred()
    g = c.cred(fam="generic-secret")
    return r.c(["src/api/client.js", "lib/http.js", "services/%sApi.js" % r.c(NOUNS)]), S('''import axios from 'axios';

const «tk» = '«tv»';

export const api = axios.create({
  baseURL: 'https://«host»/v2',
  timeout: «to»,
  headers: {
    Authorization: `Bearer ${«tk»}`,
    'X-API-Key': "«gv»",
    'X-Client-Version': '«ver»',
  },
});

api.interceptors.response.use(
  (r) => r,
  (err) => {
    console.error('request failed', err.config.url, err.response && err.response.headers['x-request-id']);
    return Promise.reject(err);
  },
);

«filler»
''', tk=t.ks(r.c(["UPPER", "camel"])), tv=t.v, host=c.host("x"), to=r.c([5000, 10000]), gv=g.v, ver=c.ver(), filler=f_js(c, r.i(0, 4)))


@T("javascript")
def js_nodemailer(c):
    r = c.r
    return r.c(["mailer.js", "src/email/transport.js"]), S('''const nodemailer = require('nodemailer');

// «neg»
const transporter = nodemailer.createTransport({
  host: '«smtp»',
  port: «port»,
  secure: «sec»,
  auth: {
    user: '«user»',
    pass: «q»«pw»«q»,
  },
});

async function sendReset(to, link) {
  return transporter.sendMail({
    from: '"«brand»" <no-reply@«dom»>',
    to,
    subject: 'Reset your password',
    text: `Use this link to reset your password: ${link}. Passwords must be at least 12 characters.`,
  });
}

module.exports = { sendReset };
''', neg=c.nl("").strip(), smtp=r.c(["smtp.gmail.com", "smtp.sendgrid.net", "email-smtp.us-east-1.amazonaws.com", "smtp.office365.com", "smtp.mailgun.org"]),
        port=r.c([465, 587]), sec=r.c(["true", "false"]), user=c.email(), q=q(c), pw=c.pw(fam="chat-mail", prov="smtp", ref="SMTP_PASS"),
        brand=_cap(r.c(COMPANIES)), dom=r.c(DOMAINS))


@T("javascript")
def js_firebase(c):
    r = c.r
    k = c.cred(prov="gcp-api-key")
    proj = "%s-%s" % (r.c(COMPANIES), r.c(["web", "app", "prod"]))
    return r.c(["src/firebase.js", "firebase-config.js"]), S('''import { initializeApp } from 'firebase/app';
import { getAnalytics } from 'firebase/analytics';

const firebaseConfig = {
  apiKey: "«k»",
  authDomain: "«p».firebaseapp.com",
  projectId: "«p»",
  storageBucket: "«p».appspot.com",
  messagingSenderId: "«sid»",
  appId: "1:«sid»:web:«appid»",
  measurementId: "«ga»"
};

export const app = initializeApp(firebaseConfig);
export const analytics = getAnalytics(app);
''', k=k.v, p=proj, sid=r.digits(12), appid=c.neg("resource-id-url", r.hex(22)), ga=c.n_ga())


@T("javascript")
def js_knexfile(c):
    r = c.r
    return "knexfile.js", S('''// Update with your config settings.
// «neg»
module.exports = {
  development: {
    client: 'sqlite3',
    connection: { filename: './dev.sqlite3' },
  },
  staging: {
    client: 'postgresql',
    connection: {
      host: '«h1»',
      database: '«db»',
      user: '«u1»',
      password: '«p1»',
    },
  },
  production: {
    client: '«cl»',
    connection: «conn»,
    pool: { min: 2, max: 10 },
    migrations: { tableName: 'knex_migrations' },
  },
};
''', h1=c.host(), neg=c.nl("").strip(), db=r.c(NOUNS), u1=c.user(), p1=c.pw(),
        cl=r.c(["postgresql", "mysql2"]),
        conn=r.c(["process.env.DATABASE_URL", "'%s'" % c.dburl(prov=r.c(["postgres-url", "mysql-url"])).v]))


@T("javascript")
def js_stripe_server(c):
    r = c.r
    s = c.cred(prov=r.c(["stripe", "stripe", "stripe-restricted"]))
    w = c.cred(prov="stripe-webhook")
    return r.c(["routes/payments.js", "server/stripe.js", "api/checkout.js"]), S('''const Stripe = require('stripe');
const stripe = Stripe(«q»«sk»«q»);
const endpointSecret = «q»«wh»«q»;
// publishable key for the browser bundle: «pk»

router.post('/webhook', express.raw({ type: 'application/json' }), (req, res) => {
  const sig = req.headers['stripe-signature'];
  let event;
  try {
    event = stripe.webhooks.constructEvent(req.body, sig, endpointSecret);
  } catch (err) {
    return res.status(400).send(`Webhook Error: ${err.message}`);
  }
  if (event.type === 'checkout.session.completed') {
    fulfil(event.data.object.id);
  }
  res.json({ received: true });
});
''', q=q(c), sk=s.v, wh=w.v, pk=c.n_pk_live())


@T("javascript")
def js_minified_bundle(c):
    r = c.r
    parts = [c.n_minified() for _ in range(r.i(2, 5))]
    leak = c.cred()
    inner = '"%s":"%s"' % (leak.ks("camel"), leak.v)
    parts.insert(r.i(0, len(parts)), "var __CFG__={env:\"%s\",%s,sentryRelease:\"%s\"};" % (r.c(ENVS), inner, c.n_git()))
    return "public/static/js/main.%s.js" % r.hex(8), S('''/*! «name» v«ver» | (c) «co» | sha256-«h» */
«body»
//# sourceMappingURL=main.«m».js.map
''', name=r.c(PROJECTS), ver=c.ver(), co=_cap(r.c(COMPANIES)), h=c.neg("integrity", r.b64(32)), body="\n".join(parts), m=r.hex(8))


# ============================================================================================
# typescript
# ============================================================================================
@T("typescript")
def ts_config_export(c):
    r = c.r
    a, b, d = c.cred(), c.cred(), c.dburl()
    return r.c(["src/config.ts", "src/config/index.ts", "apps/api/src/config.ts"]), S('''export interface AppConfig {
  databaseUrl: string;
  «ak»: string;
  «bk»?: string;
}

export const config: AppConfig = {
  databaseUrl: process.env.DATABASE_URL ?? "«d»",
  «ak»: process.env.«aku» ?? '«av»',
  «bk»: «bv»,
} as const;

export const BUILD_ID = "«sha»";
''', ak=a.ks("camel"), bk=b.ks("camel"), d=d.v, aku=a.ks("UPPER"), av=a.v, bv=r.c(["'%s'" % b.v, "`%s`" % b.v]), sha=c.n_git())


@T("typescript")
def ts_typeorm(c):
    r = c.r
    return r.c(["src/app.module.ts", "src/database/database.module.ts"]), S('''import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ConfigModule } from '@nestjs/config';

// «neg»
@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true }),
    TypeOrmModule.forRoot({
      type: '«t»',
      host: '«h»',
      port: «port»,
      username: '«u»',
      password: '«pw»',
      database: '«db»',
      entities: [__dirname + '/**/*.entity{.ts,.js}'],
      synchronize: false,
    }),
  ],
})
export class AppModule {}
''', t=r.c(["postgres", "mysql"]), h=c.host(), port=r.c([5432, 3306]), u=c.user(), pw=c.pw(), db=r.c(NOUNS), neg=c.nl("").strip())


@T("typescript")
def ts_service_fetch(c):
    r = c.r
    a = c.cred()
    return "src/services/%s.service.ts" % r.c(NOUNS), S('''import { Injectable, Logger } from '@nestjs/common';

@Injectable()
export class «Cls»Service {
  private readonly logger = new Logger(«Cls»Service.name);
  private readonly «ak» = '«av»';
  private readonly baseUrl = 'https://«host»';

  async «meth»(id: string): Promise<unknown> {
    const res = await fetch(`${this.baseUrl}/«o»s/${id}`, {
      headers: { Authorization: `Bearer ${this.«ak»}`, 'Content-Type': 'application/json' },
    });
    if (!res.ok) {
      this.logger.warn(`upstream ${res.status} request-id=${res.headers.get('x-request-id')}`);
    }
    return res.json();
  }
}

«filler»
''', Cls=_cap(r.c(NOUNS)), ak=a.ks("camel"), av=a.v, host=c.host("x"), meth=c.ident("camel"), o=r.c(NOUNS), filler=f_js(c, r.i(0, 4), ts=True))


@T("typescript")
def ts_environment(c):
    r = c.r
    a = c.cred()
    return "src/environments/environment.%s.ts" % r.c(["prod", "staging"]), S('''// This file can be replaced during build by using the `fileReplacements` array.
export const environment = {
  production: true,
  apiUrl: 'https://«host»/api',
  googleAnalyticsId: '«ga»',
  stripePublishableKey: '«pk»',
  «ak»: '«av»',
  sentryDsn: '«dsn»',
};
''', host=c.host("x"), ga=c.n_ga(), pk=c.n_pk_live(), ak=a.ks("camel"), av=a.v, dsn=c.cred(prov="sentry").v)


@T("typescript")
def ts_prisma_seed(c):
    r = c.r
    return "prisma/seed.ts", S('''import { PrismaClient } from '@prisma/client';
import * as bcrypt from 'bcrypt';

const prisma = new PrismaClient();
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD || '«pw»';

async function main() {
  await prisma.user.upsert({
    where: { email: 'admin@«dom»' },
    update: {},
    create: {
      email: 'admin@«dom»',
      passwordHash: await bcrypt.hash(ADMIN_PASSWORD, 12),
    },
  });
  await prisma.user.upsert({
    where: { email: 'demo@«dom»' },
    update: {},
    create: { email: 'demo@«dom»', passwordHash: '«bc»' },
  });
}

main().finally(() => prisma.$disconnect());
''', pw=c.pw(ref="ADMIN_PASSWORD"), dom=r.c(DOMAINS), bc=c.n_bcrypt())


@T("typescript")
def ts_test_spec(c):
    r = c.r
    leak = c.cred()
    return "src/%s/%s.spec.ts" % (r.c(NOUNS), r.c(NOUNS)), S('''import { Test } from '@nestjs/testing';

describe('AuthService', () => {
  const fakeToken = '«fake»';

  beforeAll(() => {
    process.env.«lk» = '«lv»';
  });

  it('rejects the wrong password', async () => {
    await expect(service.login('user@example.com', '«fx»')).rejects.toThrow();
  });

  it('hashes passwords', async () => {
    const h = await service.hash('«fx2»');
    expect(h).toMatch(/^\\$2[aby]\\$/);
    expect(h).not.toEqual('«fx2»');
  });

  it('parses jwt', () => {
    expect(decode('«jwt»').sub).toBe('1234567890');
  });
});
''', fake=c.n_ph(), lk=leak.ks("UPPER"), lv=leak.v, fx=c.n_fixture(), fx2=c.n_fixture(), jwt=c.n_lit("vendor-example", VENDOR_EXAMPLES[-1]))


# ============================================================================================
# java
# ============================================================================================
@T("java")
def java_spring_value(c):
    r = c.r
    a = c.cred()
    pkg = "com.%s.%s" % (r.c(COMPANIES), r.c(NOUNS))
    return "src/main/java/%s/config/AppProperties.java" % pkg.replace(".", "/"), S('''package «pkg».config;

import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Configuration;

@Configuration
public class AppProperties {

    @Value("${spring.datasource.password:«pw»}")
    private String dbPassword;

    @Value("${«akdot»:«av»}")
    private String «akc»;

    @Value("${security.password-reset.url}")
    private String passwordResetUrl;

«filler»
}
''', pkg=pkg, pw=c.pw(ref="SPRING_DATASOURCE_PASSWORD"), akdot="app." + a.ks("kebab"), av=a.v, akc=a.ks("camel"), filler=f_java(c, r.c([0, 2, 4, 10, 25])))


@T("java")
def java_jdbc(c):
    r = c.r
    pkg = "com.%s.%s" % (r.c(COMPANIES), r.c(NOUNS))
    u = c.user()
    url = r.c(["jdbc:postgresql://%s:5432/%s" % (c.host(), r.c(NOUNS)), "jdbc:mysql://%s:3306/%s?useSSL=true" % (c.host(), r.c(NOUNS)),
               "jdbc:sqlserver://%s:1433;databaseName=%s" % (c.host(), r.c(NOUNS))])
    style = r.i(0, 1)
    if style == 0:
        conn = 'Connection conn = DriverManager.getConnection(URL, "%s", "%s");' % (u, c.pw())
    else:
        conn = 'Properties props = new Properties();\n        props.setProperty("user", "%s");\n        props.setProperty("password", "%s");\n        Connection conn = DriverManager.getConnection(URL, props);' % (u, c.pw())
    return "src/main/java/%s/db/ConnectionFactory.java" % pkg.replace(".", "/"), S('''package «pkg».db;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.Properties;

public final class ConnectionFactory {
    private static final String URL = "«url»";

    private ConnectionFactory() {}

    public static Connection open() throws SQLException {
        «conn»
        conn.setAutoCommit(false);
        return conn;
    }
«filler»
}
''', pkg=pkg, url=url, conn=conn, filler=f_java(c, r.i(0, 3)))


@T("java")
def java_aws_sdk(c):
    r = c.r
    aws = c.cred(prov="aws-access-key")
    pkg = "com.%s.storage" % r.c(COMPANIES)
    return "src/main/java/%s/S3Config.java" % pkg.replace(".", "/"), S('''package «pkg»;

import com.amazonaws.auth.AWSStaticCredentialsProvider;
import com.amazonaws.auth.BasicAWSCredentials;
import com.amazonaws.services.s3.AmazonS3;
import com.amazonaws.services.s3.AmazonS3ClientBuilder;

public class S3Config {
    // «neg»
    private static final String ACCESS_KEY = "«ak»";
    private static final String SECRET_KEY = "«sk»";

    public static AmazonS3 client() {
        BasicAWSCredentials creds = new BasicAWSCredentials(ACCESS_KEY, SECRET_KEY);
        return AmazonS3ClientBuilder.standard()
                .withRegion("«reg»")
                .withCredentials(new AWSStaticCredentialsProvider(creds))
                .build();
    }
}
''', pkg=pkg, neg=c.nl("").strip(), ak=aws.v, sk=aws.items[1][1], reg=r.c(["us-east-1", "eu-west-1", "ap-south-1"]))


@T("java")
def java_mail(c):
    r = c.r
    pkg = "com.%s.notify" % r.c(COMPANIES)
    return "src/main/java/%s/Mailer.java" % pkg.replace(".", "/"), S('''package «pkg»;

import java.util.Properties;
import javax.mail.*;

// «neg»
public class Mailer {
    private static final String USER = "«user»";

    public Session session() {
        Properties props = new Properties();
        props.put("mail.smtp.auth", "true");
        props.put("mail.smtp.starttls.enable", "true");
        props.put("mail.smtp.host", "«host»");
        props.put("mail.smtp.port", "587");
        return Session.getInstance(props, new Authenticator() {
            @Override
            protected PasswordAuthentication getPasswordAuthentication() {
                return new PasswordAuthentication(USER, "«pw»");
            }
        });
    }
}
''', pkg=pkg, neg=c.nl("").strip(), user=c.email(), host=r.c(["smtp.office365.com", "smtp.gmail.com", "mail." + r.c(DOMAINS)]), pw=c.pw(fam="chat-mail", prov="smtp"))


@T("java")
def java_constants(c):
    r = c.r
    a, b = c.cred(), c.cred()
    pkg = "com.%s.common" % r.c(COMPANIES)
    return "src/main/java/%s/Constants.java" % pkg.replace(".", "/"), S('''package «pkg»;

public final class Constants {
    public static final String API_BASE = "https://«host»/api/v1";
    public static final String «ak» = "«av»";
    public static final int MAX_RETRIES = «mr»;
    public static final String «bk» = "«bv»";
    public static final String PASSWORD_FIELD = "password";
    public static final String DEFAULT_PASSWORD_HINT = "«pol»";
    public static final String SCHEMA_SHA256 = "«sha»";

    private Constants() {}
}
''', pkg=pkg, host=c.host("x"), ak=a.ks("UPPER"), av=a.v, mr=r.i(2, 6), bk=b.ks("UPPER"), bv=b.v, pol=c.n_policy(), sha=c.n_sha256())


@T("java")
def java_okhttp(c):
    r = c.r
    t = c.cred()
    pkg = "com.%s.http" % r.c(COMPANIES)
    hdr = r.c(['"Authorization", "Bearer " + TOKEN', '"X-Api-Key", TOKEN', '"Authorization", "token " + TOKEN'])
    return "src/main/java/%s/AuthInterceptor.java" % pkg.replace(".", "/"), S('''package «pkg»;

import java.io.IOException;
import okhttp3.Interceptor;
import okhttp3.Request;
import okhttp3.Response;

public class AuthInterceptor implements Interceptor {
    private static final String TOKEN = "«tv»";

    @Override
    public Response intercept(Chain chain) throws IOException {
        Request req = chain.request().newBuilder()
                .addHeader(«hdr»)
                .addHeader("X-Request-Id", "«rid»")
                .build();
        return chain.proceed(req);
    }
}
''', pkg=pkg, tv=t.v, hdr=hdr, rid=c.n_uuid())


@T("java")
def java_test(c):
    r = c.r
    pkg = "com.%s.auth" % r.c(COMPANIES)
    leak = c.cred(fam=["ai", "saas", "vcs-ci"])
    return "src/test/java/%s/PasswordServiceTest.java" % pkg.replace(".", "/"), S('''package «pkg»;

import static org.junit.jupiter.api.Assertions.*;
import org.junit.jupiter.api.Test;

class PasswordServiceTest {
    private final PasswordService svc = new PasswordService();
    private static final String INTEGRATION_TOKEN = "«lv»";

    @Test
    void hashesAndVerifies() {
        String hash = svc.hash("«fx»");
        assertNotEquals("«fx»", hash);
        assertTrue(svc.matches("«fx»", hash));
    }

    @Test
    void rejectsKnownHash() {
        assertFalse(svc.matches("«fx2»", "«bc»"));
    }
}
''', pkg=pkg, lv=leak.v, fx=c.n_fixture(), fx2=c.n_fixture(), bc=c.n_bcrypt())


# ============================================================================================
# go
# ============================================================================================
@T("go")
def go_main_const(c):
    r = c.r
    a, b = c.cred(), c.cred(fam="generic-secret")
    return r.c(["main.go", "cmd/%s/main.go" % r.c(NOUNS)]), S('''package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

const (
	apiBase   = "https://«host»"
	«ak» = "«av»"
	«bk»    = `«bv»`
	version   = "«ver»"
)

func main() {
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok %s", version)
	})
	addr := os.Getenv("ADDR")
	log.Fatal(http.ListenAndServe(addr, nil))
}

«filler»
''', host=c.host("x"), ak=a.ks("camel"), av=a.v, bk=b.ks("camel"), bv=b.v, ver=c.ver(), filler=f_go(c, r.c([0, 1, 3, 8, 20])))


@T("go")
def go_sql_dsn(c):
    r = c.r
    u, h, db = c.user(), c.host(), r.c(NOUNS)
    k = r.i(0, 2)
    if k == 0:
        dsn = '"host=%s port=5432 user=%s password=%s dbname=%s sslmode=require"' % (h, u, c.pw(safe="url"), db)
        drv = "postgres"
    elif k == 1:
        dsn = '"%s:%s@tcp(%s:3306)/%s?parseTime=true"' % (u, c.pw(safe="url", fam="database", prov="mysql-dsn"), h, db)
        drv = "mysql"
    else:
        dsn = '"%s"' % c.dburl(prov="postgres-url").v
        drv = "pgx"
    return r.c(["internal/db/db.go", "pkg/store/postgres.go", "db.go"]), S('''package db

import (
	"database/sql"
	"time"

	_ "github.com/lib/pq"
)

// «neg»
func Open() (*sql.DB, error) {
	db, err := sql.Open("«drv»", «dsn»)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(«mo»)
	db.SetConnMaxLifetime(5 * time.Minute)
	return db, db.Ping()
}

«filler»
''', neg=c.nl("").strip(), drv=drv, dsn=dsn, mo=r.c([10, 25, 50]), filler=f_go(c, r.i(0, 3)))


@T("go")
def go_config_struct(c):
    r = c.r
    a, b = c.cred(), c.cred()
    return "internal/config/defaults.go", S('''package config

var Default = Config{
	Listen:      ":«port»",
	DatabaseURL: "«d»",
	«ak»:  "«av»",
	«bk»: "«bv»",
	Redis: RedisConfig{
		Addr:     "«rh»:6379",
		Password: "«rp»",
	},
	ImageDigest: "sha256:«dig»",
}
''', port=r.c([8080, 9000, 3000]), d=c.dburl().v, ak=a.ks("pascal"), av=a.v, bk=b.ks("pascal"), bv=b.v, rh=c.host("x"),
        rp=c.pw(fam="database", prov="redis-auth", ref="REDIS_PASSWORD"), dig=c.n_sha256())


@T("go")
def go_http_header(c):
    r = c.r
    t = c.cred()
    return "pkg/%s/client.go" % r.c(NOUNS), S('''package «pkgn»

import (
	"net/http"
	"time"
)

var token = "«tv»"

func newRequest(method, url string) (*http.Request, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Trace-Id", "«tr»")
	return req, nil
}

var client = &http.Client{Timeout: «to» * time.Second}
''', pkgn=r.c(NOUNS), tv=t.v, tr=c.n_trace(), to=r.c([5, 10, 30]))


@T("go")
def go_redis(c):
    r = c.r
    return "internal/cache/redis.go", S('''package cache

import "github.com/redis/go-redis/v9"

// «neg»
func New() *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:     "«h»:6379",
		Password: "«pw»", // «cmt»
		DB:       «db»,
	})
}
''', h=c.host("x"), pw=c.pw(fam="database", prov="redis-auth", ref="REDIS_PASSWORD"), cmt=r.c(["no password set", "prod", "TODO move to vault", "see 1password"]), db=r.i(0, 4), neg=c.nl("").strip())


@T("go")
def go_test(c):
    r = c.r
    leak = c.cred()
    return "internal/auth/auth_test.go", S('''package auth

import "testing"

const testJWT = "«jwt»"

func TestHash(t *testing.T) {
	h, err := Hash("«fx»")
	if err != nil || h == "«fx»" {
		t.Fatal("hash failed")
	}
}

func TestIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	c := NewClient("«lv»")
	if _, err := c.Ping(); err != nil {
		t.Fatal(err)
	}
}
''', jwt=c.n_lit("vendor-example", VENDOR_EXAMPLES[-1]), fx=c.n_fixture(), lv=leak.v)


# ============================================================================================
# csharp
# ============================================================================================
@T("csharp")
def cs_network_credential(c):
    r = c.r
    ns = "%s.%s" % (_cap(r.c(COMPANIES)), _cap(r.c(NOUNS)))
    return "src/%s/FtpUploader.cs" % ns, S('''using System.IO;
using System.Net;

namespace «ns»
{
    public class FtpUploader
    {
        private readonly NetworkCredential _credentials = new NetworkCredential("«u»", "«pw»");

        public void Upload(string localPath)
        {
            var req = (FtpWebRequest)WebRequest.Create("ftp://«h»/incoming/" + Path.GetFileName(localPath));
            req.Method = WebRequestMethods.Ftp.UploadFile;
            req.Credentials = _credentials;
            using var s = req.GetRequestStream();
            File.OpenRead(localPath).CopyTo(s);
        }
«filler»
    }
}
''', ns=ns, u=c.user(), pw=c.pw(), h=c.host("x"), filler=f_cs(c, r.i(0, 3)))


@T("csharp")
def cs_sqlconnection(c):
    r = c.r
    ns = "%s.Data" % _cap(r.c(COMPANIES))
    cs = c.cred(prov="adonet")
    return "src/%s/Repository.cs" % ns, S('''using System.Data.SqlClient;

namespace «ns»
{
    public class Repository
    {
        private const string ConnectionString = @"«cs»";

        public SqlConnection Open()
        {
            var conn = new SqlConnection(ConnectionString);
            conn.Open();
            return conn;
        }
«filler»
    }
}
''', ns=ns, cs=cs.v, filler=f_cs(c, r.i(0, 3)))


@T("csharp")
def cs_const_class(c):
    r = c.r
    a, b = c.cred(), c.cred()
    ns = "%s.Shared" % _cap(r.c(COMPANIES))
    return "src/%s/Secrets.cs" % ns, S('''namespace «ns»
{
    internal static class Secrets
    {
        public const string «ak» = "«av»";
        public static readonly string «bk» = "«bv»";
        public const string PasswordResetPath = "/account/forgot-password";
        public const string BuildCommit = "«sha»";
    }
}
''', ns=ns, ak=a.ks("pascal"), av=a.v, bk=b.ks("pascal"), bv=b.v, sha=c.n_git())


@T("csharp")
def cs_smtp(c):
    r = c.r
    return "src/Notifications/EmailSender.cs", S('''using System.Net;
using System.Net.Mail;

// «neg»
public class EmailSender
{
    public void Send(string to, string subject, string body)
    {
        using var client = new SmtpClient("«h»", 587)
        {
            EnableSsl = true,
            Credentials = new NetworkCredential("«u»", "«pw»")
        };
        client.Send(new MailMessage("noreply@«dom»", to, subject, body));
    }
}
''', h=r.c(["smtp.office365.com", "smtp.sendgrid.net", "smtp." + r.c(DOMAINS)]), u=r.c(["apikey", c.email()]),
        pw=c.pw(fam="chat-mail", prov="smtp") if r.p(0.6) else c.cred(prov="sendgrid").v, dom=r.c(DOMAINS), neg=c.nl("").strip())


@T("csharp")
def cs_httpclient(c):
    r = c.r
    t = c.cred()
    return "src/Clients/%sClient.cs" % _cap(r.c(NOUNS)), S('''using System.Net.Http;
using System.Net.Http.Headers;

public class ApiClient
{
    private readonly HttpClient _http = new HttpClient { BaseAddress = new System.Uri("https://«h»/") };

    public ApiClient()
    {
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "«tv»");
        _http.DefaultRequestHeaders.Add("X-Correlation-Id", "«cid»");
    }
«filler»
}
''', h=c.host("x"), tv=t.v, cid=c.n_uuid(), filler=f_cs(c, r.i(0, 3)))


@T("csharp")
def cs_startup_oidc(c):
    r = c.r
    s = c.cred(prov=r.c(["azure-ad-client-secret", "auth0", "google-client-secret", "okta"]))
    return "src/Web/Program.cs", S('''var builder = WebApplication.CreateBuilder(args);

builder.Services.AddAuthentication(options =>
{
    options.DefaultScheme = CookieAuthenticationDefaults.AuthenticationScheme;
    options.DefaultChallengeScheme = OpenIdConnectDefaults.AuthenticationScheme;
})
.AddCookie()
.AddOpenIdConnect(options =>
{
    options.Authority = "https://login.microsoftonline.com/«tenant»/v2.0";
    options.ClientId = "«cid»";
    options.ClientSecret = "«cs»";
    options.ResponseType = "code";
    options.SaveTokens = true;
});

var app = builder.Build();
app.MapGet("/", () => "ok");
app.Run();
''', tenant=c.n_uuid(), cid=c.n_uuid(), cs=s.v)


# ============================================================================================
# ruby
# ============================================================================================
@T("ruby")
def rb_stripe_initializer(c):
    r = c.r
    s = c.cred(fam="payment")
    o = c.cred(fam=["saas", "chat-mail"])
    return r.c(["config/initializers/stripe.rb", "config/initializers/payments.rb"]), S('''# frozen_string_literal: true

Rails.configuration.stripe = {
  publishable_key: «pkq»,
  secret_key: ENV.fetch("STRIPE_SECRET_KEY") { «q»«sk»«q» }
}

Stripe.api_key = Rails.configuration.stripe[:secret_key]
«ok» = «q»«ov»«q»
''', pkq="'%s'" % c.n_pk_live(), q=q(c), sk=s.v, ok=o.ks("UPPER"), ov=o.v)


@T("ruby")
def rb_gemfile(c):
    r = c.r
    pos = c.want()
    if pos:
        cred = c.mark("%s:%s" % (r.hex(8), r.hex(8)), "saas", "sidekiq")
    else:
        cred = c.n_ref("BUNDLE_ENTERPRISE__CONTRIBSYS__COM")
    line = r.c(['source "https://%s@enterprise.contribsys.com/" do\n  gem "sidekiq-ent"\n  gem "sidekiq-pro"\nend' % cred,
                '# bundle config enterprise.contribsys.com %s\nsource "https://enterprise.contribsys.com/" do\n  gem "sidekiq-pro"\nend' % cred])
    return "Gemfile", S('''source "https://rubygems.org"
git_source(:github) { |repo| "https://github.com/#{repo}.git" }

ruby "«rv»"
«neg»

gem "rails", "~> «rails»"
gem "pg", "~> 1.5"
gem "puma", ">= 5.0"
gem "sidekiq", "~> 7.2"
«line»

group :development, :test do
  gem "rspec-rails"
  gem "factory_bot_rails"
end
''', rv=r.c(["3.2.2", "3.3.0", "3.1.4"]), rails=r.c(["7.1.3", "7.0.8", "6.1.7"]), line=line, neg=c.nl("#"))


@T("ruby")
def rb_aws_initializer(c):
    r = c.r
    aws = c.cred(prov="aws-access-key")
    return "config/initializers/aws.rb", S('''require "aws-sdk-s3"
«neg»

Aws.config.update(
  region: "«reg»",
  credentials: Aws::Credentials.new(«q»«ak»«q», «q»«sk»«q»)
)

S3_BUCKET = Aws::S3::Resource.new.bucket(ENV.fetch("S3_BUCKET", "«b»"))
''', reg=r.c(["us-east-1", "eu-west-1"]), q=q(c), ak=aws.v, sk=aws.items[1][1], b=r.c(COMPANIES) + "-uploads", neg=c.nl("#"))


@T("ruby")
def rb_rake_task(c):
    r = c.r
    return "lib/tasks/%s.rake" % r.c(NOUNS), S('''# «neg»
namespace :«ns» do
  desc "«desc»"
  task import: :environment do
    conn = PG.connect(
      host: ENV.fetch("LEGACY_DB_HOST", "«h»"),
      user: "«u»",
      password: ENV.fetch("LEGACY_DB_PASSWORD", "«pw»"),
      dbname: "«db»"
    )
    conn.exec("SELECT * FROM «db»s").each { |row| «Cls».create!(row) }
  end
end
''', ns=r.c(NOUNS), desc="Import %ss from the legacy database" % r.c(NOUNS), h=c.host(), u=c.user(), pw=c.pw(ref="LEGACY_DB_PASSWORD"),
        db=r.c(NOUNS), Cls=_cap(r.c(NOUNS)), neg=c.nl("").strip())


@T("ruby")
def rb_sinatra(c):
    r = c.r
    a = c.cred()
    return "app.rb", S('''require "sinatra"
require "json"

set :session_secret, «q»«ss»«q»
«ak» = «q»«av»«q»

use Rack::Auth::Basic, "Restricted" do |username, password|
  username == "«u»" && password == «q»«pw»«q»
end

get "/health" do
  content_type :json
  { status: "ok", commit: "«sha»" }.to_json
end
''', q=q(c), ss=c.cred(fam="generic-secret").v, ak=a.ks("UPPER"), av=a.v, u=c.user(), pw=c.pw(), sha=c.n_git())


@T("ruby")
def rb_rspec(c):
    r = c.r
    leak = c.cred()
    return "spec/models/user_spec.rb", S('''require "rails_helper"

RSpec.describe User, type: :model do
  let(:password) { "«fx»" }
  let(:digest) { "«bc»" }

  it "does not store the plain password" do
    user = User.create!(email: "a@example.com", password: password)
    expect(user.password_digest).not_to eq(password)
  end

  it "enforces the policy" do
    expect(User.new(password: "short")).not_to be_valid
  end

  it "talks to the API", :vcr do
    client = ExternalApi.new(token: "«lv»")
    expect(client.ping).to be_truthy
  end
«filler»
end
''', fx=c.n_fixture(), bc=c.n_bcrypt(), lv=leak.v, filler=f_rb(c, r.i(0, 2)))


@T("ruby")
def rb_secret_token(c):
    r = c.r
    if c.want():
        v = c.mark(r.hex(128), "password", "rails-secret-key-base")
    else:
        v = c.n_ref("SECRET_KEY_BASE")
    style = r.i(0, 1)
    if style == 0:
        return "config/initializers/secret_token.rb", S('''# Be sure to restart your server when you modify this file.
# Your secret key is used for verifying the integrity of signed cookies.
«app»::Application.config.secret_key_base = '«v»'
''', app=_cap(r.c(COMPANIES)), v=v)
    return "config/secrets.yml", S('''development:
  secret_key_base: «dev»

test:
  secret_key_base: «test»

production:
  secret_key_base: «v»
''', dev=c.n_ref("DEV_SECRET_KEY_BASE"), test=c.n_ph(), v=v)


# ============================================================================================
# php
# ============================================================================================
WP_KEYS = ["AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY", "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT"]
WP_ALPHA = ALNUM + "!@#%^&*()-_[]{}<>~+=,.;:/?|"


@T("php")
def php_wp_config(c):
    r = c.r
    real_salts = c.want()
    salts = []
    for k in WP_KEYS:
        v = c.mark(r.s(64, WP_ALPHA), "password", "wordpress-salt") if real_salts else c.neg("vendor-example", "put your unique phrase here")
        salts.append("define( '%s',%s'%s' );" % (k, " " * (17 - len(k)), v))
    return "wp-config.php", S('''<?php
/**
 * The base configuration for WordPress
 *
 * @package WordPress
 */

// ** Database settings - You can get this info from your web host ** //
define( 'DB_NAME', '«db»' );
define( 'DB_USER', '«u»' );
define( 'DB_PASSWORD', '«pw»' );
define( 'DB_HOST', '«h»' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );

/**#@+
 * Authentication unique keys and salts.
 */
«salts»
/**#@-*/

$table_prefix = 'wp_';
define( 'WP_DEBUG', false );

if ( ! defined( 'ABSPATH' ) ) {
	define( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
''', db="wp_" + r.c(COMPANIES), u=c.user(), pw=c.pw(), h=r.c(["localhost", c.host()]), salts="\n".join(salts))


@T("php")
def php_laravel_database(c):
    r = c.r
    return "config/database.php", S('''<?php

use Illuminate\\Support\\Str;

// «neg»
return [
    'default' => env('DB_CONNECTION', 'mysql'),

    'connections' => [
        'mysql' => [
            'driver' => 'mysql',
            'host' => env('DB_HOST', '«h»'),
            'port' => env('DB_PORT', '3306'),
            'database' => env('DB_DATABASE', '«db»'),
            'username' => env('DB_USERNAME', '«u»'),
            'password' => env('DB_PASSWORD', '«pw»'),
            'charset' => 'utf8mb4',
        ],
        'pgsql' => [
            'driver' => 'pgsql',
            'url' => env('DATABASE_URL'),
            'password' => env('PG_PASSWORD', ''),
        ],
    ],

    'redis' => [
        'client' => env('REDIS_CLIENT', 'phpredis'),
        'default' => [
            'host' => env('REDIS_HOST', '127.0.0.1'),
            'password' => env('REDIS_PASSWORD', «rp»),
            'port' => env('REDIS_PORT', '6379'),
        ],
    ],
];
''', h=c.host(), neg=c.nl("").strip(), db=r.c(NOUNS), u=c.user(), pw=c.pw(), rp=r.c(["null", "'%s'" % c.pw(fam="database", prov="redis-auth", ref="REDIS_PASSWORD")]))


@T("php")
def php_pdo(c):
    r = c.r
    return r.c(["includes/db.php", "lib/Database.php", "connect.php"]), S('''<?php
$host = '«h»';
$db   = '«db»';
$user = '«u»';
$pass = «qq»«pw»«qq»;
$charset = 'utf8mb4'; // «neg»

$dsn = "mysql:host=$host;dbname=$db;charset=$charset";
$options = [
    PDO::ATTR_ERRMODE            => PDO::ERRMODE_EXCEPTION,
    PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
];
try {
    $pdo = new PDO($dsn, $user, $pass, $options);
} catch (\\PDOException $e) {
    error_log('db connect failed: ' . $e->getMessage());
    throw $e;
}
''', h=c.host(), db=r.c(NOUNS), u=c.user(), qq="'", pw=c.pw(), neg=c.nl("").strip())


@T("php")
def php_mailer(c):
    r = c.r
    return "src/Mail/Mailer.php", S('''<?php
namespace App\\Mail;

use PHPMailer\\PHPMailer\\PHPMailer;

// «neg»
class Mailer
{
    public static function make(): PHPMailer
    {
        $mail = new PHPMailer(true);
        $mail->isSMTP();
        $mail->Host       = '«h»';
        $mail->SMTPAuth   = true;
        $mail->Username   = '«u»';
        $mail->Password   = '«pw»';
        $mail->SMTPSecure = PHPMailer::ENCRYPTION_STARTTLS;
        $mail->Port       = 587;
        return $mail;
    }
}
''', h=r.c(["smtp.gmail.com", "smtp.mailgun.org", "smtp." + r.c(DOMAINS)]), u=c.email(), neg=c.nl("").strip(), pw=c.pw(fam="chat-mail", prov="smtp"))


@T("php")
def php_curl_client(c):
    r = c.r
    t = c.cred()
    return "src/Api/%sClient.php" % _cap(r.c(NOUNS)), S('''<?php
namespace App\\Api;

// «neg»
class Client
{
    private $apiKey = "«tv»";
    private $baseUrl = 'https://«h»/v1';

    public function get(string $path): array
    {
        $ch = curl_init($this->baseUrl . $path);
        curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
        curl_setopt($ch, CURLOPT_HTTPHEADER, [
            'Authorization: Bearer ' . $this->apiKey,
            'Accept: application/json',
        ]);
        $body = curl_exec($ch);
        curl_close($ch);
        return json_decode($body, true);
    }
«filler»
}
''', tv=t.v, neg=c.nl("").strip(), h=c.host("x"), filler=f_php(c, r.i(0, 3)))


@T("php")
def php_constants(c):
    r = c.r
    a, b = c.cred(), c.cred()
    return "config/constants.php", S('''<?php
// «neg»
const APP_VERSION = '«ver»';
const «ak» = '«av»';
define('«bk»', "«bv»");
define('PASSWORD_MIN_LENGTH', «ml»);
define('PASSWORD_RESET_URL', '/user/forgot_password');
$config['encryption_key'] = '«ek»';
''', neg=c.nl("").strip(), ver=c.ver(), ak=a.ks("UPPER"), av=a.v, bk=b.ks("UPPER"), bv=b.v, ml=r.c([8, 10, 12]),
        ek=c.cred(fam="generic-secret").v)


# ============================================================================================
# rust
# ============================================================================================
@T("rust")
def rs_const(c):
    r = c.r
    a = c.cred()
    return r.c(["src/main.rs", "src/bin/%s.rs" % r.c(NOUNS)]), S('''use std::env;

const API_URL: &str = "https://«h»/api";
const «ak»: &str = "«av»";
static BUILD_SHA: &str = "«sha»";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let token = env::var("«aku»").unwrap_or_else(|_| «ak».to_string());
    let client = reqwest::Client::new();
    let resp = client.get(API_URL).bearer_auth(&token).send().await?;
    println!("{} {}", resp.status(), BUILD_SHA);
    Ok(())
}

«filler»
''', h=c.host("x"), ak=a.ks("UPPER"), av=a.v, sha=c.n_git(), aku=a.ks("UPPER"), filler=f_rs(c, r.i(0, 3)))


@T("rust")
def rs_config_default(c):
    r = c.r
    a = c.cred()
    return "src/config.rs", S('''#[derive(Debug, Clone, serde::Deserialize)]
pub struct Config {
    pub database_url: String,
    pub db_password: String,
    pub «ak»: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "«d»".into(),
            db_password: String::from("«pw»"),
            «ak»: "«av»".to_owned(),
        }
    }
}
''', ak=a.ks("snake"), d=c.dburl().v, pw=c.pw(), av=a.v)


@T("rust")
def rs_reqwest(c):
    r = c.r
    t = c.cred()
    return "src/client.rs", S('''use reqwest::header::{HeaderMap, HeaderValue};

pub fn build_client() -> reqwest::Result<reqwest::Client> {
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", HeaderValue::from_static("«tv»"));
    headers.insert("x-request-id", HeaderValue::from_static("«rid»"));
    reqwest::Client::builder().default_headers(headers).build()
}
''', tv=t.v, rid=c.n_uuid())


@T("rust")
def rs_sqlx(c):
    r = c.r
    d = c.dburl(prov=r.c(["postgres-url", "mysql-url"]))
    return "src/db.rs", S('''use sqlx::postgres::PgPoolOptions;

// «neg»
pub async fn pool() -> sqlx::Result<sqlx::PgPool> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "«d»".to_string());
    PgPoolOptions::new().max_connections(«mc»).connect(&url).await
}

«filler»
''', d=d.v, neg=c.nl("").strip(), mc=r.c([5, 10, 20]), filler=f_rs(c, r.i(0, 3)))


@T("rust")
def rs_tests(c):
    r = c.r
    return "tests/auth.rs", S('''#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_not_plaintext() {
        let h = hash_password("«fx»").unwrap();
        assert_ne!(h, "«fx»");
        assert!(h.starts_with("$argon2id$"));
    }

    #[test]
    fn known_hash() {
        assert!(verify("«fx2»", "«ah»").is_err());
    }

    #[test]
    fn live_smoke() {
        let c = Client::new("«lv»");
        assert!(c.ping().is_ok());
    }
}
''', fx=c.n_fixture(), fx2=c.n_fixture(), ah=c.n_bcrypt(), lv=c.cred().v)


# ============================================================================================
# kotlin
# ============================================================================================
@T("kotlin")
def kt_gradle_kts(c):
    r = c.r
    return "build.gradle.kts", S('''plugins {
    kotlin("jvm") version "«kv»"
    `maven-publish`
}

// «neg»
repositories {
    mavenCentral()
    maven {
        url = uri("https://«h»/artifactory/libs-release")
        credentials {
            username = "«u»"
            password = "«pw»"
        }
    }
}

dependencies {
    implementation("io.ktor:ktor-server-core:2.3.9")
    testImplementation(kotlin("test"))
}
''', kv=r.c(["1.9.23", "2.0.0"]), h=c.host("x"), neg=c.nl("").strip(), u=c.user(), pw=c.pw() if r.p(0.6) else c.cred(prov=["jfrog", "sonatype"]).v)


@T("kotlin")
def kt_constants(c):
    r = c.r
    a, b = c.cred(), c.cred()
    return "app/src/main/java/com/%s/app/ApiConstants.kt" % r.c(COMPANIES), S('''package com.«co».app

object ApiConstants {
    const val BASE_URL = "https://«h»/"
    const val «ak» = "«av»"
    const val «bk» = "«bv»"
    const val GA_TRACKING_ID = "«ga»"
}
''', co=r.c(COMPANIES), h=c.host("x"), ak=a.ks("UPPER"), av=a.v, bk=b.ks("UPPER"), bv=b.v, ga=c.n_ga())


@T("kotlin")
def kt_retrofit(c):
    r = c.r
    t = c.cred()
    return "app/src/main/java/com/%s/net/AuthInterceptor.kt" % r.c(COMPANIES), S('''package com.«co».net

import okhttp3.Interceptor
import okhttp3.Response

// «neg»
class AuthInterceptor : Interceptor {
    private val token = "«tv»"

    override fun intercept(chain: Interceptor.Chain): Response {
        val req = chain.request().newBuilder()
            .addHeader("Authorization", "Bearer $token")
            .build()
        return chain.proceed(req)
    }
«filler»
}
''', co=r.c(COMPANIES), tv=t.v, neg=c.nl("").strip(), filler=f_kt(c, r.i(0, 3)))


@T("kotlin")
def kt_ktor_db(c):
    r = c.r
    return "src/main/kotlin/db/DatabaseFactory.kt", S('''package db

import org.jetbrains.exposed.sql.Database

// «neg»
object DatabaseFactory {
    fun init() {
        Database.connect(
            url = "jdbc:postgresql://«h»:5432/«db»",
            driver = "org.postgresql.Driver",
            user = "«u»",
            password = "«pw»"
        )
    }
}
''', h=c.host(), db=r.c(NOUNS), u=c.user(), pw=c.pw(), neg=c.nl("").strip())


@T("kotlin")
def kt_buildconfig(c):
    r = c.r
    a = c.cred()
    return "app/build.gradle.kts", S('''android {
    namespace = "com.«co».app"
    compileSdk = 34

    defaultConfig {
        applicationId = "com.«co».app"
        minSdk = 24
        versionCode = «vc»
        versionName = "«vn»"
        buildConfigField("String", "«ak»", "\\"«av»\\"")
        buildConfigField("String", "API_URL", "\\"https://«h»\\"")
    }

    signingConfigs {
        create("release") {
            storeFile = file("release.jks")
            storePassword = "«sp»"
            keyAlias = "release"
            keyPassword = «kp»
        }
    }
}
''', co=r.c(COMPANIES), vc=r.i(1, 400), vn=c.ver(), ak=a.ks("UPPER"), av=a.v, h=c.host("x"), sp=c.pw(ref="STORE_PASSWORD"),
        kp=r.c(['System.getenv("KEY_PASSWORD")', '"%s"' % c.pw(ref="KEY_PASSWORD")]))


# ============================================================================================
# shell (scripts and history)
# ============================================================================================
@T("shell")
def sh_deploy_exports(c):
    r = c.r
    creds = [c.cred() for _ in range(r.i(1, 4))]
    ex = []
    for cr in creds:
        for k, v in cr.items:
            qq = r.c(['"', "'", ""])
            ex.append("export %s=%s%s%s" % (key_style(k, "UPPER"), qq, v, qq))
    return r.c(["deploy.sh", "scripts/deploy.sh", "bin/release.sh", "ops/env.sh"]), S('''#!/usr/bin/env bash
set -euo pipefail
# «neg»

ENVIRONMENT="${1:-«env»}"
«exports»
export DB_PASSWORD="${DB_PASSWORD:-«pw»}"

«filler»

echo "deploying «proj» to $ENVIRONMENT"
''', neg=c.nl("").strip(), env=r.c(ENVS), exports="\n".join(ex), pw=c.pw(safe="shell"), filler=f_sh(c, r.c([2, 6, 12, 40, 120])), proj=r.c(PROJECTS))


def history_cmd(c):
    r = c.r
    u, h = c.user(), c.host()
    k = r.i(0, 13)
    if k == 0:
        return "mysql -u %s -p%s -h %s %s" % (u, c.pw(safe="shell", ref="MYSQL_PWD"), h, r.c(NOUNS))
    if k == 1:
        return "curl -u %s:%s https://%s/api/%ss" % (u, c.pw(safe="shell"), c.host("x"), r.c(NOUNS))
    if k == 2:
        return "sshpass -p '%s' ssh %s@%s" % (c.pw(), u, h)
    if k == 3:
        return "docker login -u %s -p %s %s" % (u, c.pw(safe="shell") if r.p(0.6) else c.cred(prov="dockerhub").v, r.c(["", "registry." + r.c(DOMAINS), "ghcr.io"]))
    if k == 4:
        return "PGPASSWORD=%s psql -h %s -U %s %s" % (c.pw(safe="shell"), h, u, r.c(NOUNS))
    if k == 5:
        cr = c.cred()
        return "export %s=%s" % (cr.ks("UPPER"), cr.v)
    if k == 6:
        return "mongo %s/admin -u %s -p '%s'" % (h, u, c.pw())
    if k == 7:
        return "git clone https://%s:%s@%s/%s/%s.git" % (u, c.cred(prov=["github-pat", "gitlab", "bitbucket"]).v, r.c(["github.com", "gitlab.com", "bitbucket.org"]), r.c(COMPANIES), r.c(PROJECTS))
    if k == 8:
        return "redis-cli -h %s -a %s" % (c.host("x"), c.pw(safe="shell", fam="database", prov="redis-auth"))
    if k == 9:
        cr = c.cred()
        return "curl -H \"Authorization: Bearer %s\" https://%s/v1/%s" % (cr.v, c.host("x"), r.c(NOUNS))
    if k == 10:
        return "echo '%s' | docker login ghcr.io -u %s --password-stdin" % (c.cred(prov=["github-pat", "github-fine-grained-pat"]).v, u)
    if k == 11:
        return "mysqldump -u%s -p'%s' --single-transaction %s > dump.sql" % (u, c.pw(), r.c(NOUNS))
    if k == 12:
        return "htpasswd -b -c /etc/nginx/.htpasswd %s %s" % (u, c.pw(safe="shell"))
    return "psql \"%s\"" % c.dburl(prov="postgres-url").v


BENIGN_HISTORY = ["ls -la", "cd ..", "git status", "git pull --rebase", "make test", "docker ps", "kubectl get pods -A",
                  "vim .env", "cat /etc/os-release", "htop", "terraform plan", "npm ci", "python -m venv .venv",
                  "source .venv/bin/activate", "pip install -r requirements.txt", "history | grep psql", "clear",
                  "tail -f /var/log/syslog", "sudo systemctl restart nginx", "df -h", "du -sh *", "ssh bastion",
                  "docker compose up -d", "git log --oneline -n 20", "exit", "aws sts get-caller-identity",
                  "kubectl logs -f deploy/api", "export EDITOR=vim", "read -s DB_PASSWORD", "export PGPASSWORD=$(cat ~/.pgpass_prod)"]


@T("shell")
def sh_bash_history(c):
    r = c.r
    out = []
    for _ in range(r.i(15, 400)):
        if r.p(0.06):
            out.append(history_cmd(c))
        elif r.p(0.1):
            out.append(r.c(["git checkout %s" % c.n_git(True), "git show %s" % c.n_git(), "sha256sum %s.tar.gz" % r.c(NOUNS),
                            "echo %s | base64 -d" % c.n_png(30), "mysql -u root -p", "psql -h %s -U %s -W" % (c.host(), c.user())]))
        else:
            out.append(r.c(BENIGN_HISTORY))
    return r.c([".bash_history", "home/%s/.bash_history" % r.c(FIRST), "root/.bash_history"]), "\n".join(out)


@T("shell")
def sh_zsh_history(c):
    r = c.r
    out = []
    t = r.i(1690000000, 1760000000)
    for _ in range(r.i(10, 120)):
        t += r.i(3, 4000)
        cmd = history_cmd(c) if r.p(0.12) else r.c(BENIGN_HISTORY)
        out.append(": %d:%d;%s" % (t, r.i(0, 30), cmd))
    return r.c([".zsh_history", "Users/%s/.zsh_history" % r.c(FIRST)]), "\n".join(out)


@T("shell")
def sh_backup(c):
    r = c.r
    return r.c(["backup.sh", "cron/nightly-backup.sh", "scripts/db_backup.sh"]), S('''#!/bin/bash
# Nightly backup - runs from cron at 02:00
BACKUP_DIR=/var/backups/«db»
DB_USER=«u»
DB_PASS=«qq»«pw»«qq»
STAMP=$(date +%Y%m%d)

mkdir -p "$BACKUP_DIR"
mysqldump -u"$DB_USER" -p"$DB_PASS" -h «h» --single-transaction «db» | gzip > "$BACKUP_DIR/«db»-$STAMP.sql.gz"
«upload»
find "$BACKUP_DIR" -mtime +«days» -delete
«filler»
''', db=r.c(NOUNS), u=c.user(), qq=r.c(["'", '"', ""]), pw=c.pw(safe="shell"), h=c.host(),
        upload=r.c(["aws s3 cp \"$BACKUP_DIR/%s-$STAMP.sql.gz\" s3://%s-backups/" % ("db", r.c(COMPANIES)),
                    "rclone copy \"$BACKUP_DIR\" remote:backups", "# upload disabled"]),
        days=r.c([7, 14, 30]), filler=f_sh(c, r.i(0, 4)))


@T("shell")
def sh_curl_api(c):
    r = c.r
    t = c.cred()
    g = c.cred(fam="generic-secret")
    basic = b64e("%s:%s" % (c.user(), c.pwraw()))
    bpos = c.want()
    bval = c.mark(basic, "password", "basic-auth-header") if bpos else c.n_ref("BASIC_AUTH")
    return r.c(["scripts/api_smoke.sh", "test-endpoints.sh", "tools/call_api.sh"]), S('''#!/bin/sh
# smoke test the public API
API=https://«h»
TOKEN=«qq»«tv»«qq»

curl -fsS "$API/health"
curl -fsS -H "Authorization: Bearer $TOKEN" "$API/v1/«o»s?limit=5"
curl -fsS -H "X-API-Key: «gv»" "$API/v1/«o»s/«rid»"
curl -fsS -H "Authorization: Basic «basic»" "$API/admin/stats"
curl -fsS -u "«u»:«pw»" "$API/internal/metrics"
''', h=c.host("x"), qq=r.c(["'", '"', ""]), tv=t.v, o=r.c(NOUNS), gv=g.v, rid=c.n_uuid(), basic=bval, u=c.user(), pw=c.pw(safe="shell"))


@T("shell")
def sh_docker_login(c):
    r = c.r
    tok = c.cred(prov=["dockerhub", "github-pat", "gitlab", "jfrog"])
    return r.c(["ci/push-image.sh", "build.sh", "scripts/publish.sh"]), S('''#!/usr/bin/env bash
set -e
IMAGE=«reg»/«co»/«proj»
TAG=$(git rev-parse --short HEAD)

«login»
docker build -t "$IMAGE:$TAG" --label org.opencontainers.image.revision=«sha» .
docker push "$IMAGE:$TAG"
''', reg=r.c(["docker.io", "ghcr.io", "registry.gitlab.com", r.c(COMPANIES) + ".jfrog.io"]), co=r.c(COMPANIES), proj=r.c(PROJECTS),
        login=r.c(["docker login -u %s -p %s" % (c.user(), tok.v),
                   "echo \"%s\" | docker login -u %s --password-stdin" % (tok.v, c.user()),
                   "docker login --username=%s --password='%s' %s" % (c.user(), c.pw(), r.c(DOMAINS))]), sha=c.n_git())


@T("shell")
def sh_psql_migrate(c):
    r = c.r
    return r.c(["migrate.sh", "db/run-migrations.sh"]), S('''#!/bin/bash
set -euo pipefail
export PGHOST=«h»
export PGUSER=«u»
export PGPASSWORD=«qq»«pw»«qq»
export PGDATABASE=«db»

for f in migrations/*.sql; do
  echo "applying $f"
  psql -v ON_ERROR_STOP=1 -f "$f"
done
«filler»
''', h=c.host(), u=c.user(), qq=r.c(["'", '"', ""]), pw=c.pw(safe="shell", ref="PGPASSWORD"), db=r.c(NOUNS), filler=f_sh(c, r.i(0, 5)))


@T("shell")
def sh_sshpass_loop(c):
    r = c.r
    hosts = " ".join(c.host() for _ in range(r.i(2, 5)))
    return r.c(["ops/restart_all.sh", "rollout.sh"]), S('''#!/bin/bash
# restart the legacy workers (no ssh keys on these boxes yet)
HOSTS="«hosts»"
«neg»
for h in $HOSTS; do
  sshpass -p «qq»«pw»«qq» ssh -o StrictHostKeyChecking=no «u»@$h 'sudo systemctl restart worker'
done
''', hosts=hosts, qq="'", pw=c.pw(), u=c.user(), neg=c.nl("#"))


@T("shell")
def sh_mongo_redis(c):
    r = c.r
    return r.c(["scripts/cache_flush.sh", "ops/mongo_maint.sh"]), S('''#!/bin/sh
# «neg»
redis-cli -h «rh» -p 6379 -a «rp» FLUSHDB
mongosh "mongodb://«mh»:27017/admin" --username «mu» --password «mp» --eval 'db.runCommand({compact: "«coll»"})'
«filler»
''', neg=c.nl("").strip(), rh=c.host("x"), rp=c.pw(safe="shell", fam="database", prov="redis-auth"), mh=c.host(), mu=c.user(),
        mp=c.pw(safe="shell"), coll=r.c(NOUNS) + "s", filler=f_sh(c, r.i(0, 3)))


# ============================================================================================
# yaml
# ============================================================================================
@T("yaml")
def yaml_compose(c):
    r = c.r
    pg = c.pw(ref="POSTGRES_PASSWORD")
    svc_env = []
    for _ in range(r.i(1, 4)):
        cr = c.cred()
        svc_env.append("      %s: %s" % (cr.ks("UPPER"), r.c(["%s", '"%s"', "'%s'"]) % cr.v))
    return r.c(["docker-compose.yml", "docker-compose.prod.yml", "compose.yaml"]), S('''version: "3.9"
services:
  db:
    image: postgres:«pgv»
    environment:
      POSTGRES_USER: «u»
      POSTGRES_PASSWORD: «pg»
      POSTGRES_DB: «db»
    volumes:
      - pgdata:/var/lib/postgresql/data
  redis:
    image: redis:7
    command: redis-server --requirepass «rp»
  app:
    image: «co»/«proj»@sha256:«dig»
    depends_on: [db, redis]
    environment:
      DATABASE_URL: postgres://«u»:${POSTGRES_PASSWORD}@db:5432/«db»
«env»
    ports:
      - "8080:8080"
volumes:
  pgdata: {}
''', pgv=r.c(["15", "16-alpine", "14.11"]), u=c.user(), pg=pg, db=r.c(NOUNS), rp=c.pw(safe="shell", fam="database", prov="redis-auth", ref="REDIS_PASSWORD"),
        co=r.c(COMPANIES), proj=r.c(PROJECTS), dig=c.n_sha256(), env="\n".join(svc_env))


@T("yaml")
def yaml_spring(c):
    r = c.r
    return r.c(["src/main/resources/application.yml", "src/main/resources/application-prod.yml"]), S('''server:
  port: «port»
spring:
  application:
    name: «proj»
  datasource:
    url: jdbc:postgresql://«h»:5432/«db»
    username: «u»
    password: «pwq»
  mail:
    host: smtp.«dom»
    username: «mu»
    password: «mp»
  security:
    oauth2:
      client:
        registration:
          «idp»:
            client-id: «cid»
            client-secret: «cs»
management:
  endpoints:
    web:
      exposure:
        include: health,info
«filler»
''', port=r.c([8080, 8443]), proj=r.c(PROJECTS), h=c.host(), db=r.c(NOUNS), u=c.user(),
        pwq=r.c(["%s", '"%s"', "'%s'", "${DB_PASSWORD:%s}"]) % c.pw(ref="DB_PASSWORD"), dom=r.c(DOMAINS), mu=c.email(),
        mp=c.pw(fam="chat-mail", prov="smtp", ref="MAIL_PASSWORD"), idp=r.c(["google", "okta", "azure", "github"]), cid=c.n_uuid(),
        cs=c.cred(prov=["google-client-secret", "okta", "azure-ad-client-secret", "auth0"]).v, filler=f_yaml(c, r.i(0, 4)))


@T("yaml")
def yaml_ansible_vars(c):
    r = c.r
    extra = []
    for _ in range(r.i(1, 3)):
        cr = c.cred()
        extra.append("%s: %s" % (cr.ks("snake"), r.c(["%s", '"%s"']) % cr.v))
    return r.c(["group_vars/all.yml", "inventories/prod/group_vars/all.yml", "roles/%s/defaults/main.yml" % r.c(NOUNS), "host_vars/%s.yml" % c.host()]), S('''---
# «neg»
app_user: «u»
mysql_root_password: «p1»
mysql_users:
  - name: «u2»
    host: "%"
    password: "«p2»"
    priv: "«db».*:ALL"
vault_db_password: "{{ lookup('hashi_vault', 'secret=kv/data/db:password') }}"
ansible_become_pass: «bp»
«extra»
ssh_authorized_key: "«pub»"
«filler»
''', neg=c.nl("").strip(), u=c.user(), p1=c.pw(), u2=c.user(), p2=c.pw(), db=r.c(NOUNS), bp=r.c(["\"{{ vault_become_pass }}\"", c.pw()]),
        extra="\n".join(extra), pub=c.n_sshpub(), filler=f_yaml(c, r.c([0, 3, 8, 30, 70])))


@T("yaml")
def yaml_helm_values(c):
    r = c.r
    cr = c.cred()
    pk = ""
    if r.p(0.35):
        pk = "\ntls:\n  key: |\n    %s\n  cert: |\n    %s" % (c.pem(indent="    "), c.neg("public-key", public_key_pem(r).replace("\n", "\n    ")))
    return r.c(["values.yaml", "charts/%s/values.yaml" % r.c(PROJECTS), "deploy/values-%s.yaml" % r.c(ENVS)]), S('''replicaCount: «rc»
image:
  repository: «co»/«proj»
  tag: "«tag»"
  pullPolicy: IfNotPresent

postgresql:
  enabled: true
  auth:
    username: «u»
    password: «pw»
    postgresPassword: «pw2»
    existingSecret: ""

secrets:
  «ck»: «cv»
  sentryDsn: "{{ .Values.global.sentryDsn }}"
«pk»
resources:
  limits:
    cpu: 500m
    memory: 512Mi
«filler»
''', rc=r.i(1, 5), co=r.c(COMPANIES), proj=r.c(PROJECTS), tag=c.ver(), u=c.user(), pw=c.pw(), pw2=c.pw(), ck=cr.ks("camel"),
        cv=r.c(["%s", '"%s"']) % cr.v, pk=pk, filler=f_yaml(c, r.c([0, 2, 6, 25, 60])))


@T("yaml")
def yaml_rails_database(c):
    r = c.r
    return "config/database.yml", S('''default: &default
  adapter: postgresql
  encoding: unicode
  pool: <%= ENV.fetch("RAILS_MAX_THREADS") { 5 } %>

development:
  <<: *default
  database: «db»_development
  username: «du»
  password:

test:
  <<: *default
  database: «db»_test
  password: «tp»

production:
  <<: *default
  database: «db»_production
  username: «u»
  password: «pw»
  host: «h»
''', db=r.c(NOUNS), du=c.user(), tp=c.n_fixture(), u=c.user(), pw=r.c(["%s", "'%s'", "<%%= ENV['DB_PASSWORD'] || '%s' %%>"]) % c.pw(), h=c.host())


@T("yaml")
def yaml_serverless(c):
    r = c.r
    envs = []
    for _ in range(r.i(1, 4)):
        cr = c.cred()
        envs.append("    %s: %s" % (cr.ks("UPPER"), r.c(["%s", "'%s'"]) % cr.v))
    return "serverless.yml", S('''service: «proj»
frameworkVersion: "3"
«neg»

provider:
  name: aws
  runtime: «rt»
  region: «reg»
  environment:
    STAGE: ${sls:stage}
    TABLE_NAME: ${self:service}-${sls:stage}
«env»
    DB_PASSWORD: ${ssm:/«proj»/db_password}

functions:
  handler:
    handler: handler.main
    events:
      - httpApi: "POST /«o»s"
''', proj=r.c(PROJECTS), neg=c.nl("#"), rt=r.c(["python3.12", "nodejs20.x"]), reg=r.c(["us-east-1", "eu-west-1"]), env="\n".join(envs), o=r.c(NOUNS))


@T("yaml")
def yaml_alertmanager(c):
    r = c.r
    hook = c.cred(prov="slack-webhook")
    return r.c(["alertmanager.yml", "monitoring/alertmanager/config.yml"]), S('''global:
  resolve_timeout: 5m
  smtp_smarthost: 'smtp.«dom»:587'
  smtp_from: 'alerts@«dom»'
  smtp_auth_username: 'alerts@«dom»'
  smtp_auth_password: '«sp»'
  slack_api_url: '«hook»'

route:
  receiver: team-«team»
  group_by: [alertname, cluster]

receivers:
  - name: team-«team»
    slack_configs:
      - channel: '#alerts-«team»'
        send_resolved: true
    pagerduty_configs:
      - service_key: «pd»
''', dom=r.c(DOMAINS), sp=c.pw(fam="chat-mail", prov="smtp", ref="SMTP_PASSWORD"), hook=hook.v, team=r.c(NOUNS),
        pd=c.cred(prov="pagerduty").v)


@T("yaml")
def yaml_openapi(c):
    r = c.r
    ex = c.cred() if r.p(0.5) else None
    exline = ("          example: %s" % ex.v) if ex else "          example: %s" % c.n_ph()
    return r.c(["openapi.yaml", "docs/api/openapi.yml"]), S('''openapi: 3.0.3
info:
  title: «proj» API
  version: «ver»
servers:
  - url: https://«h»/v1
components:
  securitySchemes:
    ApiKeyAuth:
      type: apiKey
      in: header
      name: X-API-Key
    BearerAuth:
      type: http
      scheme: bearer
      bearerFormat: JWT
  schemas:
    Token:
      type: object
      properties:
        access_token:
          type: string
«exline»
        password:
          type: string
          format: password
          minLength: 12
          description: «pol»
paths:
  /«o»s/{id}:
    get:
      parameters:
        - name: id
          in: path
          required: true
          schema: {type: string, format: uuid}
          example: «uuid»
''', proj=r.c(PROJECTS), ver=c.ver(), h=c.host("x"), exline=exline, pol=c.n_policy(), o=r.c(NOUNS), uuid=c.n_uuid())


@T("yaml")
def yaml_private_key_block(c):
    r = c.r
    return r.c(["config/ssh.yml", "deploy/keys.yaml", "secrets/%s.yaml" % r.c(ENVS)]), S('''# deploy key used by the release job
deploy:
  host: «h»
  user: «u»
  known_hosts: "«h» «pub»"
  private_key: |
    «pk»
  passphrase: «pp»
''', h=c.host("x"), u=c.user(), pub=c.n_sshpub(), pk=c.pem(indent="    "), pp=r.c(['""', c.pw()]))


# ============================================================================================
# json
# ============================================================================================
@T("json")
def json_appsettings(c):
    r = c.r
    cs = c.cred(prov="adonet")
    a = c.cred()
    obj = {"Logging": {"LogLevel": {"Default": "Information", "Microsoft.AspNetCore": "Warning"}},
           "AllowedHosts": "*",
           "ConnectionStrings": {"DefaultConnection": cs.v, "Redis": "%s:6379,password=%s,ssl=True" % (c.host("x"), c.pw(fam="database", prov="redis-auth"))},
           a.ks("pascal"): a.v,
           "Smtp": {"Host": "smtp.%s" % r.c(DOMAINS), "User": c.email(), "Password": c.pw(fam="chat-mail", prov="smtp")},
           "ApplicationInsights": {"ConnectionString": "InstrumentationKey=%s;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/" % c.n_uuid()}}
    return r.c(["appsettings.json", "appsettings.Production.json", "src/Api/appsettings.json"]), jd(obj, r.c([2, 4]))


@T("json", neg_only=True)
def json_package_lock(c):
    r = c.r
    pk = {}
    for _ in range(r.i(5, 40)):
        name = r.c(["lodash", "react", "axios", "express", "debug", "ms", "chalk", "semver", "commander", "uuid", "qs",
                    "tslib", "zod", "yargs", "glob", "minimatch", "rimraf", "webpack", "@babel/core", "@types/node"]) + r.c(["", "-" + r.c(NOUNS)])
        v = "%d.%d.%d" % (r.i(0, 9), r.i(0, 30), r.i(0, 20))
        pk["node_modules/" + name] = {"version": c.neg("version", v), "resolved": "https://registry.npmjs.org/%s/-/%s-%s.tgz" % (name, name.split("/")[-1], v),
                                      "integrity": c.n_integrity(), "dev": r.p(0.3)}
    obj = {"name": r.c(PROJECTS), "version": "1.0.0", "lockfileVersion": 3, "requires": True, "packages": pk}
    return "package-lock.json", jd(obj)


@T("json")
def json_gcp_sa(c):
    r = c.r
    proj = "%s-%s-%d" % (r.c(COMPANIES), r.c(NOUNS), r.i(100000, 999999))
    sa = r.c(["terraform", "ci-deployer", "bq-loader", "firebase-adminsdk-%s" % r.s(5, LODG)])
    pk = c.pem(escaped=True, kind="pkcs8", fam="cloud", prov="gcp-service-account", allow_pub=False)
    text = S('''{
  "type": "service_account",
  "project_id": "«proj»",
  "private_key_id": "«pkid»",
  "private_key": "«pk»",
  "client_email": "«sa»@«proj».iam.gserviceaccount.com",
  "client_id": "«cid»",
  "auth_uri": "https://accounts.google.com/o/oauth2/auth",
  "token_uri": "https://oauth2.googleapis.com/token",
  "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
  "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/«sa»%40«proj».iam.gserviceaccount.com",
  "universe_domain": "googleapis.com"
}''', proj=proj, pkid=c.n_sha1(), pk=pk, sa=sa, cid=r.digits(21))
    return r.c(["service-account.json", "credentials/%s.json" % proj, "gcp-key.json", "keys/%s-sa.json" % r.c(ENVS)]), text


@T("json")
def json_composer_auth(c):
    r = c.r
    obj = {"http-basic": {"repo.packagist.com": {"username": "token", "password": c.cred(fam="generic-secret").v},
                          "%s" % c.host("x"): {"username": c.user(), "password": c.pw()}},
           "github-oauth": {"github.com": c.cred(prov=["github-pat", "github-oauth"]).v},
           "gitlab-token": {"gitlab.com": c.cred(prov="gitlab").v}}
    return "auth.json", jd(obj, 4)


@T("json")
def json_vscode_launch(c):
    r = c.r
    env = {}
    for _ in range(r.i(1, 4)):
        cr = c.cred()
        env[cr.ks("UPPER")] = cr.v
    env["NODE_ENV"] = "development"
    env["DB_PASSWORD"] = c.pw()
    obj = {"version": "0.2.0", "configurations": [{"type": r.c(["node", "python", "debugpy"]), "request": "launch", "name": "Debug %s" % r.c(NOUNS),
                                                    "program": "${workspaceFolder}/%s" % r.c(["src/index.js", "app/main.py"]), "env": env,
                                                    "envFile": "${workspaceFolder}/.env"}]}
    return ".vscode/launch.json", jd(obj, 4)


@T("json")
def json_tfstate(c):
    r = c.r
    res = []
    pw = c.pw()
    res.append({"mode": "managed", "type": "aws_db_instance", "name": "main", "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
                "instances": [{"schema_version": 2, "attributes": {"address": c.host(), "engine": "postgres", "engine_version": "15.4",
                                                                   "username": c.user(), "password": pw, "port": 5432, "id": c.neg("resource-id-url", "db-" + r.s(26, UPDG))},
                               "sensitive_attributes": [[{"type": "get_attr", "value": "password"}]]}]})
    if r.p(0.6):
        aws = c.cred(prov="aws-access-key")
        res.append({"mode": "managed", "type": "aws_iam_access_key", "name": "ci", "instances": [{"attributes": {
            "id": aws.v, "secret": aws.items[1][1], "user": "ci-deployer", "status": "Active", "ses_smtp_password_v4": c.n_ph()}}]})
    obj = {"version": 4, "terraform_version": "1.%d.%d" % (r.i(3, 9), r.i(0, 5)), "serial": r.i(1, 400), "lineage": c.n_uuid(), "outputs": {}, "resources": res}
    return r.c(["terraform.tfstate", "infra/terraform.tfstate", "terraform.tfstate.backup"]), jd(obj)


@T("json")
def json_jwks(c):
    r = c.r
    keys = []
    for _ in range(r.i(1, 2)):
        kid = r.s(12, LODG)
        if r.p(0.5):
            k = {"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "x": c.neg("public-key", r.b64u(32)), "y": c.neg("public-key", r.b64u(32))}
            if c.want():
                k["d"] = c.mark(r.b64u(32), "private-key", "jwk")
        else:
            k = {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": c.neg("public-key", r.b64u(256)), "e": "AQAB"}
            if c.want():
                k["d"] = c.mark(r.b64u(256), "private-key", "jwk")
        keys.append(k)
    return r.c(["jwks.json", "keys/jwks.json", "config/signing-key.jwk.json"]), jd({"keys": keys})


@T("json")
def json_postman(c):
    r = c.r
    t = c.cred()
    obj = {"info": {"_postman_id": c.n_uuid(), "name": "%s API" % _cap(r.c(PROJECTS)), "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
           "auth": {"type": "bearer", "bearer": [{"key": "token", "value": t.v, "type": "string"}]},
           "item": [{"name": "List %ss" % r.c(NOUNS), "request": {"method": "GET", "header": [{"key": "X-Api-Key", "value": c.cred(fam="generic-secret").v}],
                                                               "url": {"raw": "{{baseUrl}}/v1/%ss" % r.c(NOUNS)}}},
                    {"name": "Login", "request": {"method": "POST", "body": {"mode": "raw", "raw": json.dumps({"username": c.user(), "password": "{{password}}"})}}}],
           "variable": [{"key": "baseUrl", "value": "https://%s" % c.host("x")}, {"key": "password", "value": c.pw()}]}
    return r.c(["postman/%s.postman_collection.json" % r.c(PROJECTS), "docs/collection.json"]), jd(obj, "\t")


@T("json")
def json_aws_sts_output(c):
    r = c.r
    aws = c.cred(prov="aws-session-token")
    obj = {"Credentials": {"AccessKeyId": aws.v, "SecretAccessKey": aws.items[1][1], "SessionToken": aws.items[2][1] if len(aws.items) > 2 else c.n_ph(),
                           "Expiration": c.ts()},
           "AssumedRoleUser": {"AssumedRoleId": "%s:%s" % (c.neg("resource-id-url", "AROA" + r.s(17, UPDG)), c.user()), "Arn": "arn:aws:sts::%s:assumed-role/%s/%s" % (r.digits(12), r.c(["Admin", "Deploy", "ReadOnly"]), c.user())}}
    return r.c(["creds.json", "tmp/assume-role-output.json", "aws-session.json"]), jd(obj, 4)


@T("json")
def json_google_services(c):
    r = c.r
    k = c.cred(prov="gcp-api-key")
    proj = "%s-%s" % (r.c(COMPANIES), r.c(["app", "mobile"]))
    obj = {"project_info": {"project_number": r.digits(12), "project_id": proj, "storage_bucket": proj + ".appspot.com"},
           "client": [{"client_info": {"mobilesdk_app_id": "1:%s:android:%s" % (r.digits(12), r.hex(16)), "android_client_info": {"package_name": "com.%s.app" % r.c(COMPANIES), "certificate_hash": c.n_sha1()}},
                       "oauth_client": [], "api_key": [{"current_key": k.v}], "services": {"appinvite_service": {"other_platform_oauth_client": []}}}],
           "configuration_version": "1"}
    return r.c(["app/google-services.json", "android/app/google-services.json"]), jd(obj)


# ============================================================================================
# toml
# ============================================================================================
P("vcs-ci", "crates-io", "cargo registry token|crates io token", lambda R: "cio" + R.s(32), 0.3, px="cio")
BY_FAM.setdefault("vcs-ci", []).append(PROV[-1])
BY_PROV[PROV[-1]["prov"]] = PROV[-1]


@T("toml")
def toml_poetry_auth(c):
    r = c.r
    return r.c(["poetry/auth.toml", ".config/pypoetry/auth.toml"]), S('''[http-basic.«src»]
username = "«u»"
password = "«pw»"

[pypi-token]
pypi = "«tok»"
''', src=r.c(["private", "internal", "artifactory", "gemfury"]), u=c.user(), pw=c.pw(), tok=c.cred(prov="pypi").v)


@T("toml")
def toml_cargo_credentials(c):
    r = c.r
    return r.c([".cargo/credentials.toml", ".cargo/credentials"]), S('''# «neg»
[registry]
token = "«t1»"

[registries.«reg»]
token = "«t2»"
''', t1=c.cred(prov="crates-io").v, neg=c.nl("").strip(), reg=r.c(COMPANIES), t2=r.c(["Bearer %s" % c.cred(fam="generic-secret").v, c.cred(prov=["jfrog", "github-pat"]).v]))


@T("toml")
def toml_netlify(c):
    r = c.r
    envs = []
    for _ in range(r.i(1, 3)):
        cr = c.cred()
        envs.append('  %s = "%s"' % (cr.ks("UPPER"), cr.v))
    return "netlify.toml", S('''[build]
  command = "npm run build"
  publish = "dist"

[build.environment]
  NODE_VERSION = "20"
«env»

[[redirects]]
  from = "/api/*"
  to = "https://«h»/:splat"
  status = 200
''', env="\n".join(envs), h=c.host("x"))


@T("toml")
def toml_app_config(c):
    r = c.r
    a = c.cred()
    return r.c(["config.toml", "config/%s.toml" % r.c(ENVS), "settings.toml"]), S('''# «proj» configuration
title = "«proj»"

[server]
bind = "0.0.0.0:«port»"
workers = «w»

[database]
host = "«h»"
user = "«u»"
password = «pwq»
pool_size = 10

[«grp»]
«ak» = '«av»'
endpoint = "https://«h2»"

[release]
commit = "«sha»"
''', proj=r.c(PROJECTS), port=r.c([8080, 9000]), w=r.i(2, 16), h=c.host(), u=c.user(), pwq=r.c(['"%s"', "'%s'"]) % c.pw(), grp=r.c(["api", "integrations", "upstream"]),
        ak=a.ks("snake"), av=a.v, h2=c.host("x"), sha=c.n_git())


@T("toml")
def toml_streamlit_secrets(c):
    r = c.r
    a = c.cred(fam=["ai", "saas", "database"])
    return ".streamlit/secrets.toml", S('''# Everything in this section will be available as an environment variable
«ak» = "«av»"

# «neg»
[connections.«cn»]
dialect = "postgresql"
host = "«h»"
port = "5432"
database = "«db»"
username = "«u»"
password = "«pw»"
''', ak=a.ks("snake"), neg=c.nl("").strip(), av=a.v, cn=r.c(["postgresql", "warehouse", "db"]), h=c.host(), db=r.c(NOUNS), u=c.user(), pw=c.pw())


@T("toml")
def toml_gitlab_runner(c):
    r = c.r
    if c.want():
        tok = c.mark("glrt-" + r.s(20, B64U), "vcs-ci", "gitlab-runner")
    else:
        tok = c.n_ref("RUNNER_TOKEN")
    return "etc/gitlab-runner/config.toml", S('''concurrent = «cc»
check_interval = 0

[session_server]
  session_timeout = 1800

[[runners]]
  name = "«name»"
  url = "https://gitlab.«dom»/"
  id = «id»
  token = "«tok»"
  token_obtained_at = «ts»
  executor = "docker"
  [runners.docker]
    image = "alpine:3.19"
    privileged = false
    «neg»
    volumes = ["/cache"]
''', cc=r.i(1, 8), name="%s-runner-%02d" % (r.c(ENVS), r.i(1, 20)), dom=r.c(DOMAINS), id=r.i(10, 9999), tok=tok, ts=c.ts(), neg=c.nl("#"))


# ============================================================================================
# ini / cfg / properties
# ============================================================================================
@T("ini")
def ini_mycnf(c):
    r = c.r
    return r.c([".my.cnf", "etc/mysql/conf.d/client.cnf", "my.cnf"]), S('''[client]
user=«u»
password=«pw»
host=«h»
port=3306
«neg»

[mysqldump]
user=«u2»
password="«pw2»"
single-transaction
''', u=c.user(), pw=c.pw(), h=c.host(), u2=c.user(), pw2=c.pw(), neg=c.nl("#"))


@T("ini")
def ini_spring_properties(c):
    r = c.r
    a = c.cred()
    sep = r.c(["=", " = ", ":"])
    return r.c(["src/main/resources/application.properties", "src/main/resources/application-prod.properties", "config/app.properties"]), S('''# «neg»
spring.application.name«s»«proj»
server.port«s»«port»
spring.datasource.url«s»jdbc:mysql://«h»:3306/«db»?useSSL=true
spring.datasource.username«s»«u»
spring.datasource.password«s»«pw»
spring.jpa.hibernate.ddl-auto«s»validate
spring.mail.host«s»smtp.«dom»
spring.mail.username«s»«mu»
spring.mail.password«s»«mp»
app.«ak»«s»«av»
app.password-reset.url«s»https://«h2»/reset-password
app.password.min-length«s»«ml»
''', neg=c.nl("").strip(), s=sep, proj=r.c(PROJECTS), port=r.c([8080, 8081]), h=c.host(), db=r.c(NOUNS), u=c.user(), pw=c.pw(ref="DB_PASSWORD"),
        dom=r.c(DOMAINS), mu=c.email(), mp=c.pw(fam="chat-mail", prov="smtp", ref="MAIL_PASSWORD"), ak=a.ks("kebab"), av=a.v, h2=c.host("x"), ml=r.c([8, 12]))


@T("ini")
def ini_alembic(c):
    r = c.r
    return r.c(["alembic.ini", "migrations/alembic.ini"]), S('''# A generic, single database configuration.

[alembic]
script_location = migrations
prepend_sys_path = .
«neg»
sqlalchemy.url = «url»

[loggers]
keys = root,sqlalchemy,alembic

[logger_root]
level = WARN
handlers = console
qualname =
''', url=c.dburl(prov=["postgres-url", "sqlalchemy-url", "mysql-url"]).v, neg=c.nl("#"))


@T("ini")
def ini_odbc(c):
    r = c.r
    return r.c(["odbc.ini", "etc/odbc.ini"]), S('''[ODBC Data Sources]
«dsn» = ODBC Driver 18 for SQL Server

[«dsn»]
Driver = ODBC Driver 18 for SQL Server
Server = tcp:«h»,1433
Database = «db»
UID = «u»
PWD = «pw»
Encrypt = yes
«neg»
TrustServerCertificate = no
''', dsn=_cap(r.c(NOUNS)) + r.c(["Prod", "DW", "Reporting"]), h=c.host(), db=_cap(r.c(NOUNS)), u=c.user(), pw=c.pw(), neg=c.nl(";"))


@T("ini")
def ini_aws_credentials(c):
    r = c.r
    blocks = []
    for prof in r.sample(["default", "prod", "staging", "deploy", "personal", "ci"], r.i(1, 3)):
        aws = c.cred(prov=r.c(["aws-access-key", "aws-access-key", "aws-session-token"]))
        b = "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s" % (prof, aws.v, aws.items[1][1])
        if len(aws.items) > 2:
            b += "\naws_session_token = %s" % aws.items[2][1]
        blocks.append(b)
    if r.p(0.6):
        blocks.insert(0, c.nl("#"))
    return r.c([".aws/credentials", "home/%s/.aws/credentials" % r.c(FIRST)]), "\n\n".join(blocks)


@T("ini")
def ini_gradle_properties(c):
    r = c.r
    return "gradle.properties", S('''org.gradle.jvmargs=-Xmx2048m -Dfile.encoding=UTF-8
android.useAndroidX=true
kotlin.code.style=official
signing.keyId=«kid»
signing.password=«sp»
signing.secretKeyRingFile=/home/«who»/.gnupg/secring.gpg
ossrhUsername=«u»
ossrhPassword=«op»
«extra»
''', kid=c.neg("git-sha", r.s(8, HEXU)), sp=c.pw(), who=r.c(FIRST), u=c.user(), op=c.pw(),
        extra=r.c(["", "artifactory_password=%s" % c.cred(prov="jfrog").v, "githubToken=%s" % c.cred(prov="github-pat").v]))


@T("ini")
def ini_pip_conf(c):
    r = c.r
    u = c.user()
    if c.want():
        pw = c.mark(human_password(r, "url"), "password", "pip-index-url")
    else:
        pw = c.n_ref("PIP_PASSWORD")
    return r.c(["pip.conf", "etc/pip.conf", ".config/pip/pip.conf"]), S('''[global]
timeout = 60
«neg»
index-url = https://«u»:«pw»@«h»/artifactory/api/pypi/pypi-remote/simple
trusted-host = «h»
''', u=u, pw=pw, h=c.host("x"), neg=c.nl("#"))


@T("ini")
def ini_app_cfg(c):
    r = c.r
    a, b = c.cred(), c.cred(fam="generic-secret")
    return r.c(["config.cfg", "settings.ini", "app.ini", "conf/%s.cfg" % r.c(ENVS)]), S('''; «proj» settings
[DEFAULT]
debug = false
log_level = info

[database]
host = «h»
port = 5432
user = «u»
passwd = «pw»
; password policy: «pol»

[«grp»]
«ak» = «av»
«bk»: «bv»
timeout = 30
''', proj=r.c(PROJECTS), h=c.host(), u=c.user(), pw=c.pw(), pol=c.n_policy(), grp=r.c(["api", "external", "partner"]), ak=a.ks("snake"), av=a.v,
        bk=b.ks("snake"), bv=b.v)


@T("ini")
def ini_rclone(c):
    r = c.r
    aws = c.cred(prov="aws-access-key")
    az = c.cred(prov="azure-storage-key")
    return r.c([".config/rclone/rclone.conf", "rclone.conf"]), S('''[s3-backup]
type = s3
provider = AWS
access_key_id = «ak»
secret_access_key = «sk»
region = «reg»

[azure]
type = azureblob
account = «acct»
key = «azk»

[sftp-legacy]
type = sftp
host = «h»
user = «u»
pass = «obs»
''', ak=aws.v, sk=aws.items[1][1], reg=r.c(["us-east-1", "eu-west-1"]), acct=r.c(COMPANIES) + "backups", azk=az.v, h=c.host("x"), u=c.user(),
        obs=c.neg("placeholder", r.c(["*** ENCRYPTED ***", "<obscured>"])))


# ============================================================================================
# xml
# ============================================================================================
@T("xml")
def xml_maven_settings(c):
    r = c.r
    servers = []
    for _ in range(r.i(1, 3)):
        pw = c.pw() if r.p(0.6) else c.cred(prov=["jfrog", "sonatype", "github-pat", "gitlab"]).v
        servers.append('''    <server>
      <id>%s</id>
      <username>%s</username>
      <password>%s</password>
    </server>''' % (r.c(["central", "releases", "snapshots", "ossrh", "github", "nexus"]), c.user(), pw))
    return r.c([".m2/settings.xml", "settings.xml", "ci/maven-settings.xml"]), S('''<?xml version="1.0" encoding="UTF-8"?>
<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0"
          xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
          xsi:schemaLocation="http://maven.apache.org/SETTINGS/1.0.0 https://maven.apache.org/xsd/settings-1.0.0.xsd">
  <servers>
«servers»
  </servers>
  <mirrors>
    <mirror>
      <id>nexus</id>
      <mirrorOf>*</mirrorOf>
      <url>https://«h»/repository/maven-public/</url>
    </mirror>
  </mirrors>
</settings>
''', servers="\n".join(servers), h=c.host("x"))


@T("xml")
def xml_nuget_config(c):
    r = c.r
    feed = r.c(["internal", "azure-artifacts", "github", "company-feed"])
    pw = c.pw() if r.p(0.5) else c.cred(prov=["github-pat", "nuget"]).v
    return r.c(["nuget.config", "NuGet.Config"]), S('''<?xml version="1.0" encoding="utf-8"?>
<configuration>
  «neg»
  <packageSources>
    <clear />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
    <add key="«feed»" value="https://pkgs.dev.azure.com/«co»/_packaging/«feed»/nuget/v3/index.json" />
  </packageSources>
  <packageSourceCredentials>
    <«feed»>
      <add key="Username" value="«u»" />
      <add key="ClearTextPassword" value="«pw»" />
    </«feed»>
  </packageSourceCredentials>
  <apikeys>
    <add key="https://www.nuget.org" value="«nk»" />
  </apikeys>
</configuration>
''', feed=feed, co=r.c(COMPANIES), u=c.user(), pw=pw, nk=c.cred(prov="nuget").v, neg=c.nl("<!--", "-->"))


@T("xml")
def xml_web_config(c):
    r = c.r
    cs = c.cred(prov="adonet")
    a = c.cred()
    return r.c(["Web.config", "web.config", "App.config"]), S('''<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <connectionStrings>
    <add name="DefaultConnection" connectionString="«cs»" providerName="System.Data.SqlClient" />
  </connectionStrings>
  <appSettings>
    <add key="webpages:Version" value="3.0.0.0" />
    <add key="«ak»" value="«av»" />
    <add key="PasswordResetUrl" value="/Account/ForgotPassword" />
    <add key="BuildId" value="«sha»" />
  </appSettings>
  <system.web>
    <compilation debug="false" targetFramework="4.8" />
    <machineKey validationKey="«vk»" decryptionKey="«dk»" validation="HMACSHA256" decryption="AES" />
  </system.web>
</configuration>
''', cs=cs.v, ak=a.ks("pascal"), av=a.v, sha=c.n_git(), vk=(c.mark(r.s(128, HEXU), "generic-secret", "aspnet-machinekey") if c.want() else "AutoGenerate,IsolateApps"),
        dk=(c.mark(r.s(64, HEXU), "generic-secret", "aspnet-machinekey") if c.want() else "AutoGenerate,IsolateApps"))


@T("xml")
def xml_logback_smtp(c):
    r = c.r
    return r.c(["src/main/resources/logback.xml", "logback-spring.xml"]), S('''<configuration>
  «neg»
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{ISO8601} %-5level [%thread] %logger{36} - %msg%n</pattern></encoder>
  </appender>
  <appender name="EMAIL" class="ch.qos.logback.classic.net.SMTPAppender">
    <smtpHost>smtp.«dom»</smtpHost>
    <smtpPort>587</smtpPort>
    <STARTTLS>true</STARTTLS>
    <username>«u»</username>
    <password>«pw»</password>
    <to>oncall@«dom»</to>
    <from>noreply@«dom»</from>
    <subject>«proj»: %logger{20} - %m</subject>
  </appender>
  <root level="INFO">
    <appender-ref ref="STDOUT" />
    <appender-ref ref="EMAIL" />
  </root>
</configuration>
''', dom=r.c(DOMAINS), u=c.email(), pw=c.pw(fam="chat-mail", prov="smtp", ref="SMTP_PASSWORD"), proj=r.c(PROJECTS), neg=c.nl("<!--", "-->"))


@T("xml")
def xml_hibernate(c):
    r = c.r
    return r.c(["src/main/resources/hibernate.cfg.xml", "hibernate.cfg.xml"]), S('''<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE hibernate-configuration PUBLIC "-//Hibernate/Hibernate Configuration DTD 3.0//EN"
        "http://www.hibernate.org/dtd/hibernate-configuration-3.0.dtd">
<hibernate-configuration>
  <session-factory>
    «neg»
    <property name="hibernate.connection.driver_class">org.postgresql.Driver</property>
    <property name="hibernate.connection.url">jdbc:postgresql://«h»:5432/«db»</property>
    <property name="hibernate.connection.username">«u»</property>
    <property name="hibernate.connection.password">«pw»</property>
    <property name="hibernate.dialect">org.hibernate.dialect.PostgreSQLDialect</property>
    <property name="show_sql">false</property>
  </session-factory>
</hibernate-configuration>
''', h=c.host(), db=r.c(NOUNS), u=c.user(), pw=c.pw(), neg=c.nl("<!--", "-->"))


@T("xml")
def xml_android_strings(c):
    r = c.r
    a = c.cred(prov=["gcp-api-key", "gcp-api-key", "facebook", "mapbox", "twitter"])
    return "app/src/main/res/values/strings.xml", S('''<resources>
    <string name="app_name">«app»</string>
    <string name="«ak»" translatable="false">«av»</string>
    <string name="login_password_hint">Password</string>
    <string name="error_password_short">«pol»</string>
    <string name="forgot_password">Forgot password?</string>
    <string name="ga_trackingId">«ga»</string>
</resources>
''', app=_cap(r.c(COMPANIES)), ak=a.ks("snake"), av=a.v, pol=c.n_policy(), ga=c.n_ga())


@T("xml")
def xml_pom(c):
    r = c.r
    deps = []
    for _ in range(r.i(3, 12)):
        deps.append('''    <dependency>
      <groupId>org.%s</groupId>
      <artifactId>%s-%s</artifactId>
      <version>%s</version>
    </dependency>''' % (r.c(["apache", "springframework", "slf4j", "junit"]), r.c(NOUNS), r.c(["core", "api", "client"]), c.ver()))
    extra = ""
    if r.p(0.5):
        extra = "\n    <sonar.login>%s</sonar.login>" % c.cred(prov=["sonarqube", "sonarqube"]).v
    return "pom.xml", S('''<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.«co»</groupId>
  <artifactId>«proj»</artifactId>
  <version>«ver»</version>
  <properties>
    <java.version>17</java.version>
    <git.commit.id>«sha»</git.commit.id>«extra»
  </properties>
  <dependencies>
«deps»
  </dependencies>
</project>
''', co=r.c(COMPANIES), proj=r.c(PROJECTS), ver=c.ver(), sha=c.n_git(), extra=extra, deps="\n".join(deps))


@T("xml")
def xml_tomcat_users(c):
    r = c.r
    users = []
    for _ in range(r.i(1, 3)):
        users.append('  <user username="%s" password="%s" roles="%s"/>' % (c.user(), c.pw(), r.c(["manager-gui", "admin-gui,manager-script", "manager-status"])))
    return r.c(["conf/tomcat-users.xml", "tomcat/conf/tomcat-users.xml"]), S('''<?xml version="1.0" encoding="UTF-8"?>
<tomcat-users xmlns="http://tomcat.apache.org/xml" version="1.0">
  <role rolename="manager-gui"/>
  «neg»
  <role rolename="admin-gui"/>
«users»
<!--
  <user username="admin" password="<must-be-changed>" roles="manager-gui"/>
-->
</tomcat-users>
''', users="\n".join(users), neg=c.nl("<!--", "-->"))


# ============================================================================================
# env
# ============================================================================================
def env_line(c, key, val, style=None):
    r = c.r
    style = style or r.w([("plain", 5), ("dq", 3), ("sq", 1), ("export", 1), ("spaces", 0.5)])
    if style == "plain":
        return "%s=%s" % (key, val)
    if style == "dq":
        return '%s="%s"' % (key, val)
    if style == "sq":
        return "%s='%s'" % (key, val)
    if style == "export":
        return "export %s=%s" % (key, val)
    return "%s = %s" % (key, val)


@T("env")
def env_dotenv(c):
    r = c.r
    out = ["# %s" % r.c(["Local environment", "Generated by setup.sh", "DO NOT COMMIT", "app settings"]),
           env_line(c, "NODE_ENV", r.c(ENVS)), env_line(c, "PORT", str(r.c([3000, 8080])))]
    blocks = r.i(2, 7)
    for _ in range(blocks):
        k = r.i(0, 5)
        if k == 0:
            out += ["", "# database", env_line(c, "DB_HOST", c.host()), env_line(c, "DB_USER", c.user()),
                    env_line(c, r.c(["DB_PASSWORD", "DB_PASS", "POSTGRES_PASSWORD", "MYSQL_PASSWORD", "DB_PWD"]), c.pw(safe="shell"))]
        elif k == 1:
            out.append(env_line(c, "DATABASE_URL", c.dburl().v))
        elif k == 2:
            out.append(env_line(c, r.c(["SENTRY_RELEASE", "GIT_SHA", "BUILD_COMMIT"]), c.n_git()))
        elif k == 3:
            out.append(env_line(c, r.c(["API_KEY", "SECRET_KEY", "JWT_SECRET"]), c.n_ref(r.c(["API_KEY", "SECRET_KEY", "JWT_SECRET"])) if r.p(0.3) else c.n_ph()))
        else:
            cr = c.cred()
            for kk, vv in cr.items:
                out.append(env_line(c, key_style(kk, "UPPER"), vv))
    return r.c([".env", "backend/.env", "api/.env", ".env.development"]), "\n".join(out)


@T("env")
def env_example(c):
    r = c.r
    out = ["# Copy this file to .env and fill in the values", ""]
    for _ in range(r.i(4, 14)):
        e = c.entry()
        k = key_style(r.c(e["keys"]), "UPPER")
        if r.p(0.12):
            cr = c.cred(prov=e["prov"])
            out.append("%s=%s" % (key_style(cr.k, "UPPER"), cr.v))
        else:
            out.append("%s=%s" % (k, r.c([c.n_ph(), "", c.neg("placeholder", (e["px"] or "") + "xxxxxxxxxxxx"),
                                          c.neg("vendor-example", e["ex"][0]) if e["ex"] else c.n_ref(k)])))
    out.append("DB_PASSWORD=%s" % c.pw())
    return r.c([".env.example", ".env.sample", ".env.template", "env.example"]), "\n".join(out)


@T("env")
def env_production(c):
    r = c.r
    out = ["# ---- %s ----" % r.c(["production", "prod", "live"]), "APP_ENV=production", "APP_DEBUG=false", "APP_URL=https://%s" % c.host("x"), ""]
    out.append("APP_KEY=base64:%s" % (c.mark(r.b64(32), "generic-secret", "laravel-app-key") if c.want() else c.n_ph()))
    out += ["", "DB_CONNECTION=mysql", "DB_HOST=%s" % c.host(), "DB_DATABASE=%s" % r.c(NOUNS), "DB_USERNAME=%s" % c.user(), "DB_PASSWORD=%s" % c.pw(safe="shell"), ""]
    out += ["MAIL_MAILER=smtp", "MAIL_HOST=smtp.%s" % r.c(DOMAINS), "MAIL_USERNAME=%s" % c.email(), "MAIL_PASSWORD=%s" % c.pw(safe="shell", fam="chat-mail", prov="smtp"), ""]
    for _ in range(r.i(1, 4)):
        cr = c.cred()
        for kk, vv in cr.items:
            out.append(env_line(c, key_style(kk, "UPPER"), vv))
    out.append("# %s" % c.nl("").strip())
    return r.c([".env.production", ".env.prod", "deploy/.env.production"]), "\n".join(out)


@T("env")
def env_local_frontend(c):
    r = c.r
    out = ["NEXT_PUBLIC_API_URL=https://%s" % c.host("x"), "NEXT_PUBLIC_GA_MEASUREMENT_ID=%s" % c.n_ga(),
           "NEXT_PUBLIC_STRIPE_PUBLISHABLE_KEY=%s" % c.n_pk_live(), "NEXT_PUBLIC_SENTRY_ENVIRONMENT=%s" % r.c(ENVS)]
    for _ in range(r.i(1, 3)):
        cr = c.cred(fam=["payment", "ai", "saas", "cloud", "generic-secret"])
        out.append(env_line(c, cr.ks("UPPER"), cr.v, "plain"))
    out.append("NEXTAUTH_SECRET=%s" % (c.mark(r.b64(32), "generic-secret", "nextauth-secret") if c.want() else c.n_ref("NEXTAUTH_SECRET")))
    r.shuffle(out)
    return r.c([".env.local", "web/.env.local", "frontend/.env.local"]), "\n".join(out)


@T("env")
def env_docker_envfile(c):
    r = c.r
    out = ["POSTGRES_USER=%s" % c.user(), "POSTGRES_PASSWORD=%s" % c.pw(safe="shell", ref="POSTGRES_PASSWORD"), "POSTGRES_DB=%s" % r.c(NOUNS),
           "PGDATA=/var/lib/postgresql/data/pgdata"]
    if r.p(0.6):
        out += ["RABBITMQ_DEFAULT_USER=%s" % c.user(), "RABBITMQ_DEFAULT_PASS=%s" % c.pw(safe="shell")]
    if r.p(0.5):
        out += ["MINIO_ROOT_USER=%s" % c.user(), "MINIO_ROOT_PASSWORD=%s" % c.pw(safe="shell")]
    return r.c(["docker/db.env", "deploy/app.env", "env/postgres.env"]), "\n".join(out)


@T("env")
def env_flaskenv(c):
    r = c.r
    return r.c([".flaskenv", ".env.test"]), S('''FLASK_APP=«app».py
FLASK_DEBUG=«dbg»
«neg»
SECRET_KEY=«sk»
SQLALCHEMY_DATABASE_URI=«url»
''', app=r.c(["app", "wsgi", "manage"]), dbg=r.c(["0", "1"]), neg=c.nl("#"), sk=c.pw(prov="flask-secret-key", safe="shell", ref="SECRET_KEY"), url=c.dburl(prov=["sqlalchemy-url", "postgres-url"]).v)


# ============================================================================================
# hcl (terraform)
# ============================================================================================
@T("hcl")
def hcl_provider(c):
    r = c.r
    aws = c.cred(prov="aws-access-key")
    return r.c(["main.tf", "providers.tf", "infra/%s/main.tf" % r.c(ENVS)]), S('''terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region     = "«reg»"
  access_key = "«ak»"
  secret_key = "«sk»"
}

resource "aws_s3_bucket" "«b»" {
  bucket = "«co»-«b»"
  tags = {
    Commit = "«sha»"
  }
}
''', reg=r.c(["us-east-1", "eu-west-1", "eu-central-1"]), ak=aws.v, sk=aws.items[1][1], b=r.c(["logs", "assets", "backups"]), co=r.c(COMPANIES), sha=c.n_git())


@T("hcl")
def hcl_variables(c):
    r = c.r
    a = c.cred()
    return r.c(["variables.tf", "modules/%s/variables.tf" % r.c(NOUNS)]), S('''variable "environment" {
  type    = string
  default = "«env»"
}

variable "db_password" {
  description = "Master password for the RDS instance. «pol»"
  type        = string
  sensitive   = true
  default     = "«pw»"
}

variable "«ak»" {
  type      = string
  sensitive = true
  default   = "«av»"
}

variable "db_password_ssm_path" {
  type    = string
  default = "/«proj»/db/password"
}
''', env=r.c(ENVS), pol=c.n_policy(), pw=c.pw(), ak=a.ks("snake"), av=a.v, proj=r.c(PROJECTS))


@T("hcl")
def hcl_tfvars(c):
    r = c.r
    out = ['environment = "%s"' % r.c(ENVS), 'region      = "%s"' % r.c(["us-east-1", "eu-west-1"]), 'db_username = "%s"' % c.user(),
           'db_password = "%s"' % c.pw()]
    for _ in range(r.i(1, 3)):
        cr = c.cred()
        out.append('%s = "%s"' % (cr.ks("snake"), cr.v))
    out.append('ami_id = "ami-%s"' % c.neg("resource-id-url", r.hex(17)))
    return r.c(["terraform.tfvars", "%s.tfvars" % r.c(ENVS), "env/%s.auto.tfvars" % r.c(ENVS)]), "\n".join(out)


@T("hcl")
def hcl_rds(c):
    r = c.r
    return r.c(["rds.tf", "database.tf"]), S('''resource "aws_db_instance" "«name»" {
  identifier             = "«name»-«env»"
  engine                 = "«eng»"
  instance_class         = "db.t3.medium"
  allocated_storage      = 50
  username               = "«u»"
  password               = «pwexpr»
  skip_final_snapshot    = true
  vpc_security_group_ids = [aws_security_group.db.id]
}

# «neg»
resource "random_password" "replica" {
  length  = 24
  special = true
}
''', name=r.c(NOUNS), env=r.c(ENVS), eng=r.c(["postgres", "mysql"]), u=c.user(), neg=c.nl("").strip(),
        pwexpr=r.c(['"%s"' % c.pw(), "random_password.replica.result", "var.db_password", '"%s"' % c.pw()]))


@T("hcl")
def hcl_misc_providers(c):
    r = c.r
    return r.c(["providers.tf", "versions.tf"]), S('''provider "cloudflare" {
  api_token = "«cf»"
}

provider "datadog" {
  api_key = "«dd»"
  app_key = var.datadog_app_key
}

provider "github" {
  owner = "«co»"
  token = "«gh»"
}

provider "vault" {
  address = "https://vault.«dom»:8200"
  token   = "«vt»"
}
''', cf=c.cred(prov="cloudflare-api-token").v, dd=c.cred(prov="datadog").v, co=r.c(COMPANIES), gh=c.cred(prov=["github-pat", "github-fine-grained-pat"]).v,
        dom=r.c(DOMAINS), vt=c.cred(prov="vault").v)


@T("hcl")
def hcl_heredoc_key(c):
    r = c.r
    return r.c(["bastion.tf", "modules/ssh/main.tf"]), S('''resource "aws_key_pair" "deployer" {
  key_name   = "deployer"
  public_key = "«pub»"
}

locals {
  deploy_private_key = <<-EOT
    «pk»
  EOT
}

resource "null_resource" "provision" {
  connection {
    type        = "ssh"
    host        = "«h»"
    user        = "«u»"
    private_key = local.deploy_private_key
  }
}
''', pub=c.n_sshpub(), pk=c.pem(indent="    "), h=c.host("x"), u=c.user())


# ============================================================================================
# dockerfile
# ============================================================================================
@T("dockerfile")
def df_env(c):
    r = c.r
    envs = []
    for _ in range(r.i(1, 3)):
        cr = c.cred()
        envs.append(r.c(["ENV %s=%s", "ENV %s %s", 'ENV %s="%s"']) % (cr.ks("UPPER"), cr.v))
    return r.c(["Dockerfile", "docker/Dockerfile", "Dockerfile.prod"]), S('''FROM «base»@sha256:«dig»
LABEL org.opencontainers.image.revision="«sha»"
WORKDIR /app
«envs»
ENV DB_PASSWORD=«pw»
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
EXPOSE 8000
CMD ["gunicorn", "-b", "0.0.0.0:8000", "app:app"]
''', base=r.c(["python:3.12-slim", "python:3.11-alpine"]), dig=c.n_sha256(), sha=c.n_git(), envs="\n".join(envs), pw=c.pw(safe="shell"))


@T("dockerfile")
def df_arg_npm(c):
    r = c.r
    return r.c(["Dockerfile", "web/Dockerfile"]), S('''# «neg»
FROM node:20-alpine AS build
ARG NPM_TOKEN=«tok»
WORKDIR /src
RUN echo "//registry.npmjs.org/:_authToken=${NPM_TOKEN}" > .npmrc
COPY package*.json ./
RUN npm ci && rm -f .npmrc
COPY . .
RUN npm run build

FROM nginx:1.25-alpine
COPY --from=build /src/dist /usr/share/nginx/html
''', tok=c.cred(prov="npm").v, neg=c.nl("").strip())


@T("dockerfile")
def df_pip_index(c):
    r = c.r
    u = c.user()
    if c.want():
        pw = c.mark(human_password(r, "url"), "password", "pip-index-url")
    else:
        pw = "${PIP_PASSWORD}"
    return r.c(["Dockerfile", "services/%s/Dockerfile" % r.c(NOUNS)]), S('''FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1
RUN pip install --extra-index-url https://«u»:«pw»@«h»/simple/ «pkg»==«v»
COPY . /app
WORKDIR /app
CMD ["python", "-m", "«pkg»"]
''', u=u, pw=pw, h=c.host("x"), pkg=r.c(NOUNS) + "-sdk", v=c.ver())


@T("dockerfile")
def df_run_curl(c):
    r = c.r
    t = c.cred(prov=["github-pat", "gitlab", "jfrog", "github-fine-grained-pat"])
    return r.c(["Dockerfile", "build/Dockerfile"]), S('''FROM ubuntu:22.04
RUN apt-get update && apt-get install -y curl ca-certificates && rm -rf /var/lib/apt/lists/*
RUN curl -fsSL -H "Authorization: token «tok»" \\
      -o /usr/local/bin/«tool» https://«h»/releases/download/«v»/«tool»-linux-amd64 \\
 && echo "«sha»  /usr/local/bin/«tool»" | sha256sum -c - \\
 && chmod +x /usr/local/bin/«tool»
ENTRYPOINT ["/usr/local/bin/«tool»"]
''', tok=t.v, tool=r.c(NOUNS) + "ctl", h=r.c(["github.com/%s/%s" % (r.c(COMPANIES), r.c(PROJECTS)), c.host("x")]), v=c.ver(), sha=c.n_sha256())


@T("dockerfile")
def df_database(c):
    r = c.r
    return r.c(["db/Dockerfile", "Dockerfile.db"]), S('''FROM «img»
ENV «pwvar»=«pw»
ENV «uvar»=«u»
LABEL org.opencontainers.image.revision="«sha»"
COPY init.sql /docker-entrypoint-initdb.d/
HEALTHCHECK CMD «hc»
''', img=r.c(["postgres:16", "mysql:8.0", "mariadb:11"]), pwvar=r.c(["POSTGRES_PASSWORD", "MYSQL_ROOT_PASSWORD", "MARIADB_ROOT_PASSWORD"]), pw=c.pw(safe="shell"),
        uvar=r.c(["POSTGRES_USER", "MYSQL_USER"]), u=c.user(), sha=c.n_git(), hc=r.c(["pg_isready -U postgres", "mysqladmin ping -h localhost"]))


# ============================================================================================
# sql
# ============================================================================================
@T("sql")
def sql_create_user(c):
    r = c.r
    out = ["-- users for the %s service" % r.c(PROJECTS), "-- %s" % c.nl("").strip()]
    for _ in range(r.i(1, 4)):
        u = c.user()
        out.append(r.c(["CREATE USER '%s'@'%%' IDENTIFIED BY '%s';", "CREATE USER IF NOT EXISTS '%s'@'localhost' IDENTIFIED BY '%s';",
                        "CREATE USER %s IDENTIFIED BY \"%s\";"]) % (u, c.pw()))
        out.append("GRANT SELECT, INSERT, UPDATE ON %s.* TO '%s'@'%%';" % (r.c(NOUNS), u))
    out.append("FLUSH PRIVILEGES;")
    return r.c(["db/users.sql", "sql/001_create_users.sql", "init/grants.sql"]), "\n".join(out) + "\n\n" + f_sql(c, r.i(0, 3))


@T("sql")
def sql_alter_role(c):
    r = c.r
    out = ["BEGIN;"]
    for _ in range(r.i(1, 3)):
        u = c.user().replace(".", "_")
        out.append(r.c(["ALTER ROLE %s WITH PASSWORD '%s';", "CREATE ROLE %s WITH LOGIN PASSWORD '%s' VALID UNTIL 'infinity';",
                        "ALTER USER %s PASSWORD '%s';"]) % (u, c.pw()))
    out.append("GRANT CONNECT ON DATABASE %s TO %s;" % (r.c(NOUNS), c.user().replace(".", "_")))
    out.append("COMMIT;")
    return r.c(["migrations/V%d__roles.sql" % r.i(1, 99), "db/roles.sql"]), f_sql(c, r.i(0, 2)) + "\n\n" + "\n".join(out)


@T("sql")
def sql_seed(c):
    r = c.r
    rows = []
    for _ in range(r.i(2, 8)):
        rows.append("  ('%s', '%s', '%s', '%s')" % (c.n_uuid(), c.email(), c.n_bcrypt(), r.c(["admin", "user", "support"])))
    key = c.cred()
    return r.c(["db/seed.sql", "seeds/001_users.sql"]), S('''-- seed data («date»)
INSERT INTO users (id, email, password_hash, role) VALUES
«rows»;

INSERT INTO api_keys (name, key, created_by) VALUES ('«n»', '«kv»', 'admin');
INSERT INTO settings (key, value) VALUES ('password_min_length', '12'), ('smtp_password', '«sp»');
''', date=c.date(), rows=",\n".join(rows), n=r.c(["ci", "partner", "reporting"]), kv=key.v, sp=c.pw(fam="chat-mail", prov="smtp"))


@T("sql")
def sql_foreign_server(c):
    r = c.r
    return r.c(["db/fdw.sql", "migrations/20%d_fdw.sql" % r.i(22, 25)]), S('''CREATE EXTENSION IF NOT EXISTS postgres_fdw;
CREATE SERVER legacy_srv FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '«h»', dbname '«db»', port '5432');
CREATE USER MAPPING FOR «lu» SERVER legacy_srv OPTIONS (user '«u»', password '«pw»');
IMPORT FOREIGN SCHEMA public FROM SERVER legacy_srv INTO legacy;

SELECT * FROM dblink('host=«h2» user=«u2» password=«pw2» dbname=«db»', 'SELECT id FROM «db»s') AS t(id int);
''', h=c.host(), db=r.c(NOUNS), lu=c.user().replace(".", "_"), u=c.user(), pw=c.pw(), h2=c.host(), u2=c.user(), pw2=c.pw(safe="url", fam="database", prov="libpq-dsn"))


@T("sql")
def sql_mssql(c):
    r = c.r
    login = c.user().replace(".", "_")
    return r.c(["db/logins.sql", "scripts/mssql_setup.sql"]), S('''USE master;
GO
CREATE LOGIN [«login»] WITH PASSWORD = N'«pw»', CHECK_POLICY = ON;
GO
EXEC sp_addlinkedserver @server = N'REPORTING', @srvproduct = N'', @provider = N'SQLNCLI', @datasrc = N'«h»';
EXEC sp_addlinkedsrvlogin @rmtsrvname = N'REPORTING', @useself = N'False', @rmtuser = N'«u»', @rmtpassword = N'«pw2»';
GO
''', login=login, pw=c.pw(), h=c.host(), u=c.user(), pw2=c.pw())


# ============================================================================================
# markdown
# ============================================================================================
@T("markdown")
def md_readme_setup(c):
    r = c.r
    cr = c.cred()
    return r.c(["README.md", "docs/setup.md", "SETUP.md"]), S('''# «proj»

«intro»

## Getting started

1. Clone the repo and install dependencies:

   ```bash
   git clone git@github.com:«co»/«proj».git
   cd «proj» && make install
   ```

2. Create a `.env` file:

   ```
   DATABASE_URL=«durl»
   «ck»=«cv»
   ```

3. Run the server: `make run`

«body»

## Credentials

Ask in #«team» for access. The staging admin login is `«u»` / `«pw»`.
''', proj=r.c(PROJECTS), intro="Service that %s %ss for the %s team." % (r.c(VERBS) + "s", r.c(NOUNS), r.c(NOUNS)), co=r.c(COMPANIES),
        durl=c.dburl().v, ck=cr.ks("UPPER"), cv=cr.v, body=f_md(c, r.c([1, 3, 8, 20])), team=r.c(NOUNS) + "-dev", u=c.user(), pw=c.pw())


@T("markdown")
def md_wiki_accounts(c):
    r = c.r
    rows = []
    for _ in range(r.i(2, 8)):
        sysn = r.c(["Jenkins", "Grafana", "pgAdmin", "RabbitMQ mgmt", "Kibana", "Airflow", "Metabase", "Nexus", "SonarQube", "Vault UI", "router"])
        rows.append("| %s | https://%s | `%s` | `%s` |" % (sysn, c.host("x"), c.user(), c.pw() if r.p(0.8) else c.neg("placeholder", "see 1Password")))
    return r.c(["wiki/Service-Accounts.md", "docs/accounts.md", "wiki/Environments.md"]), S('''# Shared service accounts («env»)

> Last updated «date» by «who». Rotate after every offboarding.

| System | URL | User | Password |
|---|---|---|---|
«rows»

Other notes:

* ID: «svc» PW: «pw»
* user/pass: admin/«pw2»
* VPN pre-shared key is in the vault (`«ref»`).
''', env=r.c(ENVS), date=c.date(), who=c.person(), rows="\n".join(rows), svc=r.c(["svc_report", "svc_etl", "svc_backup", "svc_" + r.c(NOUNS)]),
        pw=c.pw(), pw2=c.pw(), ref=c.n_ref("VPN_PSK"))


@T("markdown")
def md_runbook(c):
    r = c.r
    return r.c(["runbooks/%s.md" % r.c(NOUNS), "docs/runbook.md", "ops/RUNBOOK.md"]), S('''# Runbook: «o» service outage

## Symptoms
- 5xx on `/api/«o»s`, alerts in #ops-alerts
- «neg»

## Steps
1. Check the database:
   ```
   PGPASSWORD=«pw» psql -h «h» -U «u» -c 'select 1'
   ```
2. Flush the cache if needed: `redis-cli -h «rh» -a «rp» FLUSHALL`
3. Restart the workers: `kubectl -n «env» rollout restart deploy/«o»-worker`
4. If the queue is stuck, purge it from the management UI (login `«mu»`, password `«mp»`).

«body»
''', o=r.c(NOUNS), neg=c.nl("").strip(), pw=c.pw(safe="shell"), h=c.host(), u=c.user(), rh=c.host("x"),
        rp=c.pw(safe="shell", fam="database", prov="redis-auth"), env=r.c(ENVS), mu=c.user(), mp=c.pw(), body=f_md(c, r.i(0, 5)))


@T("markdown")
def md_onboarding(c):
    r = c.r
    return r.c(["docs/onboarding.md", "ONBOARDING.md", "wiki/New-Hire-Checklist.md"]), S('''# Welcome to the «team» team!

## Day 1
- Get your laptop from IT and set a password. «pol»
- Join #«team», #incidents and #random.
- Request access to GitHub org `«co»`.

## Dev environment
Log in to the shared test box:

    ssh «u»@«h»
    login: «u» / password: «pw»

The staging API key for local testing is `«k»`.

## Useful links
- Grafana: https://grafana.«dom» (SSO)
- Runbooks: see `docs/runbooks/`
«body»
''', team=r.c(NOUNS), pol=c.n_policy(), co=r.c(COMPANIES), u=c.user(), h=c.host("x"), pw=c.pw(), k=c.cred().v, dom=r.c(DOMAINS), body=f_md(c, r.i(0, 4)))


@T("markdown")
def md_api_docs(c):
    r = c.r
    t = c.cred()
    return r.c(["docs/api.md", "API.md", "docs/authentication.md"]), S('''# Authentication

All requests must include an API token in the `Authorization` header.

```bash
curl https://«h»/v1/«o»s \\
  -H "Authorization: Bearer «ph»"
```

Example response:

```json
{"id": "«uuid»", "status": "active", "etag": "«md5»"}
```

For the sandbox you can use this token:

```
«tv»
```

Tokens look like `«example»`. «pol»
''', h=c.host("x"), o=r.c(NOUNS), ph=c.n_ph(), uuid=c.n_uuid(), md5=c.n_md5(), tv=t.v, example=c.n_example(), pol=c.n_policy())


@T("markdown", neg_only=True)
def md_changelog(c):
    r = c.r
    out = ["# Changelog", ""]
    for _ in range(r.i(3, 25)):
        out.append("## [%s] - %s" % (c.ver(), c.date()))
        for _ in range(r.i(1, 5)):
            out.append("- %s %s (%s)" % (r.c(["Fix", "Add", "Remove", "Improve", "Bump"]), r.c([
                "password reset flow", "token refresh", "%s export" % r.c(NOUNS), "API key rotation job", "secret scanning in CI",
                "`forgot_password_url` setting", "dependency %s to %s" % (r.c(["lodash", "requests", "jackson"]), c.ver())]), c.n_git(True)))
        out.append("")
    return "CHANGELOG.md", "\n".join(out)


@T("markdown")
def md_postmortem(c):
    r = c.r
    leak = c.cred()
    return r.c(["postmortems/%s-leaked-key.md" % c.date(), "docs/incidents/INC-%d.md" % r.i(100, 999)]), S('''# Postmortem: credential exposed in public repository

**Date:** «date»  **Severity:** SEV-«sev»  **Author:** «who»

## Summary
A «prov» credential was committed in «sha» and was publicly visible for «hrs» hours.
The exposed value (now revoked) was:

```
«k»=«v»
```

## Timeline
- «ts1» commit pushed
- «ts2» secret scanning alert, key revoked

## Action items
- [ ] Enforce pre-commit secret scanning
- [ ] Rotate the remaining keys (masked: «masked»)
''', date=c.date(), sev=r.i(1, 3), who=c.person(), prov=leak.prov, sha=c.n_git(), hrs=r.i(1, 72), k=leak.ks("UPPER"), v=leak.v,
        ts1=c.ts(), ts2=c.ts(), masked=c.neg("masked", r.c(["sk_live_", "ghp_", "AKIA", "xoxb-"]) + "*" * 12 + r.s(4)))


# ============================================================================================
# kubernetes
# ============================================================================================
def b64_secret_value(c, kind="pw", fam=None):
    """(key, value) for a Secret `data:` entry: base64 of a password or credential (labelled), or of a placeholder."""
    r = c.r
    if kind == "pw":
        key = r.c(["password", "db-password", "DB_PASSWORD", "postgres-password", "admin-password", "redis-password", "mysql-root-password"])
        if c.want():
            return key, c.mark(b64e(human_password(r)), "password", "k8s-secret-data")
        return key, c.neg("placeholder", b64e(r.c(["changeme", "password", "REPLACE_ME", "", "xxxxxxxx"])))
    e = c.entry(fam=fam)
    key = key_style(r.c(e["keys"]), r.c(["kebab", "UPPER", "snake"]))
    if c.want():
        g = e["gen"](r)
        if isinstance(g, list):
            g = g[0][1]
        raw = (g.pre + g.sec + g.post) if isinstance(g, Comp) else g
        return key, c.mark(b64e(raw), e["fam"], e["prov"] + "-b64")
    return key, c.neg("placeholder", b64e(r.c(PLACEHOLDERS)))


@T("kubernetes")
def k8s_secret_data(c):
    r = c.r
    items = [b64_secret_value(c, "pw")]
    for _ in range(r.i(0, 3)):
        items.append(b64_secret_value(c, "cred"))
    items.append(("username", c.neg("placeholder", b64e(c.user()))))
    r.shuffle(items)
    data = "\n".join("  %s: %s" % kv for kv in items)
    return r.c(["k8s/secret.yaml", "deploy/%s-secret.yaml" % r.c(NOUNS), "manifests/secrets.yaml"]), S('''apiVersion: v1
kind: Secret
metadata:
  name: «name»
  namespace: «ns»
  labels:
    app.kubernetes.io/name: «name»
type: Opaque
data:
«data»
''', name=r.c(NOUNS) + "-secrets", ns=r.c(ENVS), data=data)


@T("kubernetes")
def k8s_secret_stringdata(c):
    r = c.r
    lines_ = ["  %s: %s" % (r.c(["DB_PASSWORD", "password", "POSTGRES_PASSWORD"]), r.c(["%s", '"%s"']) % c.pw())]
    for _ in range(r.i(0, 3)):
        cr = c.cred()
        lines_.append("  %s: %s" % (cr.ks(r.c(["UPPER", "kebab"])), r.c(["%s", '"%s"']) % cr.v))
    return r.c(["k8s/secret-stringdata.yaml", "deploy/secret.yaml"]), S('''apiVersion: v1
kind: Secret
metadata:
  name: «name»
  annotations:
    checksum/config: «sha»
type: Opaque
stringData:
«lines»
''', name=r.c(PROJECTS), sha=c.n_sha256(), lines="\n".join(lines_))


@T("kubernetes")
def k8s_deployment_env(c):
    r = c.r
    envs = []
    for _ in range(r.i(1, 3)):
        cr = c.cred()
        envs.append("            - name: %s\n              value: \"%s\"" % (cr.ks("UPPER"), cr.v))
    envs.append("            - name: DB_PASSWORD\n              valueFrom:\n                secretKeyRef:\n                  name: db-credentials\n                  key: password")
    envs.append("            - name: SPRING_DATASOURCE_PASSWORD\n              value: %s" % c.pw())
    r.shuffle(envs)
    return r.c(["k8s/deployment.yaml", "manifests/%s-deploy.yaml" % r.c(NOUNS)]), S('''apiVersion: apps/v1
kind: Deployment
metadata:
  name: «name»
spec:
  replicas: «rep»
  selector:
    matchLabels: {app: «name»}
  template:
    metadata:
      labels: {app: «name»}
      annotations:
        kubectl.kubernetes.io/restartedAt: "«ts»"
    spec:
      containers:
        - name: «name»
          image: ghcr.io/«co»/«name»@sha256:«dig»
          env:
«envs»
          ports:
            - containerPort: 8080
''', name=r.c(NOUNS) + "-api", rep=r.i(1, 6), ts=c.ts(), co=r.c(COMPANIES), dig=c.n_sha256(), envs="\n".join(envs))


@T("kubernetes")
def k8s_configmap(c):
    r = c.r
    return r.c(["k8s/configmap.yaml", "deploy/config.yaml"]), S('''apiVersion: v1
kind: ConfigMap
metadata:
  name: «name»-config
data:
  LOG_LEVEL: info
  FEATURE_FLAGS: "«ff»"
  application.properties: |
    spring.datasource.url=jdbc:postgresql://«h»:5432/«db»
    spring.datasource.username=«u»
    spring.datasource.password=«pw»
    app.«ak»=«av»
  nginx.conf: |
    server {
      listen 80;
      location / { proxy_pass http://127.0.0.1:8080; }
    }
''', name=r.c(NOUNS), ff=",".join(r.sample(NOUNS, 3)), h=c.host(), db=r.c(NOUNS), u=c.user(), pw=c.pw(), ak=r.c(["api-key", "token", "secret"]),
        av=c.cred(fam="generic-secret").v)


@T("kubernetes", neg_only=True)
def k8s_helm_template(c):
    r = c.r
    return r.c(["charts/%s/templates/secret.yaml" % r.c(PROJECTS), "templates/secret.yaml"]), S('''apiVersion: v1
kind: Secret
metadata:
  name: {{ include "app.fullname" . }}
  labels:
    {{- include "app.labels" . | nindent 4 }}
type: Opaque
data:
  password: {{ «v1» | b64enc | quote }}
  api-key: {{ required "apiKey is required" .Values.apiKey | b64enc }}
  {{- if .Values.smtp.enabled }}
  smtp-password: {{ .Values.smtp.password | b64enc }}
  {{- end }}
# «neg»
''', v1=c.neg("var-ref", ".Values.postgresql.auth.password"), neg=c.nl("").strip())


@T("kubernetes")
def k8s_kustomization(c):
    r = c.r
    lits = ["      - DB_PASSWORD=%s" % c.pw(safe="shell")]
    for _ in range(r.i(0, 2)):
        cr = c.cred()
        lits.append("      - %s=%s" % (cr.ks("UPPER"), cr.v))
    return r.c(["kustomization.yaml", "overlays/%s/kustomization.yaml" % r.c(ENVS)]), S('''apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: «ns»
resources:
  - ../../base
images:
  - name: app
    newTag: «tag»
secretGenerator:
  - name: app-secrets
    literals:
«lits»
  - name: tls
    files:
      - tls.crt
      - tls.key
''', ns=r.c(ENVS), tag=c.n_git(True), lits="\n".join(lits))


@T("kubernetes")
def k8s_tls_secret(c):
    r = c.r
    if c.want():
        _, pem = private_key_pem(r, r.c(["rsa", "pkcs8", "ec"]))
        key = c.mark(b64e(pem + "\n"), "private-key", "k8s-tls-key-b64")
    else:
        key = c.neg("placeholder", b64e("-----BEGIN PRIVATE KEY-----\nREDACTED\n-----END PRIVATE KEY-----\n"))
    return r.c(["k8s/tls-secret.yaml", "certs/%s-tls.yaml" % r.c(NOUNS)]), S('''apiVersion: v1
kind: Secret
metadata:
  name: «name»-tls
type: kubernetes.io/tls
data:
  tls.crt: «crt»
  tls.key: «key»
''', name=r.c(NOUNS), crt=c.neg("public-key", b64e(public_key_pem(r) + "\n")), key=key)


@T("kubernetes")
def k8s_dockerconfigjson(c):
    r = c.r
    reg = r.c(["ghcr.io", "registry.gitlab.com", "%s.azurecr.io" % r.c(COMPANIES), "https://index.docker.io/v1/"])
    u = c.user()
    if c.want():
        pw = human_password(r) if r.p(0.5) else gh_checksummed("ghp_", r)
        inner = json.dumps({"auths": {reg: {"username": u, "password": pw, "auth": b64e("%s:%s" % (u, pw))}}})
        val = c.mark(b64e(inner), "password", "dockerconfigjson-b64")
    else:
        val = c.n_ref("DOCKER_CONFIG_JSON")
    return r.c(["k8s/regcred.yaml", "deploy/pull-secret.yaml"]), S('''apiVersion: v1
kind: Secret
metadata:
  name: regcred
  namespace: «ns»
  annotations:
    checksum/source: «chk»
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: «val»
''', ns=r.c(ENVS), val=val, chk=c.n_sha256())


# ============================================================================================
# ci
# ============================================================================================
@T("ci")
def ci_github_actions(c):
    r = c.r
    hard = []
    for _ in range(r.i(1, 3)):
        cr = c.cred()
        hard.append("      %s: %s" % (cr.ks("UPPER"), r.c(["%s", '"%s"', "'%s'"]) % cr.v))
    return ".github/workflows/%s.yml" % r.c(["ci", "deploy", "release", "test", "nightly"]), S('''name: «name»
on:
  push:
    branches: [main]
  pull_request:

env:
  REGISTRY: ghcr.io
  GH_TOKEN: ${{ secrets.GH_TOKEN }}
«hard»

jobs:
  build:
    runs-on: ubuntu-latest
    services:
      postgres:
        image: postgres:16
        env:
          POSTGRES_PASSWORD: «tpw»
        ports: ["5432:5432"]
    steps:
      - uses: actions/checkout@«sha»
      - uses: actions/setup-node@v4
        with:
          node-version: 20
      - run: npm ci
      - run: npm test
        env:
          DATABASE_URL: postgres://postgres:${{ env.PGPASS }}@localhost:5432/test
      - name: Deploy
        if: github.ref == 'refs/heads/main'
        run: ./scripts/deploy.sh
        env:
          AWS_ACCESS_KEY_ID: ${{ secrets.AWS_ACCESS_KEY_ID }}
          AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}
''', name=r.c(["CI", "Build and deploy", "Release"]), hard="\n".join(hard), tpw=c.pw(), sha=c.n_git())


@T("ci")
def ci_gitlab(c):
    r = c.r
    vars_ = []
    for _ in range(r.i(1, 3)):
        cr = c.cred()
        vars_.append("  %s: %s" % (cr.ks("UPPER"), r.c(['"%s"', "%s"]) % cr.v))
    return ".gitlab-ci.yml", S('''stages: [test, build, deploy]

variables:
  DOCKER_DRIVER: overlay2
  POSTGRES_PASSWORD: «pw»
«vars»

test:
  stage: test
  image: python:3.12
  script:
    - pip install -r requirements.txt
    - pytest -q

deploy:
  stage: deploy
  script:
    - echo "$CI_REGISTRY_PASSWORD" | docker login -u "$CI_REGISTRY_USER" --password-stdin $CI_REGISTRY
    - curl -X POST -F token=«tt» -F ref=main https://gitlab.«dom»/api/v4/projects/«pid»/trigger/pipeline
  only: [main]
''', pw=c.pw(), vars="\n".join(vars_), tt=c.cred(prov=["gitlab", "gitlab"]).v if r.p(0.7) else c.n_ref("TRIGGER_TOKEN"), dom=r.c(DOMAINS), pid=r.i(10, 9999))


@T("ci")
def ci_jenkinsfile(c):
    r = c.r
    return r.c(["Jenkinsfile", "ci/Jenkinsfile"]), S('''pipeline {
    agent any
    environment {
        REGISTRY = 'registry.«dom»'
        «ek» = '«ev»'
    }
    stages {
        stage('Build') {
            steps {
                sh 'make build'
            }
        }
        stage('Publish') {
            steps {
                withCredentials([usernamePassword(credentialsId: 'nexus', usernameVariable: 'U', passwordVariable: 'P')]) {
                    sh 'curl -u $U:$P --upload-file dist/app.tgz https://nexus.«dom»/repository/raw/'
                }
                sh "curl -u «u»:«pw» -X POST https://jenkins.«dom»/job/«job»/build"
            }
        }
    }
}
''', dom=r.c(DOMAINS), ek="SONAR_TOKEN", ev=c.cred(prov="sonarqube").v, u=c.user(),
        pw=c.pw() if r.p(0.5) else c.cred(prov="jenkins").v, job=r.c(PROJECTS))


@T("ci")
def ci_circleci(c):
    r = c.r
    cr = c.cred()
    return ".circleci/config.yml", S('''version: 2.1
orbs:
  node: circleci/node@5.2.0
jobs:
  test:
    docker:
      - image: cimg/node:20.11
        auth:
          username: «du»
          password: «dp»
      - image: cimg/postgres:15.5
        environment:
          POSTGRES_PASSWORD: «pw»
    environment:
      «ck»: «cv»
    steps:
      - checkout
      - node/install-packages
      - run: npm test
workflows:
  main:
    jobs: [test]
''', du=c.user(), dp=r.c(["$DOCKERHUB_PASSWORD", c.cred(prov="dockerhub").v]), pw=c.pw(), ck=cr.ks("UPPER"), cv=cr.v)


@T("ci")
def ci_travis(c):
    r = c.r
    g = []
    for _ in range(r.i(1, 3)):
        cr = c.cred()
        g.append("    - %s=%s" % (cr.ks("UPPER"), cr.v))
    return ".travis.yml", S('''language: python
python:
  - "3.11"
services:
  - postgresql
env:
  global:
«g»
    - secure: "«sec»"
install: pip install -r requirements.txt
script: pytest
''', g="\n".join(g), sec=c.neg("encrypted-blob", r.b64(r.c([128, 256]))))


@T("ci")
def ci_bitbucket(c):
    r = c.r
    return "bitbucket-pipelines.yml", S('''image: node:20
definitions:
  services:
    mysql:
      image: mysql:8
      variables:
        MYSQL_DATABASE: test
        MYSQL_ROOT_PASSWORD: «pw»
pipelines:
  default:
    - step:
        name: Test
        services: [mysql]
        script:
          - npm ci
          - npm test
  branches:
    main:
      - step:
          name: Deploy
          script:
            - pipe: atlassian/aws-s3-deploy:1.1.0
              variables:
                AWS_ACCESS_KEY_ID: «ak»
                AWS_SECRET_ACCESS_KEY: «sk»
                S3_BUCKET: «b»
''', pw=c.pw(), **dict(zip(["ak", "sk"], (lambda a: (a.v, a.items[1][1]))(c.cred(prov="aws-access-key")))), b=r.c(COMPANIES) + "-web")


@T("ci")
def ci_azure_pipelines(c):
    r = c.r
    cr = c.cred()
    return "azure-pipelines.yml", S('''trigger:
  - main
pool:
  vmImage: ubuntu-latest
variables:
  buildConfiguration: Release
  «ck»: «cv»
  sqlPassword: «pw»
steps:
  - task: DotNetCoreCLI@2
    inputs:
      command: test
  - script: |
      sqlcmd -S «h» -U sa -P "$(sqlPassword)" -i migrate.sql
    displayName: migrate
''', ck=cr.ks("camel"), cv=cr.v, pw=c.pw(), h=c.host())


# ============================================================================================
# notebook (.ipynb)
# ============================================================================================
def nb_cell(src, kind="code", outputs=None, n=None):
    srcl = src.split("\n")
    src_lines = [s + "\n" for s in srcl[:-1]] + [srcl[-1]]
    cell = {"cell_type": kind, "metadata": {}, "source": src_lines}
    if kind == "code":
        cell["execution_count"] = n
        cell["outputs"] = outputs or []
    return cell


def nb_doc(cells, c):
    return jd({"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                                            "language_info": {"name": "python", "version": "3.11.%d" % c.r.i(0, 9)}},
               "nbformat": 4, "nbformat_minor": 5}, 1)


@T("notebook")
def nb_llm(c):
    r = c.r
    ai = c.cred(fam="ai")
    cells = [nb_cell("# %s experiments\nQuick evaluation of prompts for the %s classifier." % (_cap(r.c(NOUNS)), r.c(NOUNS)), "markdown"),
             nb_cell("import os\nimport pandas as pd\nos.environ[\"%s\"] = \"%s\"" % (ai.ks("UPPER"), ai.v), n=1),
             nb_cell("df = pd.read_csv(\"%ss.csv\")\ndf.head()" % r.c(NOUNS), n=2,
                     outputs=[{"output_type": "execute_result", "execution_count": 2, "metadata": {}, "data": {"text/plain": ["   id  label\n", "0  %s  spam" % c.n_uuid()]}}]),
             nb_cell("from openai import OpenAI\nclient = OpenAI()\nresp = client.chat.completions.create(model=\"gpt-4o-mini\", messages=[{\"role\": \"user\", \"content\": \"hi\"}])", n=3)]
    if r.p(0.5):
        cells.append(nb_cell("# plot\nimport matplotlib.pyplot as plt\ndf.label.value_counts().plot.bar()", n=4,
                             outputs=[{"output_type": "display_data", "metadata": {}, "data": {"image/png": c.n_png(r.i(200, 900)), "text/plain": ["<Figure size 640x480>"]}}]))
    return r.c(["notebooks/%s_eval.ipynb" % r.c(NOUNS), "Untitled%d.ipynb" % r.i(1, 9), "experiments/prompting.ipynb"]), nb_doc(cells, c)


@T("notebook")
def nb_db(c):
    r = c.r
    d = c.dburl(prov=["postgres-url", "sqlalchemy-url", "mysql-url", "snowflake-url"])
    cells = [nb_cell("import pandas as pd\nfrom sqlalchemy import create_engine", n=1),
             nb_cell("engine = create_engine(\"%s\")" % d.v, n=2),
             nb_cell("q = \"\"\"\nSELECT date_trunc('day', created_at) d, count(*)\nFROM %ss GROUP BY 1 ORDER BY 1\n\"\"\"\ndf = pd.read_sql(q, engine)\ndf.tail()" % r.c(NOUNS), n=3),
             nb_cell("## Notes\nPassword for the read replica is `%s` (ask %s)." % (c.pw(), r.c(FIRST)), "markdown")]
    return r.c(["analysis/%s_report.ipynb" % r.c(NOUNS), "notebooks/db_exploration.ipynb"]), nb_doc(cells, c)


@T("notebook")
def nb_output_leak(c):
    r = c.r
    cr = c.cred()
    cfg_lines = ["{'env': '%s',\n" % r.c(ENVS), " '%s': '%s',\n" % (cr.ks("snake"), cr.v), " 'build': '%s'}" % c.n_git()]
    cells = [nb_cell("from app.config import load_config\ncfg = load_config()\ncfg", n=1,
                     outputs=[{"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": {"text/plain": cfg_lines}}]),
             nb_cell("print(cfg['%s'][:4] + '...')" % cr.ks("snake"), n=2)]
    return r.c(["debug.ipynb", "notebooks/config_check.ipynb"]), nb_doc(cells, c)


@T("notebook")
def nb_mlops(c):
    r = c.r
    w = c.cred(prov="wandb")
    h = c.cred(prov="huggingface")
    cells = [nb_cell("!pip install -q wandb transformers datasets", n=1),
             nb_cell("import wandb\nwandb.login(key=\"%s\")" % w.v, n=2),
             nb_cell("from huggingface_hub import login\nlogin(token=\"%s\")" % h.v, n=3),
             nb_cell("run = wandb.init(project=\"%s\", config={\"lr\": %s, \"seed\": %d})" % (r.c(PROJECTS), r.c(["3e-4", "1e-5"]), r.i(0, 9999)), n=4, outputs=[{"output_type": "stream", "name": "stdout", "text": ["wandb: Syncing run %s\n" % c.neg("resource-id-url", r.s(8, LODG)), "wandb: View run at https://wandb.ai/%s/runs/%s\n" % (r.c(COMPANIES), c.n_md5())]}])]
    return r.c(["train.ipynb", "notebooks/finetune_%s.ipynb" % r.c(NOUNS)]), nb_doc(cells, c)


# ============================================================================================
# ticket (support tickets, chat exports)
# ============================================================================================
@T("ticket")
def tk_support_txt(c):
    r = c.r
    return r.c(["tickets/TCK-%d.txt" % r.i(1000, 99999), "support/export/%s.txt" % c.r.uuid()]), S('''Ticket: «tid»
Subject: «subj»
Requester: «req» <«mail»>
Created: «ts»
Status: «st»

-- «req» --
Hi team, the nightly report job fails with "authentication failed for user «svc»".
Can you reset it? Current creds:
ID: «svc» PW: «pw»

-- «agent» (Support) --
Thanks! I've reset it. New password: «pw2»
Please don't share it by email next time; use the vault. «pol»

-- «req» --
Works now, thanks. Request id for reference: «rid»
''', tid="TCK-%d" % r.i(1000, 99999), subj=r.c(["Reset service account password", "Report job failing", "Cannot log in to staging"]),
        req=c.person(), mail=c.email(), ts=c.ts(), st=r.c(["Solved", "Open", "Pending"]), svc=r.c(["svc_report", "svc_etl", "svc_" + r.c(NOUNS)]),
        pw=c.pw(), agent=c.person(), pw2=c.pw(), pol=c.n_policy(), rid=c.n_uuid())


@T("ticket")
def tk_slack_export(c):
    r = c.r
    msgs = []
    t = float(r.i(1690000000, 1760000000))
    users = ["U0" + r.s(8, UPDG) for _ in range(3)]
    for _ in range(r.i(4, 25)):
        t += r.i(5, 600)
        k = r.i(0, 9)
        if k == 0:
            text = "the new password for %s is %s" % (r.c(ENVS), c.pw())
        elif k == 1:
            cr = c.cred()
            text = "here's the %s: %s" % (cr.k, cr.v)
        elif k == 2:
            text = "deployed %s, see https://ci.%s/builds/%s" % (c.n_git(True), r.c(DOMAINS), c.n_uuid())
        elif k == 3:
            text = "pls rotate it, it's in 1password now (%s)" % c.n_ph()
        else:
            text = r.c(["lgtm", "on it", "thanks!", "can someone look at the failing build?", "standup in 5", ":+1:",
                        "did anyone change the db password?", "I'll send it in DM"])
        msgs.append({"type": "message", "user": r.c(users), "text": text, "ts": "%.6f" % t, "client_msg_id": c.n_uuid()})
    return "slack-export/%s/%s.json" % (r.c(["ops", "dev", "incidents", "general", "platform"]), c.date()), jd(msgs, 4)


@T("ticket")
def tk_csv_export(c):
    r = c.r
    rows = ["id,created_at,requester,subject,description,status"]
    for i in range(r.i(5, 60)):
        k = r.i(0, 7)
        if k == 0:
            desc = "\"user/pass: admin/%s - please reset\"" % c.pw()
        elif k == 1:
            cr = c.cred()
            desc = "\"Customer pasted their key %s in the chat\"" % cr.v
        elif k == 2:
            desc = "\"%s\"" % c.n_policy()
        else:
            desc = "\"%s\"" % r.c(["Cannot export %s" % r.c(NOUNS), "Invoice total is wrong", "Login page slow", "Feature request: dark mode",
                                   "Password reset email never arrives", "Refund for order %s" % c.n_uuid()])
        rows.append("%d,%s,%s,%s,%s,%s" % (r.i(10000, 99999), c.date(), c.email(), r.c(["Login", "Billing", "Bug", "Access"]), desc, r.c(["open", "closed"])))
    return r.c(["exports/tickets-%s.csv" % c.date(), "zendesk/tickets.csv"]), "\n".join(rows)


@T("ticket")
def tk_email_thread(c):
    r = c.r
    return r.c(["mail/thread-%d.txt" % r.i(100, 999), "support/email_%s.txt" % c.date()]), S('''From: «a» <«am»>
To: «b» <«bm»>
Date: «ts»
Subject: RE: access to the «sys» box

Hi «bf»,

Here you go:

  host: «h»
  login: «u»
  password: «pw»

The API token for the integration is «tok» (expires in 90 days).

Thanks,
«a»

> On «d2», «b» wrote:
> Could you send me the credentials for «sys»? Message-ID: <«mid»@mail.«dom»>
''', a=c.person(), am=c.email(), b=c.person(), bm=c.email(), ts=c.ts(), sys=r.c(["reporting", "legacy FTP", "staging DB", "Jenkins"]), bf=r.c(FIRST).title(),
        h=c.host(), u=c.user(), pw=c.pw(), tok=c.cred().v, d2=c.date(), mid=c.n_uuid(), dom=r.c(DOMAINS))


@T("ticket")
def tk_teams_chat(c):
    r = c.r
    people = [c.person() for _ in range(3)]
    out = []
    h, m = r.i(8, 17), r.i(0, 59)
    for _ in range(r.i(6, 40)):
        m += r.i(0, 9)
        k = r.i(0, 11)
        if k == 0:
            msg = "user/pass: %s/%s" % (c.user(), c.pw())
        elif k == 1:
            msg = "login: %s / password: %s" % (c.user(), c.pw())
        elif k == 2:
            msg = "token is %s" % c.cred().v
        elif k == 3:
            msg = "build %s is green" % c.n_git(True)
        elif k == 4:
            msg = "password must be at least 12 chars, try again"
        else:
            msg = r.c(["ok", "thx", "brb", "can you share your screen?", "it works on my machine", "which env?", "staging",
                       "restarting the pod now", "ping me when done", "looks good"])
        out.append("[%02d:%02d] %s: %s" % ((h + m // 60) % 24, m % 60, r.c(people), msg))
    return r.c(["chat/teams-%s.txt" % c.date(), "exports/chat_%s.txt" % r.c(NOUNS)]), "\n".join(out)


@T("ticket")
def tk_jira_json(c):
    r = c.r
    comments = []
    for _ in range(r.i(1, 6)):
        k = r.i(0, 4)
        body = r.c(["Repro'd on staging.", "Fixed in %s" % c.n_git(True), "Waiting for customer."])
        if k == 0:
            body = "Credentials for the test tenant: %s / %s" % (c.user(), c.pw())
        elif k == 1:
            cr = c.cred()
            body = "Used %s=%s to reproduce" % (cr.ks("UPPER"), cr.v)
        comments.append({"id": str(r.i(10000, 99999)), "author": c.person(), "created": c.ts(), "body": body})
    obj = {"key": "%s-%d" % (r.c(["OPS", "SUP", "PLAT", "DEV"]), r.i(1, 9999)), "fields": {"summary": "%s %s fails" % (_cap(r.c(VERBS)), r.c(NOUNS)),
           "status": {"name": r.c(["Open", "In Progress", "Done"])}, "comment": {"comments": comments}}}
    return r.c(["jira/%s.json" % obj["key"], "exports/jira-%s.json" % c.date()]), jd(obj)


# ============================================================================================
# log
# ============================================================================================
@T("log")
def log_app_headers(c):
    r = c.r
    out = f_log(c, r.c([r.i(5, 40), r.i(40, 150), r.i(150, 390)])).split("\n")
    for _ in range(r.i(1, 3)):
        k = r.i(0, 2)
        if k == 0:
            line = "%s DEBUG [http] request headers: {'Host': '%s', 'Authorization': 'Bearer %s', 'Accept': '*/*'}" % (c.ts(), c.host("x"), c.jwt() if r.p(0.5) else c.cred().v)
        elif k == 1:
            line = "%s DEBUG [http] > GET /v1/%ss HTTP/1.1\\r\\n> X-Api-Key: %s" % (c.ts(), r.c(NOUNS), c.cred(fam="generic-secret").v)
        else:
            line = "%s DEBUG [http] Cookie: session=%s; _ga=GA1.2.%d.%d" % (c.ts(), c.jwt(), r.i(10 ** 8, 10 ** 9), r.i(10 ** 9, 2 * 10 ** 9))
        out.insert(r.i(0, len(out)), line)
    return r.c(["logs/app.log", "var/log/%s/app.log" % r.c(PROJECTS), "logs/debug-%s.log" % c.date()]), "\n".join(out)


@T("log")
def log_nginx_access(c):
    r = c.r
    out = []
    for _ in range(r.i(10, 400)):
        ip = "%d.%d.%d.%d" % (r.i(1, 223), r.i(0, 255), r.i(0, 255), r.i(1, 254))
        path = r.c(["/", "/health", "/static/js/main.%s.js" % r.hex(8), "/api/v1/%ss/%s" % (r.c(NOUNS), c.n_uuid()), "/login", "/favicon.ico"])
        if r.p(0.05):
            path = "/api/v1/export?%s=%s&format=csv" % (r.c(["access_token", "api_key", "token", "key"]), c.cred().v)
        elif r.p(0.03):
            path = "/callback?session_state=%s&state=%s" % (c.n_uuid(), c.n_md5())
        out.append('%s - - [%02d/%s/20%d:%02d:%02d:%02d +0000] "%s %s HTTP/1.1" %d %d "-" "%s"' % (
            ip, r.i(1, 28), r.c(["Jan", "Feb", "Mar", "Apr", "May", "Jun"]), r.i(23, 25), r.i(0, 23), r.i(0, 59), r.i(0, 59),
            r.c(["GET", "GET", "POST"]), path, r.c([200, 200, 200, 301, 404, 500]), r.i(100, 90000),
            r.c(["Mozilla/5.0 (X11; Linux x86_64)", "curl/8.4.0", "python-requests/2.31.0", "kube-probe/1.29"])))
    return r.c(["logs/access.log", "var/log/nginx/access.log", "nginx/access.log.1"]), "\n".join(out)


@T("log")
def log_debug_config(c):
    r = c.r
    out = f_log(c, r.c([r.i(3, 60), r.i(60, 300)])).split("\n")
    cr = c.cred()
    cfg = "{'env': '%s', 'db_host': '%s', 'db_password': '%s', '%s': '%s', 'debug': True}" % (r.c(ENVS), c.host(), c.pw(), cr.ks("snake"), cr.v)
    out.insert(r.i(0, len(out)), "%s INFO  [main] Loaded configuration: %s" % (c.ts(), cfg))
    return r.c(["logs/startup.log", "logs/%s-worker.log" % r.c(NOUNS)]), "\n".join(out)


@T("log")
def log_stacktrace(c):
    r = c.r
    pre = f_log(c, r.i(2, 40))
    url = c.cred(prov=["jdbc-url", "postgres-url", "mysql-url"]).v
    return r.c(["logs/error.log", "logs/catalina.out", "logs/%s.err" % r.c(NOUNS)]), S('''«pre»
«ts» ERROR [main] o.s.boot.SpringApplication - Application run failed
org.springframework.beans.factory.BeanCreationException: Error creating bean with name 'dataSource': Cannot connect to «url»
	at org.springframework.beans.factory.support.AbstractAutowireCapableBeanFactory.initializeBean(AbstractAutowireCapableBeanFactory.java:1786)
	at org.springframework.beans.factory.support.AbstractBeanFactory.doGetBean(AbstractBeanFactory.java:326)
Caused by: org.postgresql.util.PSQLException: FATAL: password authentication failed for user "«u»"
	at org.postgresql.core.v3.ConnectionFactoryImpl.doAuthentication(ConnectionFactoryImpl.java:693)
	... 42 common frames omitted
«post»
''', pre=pre, ts=c.ts(), url=url, u=c.user(), post=f_log(c, r.i(0, 20)))


@T("log")
def log_ci_job(c):
    r = c.r
    out = ["Running with gitlab-runner 16.%d.0 (%s)" % (r.i(0, 11), c.n_git(True)), "Preparing the \"docker\" executor",
           "Using docker image sha256:%s for python:3.12" % c.n_sha256(), "Getting source from Git repository", "Fetching changes with git depth set to 20...",
           "Checking out %s as detached HEAD (ref is main)..." % c.n_git(True), "$ set -x"]
    for _ in range(r.i(2, 30)):
        k = r.i(0, 9)
        if k == 0:
            out.append("+ docker login -u %s -p %s registry.%s" % (c.user(), c.cred(prov=["dockerhub", "gitlab"]).v, r.c(DOMAINS)))
        elif k == 1:
            out.append("+ curl -H 'PRIVATE-TOKEN: %s' https://gitlab.%s/api/v4/projects" % (c.cred(prov="gitlab").v, r.c(DOMAINS)))
        elif k == 2:
            out.append("+ export DB_PASSWORD=[MASKED]")
        elif k == 3:
            out.append("+ mysql -u root -p%s -h db -e 'select 1'" % c.pw(safe="shell"))
        else:
            out.append(r.c(["+ pip install -r requirements.txt", "Collecting requests==2.31.0", "+ pytest -q", "%d passed in %d.%02ds" % (r.i(10, 900), r.i(1, 60), r.i(0, 99)),
                            "Uploading artifacts...", "Job succeeded", "+ make build", "Successfully built %s" % c.n_git(True)]))
    return r.c(["ci-logs/job-%d.log" % r.i(100000, 9999999), "logs/build.log"]), "\n".join(out)


@T("log")
def log_json(c):
    r = c.r
    out = f_log(c, r.i(5, 380), style="json").split("\n")
    for _ in range(r.i(1, 3)):
        cr = c.cred()
        out.insert(r.i(0, len(out)), jd({"ts": c.ts(), "level": "debug", "logger": "http.client", "msg": "outgoing request",
                                                 "headers": {"authorization": "Bearer %s" % cr.v}, "url": "https://%s/v1" % c.host("x")}, None))
    return r.c(["logs/app.jsonl", "logs/%s.json.log" % r.c(NOUNS)]), "\n".join(out)


# ============================================================================================
# netrc / npmrc / pypirc / docker config / git-credentials
# ============================================================================================
@T("netrc-npmrc")
def nr_netrc(c):
    r = c.r
    out = []
    for _ in range(r.i(1, 4)):
        host = r.c(["github.com", "api.github.com", "gitlab.com", "bitbucket.org", "api.heroku.com", "ftp." + r.c(DOMAINS), c.host("x")])
        if host.endswith("github.com"):
            pw = c.cred(prov=["github-pat", "github-fine-grained-pat"]).v
        elif host == "gitlab.com":
            pw = c.cred(prov="gitlab").v
        elif host == "api.heroku.com":
            pw = c.cred(prov="heroku").v
        else:
            pw = c.pw()
        if r.p(0.5):
            out.append("machine %s login %s password %s" % (host, c.user(), pw))
        else:
            out.append("machine %s\n  login %s\n  password %s" % (host, c.user(), pw))
    if r.p(0.5):
        out.insert(0, c.nl("#"))
    return r.c([".netrc", "home/%s/.netrc" % r.c(FIRST), "_netrc"]), "\n".join(out)


@T("netrc-npmrc")
def nr_npmrc(c):
    r = c.r
    out = ["registry=https://registry.npmjs.org/", "save-exact=true"]
    if r.p(0.6):
        out.insert(0, c.nl("#"))
    k = r.i(0, 2)
    if k == 0:
        out.append("//registry.npmjs.org/:_authToken=%s" % c.cred(prov="npm").v)
    elif k == 1:
        u = c.user()
        if c.want():
            out.append("_auth=%s" % c.mark(b64e("%s:%s" % (u, human_password(r))), "password", "npmrc-auth"))
        else:
            out.append("_auth=%s" % c.n_ref("NPM_AUTH"))
        out.append("always-auth=true")
    else:
        host = c.host("x")
        out.append("@%s:registry=https://%s/api/npm/npm-local/" % (r.c(COMPANIES), host))
        out.append("//%s/api/npm/npm-local/:username=%s" % (host, c.user()))
        if c.want():
            out.append("//%s/api/npm/npm-local/:_password=%s" % (host, c.mark(b64e(human_password(r)), "password", "npmrc-password")))
        else:
            out.append("//%s/api/npm/npm-local/:_password=${NPM_PASSWORD}" % host)
        out.append("//%s/api/npm/npm-local/:email=%s" % (host, c.email()))
    if r.p(0.4):
        out.append("//npm.pkg.github.com/:_authToken=%s" % c.cred(prov=["github-pat", "github-fine-grained-pat"]).v)
    return r.c([".npmrc", "frontend/.npmrc", "home/%s/.npmrc" % r.c(FIRST)]), "\n".join(out)


@T("netrc-npmrc")
def nr_pypirc(c):
    r = c.r
    return r.c([".pypirc", "home/%s/.pypirc" % r.c(FIRST)]), S('''# «neg»
[distutils]
index-servers =
    pypi
    «priv»

[pypi]
username = __token__
password = «tok»

[«priv»]
repository = https://«h»/simple/
username = «u»
password = «pw»
''', priv=r.c(["internal", "private", "nexus"]), tok=c.cred(prov="pypi").v, neg=c.nl("").strip(), h=c.host("x"), u=c.user(), pw=c.pw())


@T("netrc-npmrc")
def nr_docker_config(c):
    r = c.r
    auths = {}
    for _ in range(r.i(1, 3)):
        reg = r.c(["https://index.docker.io/v1/", "ghcr.io", "registry.gitlab.com", "%s.azurecr.io" % r.c(COMPANIES), "%s.dkr.ecr.us-east-1.amazonaws.com" % r.digits(12)])
        u = c.user()
        if c.want():
            pw = human_password(r) if r.p(0.5) else gh_checksummed("ghp_", r)
            auths[reg] = {"auth": c.mark(b64e("%s:%s" % (u, pw)), "password", "docker-config-auth")}
        else:
            auths[reg] = {}
    obj = {"auths": auths}
    if r.p(0.5):
        obj["credsStore"] = r.c(["desktop", "osxkeychain", "pass"])
    return r.c([".docker/config.json", "home/%s/.docker/config.json" % r.c(FIRST)]), jd(obj, "\t")


@T("netrc-npmrc")
def nr_git_credentials(c):
    r = c.r
    out = []
    for _ in range(r.i(1, 3)):
        host = r.c(["github.com", "gitlab.com", "bitbucket.org", "dev.azure.com", "git." + r.c(DOMAINS)])
        if host == "github.com":
            tok = c.cred(prov=["github-pat", "github-fine-grained-pat", "github-oauth"]).v
        elif host == "gitlab.com":
            tok = c.cred(prov="gitlab").v
        elif host == "bitbucket.org":
            tok = c.cred(prov="bitbucket").v
        else:
            tok = c.pw(safe="url")
        out.append("https://%s:%s@%s" % (c.user(), tok, host))
    if r.p(0.3):
        out.append("https://%s:%s@%s" % (c.user(), c.n_ph(), r.c(["github.com", "gitlab.com"])))
    return r.c([".git-credentials", "home/%s/.git-credentials" % r.c(FIRST)]), "\n".join(out)


@T("netrc-npmrc")
def nr_yarnrc(c):
    r = c.r
    return r.c([".yarnrc.yml", "web/.yarnrc.yml"]), S('''nodeLinker: node-modules
«neg»
yarnPath: .yarn/releases/yarn-4.1.1.cjs
npmRegistryServer: "https://registry.npmjs.org"
npmScopes:
  «co»:
    npmRegistryServer: "https://npm.pkg.github.com"
    npmAlwaysAuth: true
    npmAuthToken: «tok»
''', co=r.c(COMPANIES), tok=c.cred(prov=["github-pat", "npm", "github-fine-grained-pat"]).v, neg=c.nl("#"))


@T("netrc-npmrc")
def nr_gem_credentials(c):
    r = c.r
    return r.c([".gem/credentials", "home/%s/.gem/credentials" % r.c(FIRST)]), S('''---
«neg»
:rubygems_api_key: «k»
«extra»
''', k=c.cred(prov="rubygems").v, neg=c.nl("#"), extra=r.c(["", ":github: Bearer %s" % c.cred(prov="github-pat").v]))


@T("netrc-npmrc")
def nr_pgpass(c):
    r = c.r
    out = []
    for _ in range(r.i(1, 4)):
        out.append("%s:%s:%s:%s:%s" % (c.host(), r.c(["5432", "*"]), r.c([r.c(NOUNS), "*"]), c.user(), c.pw(safe="url")))
    if r.p(0.5):
        out.insert(0, c.nl("#"))
    return r.c([".pgpass", "home/%s/.pgpass" % r.c(FIRST)]), "\n".join(out)


# ============================================================================================
# extra key-bearing templates (private keys in docs, chats, code, CI)
# ============================================================================================
@T("markdown")
def md_deploy_key(c):
    r = c.r
    kind = r.c(["openssh", "rsa", "putty", "pgp", "pkcs8", "ec"])
    lang = {"putty": "", "pgp": "", "openssh": "", "rsa": "pem", "pkcs8": "pem", "ec": "pem"}[kind]
    return r.c(["docs/deploy-key.md", "wiki/SSH-Access.md", "docs/signing.md", "ops/keys.md"]), S("""# «title»

«intro»

Public key (safe to share):

```
«pub»
```

Private key («who» only, do not copy anywhere else):

```«lang»
«pk»
```

«body»
""", title=r.c(["Deploy key for the release job", "Access to the bastion", "Release signing key"]),
        intro="Generated on %s by %s. %s" % (c.date(), c.person(), c.n_policy()), pub=c.n_sshpub(), who=r.c(["ops", "release managers", "SRE"]),
        lang=lang, pk=c.pem(kind=kind), body=f_md(c, r.i(0, 4)))


@T("ticket")
def tk_chat_key_paste(c):
    r = c.r
    a, b = c.person(), c.person()
    return r.c(["chat/dm-%s.txt" % c.date(), "exports/slack-dm-%d.txt" % r.i(100, 999)]), S("""[«t1»] «a»: can you send me the key for «h»? mine got rotated
[«t2»] «b»: sure, one sec
[«t3»] «b»: «pk»
[«t4»] «b»: passphrase is «pp»
[«t5»] «a»: thanks!! fingerprint matches SHA256:«fp»
[«t6»] «b»: delete it from the chat after you saved it pls
""", t1="09:%02d" % r.i(0, 9), t2="09:%02d" % r.i(10, 19), t3="09:%02d" % r.i(20, 29), t4="09:%02d" % r.i(30, 39),
        t5="09:%02d" % r.i(40, 49), t6="09:%02d" % r.i(50, 59), a=a, b=b, h=c.host("x"),
        pk=c.pem(kind=r.c(["openssh", "rsa", "putty", "openssh-rsa"])), pp=r.c([c.pw(), "(none)"]), fp=c.neg("digest", r.b64(32).rstrip("=")))


@T("python")
def py_inline_pem(c):
    r = c.r
    return r.c(["auth/jwt_signer.py", "app/security/tokens.py", "scripts/make_token.py"]), S("""import datetime
import jwt  # PyJWT

ISSUER = "https://auth.«dom»/"
PRIVATE_KEY = '''«pk»'''

PUBLIC_KEY = '''«pub»'''


def issue(sub: str, minutes: int = «mins») -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    claims = {"iss": ISSUER, "sub": sub, "iat": now, "exp": now + datetime.timedelta(minutes=minutes)}
    return jwt.encode(claims, PRIVATE_KEY, algorithm="«alg»", headers={"kid": "«kid»"})


# sample token for local testing
SAMPLE_TOKEN = "«jwt»"
""", dom=r.c(DOMAINS), pk=c.pem(kind=r.c(["rsa", "pkcs8", "ec"])), pub=c.neg("public-key", public_key_pem(r)), mins=r.c([15, 60]),
        alg=r.c(["RS256", "ES256"]), kid=c.n_md5(), jwt=c.jwt())


@T("ci")
def ci_ssh_key_var(c):
    r = c.r
    return r.c([".github/workflows/deploy-ssh.yml", ".github/workflows/release-sign.yml"]), S("""name: deploy-over-ssh
on:
  workflow_dispatch:

env:
  DEPLOY_HOST: «h»
  SSH_PRIVATE_KEY: |
    «pk»

jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: install key
        run: |
          mkdir -p ~/.ssh
          echo "$SSH_PRIVATE_KEY" > ~/.ssh/id_ed25519
          chmod 600 ~/.ssh/id_ed25519
          echo "«h» «pub»" >> ~/.ssh/known_hosts
      - run: ssh «u»@«h» './deploy.sh «sha»'
""", h=c.host("x"), pk=c.pem(indent="    ", kind=r.c(["openssh", "rsa", "pgp", "ec"])), pub=c.n_sshpub(), u=c.user(), sha=c.n_git())


@T("env")
def env_signing_keys(c):
    r = c.r
    out = ["# JWT signing", "JWT_ALGORITHM=%s" % r.c(["RS256", "ES256"]),
           "JWT_PRIVATE_KEY=\"%s\"" % c.pem(escaped=True, kind=r.c(["rsa", "pkcs8", "ec"])),
           "JWT_PUBLIC_KEY=\"%s\"" % c.neg("public-key", public_key_pem(r).replace("\n", "\\n")),
           "JWT_TTL=%d" % r.c([900, 3600])]
    if r.p(0.5):
        out.append("SERVICE_TOKEN=%s" % c.jwt())
    if r.p(0.4):
        cr = c.cred(prov="age")
        out.append("SOPS_AGE_KEY=%s" % cr.v)
    return r.c([".env", "auth/.env", ".env.keys"]), "\n".join(out)


@T("javascript")
def js_jwt_fixture(c):
    r = c.r
    return r.c(["scripts/seed-requests.js", "test/e2e/helpers.js", "tools/replay.js"]), S("""const fetch = require('node-fetch');

// captured from the staging gateway on «date»
const ADMIN_TOKEN = '«jwt»';
const headers = {
  Authorization: `Bearer ${ADMIN_TOKEN}`,
  Cookie: 'session=«jwt2»; theme=dark',
  'X-Request-Id': '«rid»',
};

async function replay(path) {
  const res = await fetch(`https://«h»${path}`, { headers });
  console.log(path, res.status);
}

module.exports = { replay };
""", date=c.date(), jwt=c.jwt(), jwt2=c.jwt(), rid=c.n_uuid(), h=c.host("x"))


# ============================================================================================
# driver
# ============================================================================================
FORMATS = ["python", "javascript", "typescript", "java", "go", "csharp", "ruby", "php", "rust", "kotlin", "shell",
           "yaml", "json", "toml", "ini", "xml", "env", "hcl", "dockerfile", "sql", "markdown", "kubernetes", "ci",
           "notebook", "ticket", "log", "netrc-npmrc"]
FAMILIES = ["cloud", "vcs-ci", "saas", "chat-mail", "payment", "ai", "database", "private-key", "jwt", "password",
            "generic-secret"]


def generate(out_dir):
    rng = Rnd(SEED)
    order = list(range(len(TEMPLATES)))
    rng.shuffle(order)
    files, labels = [], []
    stats = {"files": {}, "pos_files": {}, "labels_fmt": {}, "labels_fam": {}, "negs": {}, "sizes": []}
    for i in range(N_FILES):
        t = TEMPLATES[order[i % len(order)]]
        want_pos = (not t["neg_only"]) and rng.p(0.67)
        for attempt in range(8):
            c = Ctx(rng, want_pos)
            rel, text = t["fn"](c)
            text, labs, negc = c.render(text)
            if labs or not want_pos:
                break
        if not text.endswith("\n"):
            text += "\n"
        assert not re.search("[\x00-\x1f]", rel), rel
        path = "%s-%04d/%s" % (rng.c(PROJECTS), i, rel)
        files.append((path, text))
        fmt = t["fmt"]
        stats["files"][fmt] = stats["files"].get(fmt, 0) + 1
        stats["sizes"].append(text.count("\n"))
        if labs:
            stats["pos_files"][fmt] = stats["pos_files"].get(fmt, 0) + 1
            if negc:
                stats["pos_with_negs"] = stats.get("pos_with_negs", 0) + 1
        for k, v in negc.items():
            stats["negs"][k] = stats["negs"].get(k, 0) + v
        for (line, fam, prov, ln) in labs:
            labels.append({"path": path, "line": line, "family": fam, "provider": prov, "format": fmt, "secret_len": ln})
            stats["labels_fmt"][fmt] = stats["labels_fmt"].get(fmt, 0) + 1
            stats["labels_fam"][fam] = stats["labels_fam"].get(fam, 0) + 1
    labels.sort(key=lambda d: (d["path"], d["line"], d["family"], d["provider"]))
    lab_text = "".join(json.dumps(d, sort_keys=False) + "\n" for d in labels)
    files.append(("labels.jsonl", lab_text))
    os.makedirs(out_dir, exist_ok=True)
    entries = []
    for path, text in files:
        full = os.path.join(out_dir, path)
        os.makedirs(os.path.dirname(full) or out_dir, exist_ok=True)
        data = text.encode("utf-8")
        with open(full, "wb") as fh:
            fh.write(data)
        entries.append((path, hashlib.sha256(data).hexdigest()))
    entries.sort()
    man = "".join("%s\0%s\n" % (p, h) for p, h in entries)
    digest = hashlib.sha256(man.encode("utf-8")).hexdigest()
    return digest, dict(entries)["labels.jsonl"], stats, len(files) - 1


def report(digest, lab_sha, stats, nfiles):
    print("templates: %d" % len(TEMPLATES))
    print("files: %d (with secrets: %d, pure negatives: %d)" % (nfiles, sum(stats["pos_files"].values()),
                                                                  nfiles - sum(stats["pos_files"].values())))
    print("labels: %d" % sum(stats["labels_fam"].values()))
    print("files with secrets that also carry tracked hard negatives: %d" % stats.get("pos_with_negs", 0))
    print("\n%-12s %6s %6s %7s" % ("format", "files", "w/sec", "labels"))
    for f in FORMATS:
        print("%-12s %6d %6d %7d" % (f, stats["files"].get(f, 0), stats["pos_files"].get(f, 0), stats["labels_fmt"].get(f, 0)))
    tot = sum(stats["labels_fam"].values()) or 1
    print("\n%-15s %7s %6s" % ("family", "labels", "share"))
    for f in FAMILIES:
        n = stats["labels_fam"].get(f, 0)
        print("%-15s %7d %5.1f%%" % (f, n, 100.0 * n / tot))
    print("\nhard negatives planted (tracked occurrences):")
    for k in sorted(stats["negs"]):
        print("  %-20s %6d" % (k, stats["negs"][k]))
    sz = sorted(stats["sizes"])
    print("\nlines per file: min %d, median %d, max %d" % (sz[0], sz[len(sz) // 2], sz[-1]))
    print("\nlabels.jsonl sha256: %s" % lab_sha)
    print("MANIFEST digest: %s" % digest)


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    if argv and argv[0] == "--check":
        want = open(os.path.join(here, "MANIFEST.sha256")).read().split()[0]
        with tempfile.TemporaryDirectory() as td:
            digest, _, _, _ = generate(os.path.join(td, "corpus"))
        print("expected %s\ngot      %s" % (want, digest))
        if digest != want:
            print("MISMATCH")
            return 1
        print("OK")
        return 0
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__)
        return 2
    out = argv[0]
    if os.path.isdir(out) and os.listdir(out):
        print("refusing to write into non-empty directory %s" % out)
        return 2
    digest, lab_sha, stats, nfiles = generate(out)
    report(digest, lab_sha, stats, nfiles)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
