"""Errors for bad user input: the command line turns them into a message and exit status 2."""


class InputError(ValueError):
    """A file, configuration entry or command-line value the user gave is invalid."""


class TrainingStopped(RuntimeError):
    """Training could not go on (a non-finite loss); the message says where and what was kept."""
