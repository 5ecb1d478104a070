"""The one exception type that reaches the user as a one-line message."""


class FreeheadError(Exception):
    """A problem with the user's input or environment, explained in one line.

    The CLI prints it as ``freehead: error: <message>`` and exits non-zero.
    """
