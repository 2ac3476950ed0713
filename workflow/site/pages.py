"""The site's files, rendered from the open data (:mod:`workflow.site.content`).

Every page exists in Swedish (at the site's root) and English (under ``en/``), links to
its counterpart, and reaches everything else by relative links, so the site can be
served from any path, by any static web server. Pages carry no script and no inline
style: one stylesheet, so a strict Content-Security-Policy (``default-src 'none';
style-src 'self'``) fits them.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from workflow.core.specs import Language
from workflow.core.state import Category
from workflow.mail.templating import environment, format_date
from workflow.report.files import write_csv
from workflow.site.content import (
    CATEGORY_SLUGS,
    LANGUAGES,
    PATHS,
    SCHEMA,
    assignment_path,
)

TEMPLATES = Path(__file__).parent / "templates"
#: Entries in an Atom feed, newest first.
FEED_ENTRIES = 50
#: The register's order of categories.
ORDER = (
    Category.ONGOING, Category.TO_START, Category.COMPLETED, Category.WRITTEN_OFF,
    Category.REJECTED,
)  # fmt: skip

LABELS: dict[Language, dict[str, str]] = {
    Language.SV: {
        "site": "Uppföljning av fullmäktiges uppdrag",
        "language_name": "Svenska",
        "language": "Språk",
        "skip": "Hoppa till innehållet",
        "breadcrumb": "Du är här",
        "home": "Alla uppdrag",
        "register": "Uppdrag",
        "intro": "Här följer kommunen upp uppdragen som fullmäktige och nämnderna gett "
        "förvaltningen: vad som är klart, vad som pågår och vad som ska påbörjas.",
        "as_of": "Läget per",
        "filters": "Visa uppdrag",
        "by_status": "Efter status",
        "by_body": "Efter ansvarig nämnd",
        "by_year": "Efter beslutsår",
        "all": "Alla",
        "year_title": "Beslutade {year}",
        "col_reference": "Diarienummer",
        "col_title": "Uppdrag",
        "col_decided": "Beslut",
        "col_lead": "Ansvarig",
        "col_status": "Status",
        "col_due": "Återrapporteras senast",
        "col_overdue": "Försenade punkter",
        "caption": "{count} uppdrag",
        "no_assignments": "Inga uppdrag.",
        "reference": "Diarienummer",
        "decided": "Beslut",
        "lead": "Ansvarig",
        "co_owners": "Medansvariga",
        "report_to": "Återrapporteras till",
        "report_back": "Återrapporteras senast",
        "status": "Status",
        "points": "Punkter",
        "point": "Punkt {number}",
        "category": "Status",
        "due": "Klart senast",
        "overdue": "Försenad",
        "late_since": "Försenad sedan {date}",
        "closed_on": "Avslutad",
        "delivered_on": "Återrapporterad",
        "reason": "Skäl",
        "latest": "Senaste lägesbeskrivning",
        "no_status": "Ingen lägesbeskrivning ännu.",
        "timeline": "Händelser",
        "no_events": "Inga händelser ännu.",
        "reports": "Återrapporter",
        "report_file": "Återrapport, läget per {date}",
        "feed": "Nyhetsflöde (Atom)",
        "feed_title": "Ändringar: {title}",
        "open_data": "Öppna data",
        "open_data_files": "Uppdraget som öppna data",
        "accessibility": "Tillgänglighet",
        "accessibility_title": "Tillgänglighetsredogörelse",
        "not_found": "Sidan finns inte",
        "not_found_text": "Sidan du sökte finns inte, eller så är uppdraget inte publicerat.",
        "overdue_points": "{count} försenade",
        "started": "Punkten påbörjades.",
        "completed": "Punkten avslutades.",
        "step_completed": "Klart: {step}.",
        "written_off": "Punkten skrevs av: {text}",
        "written_off_plain": "Punkten skrevs av.",
        "note": "Lägesbeskrivning: {text}",
        "report": "Återrapport begärd, läget per {date}.",
        "report_back_point": "Återrapportering",
        "format_html": "webbsida",
        "format_docx": "Word",
        "a_completed": "Avslutat",
        "a_ongoing": "Pågående",
        "a_to_start": "Ska påbörjas",
        "a_written_off": "Avskrivet",
        "a_rejected": "Avslag",
        "p_completed": "Avslutad",
        "p_ongoing": "Pågående",
        "p_to_start": "Ska påbörjas",
        "p_written_off": "Avskriven",
        "p_rejected": "Avslag",
    },
    Language.EN: {
        "site": "Follow-up of the council's assignments",
        "language_name": "English",
        "language": "Language",
        "skip": "Skip to content",
        "breadcrumb": "You are here",
        "home": "All assignments",
        "register": "Assignments",
        "intro": "The municipality follows up here the assignments the council and its "
        "committees gave the administration: what is done, what is ongoing and what is to "
        "be started.",
        "as_of": "Status as of",
        "filters": "Show assignments",
        "by_status": "By status",
        "by_body": "By responsible committee",
        "by_year": "By year of decision",
        "all": "All",
        "year_title": "Decided in {year}",
        "col_reference": "Reference",
        "col_title": "Assignment",
        "col_decided": "Decision",
        "col_lead": "Responsible",
        "col_status": "Status",
        "col_due": "Report back by",
        "col_overdue": "Overdue points",
        "caption": "{count} assignments",
        "no_assignments": "No assignments.",
        "reference": "Reference",
        "decided": "Decision",
        "lead": "Responsible",
        "co_owners": "Co-owners",
        "report_to": "Reports to",
        "report_back": "Report back by",
        "status": "Status",
        "points": "Points",
        "point": "Point {number}",
        "category": "Status",
        "due": "Due",
        "overdue": "Overdue",
        "late_since": "Overdue since {date}",
        "closed_on": "Closed",
        "delivered_on": "Reported back",
        "reason": "Reason",
        "latest": "Latest status",
        "no_status": "No status text yet.",
        "timeline": "Events",
        "no_events": "No events yet.",
        "reports": "Reports back",
        "report_file": "Report back, status as of {date}",
        "feed": "News feed (Atom)",
        "feed_title": "Changes: {title}",
        "open_data": "Open data",
        "open_data_files": "The assignment as open data",
        "accessibility": "Accessibility",
        "accessibility_title": "Accessibility statement",
        "not_found": "Page not found",
        "not_found_text": "The page you looked for does not exist, or the assignment is not "
        "published.",
        "overdue_points": "{count} overdue",
        "started": "The point was started.",
        "completed": "The point was completed.",
        "step_completed": "Done: {step}.",
        "written_off": "The point was written off: {text}",
        "written_off_plain": "The point was written off.",
        "note": "Status: {text}",
        "report": "Report back requested, status as of {date}.",
        "report_back_point": "Report back",
        "format_html": "web page",
        "format_docx": "Word",
        "a_completed": "Completed",
        "a_ongoing": "Ongoing",
        "a_to_start": "To be started",
        "a_written_off": "Written off",
        "a_rejected": "Rejected",
        "p_completed": "Completed",
        "p_ongoing": "Ongoing",
        "p_to_start": "To be started",
        "p_written_off": "Written off",
        "p_rejected": "Rejected",
    },
}


def _other(lang: Language) -> Language:
    return Language.EN if lang is Language.SV else Language.SV


def _day(value: str | None, lang: Language) -> str:
    return format_date(dt.date.fromisoformat(value[:10]) if value else None, lang)


def report_file(assignment: str, as_of: str, language: str, suffix: str) -> str:
    """A delivered report's file, relative to the root (its path is the same in either
    language's pages: ``uppdrag/ID/rapporter/ID-2026-06-12.sv.docx``)."""
    reports = PATHS[Language.SV]["reports"]
    return f"uppdrag/{assignment}/{reports}/{assignment}-{as_of}.{language}.{suffix}"


