"""The public site's publisher, fired by beat every ``site_interval`` seconds."""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery import shared_task

from tasks.context import context
from tasks.dispatch import TRANSIENT
from workflow.ops.logs import get_logger

log = get_logger(__name__)


@shared_task(name="council.publish_site", autoretry_for=TRANSIENT, max_retries=0)
def publish_site() -> dict[str, Any] | None:
    """Rebuild the pages of the public assignments whose events were handled since the
    last build (everything on a new day or new definitions), and switch the site to it."""
    from workflow.site.publish import refresh

    ctx = context()
    settings = ctx.settings
    if settings.site_dir is None:  # a beat with site_dir, a worker without: say so once a run
        log.warning("site.not_configured", reason="this worker has no site_dir")
        return None
    result = refresh(
        ctx.db, ctx.definitions(), settings.site_dir, now=dt.datetime.now(dt.UTC), tz=ctx.tz,
        site_url=settings.site_url, contact=settings.site_contact,
        calendar=settings.calendar(),
    )  # fmt: skip
    if result.busy:
        log.info("site.busy", reason="another publisher on this host is building")
        return None
    done = result.published
    if done is None:
        return None
    log.info("site.published", assignments=done.assignments, files=done.pages, full=done.full,
             marked=result.marked, build=done.path.name)  # fmt: skip
    return {"assignments": done.assignments, "files": done.pages, "full": done.full}
