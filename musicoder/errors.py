"""The one exception type for input a user can fix."""
from __future__ import annotations


class InputError(Exception):
    """Bad input: a file that is not audio, a window past the end, an unknown texture...

    ``code`` is machine-readable (the server sends it in error frames); ``str(err)`` is
    one sentence a user understands, never a decoder's traceback.
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
