import subprocess
import sys

import numpy as np
import pytest

from ml.data.synthetic import EMOTION_VA, PROTOTYPES, _actions, generate_face, generate_faces, write_dataset
from ml.labels import AFFECTNET8, RAFDB_BASIC7, canonical_label, map_indices


def _entropy(p):
    p = np.clip(p, 1e-12, 1)
    return float(-(p * np.log(p)).sum())


def test_same_seed_draws_identical_face_and_other_seed_differs():
    a, b, c = generate_face(7), generate_face(7), generate_face(8)
    assert a.image.tobytes() == b.image.tobytes()
    np.testing.assert_array_equal(a.mixture, b.mixture)
    assert a.image.tobytes() != c.image.tobytes()


def test_mixture_is_a_distribution_whose_argmax_is_the_label():
    for face in generate_faces(30, seed=1):
        assert face.mixture.shape == (7,)
        assert face.mixture.sum() == pytest.approx(1.0)
        assert RAFDB_BASIC7[int(np.argmax(face.mixture))] == face.label == face.classes[face.label_index]
        assert -1 <= face.valence <= 1 and -1 <= face.arousal <= 1
        assert face.votes.sum() == 10 and face.image.size == (112, 112)


def test_valence_follows_the_mixture():
    happy = [generate_face(i, dominant="Happiness", ambiguity=0.0).valence for i in range(10)]
    sad = [generate_face(i, dominant="Sadness", ambiguity=0.0).valence for i in range(10)]
    assert min(happy) > 0.4 and max(sad) < -0.4
    assert EMOTION_VA["Anger"] != EMOTION_VA["Fear"]


def test_ambiguity_knob_raises_mixture_entropy():
    clear = np.mean([_entropy(f.mixture) for f in generate_faces(60, seed=2, ambiguity=0.0, size=32)])
    mixed = np.mean([_entropy(f.mixture) for f in generate_faces(60, seed=2, ambiguity=1.0, size=32)])
    assert mixed > clear + 0.5


def test_annotator_panel_size_and_temperature():
    face = generate_face(3, n_annotators=40, annotator_temperature=0.2)
    assert face.votes.sum() == 40
    assert int(np.argmax(face.votes)) == face.label_index  # a sharp panel agrees with the dominant emotion


def test_occlusions_change_pixels_and_unknown_occlusion_is_refused():
    plain = np.asarray(generate_face(5).image, dtype=int)
    for occlusion in ("sunglasses", "mask", "hand"):
        assert np.abs(np.asarray(generate_face(5, occlusion=occlusion).image, dtype=int) - plain).sum() > 0
    with pytest.raises(ValueError, match="unknown occlusion"):
        generate_face(5, occlusion="hat")


def test_happy_and_angry_faces_differ_in_the_mouth_region():
    def mean_mouth(name):
        faces = [np.asarray(generate_face(i, dominant=name, ambiguity=0.0, size=64).image, dtype=float)
                 for i in range(12)]
        return np.mean(faces, axis=0)[40:56, 20:44]

    assert np.abs(mean_mouth("Happiness") - mean_mouth("Anger")).mean() > 3.0


def _mean_face(name, region):
    faces = [np.asarray(generate_face(i, dominant=name, ambiguity=0.0, size=64).image, dtype=float)
             for i in range(12)]
    return np.mean(faces, axis=0)[region]


def test_disgust_shows_in_the_nose_and_upper_lip_region():
    region = np.s_[32:44, 22:42]  # between the eyes and the mouth at 64 px
    assert np.abs(_mean_face("Disgust", region) - _mean_face("Neutral", region)).mean() > 3.0


def test_a_mixed_mixture_draws_the_weighted_sum_of_prototypes():
    classes = ("Happiness", "Sadness")
    half = _actions(np.array([0.5, 0.5]), classes)
    assert half["mouth_curve"] == pytest.approx(
        0.5 * PROTOTYPES["Happiness"]["mouth_curve"] + 0.5 * PROTOTYPES["Sadness"]["mouth_curve"])
    assert half["brow_inner"] == pytest.approx(0.5 * PROTOTYPES["Sadness"]["brow_inner"])


def test_bad_options_are_refused_with_readable_errors():
    for kwargs, message in [({"classes": []}, "classes"), ({"classes": ["Happiness", "happy"]}, "distinct"),
                            ({"classes": ["Joyful"]}, "classes"), ({"dominant": "Contempt"}, "dominant"),
                            ({"ambiguity": 1.5}, "ambiguity"), ({"size": 8}, "size"),
                            ({"annotator_temperature": 0}, "temperature")]:
        with pytest.raises(ValueError, match=message):
            generate_face(1, **kwargs)
    with pytest.raises(ValueError, match="seed"):
        generate_face(-1)


def test_class_aliases_are_canonicalised():
    face = generate_face(2, classes=["happy", "Sad", "angry"], dominant="Angry", ambiguity=0.0)
    assert face.classes == ("Happiness", "Sadness", "Anger") and face.label == "Anger"


def test_affectnet_classes_include_contempt():
    face = generate_face(1, classes=AFFECTNET8, dominant="Contempt", ambiguity=0.0)
    assert face.label == "Contempt" and face.mixture.shape == (8,)


@pytest.mark.parametrize("layout", ["flat", "folder"])
def test_write_dataset_layouts_and_manifest(tmp_path, layout):
    import csv

    manifest = write_dataset(tmp_path, 12, seed=4, layout=layout, size=32, gold_fraction=0.25)
    rows = list(csv.DictReader(open(manifest)))
    assert len(rows) == 12 and sum(int(r["is_gold"]) for r in rows) == 3
    assert {"filename", "label", "valence", "arousal", "p_Happiness", "votes_Anger"} <= set(rows[0])
    for row in rows:
        assert (tmp_path / row["filename"]).exists()
        if layout == "folder":
            assert row["filename"].split("/")[0] == row["label"]


def test_cli_writes_dataset_and_rejects_bad_arguments(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "ml.data.synthetic", "--out", str(tmp_path / "d"), "--n", "3",
                         "--size", "32"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "d" / "manifest.csv").exists()
    bad = subprocess.run([sys.executable, "-m", "ml.data.synthetic", "--out", str(tmp_path), "--ambiguity", "3"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "ambiguity" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_contact_sheet_only_and_unwritable_paths(tmp_path):
    sheet = tmp_path / "sheet.png"
    ok = subprocess.run([sys.executable, "-m", "ml.data.synthetic", "--contact-sheet", str(sheet),
                         "--contact-sheet-only", "--size", "32"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    from PIL import Image

    assert Image.open(sheet).size == (90 + 8 * 32, 7 * 32)
    (tmp_path / "file").write_text("x")
    for args in (["--out", str(tmp_path / "file"), "--n", "1"],
                 ["--contact-sheet", str(tmp_path / "sheet.jpgx"), "--contact-sheet-only"],
                 ["--contact-sheet-only"]):
        bad = subprocess.run([sys.executable, "-m", "ml.data.synthetic", *args], capture_output=True, text=True)
        assert bad.returncode == 2 and "error:" in bad.stderr and "Traceback" not in bad.stderr, args


def test_generator_does_not_import_torch():
    code = "import sys, ml.data.synthetic; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_label_names_map_by_canonical_name():
    assert canonical_label(" happy ") == "Happiness"
    assert map_indices(AFFECTNET8, RAFDB_BASIC7) == [6, 3, 4, 0, 1, 2, 5, None]
