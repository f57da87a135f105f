"""voicegraph agent: the LangGraph graph, its state, nodes, and memory."""
