"""The embedded filesystem broker never hands a consumer a half-written message."""

import json
import os
from queue import Empty

import pytest
from kombu import Connection

from platform_site.broker import Transport


def _connection(folder):
    return Connection(
        "filesystem://",
        transport_options={
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "polling_interval": 0,
        },
    )


def test_filesystem_urls_use_the_atomic_transport(tmp_path):
    with _connection(tmp_path) as connection:
        assert isinstance(connection.transport, Transport)


def test_a_message_is_visible_to_consumers_only_once_complete(tmp_path, monkeypatch):
    """kombu's own transport creates `<id>.<queue>.msg` empty and then writes it, so a polling worker
    could read an empty file and crash (seen in CI). The message must be renamed into place whole."""
    moments = []
    real_replace = os.replace

    def watching_replace(source, destination):
        consumable = [name for name in os.listdir(tmp_path) if name.endswith(".work.msg")]
        moments.append((consumable, json.loads(open(source, "rb").read()), os.path.basename(destination)))
        real_replace(source, destination)

    monkeypatch.setattr("platform_site.broker.os.replace", watching_replace)
    with _connection(tmp_path) as connection:
        channel = connection.default_channel
        channel._put("work", {"body": "x" * 20_000, "index": 7})
        [(consumable_before, written, final_name)] = moments
        assert consumable_before == []  # nothing a consumer could pick up before the rename
        assert written == {"body": "x" * 20_000, "index": 7}  # the whole message was already written
        assert final_name.endswith(".work.msg")
        assert channel._get("work") == {"body": "x" * 20_000, "index": 7}
        with pytest.raises(Empty):
            channel._get("work")
        assert os.listdir(tmp_path) == []  # no temporary file left behind
