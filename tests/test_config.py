from pathlib import Path

import pytest

from mailthreads.config import Config, ConfigError, load


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_no_file_means_documented_defaults(tmp_path):
    config = load(tmp_path / "absent.toml")
    assert config == Config()
    assert config.addresses.domain == "localhost"
    assert (config.addresses.local_part, config.addresses.separator) == ("reply", "+")
    assert config.posts.create_on_first_reply is False  # held for review (issue 12)
    assert (config.listener.host, config.listener.port) == ("127.0.0.1", 8025)


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load(tmp_path / "absent.toml", required=True)


def test_the_example_config_is_valid_and_matches_the_defaults():
    example = Path(__file__).parents[1] / "config" / "mailthreads.example.toml"
    config = load(example, required=True)
    assert config.addresses == Config().addresses
    assert config.listener == Config().listener
    assert config.limits == Config().limits


def test_every_problem_is_reported_with_file_and_key(tmp_path):
    path = write(tmp_path, """
[addresses]
domain = "bad domain"
secret = "short"
[author]
addresses = ["not-an-address"]
[posts]
create_on_first_reply = "yes"
[limits]
max_mime_parts = -1
[[imap]]
host = "imap.example"
after = "delete"
[surprise]
""")
    with pytest.raises(ConfigError) as caught:
        load(path)
    text = "\n".join(caught.value.problems)
    for key in ("addresses.domain", "addresses.secret", "author.addresses",
                "posts.create_on_first_reply", "limits.max_mime_parts", "imap[0].after",
                "imap[0].password_env", "surprise"):
        assert f"{path}: {key}:" in text, key


def test_values_are_read(tmp_path):
    path = write(tmp_path, """
[database]
path = "~/replies.db"
[addresses]
domain = "Blog.Example"
catch_all_domain = "replies.blog.example"
[author]
name = "Ann"
addresses = ["Ann@Blog.Example"]
[[imap]]
name = "fastmail"
host = "imap.fastmail.com"
password_env = "FASTMAIL_PASSWORD"
folders = ["INBOX", "Replies"]
after = "move:Archive"
""")
    config = load(path)
    assert config.database == Path("~/replies.db").expanduser()
    assert config.addresses.domain == "blog.example"
    assert config.is_author("ann@blog.example")
    [account] = config.imap
    assert account.folders == ("INBOX", "Replies")
    assert account.after == "move:Archive"


def test_secret_comes_from_the_environment_first(tmp_path, monkeypatch):
    config = load(write(tmp_path, '[addresses]\nsecret = "from-the-config-file"\n'))
    assert config.secret == "from-the-config-file"
    monkeypatch.setenv("MAILTHREADS_SECRET", "from-the-environment")
    assert config.secret == "from-the-environment"


def test_unknown_keys_in_every_section_are_reported(tmp_path):
    path = write(tmp_path, '[author]\naddress = "me@x.example"\n[posts]\ncreate = true\n'
                 '[database]\nfile = "x.db"\n')
    with pytest.raises(ConfigError) as caught:
        load(path)
    text = "\n".join(caught.value.problems)
    for key in ("author.address", "posts.create", "database.file"):
        assert f"{path}: {key}: unknown key" in text


def test_listener_peers_are_ip_addresses_or_networks(tmp_path):
    path = write(tmp_path, '[listener]\ntrusted_peers = ["10.0.0.0/8", "2001:db8::1", "relay"]\n'
                           "max_connections_per_peer = -1\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.problems == [
        f"{path}: listener.max_connections_per_peer: must be a positive whole number, not -1",
        f"{path}: listener.trusted_peers: 'relay' is not an IP address or network",
    ]
    path = write(tmp_path, '[listener]\ntrusted_peers = []\nmax_commands = 0\n')
    assert load(path).listener.trusted_peers == ()


@pytest.mark.parametrize("section", ["[[imap]]\nhost = \"imap.example\"", "[outgoing]"])
def test_both_password_settings_are_one_config_error(tmp_path, section):
    path = write(tmp_path, f"""
{section}
password_env = "MAIL_PASSWORD"
password_command = "pass show mail"
""")
    with pytest.raises(ConfigError) as caught:
        load(path)
    key = "imap[0]" if "imap" in section else "outgoing"
    assert caught.value.problems == [
        f"{path}: {key}.password_command: give password_env or password_command, not both"]
