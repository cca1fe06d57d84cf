"""``[[checks]]`` in monitor.toml: DESIGN §9's example, each kind's keys and defaults, and every
refusal naming the file, the line, the key and what would be right."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.checks.spec import (
    CheckKind,
    DnsSettings,
    HttpSettings,
    PostgresSettings,
    TcpSettings,
    TlsSettings,
)
from monitor.config import ConfigError, parse_config

TARGET = """\
[[targets]]
name = "questcity-api"
url = "http://127.0.0.1:8000"
"""

DESIGN = (
    TARGET
    + """
[[checks]]
name = "front-door"
kind = "http"            # http | tcp | dns | tls | postgres
url = "https://questcity.example.org/api/v1/health/live"
conditions = ["[STATUS] == 200", "[BODY].status == alive", "[RESPONSE_TIME] < 500"]
interval = 30
timeout = 5
public = true            # a component on the status page

[[checks]]
name = "front-door-cert"
kind = "tls"
host = "questcity.example.org"
port = 443
min_days = 14            # not operational when the certificate expires sooner
"""
)

PATH = Path("/etc/questcity/monitor.toml")


def checks_of(text: str) -> str:
    return TARGET + text


def test_the_design_example_parses_with_its_values() -> None:
    config = parse_config(DESIGN, PATH)
    door, cert = config.checks
    assert (door.name, door.kind, door.interval, door.timeout, door.public) == (
        "front-door",
        CheckKind.HTTP,
        30.0,
        5.0,
        True,
    )
    assert door.settings == HttpSettings(url="https://questcity.example.org/api/v1/health/live")
    assert [c.text for c in door.conditions] == [
        "[STATUS] == 200",
        "[BODY].status == alive",
        "[RESPONSE_TIME] < 500",
    ]
    assert (cert.kind, cert.public, cert.settings) == (
        CheckKind.TLS,
        False,
        TlsSettings(host="questcity.example.org", port=443, min_days=14, warn_days=30),
    )
    assert config.check("front-door-cert") is cert


def test_defaults() -> None:
    config = parse_config(
        checks_of('[[checks]]\nname = "pg"\nkind = "postgres"\nurl_env = "QUESTCITY_PG_URL"\n'),
        PATH,
    )
    (check,) = config.checks
    assert (check.interval, check.timeout, check.public, check.group, check.title) == (
        60.0,
        5.0,
        False,
        "Services",
        "pg",
    )
    assert check.conditions == ()
    assert check.settings == PostgresSettings(url_env="QUESTCITY_PG_URL")
    assert parse_config(TARGET, PATH).checks == ()


def test_every_kinds_keys() -> None:
    config = parse_config(
        checks_of(
            """
[[checks]]
name = "api.post"
kind = "http"
url = "http://user:secret@10.0.0.5:8080/ping?key=1"
method = "post"
headers = { Accept = "application/json", X-Trace = "on" }
body = '{"ping": true}'
token_env = "QUESTCITY_PING_TOKEN"
ca_file = "ca/private.pem"
follow_redirects = false
display_name = "Ping API"
group = "Edge"

[[checks]]
name = "smtp"
kind = "tcp"
host = "::1"
port = 25
send = "EHLO monitor\\r\\n"
expect = "250"
conditions = ["[CONNECTED] == true"]

[[checks]]
name = "srv"
kind = "dns"
host = "_sip._tcp.example.org."
type = "srv"
expect = "10 5 5060 sip.example.org."
nameserver = "127.0.0.1:5353"

[[checks]]
name = "mx"
kind = "dns"
host = "example.org"
expect = ["10.0.0.5", "10.0.0.6"]
nameserver = ["10.0.0.10", "[::1]:53"]
conditions = ["[DNS_RCODE] == NOERROR"]

