"""Transports: how messages reach the core (ZMQ on CPython, JS callbacks in Pyodide, in-memory queues in tests)."""
