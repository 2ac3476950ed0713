"""The public progress site: static pages, feeds and open data of the public assignments.

:func:`workflow.site.publish.publish` builds the site into a new directory and switches
``settings.site_dir`` (a symbolic link) to it; the workers call it for the assignments whose
events changed (``tasks.periodic.publish_site``), ``council publish`` for everything.
"""
