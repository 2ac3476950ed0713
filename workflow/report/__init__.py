"""The report back to the council, as of any date, and the backlog across assignments.

- :mod:`~workflow.report.model`: the report replayed from the event log as of a date;
- :mod:`~workflow.report.render`, ``templates/``: Markdown, HTML, DOCX and JSON (sv/en);
- :mod:`~workflow.report.mail`: the report as an e-mail effect to the coordinator;
- :mod:`~workflow.report.backlog`: every open point across assignments, by age.

May import: :mod:`workflow.core`, :mod:`workflow.store` and :mod:`workflow.mail`.
Imported by: the handlers and the commands.
"""

__all__ = [
    "model",
    "render",
    "mail",
    "backlog",
]
