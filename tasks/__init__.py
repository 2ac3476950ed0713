"""Celery tasks, kept thin: each loads what it needs by id and calls workflow/."""
