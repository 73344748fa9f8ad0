"""The MusiCoder WebSocket server: ``python -m server [PORT]`` or ``musicoder-server``.

``app`` (websockets' asyncio server, /healthz, sweeper, signals), ``session`` (one
client's state and files), ``pool`` (the worker-pool interface and its process
implementation), ``worker`` (a worker process's body), ``config`` (flags and
MUSICODER_* environment variables). The event loop's process never imports TensorFlow.
"""
__version__ = "0.1.0"
