"""Reading the coordinators' YAML: a strict reader, typed models, cross-file checks, plans.

``loader.load(paths)`` gives :class:`~workflow.core.plan.Definitions` or raises
:class:`~workflow.errors.DefinitionError` with every problem as ``file:line:column``.

May import: :mod:`workflow.core`, :mod:`workflow.errors`, PyYAML and pydantic.
Imported by: the commands, the workers' context and the doctor.
"""

__all__ = [
    # the pipeline: read, check, build
    "yamlsource",
    "corpus",
    "loader",
    # one check per cross-file rule; the step graph's
    "checks",
    "dag",
]
