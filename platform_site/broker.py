"""The embedded broker: kombu's filesystem transport, with messages that appear only when complete.

kombu's own filesystem transport creates the message file under its final name and then writes it,
so a consumer polling the folder can move and read a file that is still empty and crash the worker
with a JSONDecodeError (seen in CI). Here the message is written to a hidden temporary file and
renamed into place, which is atomic on one filesystem; consumers only pick up `*.<queue>.msg` names.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    # Same signature as kombu's filesystem Channel._put, which itself renames kombu's abstract
    # `message` parameter to `payload`; mypy can only be told that the two parents disagree.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Write the message to a temporary file and rename it into place whole."""
        final = os.path.join(self.data_folder_out, f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg")
        descriptor, temporary = tempfile.mkstemp(prefix=".incoming-", dir=self.data_folder_out)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(temporary, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise ChannelError(f"Cannot add a message to {self.data_folder_out!r}") from exc


class Transport(filesystem.Transport):
    Channel = Channel
