"""For `make demo`: answer an owner's task prompt the way their mail client would.

    python -m scripts.demo_reply MAILDIR INBOX OWNER_EMAIL "BODY"

Finds the newest prompt to OWNER_EMAIL in MAILDIR (what the worker sent), and writes
a reply to its Reply-To address into the maildir INBOX, quoting the prompt below.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from pathlib import Path


def _prompts(maildir: Path, owner: str) -> list[EmailMessage]:
    found = []
    for file in sorted((maildir / "new").iterdir(), key=lambda f: f.stat().st_mtime):
        message = BytesParser(policy=policy.default).parsebytes(file.read_bytes())
        assert isinstance(message, EmailMessage)
        if owner in str(message["To"]) and message["Reply-To"]:
            found.append(message)
    return found


def main(maildir: Path, inbox: Path, owner: str, body: str) -> int:
    deadline = time.monotonic() + 30
    while not (prompts := _prompts(maildir, owner)):
        if time.monotonic() > deadline:
            print(f"no prompt to {owner} in {maildir}", file=sys.stderr)
            return 1
        time.sleep(0.2)
    prompt = prompts[-1]
    text = prompt.get_body(preferencelist=("plain",))
    quoted = "\n".join(f"> {line}" for line in (text.get_content() if text else "").splitlines())
    reply = EmailMessage()
    reply["From"] = str(prompt["To"])
    reply["To"] = str(prompt["Reply-To"])
    reply["Subject"] = f"Re: {prompt['Subject']}"
    reply["Message-ID"] = make_msgid(domain="kommun.example")
    reply["In-Reply-To"] = str(prompt["Message-ID"])
    reply["Date"] = format_datetime(dt.datetime.now().astimezone())
    reply.set_content(f"{body}\n\nOn {prompt['Date']}, council wrote:\n{quoted}\n")
    for sub in ("new", "cur", "tmp"):
        (inbox / sub).mkdir(parents=True, exist_ok=True)
    (inbox / "new" / f"reply-{time.time_ns()}.eml").write_bytes(bytes(reply))
    print(f"{owner} replied to {prompt['Reply-To']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]))
