"""A minimal ONNX file writer for tests (the `onnx` package is not a dependency): protobuf wire format by hand.

linear_classifier(path, weight (D, K), bias (K,), input_shape (C, H, W)) writes Flatten -> MatMul -> Add.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, data: bytes | str) -> bytes:
    data = data.encode() if isinstance(data, str) else data
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _tensor(name: str, array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array, dtype=np.float32)
    return (b"".join(_int(1, d) for d in array.shape) + _int(2, 1) + _bytes(8, name)
            + _bytes(9, array.tobytes()))


def _value_info(name: str, dims: list) -> bytes:
    shape = b"".join(_bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    tensor_type = _int(1, 1) + _bytes(2, shape)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def _node(op: str, inputs: list[str], outputs: list[str], **ints: int) -> bytes:
    attrs = b"".join(_bytes(5, _bytes(1, k) + _int(20, 2) + _int(3, v)) for k, v in ints.items())
    return (b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs)
            + _bytes(3, f"{op}_0") + _bytes(4, op) + attrs)


def linear_classifier(path: Path, weight: np.ndarray, bias: np.ndarray, input_shape: tuple[int, int, int]) -> Path:
    graph = (_bytes(1, _node("Flatten", ["x"], ["flat"], axis=1)) + _bytes(1, _node("MatMul", ["flat", "W"], ["mm"]))
             + _bytes(1, _node("Add", ["mm", "b"], ["y"])) + _bytes(2, "linear")
             + _bytes(5, _tensor("W", weight)) + _bytes(5, _tensor("b", bias))
             + _bytes(11, _value_info("x", ["N", *input_shape])) + _bytes(12, _value_info("y", ["N", weight.shape[1]])))
    model = _int(1, 8) + _bytes(2, "emostudy-tests") + _bytes(7, graph) + _bytes(8, _bytes(1, "") + _int(2, 13))
    path.write_bytes(model)
    return path


__all__ = ["linear_classifier", "struct"]
