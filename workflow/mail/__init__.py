"""E-mail: what a message says, how it is composed, and how it is handed over.

- :mod:`~workflow.mail.prompts`, :mod:`~workflow.mail.notices`: what the task prompts,
  reminders, overdue notices, escalation digests and extension requests say (sv/en);
- :mod:`~workflow.mail.compose`, :mod:`~workflow.mail.templating`, ``templates/``: the
  message itself (plain text first, HTML second, a calendar task), in a Jinja2 sandbox;
- :mod:`~workflow.mail.transport`: SMTP (the one handshake, also the doctor's) or a maildir;
- :mod:`~workflow.mail.delivery`: claim, compose, send and mark each recorded effect.

May import: :mod:`workflow.core`, :mod:`workflow.store`, :mod:`workflow.settings`,
:mod:`workflow.errors`, :mod:`workflow.ops.logs`, the event log (a delivery
that gives up records ``effect.failed``) and :mod:`workflow.replies.tokens` (signed
reply addresses). Imported by: the handlers, the report, the replies and the tasks.
"""

__all__ = [
    # what is said
    "prompts",
    "notices",
    # the message
    "compose",
    "templating",
    # handing it over
    "transport",
    "delivery",
]
