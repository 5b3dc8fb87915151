"""A researcher registers a model file through the Models page: which kind of file it is, and its description.

The same service as `manage.py register_model` stores it (study.services.models.model_version_register) and a
worker validates it. This module only turns the form's input into that call, torch-free:

- the file type: an EmoStudy checkpoint, TorchScript or ONNX, chosen on the form or detected from the bytes
  (torch.save and torch.jit.save both write zip archives; TorchScript's holds a `code/` folder; ONNX is not a
  zip, so an .onnx name or a sidecar saying "onnx" decides);
- the sidecar (ml/foreign.py) of a TorchScript/ONNX file: an uploaded JSON file, or built from form fields.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from study.errors import InvalidInput
from study.models import ModelVersion
from study.services.models import model_version_register

CHECKPOINT, TORCHSCRIPT, ONNX = "checkpoint", "torchscript", "onnx"
FILE_TYPES = (CHECKPOINT, TORCHSCRIPT, ONNX)
MAX_SIDECAR_BYTES = 20_000


@dataclass(frozen=True)
class SidecarFields:
    """A TorchScript/ONNX description typed into the form (ml/foreign.py's sidecar keys)."""

    classes: list[str]
    input_size: int | None
    channels: str = "rgb"
    mean: list[float] | None = None
    std: list[float] | None = None
    outputs: str = "logits"
    training_data: str = ""
    training_domain: str = ""
    licence: str = ""


def model_file_type_detect(*, handle: BinaryIO, filename: str) -> str:
    """"checkpoint", "torchscript" or "onnx" from the bytes (and, for ONNX, which is not a zip, the name)."""
    handle.seek(0)
    try:
        if zipfile.is_zipfile(handle):
            handle.seek(0)
            with zipfile.ZipFile(handle) as archive:
                names = archive.namelist()
            # torch.jit.save: <archive>/code/..., <archive>/constants.pkl; torch.save: <archive>/data.pkl only
            if any("/code/" in name or name.endswith("/constants.pkl") for name in names):
                return TORCHSCRIPT
            return CHECKPOINT
    except (zipfile.BadZipFile, OSError, ValueError):
        pass
    finally:
        handle.seek(0)
    if filename.lower().endswith(".onnx"):
        return ONNX
    raise InvalidInput(f"{filename}: not a PyTorch checkpoint or TorchScript file (both are zip archives; this is "
                       "not one), nor named .onnx. Choose the file type 'ONNX' if it is an ONNX model.")


def model_sidecar_parse(data: bytes) -> dict:
    """An uploaded sidecar JSON file -> dict; InvalidInput when it is not a small JSON object."""
    if not data.strip():
        raise InvalidInput("the description (sidecar) file is empty")
    if len(data) > MAX_SIDECAR_BYTES:
        raise InvalidInput(f"the description (sidecar) file is over {MAX_SIDECAR_BYTES // 1000} kB")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"the description (sidecar) file is not readable JSON ({exc.__class__.__name__}: "
                           f"{str(exc)[:120]})") from None
    if not isinstance(raw, dict):
        raise InvalidInput("the description (sidecar) file must hold one JSON object ({...})")
    return raw


def model_sidecar_from_fields(*, file_type: str, fields: SidecarFields) -> dict:
    """The sidecar dict the worker's loader reads (ml.foreign.validate_sidecar checks it in full)."""
    is_va = fields.outputs == "valence_arousal"
    if not is_va and len(fields.classes) < 2:
        raise InvalidInput("list the model's class names in output order (at least 2), or upload its description "
                           "JSON, or choose 'valence and arousal' if it is a VA regressor")
    if fields.input_size is None:
        raise InvalidInput("give the model's input size (the side of the square image it takes, in pixels)")
    channels = 1 if fields.channels == "grayscale" else 3
    sidecar = {"format": file_type, "input_size": fields.input_size, "channels": fields.channels,
               "outputs": fields.outputs, "training_data": fields.training_data,
               "training_domain": fields.training_domain, "licence": fields.licence}
    if not is_va:
        sidecar["classes"] = list(fields.classes)
    for key, values in (("mean", fields.mean), ("std", fields.std)):
        if values:
            if len(values) == 1:
                values = values * channels  # one value for every channel
            if len(values) != channels:
                raise InvalidInput(f"normalisation {key}: give 1 or {channels} number(s) for {fields.channels} input")
            sidecar[key] = list(values)
    return sidecar


def model_upload_register(*, name: str, handle: BinaryIO, filename: str, owner, file_type: str = "auto",
                          sidecar_json: bytes | None = None, fields: SidecarFields | None = None, notes: str = "",
                          lambda_export: BinaryIO | None = None, is_public: bool = False,
                          share_with: list[str] | None = None) -> ModelVersion:
    """Register an uploaded model file for `owner`; validation is queued (a worker loads and test-runs it).

    file_type: "auto" (detected) or one of FILE_TYPES. A TorchScript/ONNX file needs a description: the
    uploaded sidecar JSON if any (its "format" may name the file type), else `fields`. Raises a DomainError
    (4xx) with a message before anything is stored when the input cannot work.
    """
    if file_type not in ("auto", *FILE_TYPES):
        raise InvalidInput(f"unknown file type {file_type!r}")
    raw = model_sidecar_parse(sidecar_json) if sidecar_json is not None else None
    declared = str(raw.get("format", "")).lower() if raw else ""
    if file_type == "auto":
        file_type = declared if declared in (TORCHSCRIPT, ONNX) else model_file_type_detect(handle=handle,
                                                                                           filename=filename)
    if declared and declared != file_type:
        raise InvalidInput(f"the description says the file is {declared!r} but the file type is {file_type!r}")
    training_data, training_domain = (fields.training_data, fields.training_domain) if fields else ("", "")
    sidecar = None
    if file_type == CHECKPOINT:
        if raw is not None:
            raise InvalidInput("an EmoStudy checkpoint describes itself: upload no description JSON with it")
    elif raw is not None:
        sidecar = {**raw, "format": file_type}
        training_data, training_domain = "", ""  # the JSON's own say (the worker reads it from the sidecar)
    elif fields is not None:
        sidecar = model_sidecar_from_fields(file_type=file_type, fields=fields)
    else:
        raise InvalidInput(f"a {file_type} file needs its description: upload the sidecar JSON or fill in the fields")
    return model_version_register(name=name, handle=handle, filename=filename, owner=owner, user=owner, notes=notes,
                                  lambda_export=lambda_export, sidecar=sidecar, is_public=is_public,
                                  share_with=share_with, training_data=training_data,
                                  training_domain=training_domain)
