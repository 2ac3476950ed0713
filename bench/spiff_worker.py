"""SpiffWorkflow's side of the spiff benchmark: run in SpiffWorkflow's own venv, not council's.

``python spiff_worker.py DB POINTS MODE``: POINTS instances of a 7-user-task sequential
BPMN process, each command one transaction on SQLite (WAL, synchronous=NORMAL): run the
ready user task and the engine steps after it, serialize the workflow to its row, commit.
MODE ``memory`` keeps the workflow objects in memory between commands (the kindest case
for SpiffWorkflow, and the one the target is judged on); ``reload`` reads the row and
deserializes it first in every command, as a stateless app (a CLI, a mail handler) must.
Prints one JSON line: the commands and the seconds they took.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import sys
import time

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser  # type: ignore[import-not-found]
from SpiffWorkflow.bpmn.serializer.workflow import (  # type: ignore[import-not-found]
    BpmnWorkflowSerializer,
)
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow  # type: ignore[import-not-found]
from SpiffWorkflow.util.task import TaskState  # type: ignore[import-not-found]

STEPS = 7


def bpmn() -> str:
    """A process: start, seven user tasks in a row, end."""
    tasks = "".join(f'<bpmn:userTask id="task{i}" name="Step {i}"/>' for i in range(1, STEPS + 1))
    nodes = ["start", *[f"task{i}" for i in range(1, STEPS + 1)], "end"]
    flows = "".join(
        f'<bpmn:sequenceFlow id="flow{i}" sourceRef="{a}" targetRef="{b}"/>'
        for i, (a, b) in enumerate(itertools.pairwise(nodes))
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'id="defs" targetNamespace="http://bpmn.io/schema/bpmn">'
        '<bpmn:process id="seven" isExecutable="true">'
        f'<bpmn:startEvent id="start"/>{tasks}<bpmn:endEvent id="end"/>{flows}'
        "</bpmn:process></bpmn:definitions>"
    )


def main(path: str, points: int, reload: bool) -> None:
    parser = BpmnParser()
    parser.add_bpmn_xml(etree.fromstring(bpmn().encode()), filename="seven.bpmn")
    spec = parser.get_spec("seven")
    serializer = BpmnWorkflowSerializer()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE workflows (id INTEGER PRIMARY KEY, state TEXT NOT NULL)")
    kept: dict[int, BpmnWorkflow] = {}
    commands = 0
    started = time.perf_counter()
    for n in range(1, points + 1):  # start: a new instance, run to its first user task
        workflow = BpmnWorkflow(spec)
        workflow.do_engine_steps()
        db.execute("BEGIN")
        db.execute("INSERT INTO workflows VALUES (?, ?)", (n, serializer.serialize_json(workflow)))
        db.execute("COMMIT")
        kept[n] = workflow
        commands += 1
    for _ in range(STEPS):
        for n in range(1, points + 1):  # complete the ready user task of each instance
            db.execute("BEGIN IMMEDIATE")
            if reload:
                (state,) = db.execute("SELECT state FROM workflows WHERE id = ?", (n,)).fetchone()
                workflow = serializer.deserialize_json(state)
            else:
                workflow = kept[n]
            (task,) = workflow.get_tasks(state=TaskState.READY, manual=True)
            task.run()
            workflow.do_engine_steps()
            db.execute(
                "UPDATE workflows SET state = ? WHERE id = ?",
                (serializer.serialize_json(workflow), n),
            )
            db.execute("COMMIT")
            commands += 1
    elapsed = time.perf_counter() - started
    (state,) = db.execute("SELECT state FROM workflows WHERE id = 1").fetchone()
    assert serializer.deserialize_json(state).is_completed()
    print(json.dumps({"commands": commands, "seconds": elapsed}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "reload")
