"""The notifier interface: plain data in, a delivery count out, no Telegram anywhere."""

from __future__ import annotations

import asyncio
import logging

import pytest

from jobs.notifier import AlertMessage, LogNotifier, Notifier, RecordingNotifier


def _message(**overrides) -> AlertMessage:
    values = dict(kind="drift", severity="warning", title="Data drift", text="Contract drifted",
                  figures={"drifted_share": 0.4})
    values.update(overrides)
    return AlertMessage(**values)


def test_both_notifiers_satisfy_the_protocol():
    assert isinstance(LogNotifier(), Notifier)
    assert isinstance(RecordingNotifier(), Notifier)


def test_an_alert_message_defaults_to_subscribers_and_admins_without_a_chart():
    message = _message()
    assert message.audience == "subscribers+admins"
    assert message.chart_png is None
    assert message.as_text() == "[WARNING] Data drift\nContract drifted"


def test_log_notifier_logs_and_delivers_to_nobody(caplog):
    with caplog.at_level(logging.INFO, logger="churnguard.alerts"):
        delivered = asyncio.run(LogNotifier().notify(_message(severity="critical")))
    assert delivered == 0
    assert "alert drift" in caplog.text and "Contract drifted" in caplog.text
    assert caplog.records[0].levelno == logging.WARNING


def test_recording_notifier_keeps_what_was_sent():
    notifier = RecordingNotifier(deliveries=3)
    assert asyncio.run(notifier.notify(_message())) == 3
    assert asyncio.run(notifier.notify(_message(kind="recall", audience="admins"))) == 3
    assert notifier.kinds() == ["drift", "recall"]
    assert notifier.sent[1].audience == "admins"


def test_a_failing_recording_notifier_raises():
    with pytest.raises(ConnectionError):
        asyncio.run(RecordingNotifier(fail=True).notify(_message()))
