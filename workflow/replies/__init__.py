"""Owners answering by e-mail: signed reply addresses, reading replies, running their commands.

- :mod:`~workflow.replies.tokens`: the signed reply address of a step's owner;
- :mod:`~workflow.replies.mime`, :mod:`~workflow.replies.text`: reading a received
  message safely, and the commands in what the owner wrote;
- :mod:`~workflow.replies.inbox`: judging one reply and running its commands through the
  engine, all or nothing, once per message; :mod:`~workflow.replies.actions`: what its
  commands become;
- :mod:`~workflow.replies.answer`: the answer mail (sv/en);
- :mod:`~workflow.replies.sources`: where replies come from (maildir, mbox, IMAP, SMTP).

May import: :mod:`workflow.core`, :mod:`workflow.store`, :mod:`workflow.engine`,
:mod:`workflow.mail` and :mod:`workflow.ops.logs`. Imported by: the commands
(``council inbox``) and the mail delivery (reply addresses).
"""

__all__ = [
    # addresses
    "tokens",
    # reading
    "mime",
    "text",
    # acting and answering
    "inbox",
    "actions",
    "answer",
    # where replies come from
    "sources",
]
