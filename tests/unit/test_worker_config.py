"""The Celery configuration: at-least-once delivery, JSON only, limits, periodic queue, beat."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from worker import PERIODIC_QUEUE, QUEUE, SITE_QUEUE, celery_config
from workflow.errors import CouncilError
from workflow.settings import Settings

#: A broker nothing listens on: building the configuration must not connect to it.
BROKER = "redis://127.0.0.1:1/0"

MakeSettings = Callable[..., Settings]


@pytest.fixture
def make_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MakeSettings:
    """Settings from explicit arguments only: no council.toml, no COUNCIL_* variables."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("COUNCIL_"):
            monkeypatch.delenv(name, raising=False)

    def make(**values: Any) -> Settings:
        values.setdefault("broker_url", BROKER)
        values.setdefault("var_dir", tmp_path / "var")
        return Settings(**values)

    return make


def test_config_asks_for_late_acks_and_requeue_when_a_worker_is_lost(
    make_settings: MakeSettings,
) -> None:
    """The configuration asks Celery to acknowledge a task after it ran and to put a killed
    child's message back. That this redelivers lost work is proven with a real worker killed
    mid-run: tests/integration/test_reliability.py, test_sigkill_mid_run_*."""
    config = celery_config(make_settings())
    assert config["broker_url"] == BROKER
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_cancel_long_running_tasks_on_connection_loss"] is True
    assert config["task_ignore_result"] is True


@pytest.mark.parametrize("prefetch", [1, 4])
def test_prefetch_comes_from_settings(make_settings: MakeSettings, prefetch: int) -> None:
    """worker_prefetch_multiplier is the configured value (1 by default)."""
    config = celery_config(make_settings(worker_prefetch_multiplier=prefetch))
    assert config["worker_prefetch_multiplier"] == prefetch


def test_default_prefetch_is_one(make_settings: MakeSettings) -> None:
    """With nothing configured, a worker reserves one message at a time."""
    assert celery_config(make_settings())["worker_prefetch_multiplier"] == 1


def test_json_only(make_settings: MakeSettings) -> None:
    """Tasks and results are serialised as JSON, and nothing else is accepted (no pickle)."""
    config = celery_config(make_settings())
    assert config["task_serializer"] == "json"
    assert config["result_serializer"] == "json"
    assert config["accept_content"] == ["json"]


def test_visibility_timeout_and_time_limits(make_settings: MakeSettings) -> None:
    """The visibility timeout reaches the broker transport; soft limit below the hard one."""
    settings = make_settings(visibility_timeout=900, task_soft_time_limit=20, task_time_limit=30)
    config = celery_config(settings)
    assert config["broker_transport_options"] == {"visibility_timeout": 900}
    assert config["result_backend_transport_options"] == {"visibility_timeout": 900}
    assert config["task_soft_time_limit"] == 20
    assert config["task_time_limit"] == 30
    assert config["task_soft_time_limit"] < config["task_time_limit"]
    assert config["broker_transport_options"]["visibility_timeout"] >= 3 * config["task_time_limit"]


def test_periodic_tasks_have_their_own_queue(make_settings: MakeSettings) -> None:
    """Relay and reconciler are routed to the periodic queue; everything else to the default."""
    config = celery_config(make_settings())
    assert QUEUE != PERIODIC_QUEUE
    assert config["task_default_queue"] == QUEUE
    assert sorted(q.name for q in config["task_queues"]) == sorted([QUEUE, PERIODIC_QUEUE])
    routes = config["task_routes"]
    assert routes["council.relay_outbox"] == {"queue": PERIODIC_QUEUE}
    assert routes["council.reconcile"] == {"queue": PERIODIC_QUEUE}
    assert "council.dispatch" not in routes
    assert "council.deliver" not in routes


