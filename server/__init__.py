"""The MusiCoder WebSocket server: ``python -m server [PORT]`` or ``musicoder-server``.

``app`` (websockets' asyncio server, /healthz, sweeper, signals), ``session`` (one
client's state and files, given what it needs of the server as ``session.Services``),
``pool`` (the worker-pool interface and its process implementation: one single-slot
worker process per core by default), ``worker`` (a worker process's body), ``config``
(flags and MUSICODER_* environment variables).
"""
__version__ = "0.1.0"
