"""Errors for bad user input: the command line turns them into a message and exit status 2."""


class InputError(ValueError):
    """A file, configuration entry or command-line value the user gave is invalid."""


class TrainingStopped(RuntimeError):
    """Training could not go on (a non-finite loss); the message says where and what was kept."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training after a checkpoint of the current position was saved.

    Args:
        epoch: the epoch that was running.
        step: the steps of it that were done (the checkpoint holds them); None when the epoch was finished.
    """

    def __init__(self, epoch: int, step: int | None = None) -> None:
        super().__init__(f"stopped after epoch {epoch}" if step is None else f"stopped at epoch {epoch}, step {step}")
