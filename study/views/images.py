"""Small HTTP helpers shared by the participant and researcher views."""
from django.http import FileResponse, Http404

from study.models import Stimulus


def stimulus_file_response(stimulus: Stimulus) -> FileResponse:
    """The stimulus image, cached privately: files are content-addressed, so the bytes never change."""
    try:
        handle = stimulus.image.open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404("The image file is missing.") from None
    response = FileResponse(handle)
    response["Cache-Control"] = "private, max-age=86400"
    return response
