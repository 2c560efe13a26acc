"""One base class for the errors this project raises for a user to read: each is one line that
says what is wrong and what to do, and a command turns it into a CommandError."""


class ProjectError(Exception):
    """One line for the user: what is wrong and what to do."""
