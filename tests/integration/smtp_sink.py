"""An SMTP sink for a test host: every accepted message is one file in a directory.

Run as ``python -m tests.integration.smtp_sink DIRECTORY PORT`` inside a network
namespace (tests/integration/hosts.py): it listens on every address of its host, so
other hosts reach it over their links, while the test, outside the namespace, reads
the messages from the directory. A file appears whole (written aside, then renamed),
and ``DIRECTORY/.ready`` says the server listens.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class _Keep:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = uuid.uuid4().hex
        aside = self.directory / f".{name}.tmp"
        aside.write_bytes(envelope.original_content or envelope.content)
        os.replace(aside, self.directory / f"{name}.eml")
        return "250 Message accepted"


def main(directory: str, port: str) -> None:
    where = Path(directory)
    where.mkdir(parents=True, exist_ok=True)
    controller = Controller(_Keep(where), hostname="0.0.0.0", port=int(port))
    controller.start()
    (where / ".ready").write_text(str(os.getpid()))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
