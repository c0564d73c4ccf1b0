"""The systemd notify protocol, sent over real AF_UNIX datagram sockets the tests own."""

from __future__ import annotations

import time

import pytest
from daemon_helpers import NotifyListener, short_socket_path

from calsync.service.notify import Notifier, format_message, socket_address, watchdog_interval


@pytest.fixture
def listener():
    sock = NotifyListener()
    yield sock
    sock.close()


def test_ready_with_status_is_one_datagram_of_key_value_lines(listener):
    Notifier(listener.address).ready("3 calendars, 3 ok")
    message = listener.receive(2)
    assert message == {"READY": "1", "STATUS": "3 calendars, 3 ok"}


def test_abstract_socket_name_starts_with_a_nul_byte():
    assert socket_address("@calsync/notify") == b"\0calsync/notify"
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"


def test_filesystem_socket_path_receives_messages():
    listener = NotifyListener(short_socket_path())
    try:
        assert Notifier(listener.address).watchdog()
        assert listener.receive(2) == {"WATCHDOG": "1"}
    finally:
        listener.close()


def test_status_is_a_single_line(listener):
    Notifier(listener.address).status("line one\nline two\r")
    assert listener.receive(2) == {"STATUS": "line one line two "}


def test_format_message_ends_each_assignment_with_newline():
    assert format_message(STOPPING=1, STATUS="bye") == b"STOPPING=1\nSTATUS=bye\n"


def test_reloading_carries_the_monotonic_clock_in_microseconds(listener):
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    Notifier(listener.address).reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    message = listener.receive(2)
    assert message is not None and message["RELOADING"] == "1"
    assert before <= int(message["MONOTONIC_USEC"]) <= after


def test_stopping_message(listener):
    Notifier(listener.address).stopping()
    assert listener.receive(2) == {"STOPPING": "1"}


def test_without_notify_socket_nothing_is_sent():
    notifier = Notifier.from_environ({})
    assert not notifier.enabled
    assert notifier.ready("x") is False


def test_unreachable_socket_is_reported_not_raised():
    notifier = Notifier("@calsync-test-nobody-listens-here")
    assert notifier.watchdog() is False
    assert notifier.watchdog() is False


def test_watchdog_pings_at_half_the_timeout():
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, pid=42) == 15.0


def test_watchdog_for_another_process_is_ignored():
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "41"}, pid=42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, pid=42) == 15.0


@pytest.mark.parametrize("value", ["", "0", "-5", "soon"])
def test_watchdog_off_without_a_positive_timeout(value):
    assert watchdog_interval({"WATCHDOG_USEC": value}, pid=42) is None
