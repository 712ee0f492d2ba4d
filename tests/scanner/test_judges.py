"""The judges a rule may name: what each accepts and rejects, from the value and its line."""

from __future__ import annotations

import base64

import pytest
from jitsec.scanner.judges import JUDGES, VOCABULARY, is_basic_auth, is_password, is_secret

# Passwords people choose: low entropy, often one symbol, sometimes words.
PASSWORDS = ["dipPr10Gg!", "Otter1981!", "Jvuz8llB", "falcon-harbor-hurricane", "BzXZWpOzOiWMVr!8",
             "mI65jIM4D.skQ.", "wQDanSIL.WzdjWRAe0", "Summer2024!", "otter_1981", "Baron2020",
             "k1zPZM6uVxMQ3oxqgoYlNuJPyRTZ1vREs76zTQE3eJk="]

NOT_PASSWORDS = [
    # placeholders and vocabulary
    "changeme", "your-password", "example123", "xxxxxxxx", "********", "redacted", "null", "None", "true",
    "required", "Password123!", "P@ssw0rd", "P@ssw0rd123!", "mysecretpassword", "supersecret", "test1234",
    "generatedwebdavpassword1", "kmsPswd",
    # names and types
    "Incomplete", "HiddenText", "SecretStr", "userPassword", "DB_PASSWORD", "Optional", "my_variable_name",
    "BatchedProviderA", "new_password1", "utf8_to_utf16_dup",
    # code and references
    "self.password", "os.environ", "process.env.DB_PASSWORD", "ENV['X']", "${DB_PASSWORD}", "$DB_PASSWORD",
    "%(password)s", "{{password}}", "<password>", "%DB_PASSWORD%", "!vault", "*db_pass", "get_password",
    "{COQLCE6DU6GtcS5P=}", "{cipher}AQB4k2xd", "__DB_PASSWORD__",
    # hashes, digests, paths, URLs, versions
    "$2b$12$4rp/EdIw6oRUM.Ph54XQKJC1ZVA2g2fgZN0oPzzUcf5iJN5rbJ4GZ", "{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
    "pbkdf2_sha256$260000$abc", "$6$salt$hash", "d41d8cd98f00b204e9800998ecf8427e", "/bin/systemctl",
    "/run/secrets/db_password", "https://x.test/z", "ops@acme-corp.test", "1.2.3-beta", "300px",
    # shapes: too short, one class, names joined by separators, documentation filler
    "Ab1!", "aaaaaaaaaaaa", "orders-db-credentials", "abcd1234EFGH",
]


@pytest.mark.parametrize("value", PASSWORDS)
def test_password_judge_accepts_chosen_passwords(value: str) -> None:
    assert is_password(value, 'password = "', '"')


@pytest.mark.parametrize("value", NOT_PASSWORDS)
def test_password_judge_rejects_code_placeholders_and_hashes(value: str) -> None:
    assert not is_password(value, "password: ", "")


@pytest.mark.parametrize(
    ("value", "before", "after"),
    [
        ("getpass", "password = ", "()"),  # a call
        ("config", "password = ", '["db"]'),  # an index
        ("password2", "connect(host, password=", ")"),  # an argument in code
        ("tmp1", "const pw = ", ";"),  # a declaration
        ("PKCS7PrivateKeyTypes", "    private_key: ", ","),  # an annotation
        ("correct.&quot", "printf(&quot;Password is ", ";);"),  # HTML-escaped prose
        ("MinLength8", "password: ", ""),  # an unquoted name with a digit
        ("Foo::BAR_PW", "'password' => ", ","),  # a scoped constant
        ("Contrase\u00c3\u00b1a", '"password": "', '"'),  # a translated label (UTF-8 read as latin-1)
        ("%env(DB_PW)%", "password: '", "'"),  # a Symfony parameter
    ],
)
def test_the_line_around_the_value_marks_code(value: str, before: str, after: str) -> None:
    assert not is_password(value, before, after)


def test_a_quoted_identifier_with_digits_is_a_value() -> None:
    assert is_password("tmp1x2Y", 'const pw = "', '";')


def test_secret_judge_wants_a_machine_made_value() -> None:
    assert is_secret("7lKTVePks9fSSkUC1xZapkT3uyEX3r8p")
    assert is_secret("N&0R54UF ?=;@(s.nXekfs>gf/^Pm64[)u]^Q1JRJQ5m_MYGT|#,e&KCNX:G~l+#")  # a WordPress key
    for value in ("my-app-secret-name", "ordersDbCredentialsRef", "abcd1234defg5678efgh9012", "short1A",
                  "the secret rotation job ran at 12", "s*((npm_.+)|([A-Fa-f0-9-]{36})).*",
                  "ghp_XDgYM3uTcu89jCPq1knk48Ad3RKfyxVko9qo", "r2-secret-access-key"):
        assert not is_secret(value), value


def test_checksummed_shapes_are_left_to_their_own_rules() -> None:
    assert not is_secret("npm_4NrZ6Xuxf2ZwDlQRhTRWpdRfiQDaim3BzP9A")
    assert not is_password("ghp_4NrZ6Xuxf2ZwDlQRhTRWpdRfiQDaim3BzP9A")


def test_basic_auth_judge_decodes_user_and_password() -> None:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    assert is_basic_auth(b64("deploy:Mq7#rTb2Vn"))
    assert is_basic_auth(b64("_json_key:" + "{" + "x" * 200 + "}"))  # a key file as the password
    assert not is_basic_auth(b64("user:password"))
    assert not is_basic_auth(b64("secret-token-value"))  # no colon
    assert not is_basic_auth(b64(":Mq7#rTb2Vn"))  # no user
    assert not is_basic_auth("not base64!")


def test_the_registry_is_fixed_and_the_vocabulary_small() -> None:
    assert set(JUDGES) == {"password", "secret", "basic-auth"}
    assert len(VOCABULARY) < 150