def entry_text(entry: dict[str, Any], lang: Language) -> str:
    """What a timeline entry says, in ``lang`` (a note in the language it was written in)."""
    labels = LABELS[lang]
    kind = entry["kind"]
    if kind == "step_completed":
        return labels[kind].format(step=entry["step"][lang.value])
    if kind in ("note", "written_off") and entry["text"]:
        return labels[kind].format(text=entry["text"])
    if kind == "written_off":
        return labels["written_off_plain"]
    if kind == "report":
        return labels[kind].format(date=_day(entry["as_of"], lang))
    return labels[kind]


def _everything(doc: dict[str, Any]) -> bool:
    return True


def _in_category(category: Category, doc: dict[str, Any]) -> bool:
    return bool(doc["category"] == category.value)


def _involves(body: str, doc: dict[str, Any]) -> bool:
    return body in {doc["lead"]["id"], *(c["id"] for c in doc["co_owners"])}


def _decided_in(year: int, doc: dict[str, Any]) -> bool:
    return bool(doc["year"] == year)


class Site:
    """Renders the site's files for one build: the as-of day and the site's address."""

    def __init__(self, *, as_of: dt.date, site_url: str | None, contact: str | None = None) -> None:
        self.as_of = as_of
        self.site_url = site_url
        #: Where to report accessibility problems: an e-mail address or a web address.
        self.contact = contact

    # --- helpers the templates call ---

    def _context(self, lang: Language, path: str, other_path: str, **extra: Any) -> dict[str, Any]:
        depth = path.count("/")
        other = _other(lang)
        return {
            "lang": lang.value,
            "l": LABELS[lang],
            "root": "../" * depth,
            "path": path,
            "other": other.value,
            "other_name": LABELS[other]["language_name"],
            "other_path": other_path,
            "as_of": self.as_of,
            "as_of_text": format_date(self.as_of, lang),
            "day": lambda value: _day(value, lang),
            "home": PATHS[lang]["root"],
            "accessibility_path": f"{PATHS[lang]['root']}{PATHS[lang]['accessibility']}/",
            "assignment_path": lambda a, n=None: assignment_path(lang, a, n),
            "entry_text": lambda entry: entry_text(entry, lang),
            "report_file": report_file,
            "contact": self.contact,
            "contact_href": (
                f"mailto:{self.contact}"
                if self.contact and "@" in self.contact and "://" not in self.contact
                else self.contact
            ),
            **extra,
        }

    def _render(self, template: str, context: dict[str, Any]) -> bytes:
        return environment(TEMPLATES).get_template(template).render(context).encode()

    # --- the register's pages ---

    def register_pages(self, docs: Sequence[dict[str, Any]]) -> dict[str, bytes]:
        """The register, its filtered indexes, the statement, the feeds, the 404 page."""
        files: dict[str, bytes] = {}
        for lang in LANGUAGES:
            files |= self._register_pages(lang, docs)
        # Served for any missing path: its links start at the site's address (or "/").
        root = self.site_url or "/"
        files["404.html"] = self._render(
            "notfound.html",
            self._context(Language.SV, "404.html", "en/", en=LABELS[Language.EN]) | {"root": root},
        )
        return files

    def _filters(self, lang: Language, docs: Sequence[dict[str, Any]]) -> list[Any]:
        p = PATHS[lang]
        by_status = [
            (cat, f"{p['root']}{p['status']}/{CATEGORY_SLUGS[lang][cat]}/",
             LABELS[lang][f"a_{cat.value}"])
            for cat in ORDER if any(d["category"] == cat.value for d in docs)
        ]  # fmt: skip
        bodies: dict[str, str] = {}
        for d in docs:
            for body in (d["lead"], *d["co_owners"]):
                bodies[body["id"]] = body["name"][lang.value]
        by_body = [
            (body, f"{p['root']}{p['body']}/{body}/", name)
            for body, name in sorted(bodies.items(), key=lambda item: item[1])
        ]
        years = sorted({d["year"] for d in docs}, reverse=True)
        by_year = [(y, f"{p['root']}{p['year']}/{y}/", str(y)) for y in years]
        return [("by_status", by_status), ("by_body", by_body), ("by_year", by_year)]

    def _register_pages(self, lang: Language, docs: Sequence[dict[str, Any]]) -> dict[str, bytes]:
        p, other = PATHS[lang], PATHS[_other(lang)]
        ordered = sorted(
            docs, key=lambda d: (d["decided_on"], d["reference"], d["id"]), reverse=True
        )
        filters = self._filters(lang, docs)
        pages: list[tuple[str, str, str | None, Callable[[dict[str, Any]], bool]]] = [
            (p["root"], other["root"], None, _everything)
        ]
        for cat in ORDER:
            pages.append((
                f"{p['root']}{p['status']}/{CATEGORY_SLUGS[lang][cat]}/",
                f"{other['root']}{other['status']}/{CATEGORY_SLUGS[_other(lang)][cat]}/",
                LABELS[lang][f"a_{cat.value}"],
                functools.partial(_in_category, cat),
            ))  # fmt: skip
        for key, links in filters[1:]:
            for value, path, name in links:
                kind = "body" if key == "by_body" else "year"
                pages.append((
                    path,
                    f"{other['root']}{other[kind]}/{value}/",
                    name if kind == "body" else LABELS[lang]["year_title"].format(year=value),
                    functools.partial(_involves if kind == "body" else _decided_in, value),
                ))  # fmt: skip
        files: dict[str, bytes] = {}
        for path, other_path, title, admits in pages:
            chosen = [d for d in ordered if admits(d)]
            context = self._context(
                lang, path, other_path, docs=chosen, filters=filters, filter_title=title,
                counts=[(c, sum(d["category"] == c.value for d in chosen)) for c in ORDER],
                feed=f"{p['root']}feed.xml",
            )  # fmt: skip
            files[f"{path}index.html"] = self._render("register.html", context)
        files[f"{p['root']}{p['accessibility']}/index.html"] = self._render(
            f"accessibility.{lang.value}.html",
            self._context(
                lang,
                f"{p['root']}{p['accessibility']}/",
                f"{other['root']}{other['accessibility']}/",
            ),
        )
        files[f"{p['root']}feed.xml"] = self.feed(
            lang, docs, f"{p['root']}feed.xml", LABELS[lang]["site"]
        )
        return files

    # --- an assignment's pages ---

    def assignment_pages(self, doc: dict[str, Any]) -> dict[str, bytes]:
        """An assignment's page, a page per point and its feed, in both languages."""
        files: dict[str, bytes] = {}
        for lang in LANGUAGES:
            other = _other(lang)
            path = assignment_path(lang, doc["id"])
            feed = f"{path}feed.xml"
            context = self._context(lang, path, assignment_path(other, doc["id"]), a=doc, feed=feed)
            files[f"{path}index.html"] = self._render("assignment.html", context)
            for point in doc["points"]:
                point_path = assignment_path(lang, doc["id"], point["number"])
                context = self._context(
                    lang, point_path, assignment_path(other, doc["id"], point["number"]),
                    a=doc, p=point, feed=feed,
                )  # fmt: skip
                files[f"{point_path}index.html"] = self._render("point.html", context)
            files[feed] = self.feed(
                lang, [doc], feed, LABELS[lang]["feed_title"].format(title=doc["title"][lang.value])
            )
        return files

    # --- feeds and the sitemap ---

    def _absolute(self, path: str) -> str:
        return f"{self.site_url}{path}" if self.site_url else f"/{path}"

    def feed(self, lang: Language, docs: Iterable[dict[str, Any]], path: str, title: str) -> bytes:
        """An Atom feed (RFC 4287) of the public events of ``docs``, newest first. Links are
        absolute with ``site_url``, else relative to the site's root."""
        entries = sorted(
            ((d, e) for d in docs for e in d["timeline"]),
            key=lambda de: (de[1]["at"], de[1]["event"]),
            reverse=True,
        )[:FEED_ENTRIES]
        updated = entries[0][1]["at"] if entries else f"{self.as_of.isoformat()}T00:00:00Z"
        items = []
        for doc, entry in entries:
            link = assignment_path(lang, doc["id"], entry["point"])
            heading = doc["title"][lang.value]
            if entry["point"] is not None:
                heading += f", {LABELS[lang]['point'].format(number=entry['point']).lower()}"
            items.append({
                "id": f"urn:council:{doc['id']}:event:{entry['event']}",
                "title": f"{heading}: {entry_text(entry, lang)}",
                "updated": entry["at"],
                "link": self._absolute(link),
            })  # fmt: skip
        context = {
            "lang": lang.value, "title": title, "updated": updated, "entries": items,
            "self": self._absolute(path), "home": self._absolute(PATHS[lang]["root"]),
            "id": f"urn:council:feed:{path}",
        }  # fmt: skip
        return environment(TEMPLATES).get_template("feed.xml").render(context).encode()


