"""What a reply's commands become: the engine's actions on the step the reply address names.

``KLAR``/``DONE`` completes the step, ``PÅBÖRJAD``/``STARTED`` begins it (and notes any
text), ``NOTERING``/``NOTE`` adds a note, ``FÖRSENAD``/``DELAY`` asks for more time and
``DELEGERA``/``DELEGATE`` hands it to someone else, if the step allows it. A command that
cannot be one raises :class:`~workflow.errors.ReplyRefused` naming the line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from workflow.core.actions import (
    Action,
    AddNote,
    BeginStep,
    CompleteStep,
    ReassignStep,
    RequestExtension,
)
from workflow.core.plan import Directory, StepPlan
from workflow.core.state import StepStatus
from workflow.errors import RefusalReason, ReplyRefused
from workflow.replies.text import ReplyCommand, Verb


def actions_for(
    commands: Sequence[ReplyCommand],
    *,
    person: str,
    step: StepPlan,
    status: StepStatus | None,
    directory: Directory,
    emails: Mapping[str, list[str]],
) -> list[Action]:
    """The actions for a reply's commands, in order; ``emails`` maps addresses to person ids."""
    made: list[Action] = []
    for command in commands:
        match command.verb:
            case Verb.DONE:
                made.append(CompleteStep(actor=person, step=step.id, note=command.text))
            case Verb.STARTED:
                if status is StepStatus.ACTIVE:
                    made.append(BeginStep(actor=person, step=step.id))
                    status = StepStatus.IN_PROGRESS
                if command.text:
                    made.append(AddNote(actor=person, step=step.id, text=command.text))
            case Verb.NOTE:
                if not command.text:
                    raise ReplyRefused(RefusalReason.NOTE_NEEDS_TEXT, command.line)
                made.append(AddNote(actor=person, step=step.id, text=command.text))
            case Verb.DELAY:
                assert command.days is not None
                made.append(RequestExtension(actor=person, step=step.id, days=command.days,
                                             reason=command.text))  # fmt: skip
            case Verb.DELEGATE:
                to = _delegate_to(command, step, directory, emails)
                made.append(ReassignStep(actor=person, step=step.id, to=to))
    return made


def _delegate_to(
    command: ReplyCommand, step: StepPlan, directory: Directory, emails: Mapping[str, list[str]]
) -> str:
    """The person a DELEGATE names: an e-mail address, a person id or a role."""
    assert command.person
    if not step.delegable:
        raise ReplyRefused(RefusalReason.NOT_DELEGABLE, command.line)
    name = command.person.lower()
    by_email = emails.get(name, [])
    try:
        return by_email[0] if len(by_email) == 1 else directory.resolve(command.person)
    except KeyError:
        try:
            return directory.resolve(name)  # ids are lower case; people type them as they like
        except KeyError:
            raise ReplyRefused(RefusalReason.UNKNOWN_PERSON, command.line) from None
