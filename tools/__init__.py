"""voicegraph tools: tool specs, the registry, validated concurrent execution, built-in tools."""
