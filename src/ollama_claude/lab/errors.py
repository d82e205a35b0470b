"""The one exception the lab raises: its message is meant to be shown to the user as is."""


class LabError(RuntimeError):
    """A lab problem with the fix in its message (missing tool, address in use, host not answering)."""
