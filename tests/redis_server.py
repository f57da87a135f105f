"""A throwaway redis-server on a loopback port, for tests on real Redis (api/processes.py)."""

from __future__ import annotations

from api.processes import free_port, running_redis

__all__ = ["free_port", "running_redis"]
