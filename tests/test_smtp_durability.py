"""What `mailthreads serve` promises about stored mail: crashes, storage failures, shutdown."""

from __future__ import annotations

import os
import resource
import signal
import smtplib
import socket
import threading
from pathlib import Path

import pytest
from smtp_support import Dialogue, Serve, message, pending, query, wait_for, write_config


@pytest.fixture
def config(tmp_path) -> Path:
    return write_config(tmp_path)


def filed_ids(database: Path) -> list[str]:
    return [row[0] for row in query(database, "SELECT message_id FROM messages")]


class Sender:
    """Clients that send numbered replies until told to stop, noting which got 250."""

    def __init__(self, port: int, clients: int = 4):
        self.port = port
        self.acknowledged: list[str] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._send, args=(n,), daemon=True)
                        for n in range(clients)]

    def start(self) -> Sender:
        for thread in self.threads:
            thread.start()
        return self

    def _send(self, client: int) -> None:
        number = 0
        while not self.stopping.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as smtp:
                    while not self.stopping.is_set():
                        number += 1
                        message_id = f"crash-{client}-{number}@example.com"
                        smtp.sendmail(f"reader{client}@example.com",
                                      ["reply+why-i-blog@blog.example"],
                                      message(message_id=message_id,
                                              sender=f"Reader <reader{client}@example.com>"))
                        with self.lock:  # sendmail returned: the server said 250
                            self.acknowledged.append(message_id)
            except (OSError, smtplib.SMTPException):
                if self.stopping.is_set():
                    return
                # The server is gone (killed): stop, as a client would until it retries.
                return

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(60)


@pytest.mark.parametrize("victims", ["listener", "listener and filer"])
def test_every_acknowledged_message_survives_sigkill_and_none_is_filed_twice(tmp_path, config,
                                                                            victims):
    database = tmp_path / "mail.db"
    server = Serve(database, config).start()
    try:
        [filer] = server.children()
        sender = Sender(server.port).start()
        wait_for(lambda: len(sender.acknowledged) >= 150, "150 acknowledged messages", 120)
        if victims == "listener":
            server.process.kill()
            server.wait()
        else:
            server.kill_all()
        sender.stop()
        # A filer whose listener died files what it has and exits: no orphan stays behind.
        wait_for(lambda: not Path(f"/proc/{filer}").exists() or
                 Path(f"/proc/{filer}/stat").read_text().split()[2] == "Z",
                 "the old filer to exit", 60)
    finally:
        server.close()
    acknowledged = list(sender.acknowledged)

    with Serve(database, config, log=tmp_path / "restart.log") as restarted:
        wait_for(lambda: pending(database) == 0, "the restarted filer to finish", 120)
        ids = filed_ids(database)
        assert restarted.process.poll() is None
    missing = set(acknowledged) - set(ids)
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {sorted(missing)[:3]}"
    assert len(ids) == len(set(ids)), "a message was filed twice"
    statuses = {row[0] for row in query(database, "SELECT status FROM deliveries")}
    assert statuses <= {"stored", "duplicate"}


