"""The whole graph in one place: listen -> plan <-> act, then the end; listen -> act when the
user said yes to calls held for it (agent/confirmation.py).

Speech is not a node: it is a stage that reads the graph's events as they come (agent/speech.py).
The routes between nodes are coroutines: LangGraph runs a plain function on a worker thread,
a hop per edge that cost more than the route itself.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.confirmation import route_after_listen
from agent.context import TurnContext
from agent.nodes import act, listen, plan, route_after_act, route_after_plan
from agent.state import AgentState

__all__ = ["build_graph"]


def build_graph(checkpointer: BaseCheckpointSaver[Any] | None = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(AgentState, context_schema=TurnContext)
    graph.add_node("listen", listen)
    graph.add_node("plan", plan)
    graph.add_node("act", act)
    graph.add_edge(START, "listen")
    graph.add_conditional_edges("listen", route_after_listen, ["act", "plan"])
    graph.add_conditional_edges("plan", route_after_plan, ["act", END])
    graph.add_conditional_edges("act", route_after_act, ["plan", END])
    return graph.compile(checkpointer=checkpointer, name="voicegraph")
