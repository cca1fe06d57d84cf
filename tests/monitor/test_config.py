"""monitor.toml: the fixed keys, defaults, and errors that name the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config, parse_config, replica_key

GOOD = """\
[storage]
url = "sqlite:///./var/monitor.db"

[[targets]]
name = "questcity-api"                      # shown in the TUI and on the status page
url = "http://127.0.0.1:8000"
interval = 10
timeout = 5
token_env = "QUESTCITY_MONITOR_TOKEN"
admin_token_env = "QUESTCITY_ADMIN_TOKEN"
display_name = "QuestCity API"
group = "Production"
services = { database = "Quests and accounts", s3 = "Photos" }

[alerts]
breaker_open_for = 120

[[notifiers]]
type = "webhook"
url = "http://127.0.0.1:9999/hook"
"""


def test_the_design_example_parses_with_its_values() -> None:
    config = parse_config(GOOD, Path("monitor.toml"))
    target = config.targets[0]
    assert config.storage_url == "sqlite:///./var/monitor.db"
    assert (target.name, target.url, target.interval, target.timeout) == (
        "questcity-api",
        "http://127.0.0.1:8000",
        10.0,
        5.0,
    )
    assert target.title == "QuestCity API"
    assert target.service_title("s3") == "Photos"
    assert target.service_title("redis_cache") == "Redis cache"
    assert target.token({"QUESTCITY_MONITOR_TOKEN": "tok"}) == "tok"
    assert target.admin_token({}) is None
    assert config.alerts.breaker_open_for == 120.0
    assert config.alerts.check_failure_rate == 0.5
    assert config.retention.raw_days == 7.0
    assert [n.kind for n in config.notifiers] == ["webhook"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("interval = 10", 'interval = "ten"'),
            "monitor.toml:7: targets[0].interval: must be a number greater than 0 and at most "
            "86400, got 'ten'",
        ),
        (
            ("timeout = 5", "timeout = 50"),
            "monitor.toml:8: targets[0].timeout: must be less than the interval (10 s): a check "
            "must end before the next is due, got 50.0",
        ),
        (
            ("timeout = 5", "timeout = 10"),
            "monitor.toml:8: targets[0].timeout: must be less than the interval (10 s): a check "
            "must end before the next is due, got 10.0",
        ),
        (
            ('url = "http://127.0.0.1:8000"', 'url = "127.0.0.1:8000"'),
            "monitor.toml:6: targets[0].url: must be an http:// or https:// base URL",
        ),
        (
            ('url = "sqlite:///./var/monitor.db"', 'url = "mysql://x"'),
            "monitor.toml:2: storage.url: use sqlite:///PATH or postgresql://",
        ),
        (
            ("breaker_open_for = 120", "breaker_open_for = -1"),
            "monitor.toml:16: alerts.breaker_open_for: must be a number of seconds from 0 to "
            "604800",
        ),
        (
            ('type = "webhook"', 'type = "pager"'),
            'monitor.toml:19: notifiers[0].type: must be "log", "webhook" or "apprise"',
        ),
        (("group = ", "colour = "), "monitor.toml:12: targets[0].colour: unknown key"),
    ],
)
def test_a_bad_value_is_named_with_its_line_and_key(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(GOOD.replace(*change), Path("monitor.toml"))
    assert str(raised.value).startswith(message)


def test_syntax_errors_and_missing_targets_are_explained() -> None:
    with pytest.raises(ConfigError, match=r"^monitor.toml:1: syntax: not valid TOML: \w"):
        parse_config("[storage\n", Path("monitor.toml"))
    with pytest.raises(ConfigError, match="add at least one \\[\\[targets\\]\\]"):
        parse_config("[storage]\n", Path("monitor.toml"))
    duplicate = GOOD + '\n[[targets]]\nname = "questcity-api"\nurl = "http://x"\n'
    with pytest.raises(ConfigError, match=r"targets\[1\].name: names must be unique"):
        parse_config(duplicate, Path("monitor.toml"))


def test_a_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such file; write one .* or pass --config PATH"):
        load_config(tmp_path / "monitor.toml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # Each of these was accepted and ended later in a traceback (timedelta overflow in the
        # scheduler, or a number the store cannot hold).
        (
            ("interval = 10", "interval = 1e300"),
            "monitor.toml:7: targets[0].interval: must be a number greater than 0 and at most "
            "86400, got 1e+300",
        ),
        (
            ("breaker_open_for = 120", "breaker_open_for = 1e300"),
            "monitor.toml:16: alerts.breaker_open_for: must be a number of seconds from 0 to",
        ),
        (
            ("[alerts]", "[alerts]\nwindow = inf"),
            "monitor.toml:16: alerts.window: must be a number greater than 0 and at most 604800, "
            "got inf",
        ),
        (
            ("[alerts]", "[incidents]\nopen_after = 100000000000000000\n[alerts]"),
            "monitor.toml:16: incidents.open_after: must be a whole number from 1 to 1000",
        ),
        (
            (
                'url = "sqlite:///./var/monitor.db"',
                'url = "sqlite:///x"\nretention_raw_days = 1e300',
            ),
            "monitor.toml:3: storage.retention_raw_days: must be a number greater than 0 and at "
            "most 3650",
        ),
    ],
)
def test_absurd_numbers_are_refused_with_line_and_key(
    change: tuple[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(GOOD.replace(*change, 1), Path("monitor.toml"))
    assert str(raised.value).startswith(message)


def test_deeply_nested_toml_is_a_config_error_with_a_line() -> None:
    nested = GOOD + "\n[extra]\nx = " + "[" * 50_000 + "]" * 50_000 + "\n"
    with pytest.raises(ConfigError) as raised:
        parse_config(nested, Path("monitor.toml"))
    line = GOOD.count("\n") + 3
    assert str(raised.value).startswith(f"monitor.toml:{line}: syntax: arrays or tables nested")


def test_a_huge_value_is_quoted_short_in_the_message() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(GOOD.replace("interval = 10", f'interval = "{"x" * 100_000}"'))
    assert len(str(raised.value)) < 200


FLEET = GOOD.replace(
    'services = { database = "Quests and accounts", s3 = "Photos" }',
    'services = { database = "Quests and accounts", s3 = "Photos" }\n'
    'replicas = ["http://10.0.0.5:8000/", "https://[::1]", "dns:API-Headless.svc.local:8000"]',
)


def test_replicas_nameservers_and_lease_ttl_parse() -> None:
    text = FLEET + '\n[dns]\nnameservers = ["127.0.0.1:5353", "10.0.0.10", "[::1]:54"]\n'
    config = parse_config(text + "\n[monitor]\nlease_ttl = 7.5\n", Path("monitor.toml"))
    assert config.targets[0].replicas == (
        "http://10.0.0.5:8000",
        "https://[::1]",
        "dns:api-headless.svc.local:8000",
    )
    assert config.dns_nameservers == (("127.0.0.1", 5353), ("10.0.0.10", 53), ("::1", 54))
    assert config.lease_ttl == 7.5
    plain = parse_config(GOOD, Path("monitor.toml"))
    assert (plain.targets[0].replicas, plain.dns_nameservers, plain.lease_ttl) == ((), (), None)


def test_replica_keys_are_host_and_port() -> None:
    assert replica_key("http://10.0.0.5:8000/prefix") == "10.0.0.5:8000"
    assert replica_key("https://API.example.org") == "api.example.org:443"
    assert replica_key("http://[::1]:8000") == "[::1]:8000"
    assert replica_key("http://backend.test") == "backend.test:80"


@pytest.mark.parametrize(
    ("replicas", "message"),
    [
        (
            '"http://10.0.0.5:8000"',
            "monitor.toml:14: targets[0].replicas: questcity-api's replicas must be a list of "
            "1 to 64 entries",
        ),
        ("[]", "questcity-api's replicas must be a list of 1 to 64 entries"),
        (
            "[" + ", ".join(f'"http://10.0.0.{n}:8000"' for n in range(65)) + "]",
            "questcity-api's replicas must be a list of 1 to 64 entries, e.g. ",
        ),
        ("[5]", "questcity-api's replica 1 must be a string"),
        (
            '["http://a:1", "dns:api"]',
            "monitor.toml:14: targets[0].replicas: questcity-api's replica 2 must be "
            "dns:NAME:PORT, NAME a host name and PORT from 1 to 65535, e.g. "
            "\"dns:questcity-api-headless.default.svc.cluster.local:8000\", got 'dns:api'",
        ),
        ('["dns:api:0"]', "replica 1 must be dns:NAME:PORT"),
        ('["dns:api:65536"]', "replica 1 must be dns:NAME:PORT"),
        ('["dns:bad_name:80"]', "replica 1 must be dns:NAME:PORT"),
        ('["dns:-api:80"]', "replica 1 must be dns:NAME:PORT"),
        ('["10.0.0.5:8000"]', "replica 1 must be an http:// or https:// base URL (no scheme"),
        ('["http://u:p@10.0.0.5"]', "(no user or password in it: tokens come from token_env)"),
        ('["http://10.0.0.5:99999"]', "(a port from 1 to 65535)"),
        ('["http://10.0.0.5?x=1"]', "(no query or fragment)"),
        (
            '["http://10.0.0.5:8000", "http://10.0.0.5:8000/"]',
            "questcity-api's replicas 1 and 2 are the same replica (10.0.0.5:8000); name each once",
        ),
        ('["http://a", "http://A:80"]', "replicas 1 and 2 are the same replica (a:80)"),
        ('["dns:a:80", "dns:A:80"]', "replicas 1 and 2 are the same replica (dns:a:80)"),
    ],
)
def test_a_bad_replica_says_which_target_and_what_to_write(replicas: str, message: str) -> None:
    text = GOOD.replace(
        'services = { database = "Quests and accounts", s3 = "Photos" }',
        f'services = {{ database = "Quests and accounts", s3 = "Photos" }}\nreplicas = {replicas}',
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(text, Path("monitor.toml"))
    assert message in str(raised.value)
    assert len(str(raised.value)) < 400


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            '[dns]\nnameservers = ["ns.example.org"]',
            "dns.nameservers: each must be an IP address with an optional :PORT",
        ),
        ('[dns]\nnameservers = ["10.0.0.1:0"]', "each must be an IP address"),
        ('[dns]\nnameservers = "10.0.0.1"', "dns.nameservers: must be a list of at most 8"),
        ("[dns]\nserver = 1", "dns.server: unknown key; expected one of nameservers"),
        ("[monitor]\nlease_ttl = 0.5", "monitor.lease_ttl: must be a number from 1 to 300"),
        ("[monitor]\nlease_ttl = 301", "monitor.lease_ttl: must be a number from 1 to 300"),
        ("[monitor]\nlease = 3", "monitor.lease: unknown key; expected one of lease_ttl"),
    ],
)
def test_bad_dns_and_monitor_sections_are_named(extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(GOOD + "\n" + extra + "\n", Path("monitor.toml"))
    assert message in str(raised.value)


DNS_FLEET = GOOD.replace(
    'services = { database = "Quests and accounts", s3 = "Photos" }',
    'services = { database = "Quests and accounts", s3 = "Photos" }\n'
    'replicas = ["dns:api-headless.svc.local:8000"]',
)


def expecting(value: str) -> str:
    """DNS_FLEET with ``expected_replicas = value`` in its target."""
    return DNS_FLEET.replace("[alerts]", f"expected_replicas = {value}\n\n[alerts]")


def test_expected_replicas_parses_and_is_none_without_it() -> None:
    config = parse_config(expecting("3"), Path("monitor.toml"))
    assert config.targets[0].expected_replicas == 3
    assert parse_config(DNS_FLEET, Path("monitor.toml")).targets[0].expected_replicas is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            expecting("0"),
            "monitor.toml:16: targets[0].expected_replicas: must be a whole number from 1 to 64: "
            "how many replicas the target should have",
        ),
        (expecting("65"), "must be a whole number from 1 to 64"),
        (expecting('"3"'), "must be a whole number from 1 to 64"),
        (expecting("true"), "must be a whole number from 1 to 64"),
        (expecting("2.5"), "must be a whole number from 1 to 64"),
        (
            GOOD.replace("[alerts]", "expected_replicas = 3\n\n[alerts]"),
            "expected_replicas: counts the replicas a dns: entry finds; it needs replicas = "
            '["dns:NAME:PORT"]',
        ),
        (
            expecting("3").replace('"dns:api-headless.svc.local:8000"', '"http://10.0.0.7:8000"'),
            "counts the replicas a dns: entry finds",
        ),
    ],
)
def test_a_bad_expected_replicas_says_what_it_counts(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, Path("monitor.toml"))
    assert message in str(raised.value)


def test_dns_replicas_of_an_https_target_are_refused_with_what_to_do() -> None:
    text = DNS_FLEET.replace('url = "http://127.0.0.1:8000"', 'url = "https://api.example.org"')
    with pytest.raises(ConfigError) as raised:
        parse_config(text, Path("monitor.toml"))
    message = str(raised.value)
    assert message.startswith("monitor.toml:14: targets[0].replicas: questcity-api's replica 1")
    assert "which no certificate names" in message
    assert "list the replicas' https:// URLs instead, or probe over http://" in message
    assert len(message) < 500
    # Listed https:// replicas of an https target stay fine; so do dns: ones of an http target.
    listed = text.replace('"dns:api-headless.svc.local:8000"', '"https://api-1.example.org"')
    assert parse_config(listed, Path("monitor.toml")).targets[0].replicas == (
        "https://api-1.example.org",
    )