def sitemap_xml(site_url: str, pages: Iterable[str]) -> bytes:
    """A sitemap (sitemaps.org 0.9) of ``pages`` (paths of index.html files)."""
    urls = sorted(f"{site_url}{p.removesuffix('index.html')}" for p in pages)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">']  # fmt: skip
    lines += [f"  <url><loc>{xml_escape(u)}</loc></url>" for u in urls]
    lines.append("</urlset>\n")
    return "\n".join(lines).encode()


# --- open data ---

REGISTER_COLUMNS = [
    "id", "reference", "title_sv", "title_en", "decided_by", "decided_on", "paragraph", "lead",
    "co_owners", "report_to", "report_back", "category", "points_total", "points_overdue",
    "status_text", "status_at",
]  # fmt: skip
POINT_COLUMNS = [
    "assignment", "number", "title_sv", "title_en", "category", "report_back", "due", "overdue",
    "late_since", "closed_on", "delivered_on", "reason", "status_text", "status_at",
]  # fmt: skip


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """An assignment's entry in the register's JSON: the document without its points,
    timeline and reports."""
    return {k: v for k, v in doc.items() if k not in ("points", "timeline", "reports")}


def data_files(docs: Sequence[dict[str, Any]], as_of: dt.date) -> dict[str, bytes]:
    """The register's open data (JSON, CSV)."""
    ordered = sorted(docs, key=lambda d: d["id"])
    register = {
        "schema": SCHEMA,
        "as_of": as_of.isoformat(),
        "assignments": [summary(d) for d in ordered],
    }
    rows = [
        [d["id"], d["reference"], d["title"]["sv"], d["title"]["en"], d["decided_by"]["id"],
         d["decided_on"], d["paragraph"], d["lead"]["id"],
         " ".join(c["id"] for c in d["co_owners"]), d["report_to"]["id"], d["report_back"],
         d["category"], d["points_total"], d["points_overdue"], d["status_text"], d["status_at"]]
        for d in ordered
    ]  # fmt: skip
    return {
        "data/register.json": dumps(register),
        "data/register.csv": write_csv(
            REGISTER_COLUMNS, [[_cell(c) for c in r] for r in rows]
        ).encode(),
    }


def assignment_data_files(doc: dict[str, Any], as_of: dt.date) -> dict[str, bytes]:
    """One assignment's open data: ``data/uppdrag/ID.json`` (everything the pages show)
    and ``.csv`` (a row per point)."""
    rows = [
        [doc["id"], p["number"], p["title"]["sv"], p["title"]["en"], p["category"],
         p["report_back"], p["due"], p["overdue"], p["late_since"], p["closed_on"],
         p["delivered_on"], p["reason"], p["status_text"], p["status_at"]]
        for p in doc["points"]
    ]  # fmt: skip
    base = f"data/uppdrag/{doc['id']}"
    return {
        f"{base}.json": dumps({"schema": SCHEMA, "as_of": as_of.isoformat(), "assignment": doc}),
        f"{base}.csv": write_csv(POINT_COLUMNS, [[_cell(c) for c in r] for r in rows]).encode(),
    }


def dumps(data: Any) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode()