def test_beat_schedule_uses_configured_intervals(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    """Beat runs the relay, the reconciler and the sweep at their intervals, each routed apart."""
    config = celery_config(
        make_settings(relay_interval=2.5, reconcile_interval=45.0, sweep_interval=600.0)
    )
    schedule = config["beat_schedule"]
    assert schedule == {
        "relay-outbox": {"task": "council.relay_outbox", "schedule": 2.5},
        "reconcile": {"task": "council.reconcile", "schedule": 45.0},
        "sweep-deadlines": {"task": "council.sweep_deadlines", "schedule": 600.0},
    }
    for entry in schedule.values():
        assert config["task_routes"][entry["task"]] == {"queue": PERIODIC_QUEUE}
    assert config["beat_schedule_filename"] == str(tmp_path / "var" / "celerybeat-schedule")


def test_site_rebuilds_only_where_there_is_a_site(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    """Without site_dir nothing is scheduled for the site and no worker listens for it; with
    it, beat fires `council.publish_site` every site_interval on the site's own queue, and a
    rebuild not taken before the next is due expires instead of piling up."""
    plain = celery_config(make_settings())
    assert "publish-site" not in plain["beat_schedule"]
    assert SITE_QUEUE not in {q.name for q in plain["task_queues"]}
    config = celery_config(make_settings(site_dir=tmp_path / "site", site_interval=20.0))
    assert config["beat_schedule"]["publish-site"] == {
        "task": "council.publish_site", "schedule": 20.0, "options": {"expires": 20.0},
    }  # fmt: skip
    assert {q.name for q in config["task_queues"]} == {QUEUE, PERIODIC_QUEUE, SITE_QUEUE}
    assert config["task_routes"]["council.publish_site"] == {"queue": SITE_QUEUE}


def test_scheduled_and_routed_task_names_exist(make_settings: MakeSettings) -> None:
    """Every task named in routes and the beat schedule is a registered council task."""
    config = celery_config(make_settings())
    probe = Celery("probe", set_as_current=False, broker=BROKER)
    try:
        import tasks.dispatch
        import tasks.periodic
        import tasks.site  # noqa: F401

        probe.finalize(auto=True)
        names = set(probe.tasks)
    finally:
        probe.close()
    named = set(config["task_routes"]) | {e["task"] for e in config["beat_schedule"].values()}
    assert named <= names
    assert {"council.dispatch", "council.deliver"} <= names


def test_utc_and_no_hijacked_logging(make_settings: MakeSettings) -> None:
    """Celery works in UTC and leaves the root logger to council's own configuration."""
    config = celery_config(make_settings())
    assert config["enable_utc"] is True
    assert config["timezone"] == "UTC"
    assert config["worker_hijack_root_logger"] is False


@pytest.mark.parametrize(
    ("visibility", "hard"),
    [(269, 90), (29, 10), (100, 90)],
)
def test_short_visibility_timeout_is_refused(
    make_settings: MakeSettings, visibility: int, hard: int
) -> None:
    """A visibility timeout under 3x the task time limit would run a slow task twice at once."""
    settings = make_settings(
        visibility_timeout=visibility, task_time_limit=hard, task_soft_time_limit=hard - 1
    )
    with pytest.raises(CouncilError, match="visibility_timeout"):
        celery_config(settings)


def test_visibility_timeout_of_exactly_three_times_is_accepted(make_settings: MakeSettings) -> None:
    """3x the task time limit is the smallest visibility timeout allowed."""
    settings = make_settings(visibility_timeout=270, task_time_limit=90, task_soft_time_limit=60)
    assert celery_config(settings)["broker_transport_options"]["visibility_timeout"] == 270


@pytest.mark.parametrize(("soft", "hard"), [(90, 90), (120, 90)])
def test_soft_limit_not_below_hard_limit_is_refused(
    make_settings: MakeSettings, soft: int, hard: int
) -> None:
    """The soft time limit must be strictly below the hard one, or it never fires."""
    settings = make_settings(task_soft_time_limit=soft, task_time_limit=hard)
    with pytest.raises(CouncilError, match="task_soft_time_limit"):
        celery_config(settings)


def test_invalid_limits_are_refused_before_a_broker_is_started(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    """Without a broker URL, bad limits fail before any embedded Redis is started."""
    settings = make_settings(broker_url=None, visibility_timeout=10, task_time_limit=90)
    with pytest.raises(CouncilError):
        celery_config(settings)
    assert not (tmp_path / "var" / "redis").exists()
