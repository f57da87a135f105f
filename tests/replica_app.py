"""A replica in a process of its own, for tests that kill one mid-turn.

`python -m tests.replica_app PORT MARKER`, configured by VOICEGRAPH_* variables: its
scripted planner answers the first turn, and in the second writes MARKER and hangs, so a
test knows the turn is under way when it kills the process.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import uvicorn

from api.app import create_app
from api.compose import open_services
from api.settings import Settings
from model.base import PlanRequest
from model.testing import ScriptedPlanner, Step, reply


def main() -> None:
    port, marker = int(sys.argv[1]), Path(sys.argv[2])

    def hang(request: PlanRequest) -> Step:
        marker.write_text("planning")
        time.sleep(3600)  # the process is killed meanwhile
        raise AssertionError("unreachable")

    planner = ScriptedPlanner([reply("Hi Ada."), hang])
    app = create_app(Settings(), lambda s: open_services(s, planner=planner))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
