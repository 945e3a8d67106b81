"""What a command can fail with, as types a caller can catch."""


class NotPublished(Exception):
    """JetStream did not acknowledge the command (no connection to NATS, or no ack after every
    attempt): retry the call later with the same ``command_id`` (or ``client_msg_id``); it is
    applied once whatever happened."""


class NoOutcome(Exception):
    """``wait=True``: JetStream stored the command (it will be applied) but jetchat's outcome
    did not come in time (jetchat down or busy)."""


class CommandRejected(Exception):
    """jetchat refused the command (``wait=True``); ``code`` is its error code."""

    def __init__(self, outcome: dict):
        self.outcome = outcome
        self.code = outcome.get("code")
        self.detail = outcome.get("detail")
        super().__init__(f"{outcome.get('command_id')}: {self.code}: {self.detail}")