[[checks]]
name = "cert"
kind = "tls"
host = "10.0.0.7"
min_days = 45
ca_file = "/etc/ssl/private-ca.pem"
server_name = "internal.example.org"
"""
        ),
        PATH,
    )
    http, tcp, srv, mx, tls = config.checks
    assert http.settings == HttpSettings(
        url="http://user:secret@10.0.0.5:8080/ping?key=1",
        method="POST",
        headers={"Accept": "application/json", "X-Trace": "on"},
        body='{"ping": true}',
        token_env="QUESTCITY_PING_TOKEN",
        ca_file="/etc/questcity/ca/private.pem",  # beside monitor.toml
        follow_redirects=False,
    )
    assert http.where == "http://10.0.0.5:8080/ping"
    assert (http.title, http.group) == ("Ping API", "Edge")
    assert tcp.settings == TcpSettings(host="::1", port=25, send="EHLO monitor\r\n", expect="250")
    assert srv.settings == DnsSettings(
        host="_sip._tcp.example.org.",
        record_type="SRV",
        expect=("10 5 5060 sip.example.org.",),
        nameservers=(("127.0.0.1", 5353),),
    )
    assert mx.settings == DnsSettings(
        host="example.org",
        expect=("10.0.0.5", "10.0.0.6"),
        nameservers=(("10.0.0.10", 53), ("::1", 53)),
    )
    # warn_days defaults to 30, or to min_days when that is more.
    assert tls.settings == TlsSettings(
        host="10.0.0.7",
        port=443,
        min_days=45,
        warn_days=45,
        ca_file="/etc/ssl/private-ca.pem",
        server_name="internal.example.org",
    )


def _table(kind: str, *lines: str, name: str = "c") -> str:
    body = "\n".join(lines)
    return checks_of(f'\n[[checks]]\nname = "{name}"\nkind = "{kind}"\n{body}\n')


HTTP_URL = 'url = "https://example.org/"'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'checks = "front-door"\n' + TARGET,
            "monitor.toml:1: checks: must be at most 1000 [[checks]] tables, got 'front-door'",
        ),
        (
            _table("ftp"),
            "monitor.toml:7: checks[0].kind: must be one of http, tcp, dns, tls, postgres, "
            "got 'ftp'",
        ),
        (
            _table("tcp", 'host = "db"', "port = 5432", 'url = "http://x"'),
            "monitor.toml:10: checks[0].url: is a key of a http check, not of a tcp check; a tcp "
            "check takes conditions, display_name, expect, group, host, interval, kind, name, "
            "port, public, send, timeout",
        ),
        (
            _table("tls", 'host = "db"', "min_day = 3"),
            "monitor.toml:9: checks[0].min_day: unknown key; a tls check takes ca_file, "
            "conditions, display_name, group, host, interval, kind, min_days, name, port, "
            "public, server_name, timeout, warn_days",
        ),
        (
            _table("tcp", 'host = "db"', "port = 1", name="Front Door"),
            "monitor.toml:6: checks[0].name: must be 1 to 63 lowercase letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (it is the component's key), "
            "got 'Front Door'",
        ),
        (
            _table("tcp", 'host = "db"', "port = 1", name="questcity-api"),
            "monitor.toml:6: checks[0].name: is already a target's name; names are unique among "
            "[[targets]] and [[checks]] (each is a component), got 'questcity-api'",
        ),
        (
            _table("tcp", 'host = "db"', "port = 1")
            + '\n[[checks]]\nname = "c"\nkind = "tcp"\nhost = "db"\nport = 2\n',
            "monitor.toml:12: checks[1].name: is already another check's name; names are unique "
            "among [[targets]] and [[checks]] (each is a component), got 'c'",
        ),
        (
            _table("tcp", 'host = "db"', "port = 1", "interval = 10", "timeout = 10"),
            "monitor.toml:11: checks[0].timeout: must be less than the interval (10 s): a check "
            "must end before the next is due, got 10.0",
        ),
        (
            _table("tcp", 'host = "db"', "port = 1", "interval = 86401"),
            "monitor.toml:10: checks[0].interval: must be a number greater than 0 and at most "
            "86400, got 86401",
        ),
        (
            _table("tcp", 'host = "db"', "port = 1", 'public = "yes"'),
            "monitor.toml:10: checks[0].public: must be true or false, got 'yes'",
        ),
        (
            _table("tcp", 'host = "db"', "port = 1", 'display_name = "' + "x" * 101 + '"'),
            "monitor.toml:10: checks[0].display_name: must be one line of at most 100 printable "
            "characters",
        ),
        (
            _table("tcp", 'host = "db"', "port = 0"),
            "monitor.toml:9: checks[0].port: must be a whole number from 1 to 65535, got 0",
        ),
        (
            _table("tcp", 'host = "db"'),
            "monitor.toml:5: checks[0].port: must be a whole number from 1 to 65535",
        ),
        (
            _table("tcp", 'host = "bad host!"', "port = 1"),
            "monitor.toml:8: checks[0].host: must be a host name or an IP address, e.g. "
            "questcity.example.org, got 'bad host!'",
        ),
        (
            _table("tcp", 'host = "db"', "port = 1", 'send = ""'),
            "monitor.toml:10: checks[0].send: must be a string of 1 to 65536 characters, got ''",
        ),
        (
            _table("http", 'url = "ftp://example.org/"'),
            "monitor.toml:8: checks[0].url: must be an http:// or https:// URL with a host (and a "
            "port from 1 to 65535), got 'ftp://example.org/'",
        ),
        (
            _table("http", 'url = "https://example.org:0/"'),
            "monitor.toml:8: checks[0].url: must be an http:// or https:// URL with a host",
        ),
        (
            _table("http", HTTP_URL, 'method = "TRACE"'),
            "monitor.toml:9: checks[0].method: must be one of GET, HEAD, POST, PUT, PATCH, "
            "DELETE, OPTIONS, got 'TRACE'",
        ),
        (
            _table("http", HTTP_URL, 'headers = { "Bad Name" = "x" }'),
            "monitor.toml:9: checks[0].headers: a header's name is letters, digits and "
            "!#$%&'*+.^_`|~-, got 'Bad Name'",
        ),
        (
            _table("http", HTTP_URL, 'headers = { X-A = "one\\r\\nX-B: two" }'),
            "monitor.toml:9: checks[0].headers: X-A's value must be one line of at most 1000 "
            "printable characters",
        ),
        (
            _table("http", HTTP_URL, 'headers = "Accept: json"'),
            "monitor.toml:9: checks[0].headers: must be a table of at most 32 headers, e.g. "
            '{ Accept = "application/json" }',
        ),
        (
            _table("http", HTTP_URL, 'token_env = "my-token"'),
            "monitor.toml:9: checks[0].token_env: must be an environment variable's name "
            "(capitals, digits and '_', e.g. QUESTCITY_PG_URL): the secret stays out of the "
            "file, got 'my-token'",
        ),
        (
            _table("http", HTTP_URL, "follow_redirects = 1"),
            "monitor.toml:9: checks[0].follow_redirects: must be true or false, got 1",
        ),
        (
            _table("http", HTTP_URL, 'conditions = "[STATUS] == 200"'),
            "monitor.toml:9: checks[0].conditions: must be a list of at most 20 conditions",
        ),
        (
            _table("http", HTTP_URL, "conditions = [200]"),
            "monitor.toml:9: checks[0].conditions: each is a string, e.g. "
            '["[STATUS] == 200", "[BODY].status == alive"], got 200',
        ),
        (
            _table("dns", 'host = "example.org"', 'conditions = ["[FOO] == 1"]'),
            "monitor.toml:9: checks[0].conditions: [FOO] is not a placeholder of a dns check; "
            "use one of [DNS_RCODE], [BODY], [RESPONSE_TIME], got '[FOO] == 1'",
        ),
        (
            _table(
                "http",
                'url = "http://example.org/"',
                'conditions = ["[CERTIFICATE_EXPIRATION] > 14d"]',
            ),
            "monitor.toml:9: checks[0].conditions: [CERTIFICATE_EXPIRATION] needs an https:// "
            "url (an http:// one has no certificate), got '[CERTIFICATE_EXPIRATION] > 14d'",
        ),
        (
            _table("dns", 'host = "example..org"'),
            "monitor.toml:8: checks[0].host: must be a name to look up: dot-separated labels of "
            "letters, digits, '-' and '_', e.g. questcity.example.org, got 'example..org'",
        ),
        (
            _table("dns", 'host = "example.org"', 'type = "ANY"'),
            "monitor.toml:9: checks[0].type: must be one of A, AAAA, CNAME, MX, NS, TXT, SRV, "
            "CAA, SOA, PTR, got 'ANY'",
        ),
        (
            _table("dns", 'host = "example.org"', "expect = [1]"),
            "monitor.toml:9: checks[0].expect: must be an answer or a list of at most 32, each "
            "as dig writes it",
        ),
        (
            _table("dns", 'host = "example.org"', 'nameserver = "dns.example.org"'),
            "monitor.toml:9: checks[0].nameserver: each must be an IP address with an optional "
            ':PORT, e.g. "10.0.0.10" or ["127.0.0.1:5353", "[::1]:53"], '
            "got 'dns.example.org'",
        ),
        (
            _table("tls", 'host = "example.org"', "min_days = -1"),
            "monitor.toml:9: checks[0].min_days: must be a whole number of days from 0 to 3650, "
            "got -1",
        ),
        (
            _table("tls", 'host = "example.org"', "min_days = 14", "warn_days = 7"),
            "monitor.toml:10: checks[0].warn_days: must be at least min_days (14): it warns "
            "before the check fails, got 7",
        ),
        (
            _table("tls", 'host = "example.org"', 'server_name = "*bad*"'),
            "monitor.toml:9: checks[0].server_name: must be a host name, e.g. "
            "questcity.example.org, got '*bad*'",
        ),
        (
            _table("postgres"),
            "monitor.toml:5: checks[0].url_env: a postgres check needs url_env: the environment "
            "variable that holds its postgresql:// URL, e.g. QUESTCITY_PG_URL",
        ),
    ],
)
def test_each_refusal_names_the_line_the_key_and_what_is_right(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, Path("monitor.toml"))
    assert str(raised.value).startswith(message), str(raised.value)


def test_a_url_with_user_info_or_a_query_is_never_shown() -> None:
    for url in ["ftp://user:hunter2@example.org/", "gopher://example.org/?key=hunter2"]:
        with pytest.raises(ConfigError) as raised:
            parse_config(_table("http", f'url = "{url}"'), PATH)
        assert "hunter2" not in str(raised.value)
        assert "checks[0].url: must be an http:// or https:// URL" in str(raised.value)


def test_a_header_value_is_never_shown() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(_table("http", HTTP_URL, 'headers = { Authorization = "hunter2\\n" }'), PATH)
    assert "hunter2" not in str(raised.value)


def test_at_most_1000_checks_and_20_conditions() -> None:
    many = "".join(
        f'\n[[checks]]\nname = "c{n}"\nkind = "tcp"\nhost = "db"\nport = 1\n' for n in range(1001)
    )
    with pytest.raises(ConfigError, match=r"checks: must be at most 1000 .* got '1001 checks'"):
        parse_config(checks_of(many), PATH)
    assert len(parse_config(checks_of(many[: many.rindex("[[checks]]")]), PATH).checks) == 1000
    conditions = ", ".join(['"[STATUS] == 200"'] * 21)
    with pytest.raises(ConfigError, match=r"at most 20 conditions, .* got '21 conditions'"):
        parse_config(_table("http", HTTP_URL, f"conditions = [{conditions}]"), PATH)


def test_the_checks_key_is_known_and_checks_keep_their_file_order() -> None:
    config = parse_config(
        _table("tcp", 'host = "db"', "port = 1", name="b")
        + '\n[[checks]]\nname = "a"\nkind = "tcp"\nhost = "db"\nport = 2\n',
        PATH,
    )
    assert [check.name for check in config.checks] == ["b", "a"]
