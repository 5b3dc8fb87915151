"""Domain errors raised by services; views and APIs turn them into 4xx responses with the message.

Each error carries the HTTP status it maps to, so one small handler serves pages and JSON alike.
Add new errors here (grouped by status) rather than raising Django or DRF exceptions from services.
"""


class DomainError(Exception):
    """A business rule was broken. `message` is safe to show to the person who made the request."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# 400: the request itself is wrong.
class InvalidInput(DomainError):
    code = "invalid"


class UnknownLabel(InvalidInput):
    code = "unknown_label"


class InvalidResponseTime(InvalidInput):
    code = "invalid_response_time"


class NotAssigned(InvalidInput):
    """A vote for an image that was never assigned to this participant."""

    code = "not_assigned"


# 403: the requester may see the thing but not do this to it.
class PermissionDenied(DomainError):
    status_code = 403
    code = "permission_denied"


# 404: the thing asked for does not exist for this requester.
class NotFound(DomainError):
    status_code = 404
    code = "not_found"


# 409: the request is fine but the study's state does not allow it now.
class StudyNotOpen(DomainError):
    """The study is draft, paused or closed."""

    status_code = 409
    code = "study_not_open"


class StudyFull(DomainError):
    """Every image already has (or is about to have) the votes the study wants."""

    status_code = 409
    code = "study_full"


class JobAlreadyRunning(DomainError):
    """A prediction job for the same study and model is queued or running."""

    status_code = 409
    code = "job_running"


# 503: a service the request needs is down; nothing was created.
class BrokerUnavailable(DomainError):
    status_code = 503
    code = "broker_unavailable"


# Researcher side (studies and stimuli).
class InvalidStatusChange(DomainError):
    """A study status change its rules forbid (e.g. launching with no images, leaving closed silently)."""

    status_code = 409
    code = "invalid_status_change"


class InvalidArchive(InvalidInput):
    """An upload or import source that cannot be read at all (not a folder or zip, unreadable manifest)."""

    code = "invalid_archive"
