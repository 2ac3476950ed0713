"""``council serve``: the coordinators' read-only web view.

A Flask application (:func:`web.app.create_app`) served by waitress: server-rendered
HTML in Swedish and English, no script, one stylesheet, a strict Content-Security-Policy.
It shows what ``status``, ``show``, ``backlog`` and ``events`` show (from
:mod:`commands.views`), live from a database it opens read-only, and writes nothing.
On loopback it needs no login; anywhere else it requires one (:mod:`web.auth`): OpenID
Connect, or a local argon2 password file.

May import: ``workflow/`` and :mod:`commands.views` (the CLI's data views). Imported by:
``commands/serve.py``, inside the command. Never imports Celery, ``tasks`` or ``worker``.
"""
