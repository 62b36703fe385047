"""The base of errors a user can fix (bad input, missing system package): the CLI prints them as one
line with what to do, instead of a traceback."""


class UserError(Exception):
    """An error whose message tells the user what to do."""
