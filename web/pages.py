"""The pages: the register, an assignment, a point, the backlog, the event log, /healthz."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from flask import Flask, abort, jsonify, redirect, render_template, request

from web.app import LANG, BadInput, web
from workflow.core.plan import AssignmentPlan, PointPlan
from workflow.core.specs import Language
from workflow.ops.logs import get_logger

log = get_logger("council.web")


def register(app: Flask) -> None:
    app.add_url_rule("/", "root", root)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule(f"{LANG}/", "register", register_page)
    app.add_url_rule(f"{LANG}/assignments/<assignment>/", "assignment", assignment_page)
    app.add_url_rule(f"{LANG}/assignments/<assignment>/<int:number>/", "point", point_page)
    app.add_url_rule(f"{LANG}/backlog/", "backlog", backlog_page)
    app.add_url_rule(f"{LANG}/events/", "events", events_page)


def _date_arg(name: str) -> dt.date | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadInput("bad_date", value[:40]) from None


def _int_arg(name: str, *, minimum: int) -> int | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 12 or int(value) < minimum:
        raise BadInput("bad_number", value[:40])
    return int(value)


def _plan(assignment: str) -> AssignmentPlan:
    try:
        return web().reader.definitions.assignment(assignment)
    except KeyError:
        abort(404)


def _point(plan: AssignmentPlan, number: int) -> PointPlan:
    try:
        return plan.point(number)
    except KeyError:
        abort(404)


def root() -> Any:
    lang = request.accept_languages.best_match(["sv", "en"], default="sv")
    return redirect(f"/{lang}/")


def healthz() -> Any:
    """200 when the database answers and is migrated; nothing else is said."""
    try:
        web().reader.check()
    except Exception as exc:
        log.warning("web.health_failed", error=type(exc).__name__)
        return jsonify(status="unavailable"), 503
    return jsonify(status="ok")


def register_page(lang: str) -> Any:
    reader = web().reader
    return render_template("register.html", rows=reader.register(), today=reader.today())


def assignment_page(lang: str, assignment: str) -> Any:
    reader = web().reader
    plan = _plan(assignment)
    return render_template(
        "assignment.html", a=plan, rows=reader.assignment(plan), today=reader.today(),
        body=lambda ref: reader.definitions.body_name(ref, lang),
    )  # fmt: skip


def point_page(lang: str, assignment: str, number: int) -> Any:
    reader = web().reader
    plan = _plan(assignment)
    point = _point(plan, number)
    return render_template(
        "point.html", a=plan, p=point, d=reader.point(point, Language(lang)),
        today=reader.today(), step_title=lambda step: point.step(step).title,
    )  # fmt: skip


def backlog_page(lang: str) -> Any:
    reader = web().reader
    definitions = reader.definitions
    as_of = _date_arg("as_of") or reader.today()
    body = request.args.get("body", "").strip() or None
    if body is not None and body not in definitions.bodies:
        raise BadInput("unknown_body", body[:64])
    bodies = sorted(
        ((ref, definitions.body_name(ref, lang)) for ref in definitions.bodies),
        key=lambda item: item[1],
    )
    return render_template(
        "backlog.html", items=reader.backlog(as_of, body), as_of=as_of, body=body,
        bodies=bodies, body_name=lambda ref: definitions.body_name(ref, lang),
    )  # fmt: skip


def events_page(lang: str) -> Any:
    reader = web().reader
    assignment = request.args.get("assignment", "").strip() or None
    number = _int_arg("point", minimum=1)
    since = _int_arg("since", minimum=0) or 0
    if number is not None and assignment is None:
        raise BadInput("point_needs_assignment")
    if assignment is not None:
        plan = _plan(assignment)
        if number is not None:
            _point(plan, number)
    rows, more = reader.events(assignment, number, since, Language(lang))
    keep = {k: v for k, v in (("assignment", assignment), ("point", number)) if v}
    next_url = f"{request.path}?{urlencode({**keep, 'since': rows[-1]['id']})}" if more else None
    return render_template(
        "events.html", rows=rows, assignment=assignment, number=number, since=since,
        next_url=next_url, first_url=f"{request.path}?{urlencode(keep)}" if keep else request.path,
        assignments=sorted(reader.definitions.assignments.values(), key=lambda p: p.id),
    )  # fmt: skip
