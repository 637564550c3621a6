"""Load and validate the TOML configuration.

Every mistake is reported with the file, the key and the problem, all at once, so that
``mailthreads config check`` can list them. Nothing here touches the network or the database.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

# The [limits] and [addresses] tables' types live in mail/, which never imports the config.
from .mail.limits import Limits
from .mail.routing import SLUG_PATTERN as SLUG_PATTERN  # re-exported for its readers
from .mail.routing import Addresses

APP_NAME = "mailthreads"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_PATTERN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
_LOCAL_PART_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_ADDRESS_PATTERN = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


class ConfigError(Exception):
    """One or more configuration mistakes; ``problems`` lists them as full sentences."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class Author(NamedTuple):
    name: str = ""
    addresses: tuple[str, ...] = ()


class Posts(NamedTuple):
    create_on_first_reply: bool = False


class Listener(NamedTuple):
    host: str = "127.0.0.1"
    port: int = 8025
    max_message_size: int = 25 * 1024 * 1024
    max_recipients: int = 50
    max_connections: int = 100
    command_timeout: float = 300.0
    data_timeout: float = 300.0
    known_posts_only: bool = False
    tls_certificate: str | None = None
    tls_key: str | None = None
    # Commands answered with an error (4xx/5xx) before the session is closed with 421.
    max_bad_commands: int = 20
    # Sessions at once from one IP address (trusted peers excepted), then 421 at connect.
    max_connections_per_peer: int = 10
    # Commands a session may send without a message (new recipients excepted), then 421.
    max_commands: int = 100
    # Relays (addresses or networks) exempt from the two limits above: Postfix in front.
    trusted_peers: tuple[str, ...] = ("127.0.0.1", "::1")


class ImapAccount(NamedTuple):
    name: str
    host: str
    port: int | None = None
    security: str = "tls"
    username: str = ""
    password_env: str | None = None
    password_command: str | None = None
    auth: str = "password"
    oauth2_token_command: str | None = None
    folders: tuple[str, ...] = ("INBOX",)
    sent_folder: str | None = None
    after: str = "leave"
    idle_timeout: float = 29 * 60
    poll_interval: float = 300.0
    timeout: float = 60.0
    tls_ca_file: str | None = None  # trust a private CA (one's own Dovecot); never skip checks


class Outgoing(NamedTuple):
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    password_env: str | None = None
    password_command: str | None = None
    save_to_sent: bool = True
    timeout: float = 60.0
    # 'outbox send' without IDs (cron) retries only answers younger than this; older ones wait
    # for the author, so that a failed answer never goes out days later by surprise.
    retry_window_hours: float = 24.0


class Notify(NamedTuple):
    # Run (through the shell) once per new human reply that came by SMTP or IMAP, with a JSON
    # description on standard input; after the filing commit, never inside it.
    command: str | None = None
    timeout: float = 30.0  # seconds per run; past it the run counts as failed (retried)
    # Where 'mailthreads digest' mails the new replies: an address, or the first [author]
    # address when the config says ``digest = true``. None: no digest.
    digest: str | None = None


