"""The fixed registry of judges a rule may name (``judge = "password"``).

A judge decides whether the value a key-anchored rule captured is a credential, from the value's shape
and the text around it on its line; it replaces Shannon entropy for values people choose (``Otter1981!``
has low entropy, a SHA-256 digest high). Like validators, a pack names a judge by string and can never
name code. Judges run only on confirmed regex matches, so they may afford a few small regexes.

Every judge rejects, in this order: shapes with a checksum rule of their own (``ghp_``, ``npm_``,
``jit*_``: a wrong checksum must not come back as a generic finding), references and code (``$VAR``,
``${VAR}``, ``%(x)s``, ``{{ x }}``, ``<x>``, ``os.environ``, calls, dotted paths, identifiers),
paths, URLs, e-mail addresses, version numbers, password hashes (``$2b$``, ``{SSHA}``, ...) and the
placeholder vocabulary below. Then ``password`` accepts a value of 6 to 128 characters with at least
two character classes (lower, upper, digit, symbol), or a passphrase of three or more words joined by
``-`` (16+ characters); ``secret`` (machine-made keys and tokens) accepts 16+ characters holding a
letter and a digit and no documentation filler (``abcd``, ``1234``); ``basic-auth`` decodes base64
``user:password`` (Docker ``config.json`` ``auth``) and judges the password.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from functools import cache
from types import MappingProxyType

import regex

from jitsec.kernel.lazy_regex import LazyPattern

Judge = Callable[[str, str, str], bool]  # (value, text before it on its line, text after it) -> credential?

# -- the vocabulary, in one place ---------------------------------------------------------------------
# A value whose letters (digits and symbols dropped, leetspeak inside the word undone) are made only
# of these words is a placeholder, a default or documentation: `changeme`, `Password123!`, `P@ssw0rd`,
# `mysecretpassword`, `test1234`, `none`, `<your-password>`.
VOCABULARY = frozenset((
    "password", "passwd", "passw", "pass", "pwd", "passphrase", "passcode", "secret", "secrets", "token",
    "apikey", "key", "keys", "credential", "credentials", "auth", "changeme", "changeit", "example",
    "examples", "sample", "samples", "test", "tests", "testing", "dummy", "fake", "demo", "default",
    "placeholder", "redacted", "hidden", "masked", "removed", "filtered", "omitted", "sensitive", "null",
    "none", "nil", "undefined", "empty", "blank", "true", "false", "yes", "required", "optional", "todo",
    "tbd", "fixme", "foo", "bar", "baz", "qux", "foobar", "qwerty", "asdf", "letmein", "welcome", "hunter",
    "admin", "administrator", "root", "user", "username", "guest", "login", "value", "string", "insert",
    "enter", "here", "your", "mine", "ours", "some", "super", "very", "new", "old", "db", "app", "dev",
    "local", "anonymous",
))
_FILLERS = frozenset({"my", "the", "pw", "to", "is", "a"})  # short words allowed between vocabulary words
# Substrings that mark a placeholder wherever they occur in the value.
MARKERS = ("password", "passwd", "pswd", "example", "changeme", "change_me", "placeholder", "redacted",
           "your_", "your-", "yourpass", "xxxx", "****", "....", "${", "{{", "{%", "%(", "dummy", "sample")

_LEET = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e", "5": "s", "$": "s",
                       "7": "t", "+": "t"})
_EDGE_NON_LETTERS = LazyPattern(r"^[^A-Za-z]+|[^A-Za-z]+$")

# -- shapes ---------------------------------------------------------------------------------------------
_CHECKSUM_SHAPES = LazyPattern(r"^(?:jit[a-z]*_[0-9A-Za-z]{46}|(?:gh[pousr]|npm)_[A-Za-z0-9]{36})$")
_REFERENCE = LazyPattern(
    r"""^(?:\$[A-Za-z_{(]|%[A-Za-z_][A-Za-z0-9_]*%$|@[A-Za-z_.]+@$|\#\{|\*[A-Za-z_]\w*$|![A-Za-z]+$|\[\[
    |&[A-Za-z_]\w*$|(?i:vault|secret|secretref|ssm|kms|awskms|gcpkms|azurekeyvault|env|file|op|sops|enc|arn):
    |ENC\(|(?i:os\.environ|os\.getenv|process\.env|System\.getenv|getenv|ENV\[|ENV\.fetch|settings\.|config\.)
    |\{[A-Za-z_][A-Za-z0-9_.]*\}$|<|__[A-Za-z0-9_]+__$|\{[A-Za-z0-9+/=]{8,}\}$
    |\{(?i:cipher|aes|des|enc|encrypted)\}|%[A-Za-z_]+\()""",
    regex.VERBOSE,
)
_CALL = LazyPattern(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*\(.*\)$")
_SEGMENT = (r"_*(?:[a-z][a-z0-9_]*|[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)*|[a-z][a-z0-9]*(?:[A-Z][a-z0-9]+)+"
            r"|[A-Z][A-Z0-9_]*)")
_DOTTED = LazyPattern(rf"^{_SEGMENT}(?:\.{_SEGMENT})+(?:\(\)?)?$")
_IDENTIFIER = LazyPattern(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_EXPRESSION = LazyPattern(r"^[A-Za-z_$][A-Za-z0-9_$.:]*$")
_NAME_TOKEN = LazyPattern(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+")
_VOWEL = LazyPattern(r"[aeiouyAEIOUY]")
# A regular expression or an HTML-escaped text standing where a value would be.
_PATTERN = LazyPattern(r"\.\*|\.\+|\\[dswbDSW]|\{\d+(?:,\d*)?\}|\(\?")
_MARKUP = LazyPattern(r"&(?:quot|amp|lt|gt|apos|nbsp|#\d+|#x[0-9A-Fa-f]+);?")
_PATH = LazyPattern(
    r"^(?:~|\.\.?)?/[\w.@-]+(?:/[\w.@-]*)+$|^(?:~|\.\.?)/|^[A-Za-z]:\\|^\\\\"
    r"|(?i:\.(?:txt|pem|key|crt|cer|der|p12|pfx|jks|keystore|json|ya?ml|toml|ini|conf|cfg|properties|env|sh"
    r"|py|gpg|asc|pub|secret|pass|pwd|pw|log|xml|html?|js|php|rb|go|java|db|sqlite))$"
)
_URL = LazyPattern(r"^[A-Za-z][A-Za-z0-9+.-]*://|^(?i:www\.)")
_EMAIL = LazyPattern(r"^[^@\s]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
                       r"|^[a-z0-9._%+-]+@[a-z][a-z0-9.-]*$")  # user@site: an anonymous FTP password
_VERSION_OR_NUMBER = LazyPattern(
    r"^(?:v?\d+(?:[._-]\d+)+(?:[-+.]?[A-Za-z][A-Za-z0-9.]*)?|\d+(?:\.\d+)?(?i:[a-z]{1,4})|#[0-9A-Fa-f]{3,8}"
    r"|0x[0-9A-Fa-f]+)$"
)
_PASSWORD_HASH = LazyPattern(
    r"""^(?:\$(?:2[abxy]?|1|5|6|7|y|gy|sha1|md5|apr1|argon2(?:id|i|d)|scrypt|pbkdf2(?:-sha\d+)?|[PH])\$
    |\{(?i:s?sha\d*|s?md5|crypt|pbkdf2[-\w]*|argon2|bcrypt|ssha\d+|smd5)\}
    |(?i:pbkdf2_sha\d+|bcrypt(?:_sha256)?|argon2|scrypt|sha1|md5|unsalted_\w+|crypt|sha256|sha512)\$
    |(?i:pbkdf2|scrypt)(?::|\$))""",
    regex.VERBOSE,
)
_HEX_DIGEST = LazyPattern(r"^(?:[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}|[0-9a-f]{128}"
                            r"|[0-9A-F]{32}|[0-9A-F]{40}|[0-9A-F]{64}|[0-9A-F]{128})$")
_BASE64 = LazyPattern(r"^[A-Za-z0-9+/]+={0,2}$")
_PROSE = LazyPattern(r"(?:[A-Za-z]{2,} ){2,}[A-Za-z]{2,}")
_SNAKE_WITH_DIGITS = LazyPattern(r"^_*[a-z][a-z0-9]*(?:_[a-z0-9]+){2,}$")
_FILLER_SEQUENCE = LazyPattern(
    r"(?i)abcd|bcde|cdef|defg|efgh|fghi|ghij|hijk|ijkl|jklm|klmn|lmno|mnop|nopq|opqr|pqrs|qrst|rstu|stuv|"
    r"tuvw|uvwx|vwxy|wxyz|0123|1234|2345|3456|4567|5678|6789|qwer|asdf"
)
_SLUG = LazyPattern(r"^[a-z][a-z0-9]*(?:[-_.][a-z][a-z0-9]*){2,}$")  # r2-secret-access-key: a name
_PASSPHRASE = LazyPattern(r"^[A-Za-z]{3,}(?:-[A-Za-z]{3,}){2,7}$")  # diceware words have 3+ letters
_WORDS_JOINED = LazyPattern(r"^[A-Za-z]+(?:[-_.][A-Za-z]+)+$")
# Before the value: a declaration or a call around it (its unquoted identifiers are code), a template.
_CODE_BEFORE = LazyPattern(
    r"(?:\(|\bself\.|\bthis\.|@Value\(|\b(?:const|let|var|val|final|private|public|protected|static|def|String|"
    r"string|char|auto|my|local|readonly|declare)\s+[\w$*]+\s*(?::=|==?|:)\s*$)"
)
_QUOTES = "\"'`"


def _undo_leet(value: str) -> str:
    """Letters of ``value`` once the digits and symbols around the word are dropped and the ones inside
    it read as letters: ``P@ssw0rd123!`` -> ``password``."""
    inner = _EDGE_NON_LETTERS.sub("", value)
    return "".join(c for c in inner.translate(_LEET).lower() if c.isalpha())


@cache
def _is_vocabulary(letters: str) -> bool:
    """``letters`` is one or more vocabulary words, with short fillers between them."""
    if not letters:
        return True
    if letters in VOCABULARY:
        return True
    size = len(letters)
    reachable = [False] * (size + 1)
    reachable[0] = True
    for start in range(size):
        if not reachable[start]:
            continue
        for end in range(start + 1, min(size, start + 14) + 1):
            word = letters[start:end]
            if word in VOCABULARY or (word in _FILLERS and end < size):
                reachable[end] = True
    return reachable[size]


def is_placeholder_word(value: str) -> bool:
    """The value spells vocabulary only (``Password1!``, ``P@ssw0rd``, ``my-secret-password``) or holds a
    placeholder marker (``your-password``, ``xxxx``, ``<redacted>``)."""
    lowered = value.lower()
    if any(marker in lowered for marker in MARKERS):
        return True
    letters = "".join(c for c in lowered if c.isalpha())
    return _is_vocabulary(letters) or _is_vocabulary(_undo_leet(value))


def _name_like(value: str) -> bool:
    """Letters only (``_``/``-`` between words): a name in some case convention, e.g. ``userPassword``,
    ``HiddenText``, ``DB_PASSWORD``, ``SecretStr``, ``ProviderA`` -- not ``JvuzKllbX``, whose ``Kllb`` is
    no word (words have vowels, abbreviations are short, acronyms are upper case)."""
    for part in regex.split(r"[_-]+", value):
        if not part:
            continue
        tokens = _NAME_TOKEN.findall(part)
        if "".join(tokens) != part:
            return False
        if any(len(token) > 3 and not token.isupper() and not _VOWEL.search(token) for token in tokens):
            return False  # Str, Cfg, pw, gid: abbreviations; Kllb, Pswd: no word
    return True


def _name_with_digits(value: str) -> bool:
    """Two or more words of a name and one or two digits: ``MinLength8``, ``Utf8String``."""
    digits = sum(c.isdigit() for c in value)
    letters = "_".join(regex.findall(r"[A-Za-z]+", value))
    words = [t for t in _NAME_TOKEN.findall(letters) if len(t) >= 3 and _VOWEL.search(t)]
    return 0 < digits <= 2 and len(words) >= 2 and _name_like(letters)


def _quoted(before: str) -> bool:
    return bool(before) and before[-1] in _QUOTES


def _is_expression(value: str, core: str) -> bool:
    """Code or a reference whatever the line: a template, call, dotted path, pattern, markup, name."""
    if (_REFERENCE.search(value) or _CALL.match(core) or _DOTTED.match(core) or _PROSE.search(value)
            or len(_PATTERN.findall(value)) >= 2 or _MARKUP.search(value) or _SNAKE_WITH_DIGITS.match(core)
            or "::" in core or "->" in core):  # Foo::BAR, $this->password
        return True
    return (bool(_IDENTIFIER.match(core)) and not any(c.isdigit() for c in core)
            and _name_like(core.strip("_$")))


def _is_unquoted_code(value: str, core: str, before: str, after: str) -> bool:
    """An unquoted value that its line shows to be code (a quote would make it a literal)."""
    identifier = bool(_IDENTIFIER.match(core))
    head = after[:1]
    return (
        (identifier and _name_with_digits(core))  # MinLength8, PKCS7PrivateKeyTypes
        or head in ("(", "[") or (head == "." and after[1:2].isalpha())  # called, indexed, dereferenced
        # an identifier in code: password=password2, pk: PKCS7Types, x = tmp1;
        or (identifier and (core != value or after.lstrip()[:1] in (";", ")", ",", "=", "|", "]")))
        or bool(_CODE_BEFORE.search(before) and _EXPRESSION.match(core))  # let pwd = a:dict.tmpdir
    )


def is_code_or_reference(value: str, before: str, after: str) -> bool:
    """A variable, expression, template, pattern or reference standing where a value would be."""
    core = value.rstrip(".,:;-")  # `if password == other:`, `x = y;`, `p = obj->field`
    if _is_expression(value, core):
        return True
    return not _quoted(before) and _is_unquoted_code(value, core, before, after)


def _not_a_value(value: str) -> bool:
    """Paths, URLs, e-mail addresses, versions, numbers with units, password hashes."""
    return bool(_PATH.search(value) or _URL.match(value) or _EMAIL.match(value)
                or _VERSION_OR_NUMBER.match(value) or _PASSWORD_HASH.match(value))


def _base64_text(value: str) -> str | None:
    """The printable ASCII text ``value`` is the base64 of, if it is (Kubernetes ``data:``, ``.npmrc``)."""
    if len(value) < 12 or len(value) % 4 or not _BASE64.match(value):
        return None
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded.decode("ascii") if decoded.isascii() and decoded.decode("ascii").isprintable() else None


def _common_rejects(value: str, before: str, after: str) -> bool:
    if _CHECKSUM_SHAPES.match(value) or is_code_or_reference(value, before, after) or _not_a_value(value):
        return True
    if is_placeholder_word(value):
        return True
    text = _base64_text(value)  # bm90IG15IHJlYWwgcGFzc3dvcmQ= is "not my real password"
    return text is not None and (is_placeholder_word(text) or bool(_PROSE.search(text)))


def _classes(value: str) -> int:
    lower = upper = digit = symbol = False
    for char in value:
        if char.islower():
            lower = True
        elif char.isupper():
            upper = True
        elif char.isdigit():
            digit = True
        else:
            symbol = True
    return lower + upper + digit + symbol


def _as_text(value: str) -> str:
    """Scanned text is latin-1 (one character per byte); a UTF-8 value reads as its own characters."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def is_password(value: str, before: str = "", after: str = "") -> bool:
    """A value a person may have chosen: ``dipPr10Gg!``, ``Otter1981!``, ``falcon-harbor-hurricane``."""
    value = _as_text(value)
    if (not 6 <= len(value) <= 128 or not any(c.isalpha() for c in value)
            or _HEX_DIGEST.match(value) or len(_FILLER_SEQUENCE.findall(value)) >= 2  # digest, abcd1234
            or (value.isalpha() and (not value.isascii() or _name_like(value)))  # one word: Passwort, Пароль
            or _common_rejects(value, before, after)):
        return False
    if _WORDS_JOINED.match(value):  # words and separators only
        if _PASSPHRASE.match(value):  # no vocabulary word: orders-db-credentials is a name
            return len(value) >= 16 and not any(w.lower() in VOCABULARY for w in value.split("-"))
        if _name_like(value.replace(".", "_")):
            return False  # snake_case, kebab-case or dotted names
    return _classes(value) >= 2


def is_secret(value: str, before: str = "", after: str = "") -> bool:
    """A machine-made key or token: 16+ characters, a letter and a digit, no documentation filler, not a
    lower-case name (``r2-secret-access-key``)."""
    value = _as_text(value)
    if len(value) < 16 or not any(c.isdigit() for c in value) or not any(c.isalpha() for c in value):
        return False
    if _FILLER_SEQUENCE.search(value) or _SLUG.match(value):
        return False
    return not _common_rejects(value, before, after)


def is_basic_auth(value: str, before: str = "", after: str = "") -> bool:
    """base64 of ``user:password`` (Docker ``config.json`` ``auth``, ``.npmrc`` ``_auth``): the decoded
    password is judged as a password; a long one (a JSON key file, a token) is a credential as such."""
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    user, sep, password = decoded.partition(":")
    if not sep or not user or not decoded.isprintable() or any(c.isspace() for c in user):
        return False
    if len(password) > 128:
        return True
    return is_password(password)


JUDGES: Mapping[str, Judge] = MappingProxyType(
    {
        "password": is_password,
        "secret": is_secret,
        "basic-auth": is_basic_auth,
    }
)