def test_a_storage_failure_answers_451_and_never_250(tmp_path, config):
    database = tmp_path / "mail.db"

    def small_disk() -> None:
        # Writes past 3 MB fail (EFBIG), as on a full disk. Python ignores SIGXFSZ.
        resource.setrlimit(resource.RLIMIT_FSIZE, (3_000_000, 3_000_000))

    with Serve(database, config, preexec=small_disk) as server:
        big = message(message_id="too-big-for-the-disk@example.com",
                      body=("x" * 76 + "\n") * 50_000)  # about 4 MB
        with smtplib.SMTP("127.0.0.1", server.port, timeout=60) as client:
            with pytest.raises(smtplib.SMTPDataError) as error:
                client.sendmail("jane@example.com", ["reply+why-i-blog@blog.example"], big)
            assert error.value.smtp_code == 451
            assert error.value.smtp_error.startswith(b"4.3.0")
            # The failure is the message's, not the server's: the next one goes in.
            assert client.sendmail("jane@example.com", ["reply+why-i-blog@blog.example"],
                                   message(message_id="fits@example.com")) == {}
        wait_for(lambda: pending(database) == 0 and filed_ids(database), "the small message")
        assert filed_ids(database) == ["fits@example.com"]
        assert query(database, "SELECT COUNT(*) FROM raw_messages WHERE size > 1000000") == \
            [(0,)]
        log = server.log()
        assert "not stored" in log and "reply=\"451 4.3.0" in log
        assert "Traceback" not in log


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_finishes_the_message_in_flight_and_exits_0(tmp_path, config, signum):
    database = tmp_path / "mail.db"
    server = Serve(database, config).start()
    try:
        [filer] = server.children()
        idle, busy = Dialogue(server.port), Dialogue(server.port)
        with idle, busy:
            assert idle.reply()[0] == 220
            assert idle.command("EHLO idle.example")[0] == 250
            busy.open_transaction(helo="busy.example")
            assert busy.command("DATA")[0] == 354
            raw = message(message_id="in-flight@example.com")
            busy.send(raw[:60])

            server.send(signum)
            code, text = idle.reply()  # idle sessions are told at once
            assert (code, text[:5]) == (421, "4.3.2")
            assert idle.closed()
            with pytest.raises(ConnectionRefusedError):  # no new connections
                socket.create_connection(("127.0.0.1", server.port), timeout=10)

            busy.send(raw[60:] + b".\r\n")  # the message in flight is finished...
            code, _ = busy.reply()
            assert code == 250
            code, text = busy.reply()  # ...then the session is closed
            assert (code, text[:5]) == (421, "4.3.2")
        assert server.wait() == 0
        assert not Path(f"/proc/{filer}").exists()
    finally:
        server.close()
    assert query(database, "SELECT status FROM deliveries") == [("stored",)]
    assert filed_ids(database) == ["in-flight@example.com"]
    log = server.log()
    assert "stopped" in log and "Traceback" not in log and "KeyboardInterrupt" not in log


def test_a_filer_that_dies_is_started_again(tmp_path, config):
    database = tmp_path / "mail.db"
    with Serve(database, config) as server:
        [filer] = server.children()
        os.kill(filer, signal.SIGKILL)
        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
            client.sendmail("jane@example.com", ["reply+why-i-blog@blog.example"],
                            message(message_id="after-filer-death@example.com"))
        wait_for(lambda: filed_ids(database) == ["after-filer-death@example.com"],
                 "a new filer to file the message", 60)
        assert "filer exited" in server.log()
        assert server.children() and server.children() != [filer]


def test_the_filer_stops_between_messages_when_asked_and_the_rest_waits(tmp_path):
    """A backlog must not keep a stopping filer busy: it checks between messages."""
    from mailthreads.config import load
    from mailthreads.db import open_database
    from mailthreads.ingest import Envelope, Pipeline
    from mailthreads.ingest.filer import BATCH, Filer

    config = load(write_config(tmp_path))
    database = open_database(tmp_path / "mail.db")
    pipeline = Pipeline(database.conn, config)
    for n in range(40):
        pipeline.receive(message(message_id=f"backlog-{n}@example.com"), "smtp",
                         Envelope("jane@example.com", ("reply+why-i-blog@blog.example",)))
    # Asked once per batch, once per message analysed, once per message filed: say stop
    # after ten are filed.
    checks = iter(range(10**6))
    Filer(database.conn, config,
          should_stop=lambda: next(checks) >= 1 + BATCH + 10).file_pending()
    assert pending(tmp_path / "mail.db") == 30
    Filer(database.conn, config).file_pending()  # the next start files the rest, once
    assert pending(tmp_path / "mail.db") == 0
    ids = filed_ids(tmp_path / "mail.db")
    assert sorted(ids) == sorted(f"backlog-{n}@example.com" for n in range(40))
    database.conn.close()