class Spam(NamedTuple):
    """[spam]: a SpamAssassin ``spamd`` scan when a message is filed, and which of the
    headers that upstream servers add are believed (see ``mail.upstream``)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 783
    timeout: float = 10.0
    threshold: float | None = None  # None: spamd's own required score
    # The user's own servers (Received "by" hosts and Authentication-Results authserv-ids):
    # exact names or parent domains. Empty: no upstream header is believed.
    authserv_ids: tuple[str, ...] = ()
    dmarc_failure: str = "quarantine"  # or "spam"
    # How often 'serve' scans again the messages filed 'unscanned' while spamd was down.
    rescan_seconds: float = 600.0


class Config(NamedTuple):
    path: Path | None = None
    database: Path | None = None
    addresses: Addresses = Addresses()
    author: Author = Author()
    posts: Posts = Posts()
    limits: Limits = Limits()
    listener: Listener = Listener()
    imap: tuple[ImapAccount, ...] = ()
    outgoing: Outgoing | None = None
    notify: Notify = Notify()
    spam: Spam = Spam()

    @property
    def secret(self) -> str | None:
        return os.environ.get("MAILTHREADS_SECRET") or self.addresses.secret

    def is_author(self, address: str) -> bool:
        return address.lower() in {a.lower() for a in self.author.addresses}


def default_config_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path(APP_NAME) / "config.toml"


def default_database_path() -> Path:
    from platformdirs import user_data_path

    return user_data_path(APP_NAME) / "mailthreads.db"


def load(path: Path | str | None, *, required: bool = False) -> Config:
    """Read the config at ``path``; with no file, return the documented defaults.

    ``required`` is for an explicitly named file: then a missing file is an error.
    """
    if path is None:
        return Config()
    path = Path(path).expanduser()
    if not path.exists():
        if required:
            raise ConfigError([f"{path}: no such config file"])
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{path}: not valid TOML: {error}"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{path}: cannot read: {error}"]) from None
    return parse(data, path)


def parse(data: dict[str, Any], path: Path) -> Config:
    reader = _Reader(path)
    known_tables = {"database", "addresses", "author", "posts", "limits", "listener", "imap",
                    "outgoing", "notify", "spam"}
    for key in data:
        if key not in known_tables:
            reader.problem(key, "unknown section; expected one of "
                           + ", ".join(sorted(known_tables)))

    for section, keys in (("database", {"path"}), ("author", {"name", "addresses"}),
                          ("posts", {"create_on_first_reply"})):
        if isinstance(data.get(section), dict):
            reader.only(data[section], section, keys)
    database = reader.string(reader.table(data, "database"), "database", "path")
    addresses = _addresses(reader, reader.table(data, "addresses"))
    author = Author(
        name=reader.string(reader.table(data, "author"), "author", "name") or "",
        addresses=tuple(a.lower() for a in reader.address_list(
            reader.table(data, "author"), "author", "addresses")),
    )
    posts = Posts(create_on_first_reply=reader.boolean(
        reader.table(data, "posts"), "posts", "create_on_first_reply", False))
    limits = _limits(reader, reader.table(data, "limits"))
    listener = _listener(reader, reader.table(data, "listener"))
    imap = _imap_accounts(reader, data.get("imap", []))
    outgoing = _outgoing(reader, data["outgoing"]) if "outgoing" in data else None
    notify = _notify(reader, reader.table(data, "notify"), author)
    spam = _spam(reader, reader.table(data, "spam"))
    if reader.problems:
        raise ConfigError(reader.problems)
    return Config(
        path=path,
        database=Path(database).expanduser() if database else None,
        addresses=addresses,
        author=author,
        posts=posts,
        limits=limits,
        listener=listener,
        imap=imap,
        outgoing=outgoing,
        notify=notify,
        spam=spam,
    )


def _spam(reader: _Reader, table: dict[str, Any]) -> Spam:
    defaults = Spam()
    reader.only(table, "spam", set(defaults._fields))
    threshold = None
    if "threshold" in table:
        threshold = reader.positive_number(table, "spam", "threshold", 5.0)
    port = reader.positive_int(table, "spam", "port", defaults.port)
    if not 0 < port < 65536:
        reader.problem("spam.port", f"must be a TCP port (1-65535), not {port}")
    return Spam(
        enabled=reader.boolean(table, "spam", "enabled", defaults.enabled),
        host=reader.string(table, "spam", "host") or defaults.host,
        port=port,
        timeout=reader.positive_number(table, "spam", "timeout", defaults.timeout),
        rescan_seconds=reader.positive_number(table, "spam", "rescan_seconds",
                                              defaults.rescan_seconds),
        threshold=threshold,
        authserv_ids=tuple(reader.string_list(table, "spam", "authserv_ids")),
        dmarc_failure=reader.choice(table, "spam", "dmarc_failure", ("quarantine", "spam"),
                                    defaults.dmarc_failure),
    )


def _addresses(reader: _Reader, table: dict[str, Any]) -> Addresses:
    section = "addresses"
    reader.only(table, section, {"domain", "local_part", "separator", "catch_all_domain", "secret"})
    domain = (reader.string(table, section, "domain") or "localhost").lower()
    if not _DOMAIN_PATTERN.match(domain):
        reader.problem(f"{section}.domain", f"{domain!r} is not a domain name")
    local_part = (reader.string(table, section, "local_part") or "reply").lower()
    if not _LOCAL_PART_PATTERN.match(local_part):
        reader.problem(f"{section}.local_part", f"{local_part!r} is not a usable local part")
    separator = reader.string(table, section, "separator") or "+"
    if separator not in {"+", "-", "_", "="}:
        reader.problem(f"{section}.separator", f"{separator!r} must be one of + - _ =")
    catch_all = reader.string(table, section, "catch_all_domain")
    if catch_all is not None:
        catch_all = catch_all.lower()
        if not _DOMAIN_PATTERN.match(catch_all):
            reader.problem(f"{section}.catch_all_domain", f"{catch_all!r} is not a domain name")
    secret = reader.string(table, section, "secret")
    if secret is not None and len(secret) < 16:
        reader.problem(f"{section}.secret", "must be at least 16 characters long")
    return Addresses(domain, local_part, separator, catch_all, secret)


def _limits(reader: _Reader, table: dict[str, Any]) -> Limits:
    defaults = Limits()
    reader.only(table, "limits", set(defaults._fields))
    values: dict[str, Any] = {
        name: reader.positive_int(table, "limits", name, getattr(defaults, name))
        for name in defaults._fields if name != "max_parse_seconds"
    }
    values["max_parse_seconds"] = reader.positive_number(table, "limits", "max_parse_seconds",
                                                         defaults.max_parse_seconds)
    return Limits(**values)


def _listener(reader: _Reader, table: dict[str, Any]) -> Listener:
    section = "listener"
    defaults = Listener()
    reader.only(table, section, set(defaults._fields))
    port = reader.positive_int(table, section, "port", defaults.port)
    if port > 65535:
        reader.problem(f"{section}.port", f"{port} is not a TCP port")
    certificate = reader.string(table, section, "tls_certificate")
    key = reader.string(table, section, "tls_key")
    if bool(certificate) != bool(key):
        reader.problem(f"{section}.tls_certificate",
                       "tls_certificate and tls_key must be given together")
    for name, value in (("tls_certificate", certificate), ("tls_key", key)):
        if value and not Path(value).expanduser().is_file():
            reader.problem(f"{section}.{name}", f"no such file: {value}")
    return Listener(
        host=reader.string(table, section, "host") or defaults.host,
        port=port,
        max_message_size=reader.positive_int(table, section, "max_message_size",
                                             defaults.max_message_size),
        max_recipients=reader.positive_int(table, section, "max_recipients",
                                           defaults.max_recipients),
        max_connections=reader.positive_int(table, section, "max_connections",
                                            defaults.max_connections),
        command_timeout=reader.positive_number(table, section, "command_timeout",
                                               defaults.command_timeout),
        data_timeout=reader.positive_number(table, section, "data_timeout",
                                            defaults.data_timeout),
        known_posts_only=reader.boolean(table, section, "known_posts_only",
                                        defaults.known_posts_only),
        tls_certificate=certificate,
        tls_key=key,
        max_bad_commands=reader.positive_int(table, section, "max_bad_commands",
                                             defaults.max_bad_commands),
        max_connections_per_peer=reader.positive_int(table, section, "max_connections_per_peer",
                                                     defaults.max_connections_per_peer),
        max_commands=reader.positive_int(table, section, "max_commands", defaults.max_commands),
        trusted_peers=reader.network_list(table, section, "trusted_peers",
                                          defaults.trusted_peers),
    )


def _imap_accounts(reader: _Reader, value: Any) -> tuple[ImapAccount, ...]:
    if not isinstance(value, list):
        reader.problem("imap", "must be an array of tables: write [[imap]] for each account")
        return ()
    accounts = []
    names = set()
    for index, table in enumerate(value):
        section = f"imap[{index}]"
        if not isinstance(table, dict):
            reader.problem(section, "must be a table")
            continue
        defaults = ImapAccount(name="", host="")
        reader.only(table, section, set(defaults._fields))
        name = reader.string(table, section, "name") or f"account{index + 1}"
        if name in names:
            reader.problem(f"{section}.name", f"{name!r} is used by another account")
        names.add(name)
        host = reader.string(table, section, "host")
        if not host:
            reader.problem(f"{section}.host", "is required")
        security = reader.choice(table, section, "security", ("tls", "starttls", "none"), "tls")
        auth = reader.choice(table, section, "auth", ("password", "oauth2"), "password")
        password_env = reader.string(table, section, "password_env")
        password_command = reader.string(table, section, "password_command")
        token_command = reader.string(table, section, "oauth2_token_command")
        if auth == "oauth2" and not token_command:
            reader.problem(f"{section}.oauth2_token_command", 'is required when auth = "oauth2"')
        _one_password_source(reader, table, section)
        if auth == "password" and not (password_env or password_command):
            reader.problem(f"{section}.password_env",
                           "give password_env or password_command (never the password itself)")
        if "password" in table:
            reader.problem(f"{section}.password",
                           "passwords do not belong in the config; use password_env or "
                           "password_command")
        folders = reader.string_list(table, section, "folders") or ["INBOX"]
        after = reader.string(table, section, "after") or "leave"
        if after not in {"leave", "seen"} and not (after.startswith("move:") and after[5:]):
            reader.problem(f"{section}.after", f"{after!r} must be leave, seen or move:FOLDER")
        port = reader.positive_int(table, section, "port", 0) or None
        if port is not None and port > 65535:
            reader.problem(f"{section}.port", f"{port} is not a TCP port")
        ca_file = reader.string(table, section, "tls_ca_file")
        if ca_file and not Path(ca_file).expanduser().is_file():
            reader.problem(f"{section}.tls_ca_file", f"no such file: {ca_file}")
        accounts.append(ImapAccount(
            name=name,
            host=host or "",
            port=port,
            security=security,
            username=reader.string(table, section, "username") or "",
            password_env=password_env,
            password_command=password_command,
            auth=auth,
            oauth2_token_command=token_command,
            folders=tuple(folders),
            sent_folder=reader.string(table, section, "sent_folder"),
            after=after,
            idle_timeout=reader.positive_number(table, section, "idle_timeout",
                                                defaults.idle_timeout),
            poll_interval=reader.positive_number(table, section, "poll_interval",
                                                 defaults.poll_interval),
            timeout=reader.positive_number(table, section, "timeout", defaults.timeout),
            tls_ca_file=str(Path(ca_file).expanduser()) if ca_file else None,
        ))
    return tuple(accounts)


def _outgoing(reader: _Reader, table: Any) -> Outgoing | None:
    section = "outgoing"
    if not isinstance(table, dict):
        reader.problem(section, "must be a table")
        return None
    defaults = Outgoing()
    reader.only(table, section, set(defaults._fields))
    security = reader.choice(table, section, "security", ("tls", "starttls", "none"),
                             defaults.security)
    _one_password_source(reader, table, section)
    return Outgoing(
        host=reader.string(table, section, "host") or defaults.host,
        port=reader.positive_int(table, section, "port", 465 if security == "tls" else 587),
        security=security,
        username=reader.string(table, section, "username"),
        password_env=reader.string(table, section, "password_env"),
        password_command=reader.string(table, section, "password_command"),
        save_to_sent=reader.boolean(table, section, "save_to_sent", defaults.save_to_sent),
        timeout=reader.positive_number(table, section, "timeout", defaults.timeout),
        retry_window_hours=reader.positive_number(table, section, "retry_window_hours",
                                                  defaults.retry_window_hours),
    )


def _notify(reader: _Reader, table: dict[str, Any], author: Author) -> Notify:
    section = "notify"
    defaults = Notify()
    reader.only(table, section, set(defaults._fields))
    command = reader.string(table, section, "command")
    if command is not None and not command.strip():
        reader.problem(f"{section}.command", "is empty: remove it, or name a command to run")
        command = None
    digest = table.get("digest")
    if digest is True:
        digest = author.addresses[0] if author.addresses else None
        if digest is None:
            reader.problem(f"{section}.digest", "is true but [author] addresses is empty: "
                           "give the address to mail the digest to")
    elif digest is False:
        digest = None
    elif digest is not None and not (isinstance(digest, str) and _ADDRESS_PATTERN.match(digest)):
        reader.problem(f"{section}.digest", f"must be true, false or an email address, "
                       f"not {digest!r}")
        digest = None
    return Notify(command=command,
                  timeout=reader.positive_number(table, section, "timeout", defaults.timeout),
                  digest=digest)


def _one_password_source(reader: _Reader, table: dict[str, Any], section: str) -> None:
    """Both would leave the reader guessing which one wins: ``credentials.resolve_secret``
    never has to choose."""
    if "password_env" in table and "password_command" in table:
        reader.problem(f"{section}.password_command",
                       "give password_env or password_command, not both")


class _Reader:
    """Typed access to TOML values that records a problem instead of raising."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[str] = []

    def problem(self, key: str, text: str) -> None:
        self.problems.append(f"{self.path}: {key}: {text}")

    def table(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            self.problem(name, f"must be a table: write [{name}]")
            return {}
        return value

    def only(self, table: dict[str, Any], section: str, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                self.problem(f"{section}.{key}", "unknown key; expected one of "
                             + ", ".join(sorted(allowed)))

    def string(self, table: dict[str, Any], section: str, key: str) -> str | None:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, str):
            self.problem(f"{section}.{key}", f"must be a string, not {_toml_type(value)}")
            return None
        return value

    def string_list(self, table: dict[str, Any], section: str, key: str) -> list[str]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(f"{section}.{key}", "must be a list of strings")
            return []
        return value

    def address_list(self, table: dict[str, Any], section: str, key: str) -> list[str]:
        addresses = self.string_list(table, section, key)
        for address in addresses:
            if not _ADDRESS_PATTERN.match(address):
                self.problem(f"{section}.{key}", f"{address!r} is not an email address")
        return [a for a in addresses if _ADDRESS_PATTERN.match(a)]

    def network_list(self, table: dict[str, Any], section: str, key: str,
                     default: tuple[str, ...]) -> tuple[str, ...]:
        """IP addresses or networks ("192.0.2.7", "10.0.0.0/8", "::1")."""
        if key not in table:
            return default
        import ipaddress  # here: every command loads the config, few configs list networks

        networks = self.string_list(table, section, key)
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                self.problem(f"{section}.{key}", f"{network!r} is not an IP address or network")
        return tuple(networks)

    def boolean(self, table: dict[str, Any], section: str, key: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            self.problem(f"{section}.{key}", f"must be true or false, not {_toml_type(value)}")
            return default
        return value

    def positive_int(self, table: dict[str, Any], section: str, key: str, default: int) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.problem(f"{section}.{key}", f"must be a positive whole number, not {value!r}")
            return default
        return value

    def positive_number(self, table: dict[str, Any], section: str, key: str,
                        default: float) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            self.problem(f"{section}.{key}", f"must be a positive number, not {value!r}")
            return default
        return float(value)

    def choice(self, table: dict[str, Any], section: str, key: str, allowed: tuple[str, ...],
               default: str) -> str:
        value = self.string(table, section, key)
        if value is None:
            return default
        if value not in allowed:
            self.problem(f"{section}.{key}", f"{value!r} must be one of {', '.join(allowed)}")
            return default
        return value


def _toml_type(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)
