"""Coverage-guided fuzzing (atheris) of the two readers of hostile input.

    make fuzz                                  # both targets, 10 minutes each
    python -m bench.fuzz replies --seconds 60  # one target

- ``replies``: :meth:`workflow.replies.inbox.Inbox.receive` on a SQLite database with the
  seed assignment started, seeded with the hostile reply corpus (tests/fixtures/replies/,
  its placeholders filled with real signed reply addresses). It must never raise: every
  message is a receipt (done, refused, ignored or duplicate).
- ``yaml``: the definition reader (the strict YAML reader, then the models and the
  cross-file checks), seeded with every definition file of the repository. It must
  never raise: every input is definitions or problems.

A crash is an exception out of the target: atheris stops, prints it and writes the input
to ``crash-*`` in the working directory. Not part of ``make test``: a benchmark-like run.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
TZ = ZoneInfo("Europe/Stockholm")
SECRET = "fuzzing-reply-secret-0123456789abcdefghijkl"
MAILBOX = "council@kommun.example"
#: The seed assignment starts on 9 January 2023; replies arrive an hour later.
T0 = dt.datetime(2023, 1, 9, 9, tzinfo=TZ)


def replies_target(work: Path) -> tuple[Callable[[bytes], None], list[bytes]]:
    """Inbox.receive on a started seed assignment, and the hostile corpus as seeds."""
    from pydantic import SecretStr

    from workflow import store
    from workflow.core.calendar import Calendar
    from workflow.definitions.loader import load
    from workflow.engine import Engine
    from workflow.replies import tokens
    from workflow.replies.inbox import Inbox
    from workflow.settings import Settings
    from workflow.store import migrate

    url = f"sqlite:///{work / 'council.db'}"
    db = store.connect(url)
    migrate.upgrade(db)
    engine = Engine(db=db, definitions=load([ROOT / "definitions"]), calendar=Calendar(),
                    timezone=TZ)  # fmt: skip
    engine.start("kf-2022-hedersvald", actor="sara.nilsson", now=T0)
    settings = Settings(
        reply_secret=SecretStr(SECRET), database_url=url, var_dir=work / "var",
        mail_from=MAILBOX, reply_address=MAILBOX, reply_answers_per_hour=10**6,
    )  # fmt: skip
    inbox = Inbox(engine, settings)
    with db.connect() as conn:
        owner_event = store.owner_event(conn, "kf-2022-hedersvald", 4, "map")
    assert owner_event is not None
    address = tokens.address(MAILBOX, SecretStr(SECRET), owner_event).encode()
    seeds = []
    for path in sorted((FIXTURES / "replies").rglob("*.eml")):
        raw = path.read_bytes().replace(b"{{TOKEN_ADDRESS}}", address)
        seeds.append(raw[:200_000])  # not the huge attachment's placeholder, expanded
    now = T0 + dt.timedelta(hours=1)

    def target(data: bytes) -> None:
        receipt = inbox.receive(data, now=now)
        assert receipt.outcome in ("done", "refused", "ignored", "duplicate"), receipt

    return target, seeds


def yaml_target(work: Path) -> tuple[Callable[[bytes], None], list[bytes]]:
    """The definition reader on one file beside the bundled definitions, and every YAML
    file of the repository as seeds."""
    from workflow.definitions import loader
    from workflow.definitions.checks import run_checks
    from workflow.definitions.corpus import Corpus
    from workflow.definitions.yamlsource import read_yaml

    seeds = [p.read_bytes() for p in sorted(ROOT.glob("**/*.yaml")) if ".venv" not in p.parts]
    names = [Path("people.yaml"), Path("workflows/w.yaml"), Path("assignments/a.yaml")]

    def target(data: bytes) -> None:
        text = data.decode("utf-8", "replace")
        corpus = Corpus()
        # The same text as each kind of file: people.yaml is told apart by its name.
        loader._read_one(corpus, names[len(data) % 3], read_yaml(text, "fuzzed.yaml"))
        problems = [*corpus.problems, *run_checks(corpus)]
        if not problems:
            loader.build(corpus)

    return target, seeds


TARGETS = {"replies": replies_target, "yaml": yaml_target}


def _quiet() -> None:
    """Drop every log line below CRITICAL: the inbox logs each refusal."""
    import logging

    import structlog

    logging.disable(logging.ERROR)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
        cache_logger_on_first_use=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__)
    parser.add_argument("targets", nargs="*", metavar="TARGET", help="replies, yaml (both)")
    parser.add_argument("--seconds", type=int, default=600, help="per target (default 600)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = args.targets or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"no target {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    if args.child:
        _run(names[0], args.seconds)
        return 0
    for name in names:
        print(f"fuzzing {name} for {args.seconds} s", flush=True)
        # atheris owns the process it fuzzes in (it exits when done): one child a target.
        code = subprocess.call(
            [sys.executable, "-m", "bench.fuzz", "--child", name, "--seconds", str(args.seconds)],
            cwd=ROOT, env=os.environ,
        )  # fmt: skip
        if code:
            return code
    return 0


def _run(name: str, seconds: int) -> None:
    """In the child: build the target, write its seeds, instrument, hand both to atheris."""
    import atheris  # type: ignore[import-not-found]

    work = Path(tempfile.mkdtemp(prefix=f"council-fuzz-{name}-"))
    atexit.register(shutil.rmtree, work, True)
    target, seeds = TARGETS[name](work)
    seed_dir, corpus = work / "seeds", work / "corpus"
    seed_dir.mkdir()
    corpus.mkdir()
    for i, seed in enumerate(seeds):
        (seed_dir / f"{i:04d}").write_bytes(seed)
    _quiet()  # a log line per input would be most of the time spent
    atheris.instrument_all()  # coverage of every module loaded: the target's included
    argv = [sys.argv[0], f"-max_total_time={seconds}", "-max_len=65536", "-print_final_stats=1",
            str(corpus), str(seed_dir)]  # fmt: skip
    atheris.Setup(argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    raise SystemExit(main())
