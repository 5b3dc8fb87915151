"""Dataset loaders on tiny fixture datasets in each on-disk layout, the reference transforms, and
build_dataset's options (class remapping, VA attachment, synthetic splits)."""
import csv
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ml.data import build_dataset
from ml.data.base import DatasetError, name_key
from ml.data.transforms import NORMALIZATION, build_transform, default_pad, random_erasing_
from ml.labels import AFFECTNET7, AFFECTNET8, RAFDB_BASIC7
from tests.ml.fixtures import make_affectnet, make_folder, make_official_csv, make_rafdb


def names(dataset):
    return [dataset.classes[i] for i in dataset.labels]


# ---------------------------------------------------------------- RAF-DB


def test_rafdb_reads_partition_labels_in_rafdb_order_and_splits_by_prefix(tmp_path):
    written = make_rafdb(tmp_path, n_train=9, n_test=4)
    train = build_dataset("rafdb", tmp_path, "train", train=True, image_size=32)
    test = build_dataset("rafdb", tmp_path, "test", train=False, image_size=32)
    assert train.classes == RAFDB_BASIC7 and test.classes == RAFDB_BASIC7
    assert train.paths == written.paths["train"] and test.paths == written.paths["test"]
    assert names(train) == written.labels["train"] and names(test) == written.labels["test"]
    assert train.va is None
    item = train[0]
    assert set(item) == {"image", "label", "va", "index"}
    assert item["image"].shape == (3, 32, 32) and item["label"] == train.labels[0] and item["index"] == 0
    assert torch.isnan(item["va"]).all()


def test_rafdb_labels_are_one_based_in_the_file(tmp_path):
    make_rafdb(tmp_path, n_train=7, n_test=1)
    lines = (tmp_path / "EmoLabel" / "list_patition_label.txt").read_text().split("\n")
    first_name, first_label = lines[0].split()
    dataset = build_dataset("rafdb", tmp_path, "train", train=False, image_size=32)
    assert dataset.labels[0] == int(first_label) - 1


def test_rafdb_uses_original_images_without_an_aligned_folder(tmp_path):
    make_rafdb(tmp_path, n_train=3, n_test=2, aligned=False)
    dataset = build_dataset("rafdb", tmp_path, "test", train=False, image_size=32)
    assert dataset.paths == ["Image/original/test_0001.jpg", "Image/original/test_0002.jpg"]
    assert dataset.load_image(1).mode == "RGB"


def test_rafdb_with_official_va_csv_gets_valence_arousal_by_file_name(tmp_path):
    written = make_rafdb(tmp_path / "raf", n_train=8, n_test=3)
    bare_names = [p.split("/")[-1] for p in written.paths["train"]]  # train_00001_aligned.jpg
    csv_path = make_official_csv(tmp_path / "raf_train.csv", bare_names, written.labels["train"],
                                 written.va["train"], knn=3)
    dataset = build_dataset("rafdb", tmp_path / "raf", "train", train=True, image_size=32, va_csv=csv_path)
    np.testing.assert_allclose(dataset.va, written.va["train"], atol=1e-4)
    np.testing.assert_allclose(dataset[2]["va"].numpy(), written.va["train"][2], atol=1e-4)


def test_pseudo_va_csv_in_the_root_is_attached_automatically(tmp_path):
    written = make_rafdb(tmp_path, n_train=4, n_test=2)
    make_official_csv(tmp_path / "pseudo_va.csv", written.paths["train"] + written.paths["test"],
                      written.labels["train"] + written.labels["test"],
                      np.concatenate([written.va["train"], written.va["test"]]))
    test = build_dataset("rafdb", tmp_path, "test", train=False, image_size=32)
    np.testing.assert_allclose(test.va, written.va["test"], atol=1e-4)


def test_partial_va_table_leaves_nan_and_warns(tmp_path, caplog):
    written = make_rafdb(tmp_path / "raf", n_train=6, n_test=1)
    csv_path = make_official_csv(tmp_path / "va.csv", written.paths["train"][:4], written.labels["train"][:4],
                                 written.va["train"][:4])
    with caplog.at_level(logging.WARNING, logger="ml.data"):
        dataset = build_dataset("rafdb", tmp_path / "raf", "train", train=False, image_size=32, va_csv=csv_path)
    assert np.isnan(dataset.va[4:]).all() and not np.isnan(dataset.va[:4]).any()
    assert "2 of 6 images have no valence/arousal" in caplog.text


def test_va_csv_matching_no_image_is_an_error(tmp_path):
    make_rafdb(tmp_path / "raf", n_train=3, n_test=1)
    csv_path = make_official_csv(tmp_path / "va.csv", ["other.jpg"], ["Neutral"], [[0.1, 0.2]])
    with pytest.raises(DatasetError, match="no image .* matches"):
        build_dataset("rafdb", tmp_path / "raf", "train", train=False, image_size=32, va_csv=csv_path)


@pytest.mark.parametrize("content, message", [("train_00001.jpg 9\n", "outside RAF-DB's 1..7"),
                                              ("train_00001.jpg\n", "expected '<file> <label 1-7>'"),
                                              ("train_00001.jpg x\n", "not an integer")])
def test_rafdb_bad_label_file_gives_line_number(tmp_path, content, message):
    (tmp_path / "EmoLabel").mkdir()
    (tmp_path / "EmoLabel" / "list_patition_label.txt").write_text(content)
    with pytest.raises(DatasetError, match=message) as info:
        build_dataset("rafdb", tmp_path, "train", train=False, image_size=32)
    assert "list_patition_label.txt:1" in str(info.value)


def test_rafdb_missing_label_file_and_missing_images_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="RAF-DB label file not found"):
        build_dataset("rafdb", tmp_path, "train", train=False, image_size=32)
    make_rafdb(tmp_path, n_train=2, n_test=1)
    for f in (tmp_path / "Image" / "aligned").glob("train_*"):
        f.unlink()
    with pytest.raises(DatasetError, match="none of the 2 listed images exist"):
        build_dataset("rafdb", tmp_path, "train", train=False, image_size=32)


def test_rafdb_skips_a_missing_image_with_a_warning(tmp_path, caplog):
    written = make_rafdb(tmp_path, n_train=4, n_test=1)
    (tmp_path / written.paths["train"][1]).unlink()
    with caplog.at_level(logging.WARNING, logger="ml.data"):
        dataset = build_dataset("rafdb", tmp_path, "train", train=False, image_size=32)
    assert dataset.paths == [written.paths["train"][i] for i in (0, 2, 3)]
    assert names(dataset) == [written.labels["train"][i] for i in (0, 2, 3)]
    assert "1 of 4 listed images are missing" in caplog.text


# ---------------------------------------------------------------- AffectNet


def test_affectnet_maps_ids_to_names_drops_non_emotions_and_reads_va(tmp_path):
    written = make_affectnet(tmp_path, n_train=16, n_test=5)
    train = build_dataset("affectnet", tmp_path, "train", train=True, image_size=32)
    test = build_dataset("affectnet", tmp_path, "test", train=False, image_size=32)
    assert train.classes == AFFECTNET8
    assert train.paths == written.paths["train"] and test.paths == written.paths["test"]
    assert names(train) == written.labels["train"] and "Contempt" in names(train)
    np.testing.assert_allclose(train.va, written.va["train"], atol=1e-4)
    assert len(test) == 5  # the None/Uncertain/Non-face rows are gone


def test_affectnet_7_drops_contempt(tmp_path):
    written = make_affectnet(tmp_path, n_train=16, n_test=2)
    dataset = build_dataset("affectnet", tmp_path, "train", train=False, image_size=32, affectnet_7=True)
    assert dataset.classes == AFFECTNET7
    assert names(dataset) == [n for n in written.labels["train"] if n != "Contempt"]


def test_affectnet_with_only_the_needed_columns(tmp_path):
    written = make_affectnet(tmp_path, n_train=5, n_test=2, columns=["subDirectory_filePath", "expression"])
    dataset = build_dataset("affectnet", tmp_path, "train", train=False, image_size=32)
    assert names(dataset) == written.labels["train"] and dataset.va is None


def test_affectnet_reads_the_official_uldl_training_csv(tmp_path):
    written = make_affectnet(tmp_path, n_train=9, n_test=2)
    labels7 = [n if n != "Contempt" else "Neutral" for n in written.labels["train"]]
    official = make_official_csv(tmp_path / "train_knn.csv", written.paths["train"], labels7, written.va["train"],
                                 knn=4)
    dataset = build_dataset("affectnet", tmp_path, "train", train=False, image_size=32, csv_file=official,
                            affectnet_7=True)
    assert names(dataset) == labels7
    np.testing.assert_allclose(dataset.va, written.va["train"], atol=1e-4)


def test_affectnet_crop_faces_crops_to_the_box(tmp_path):
    make_affectnet(tmp_path, n_train=3, n_test=1)
    plain = build_dataset("affectnet", tmp_path, "train", train=False, image_size=32)
    cropped = build_dataset("affectnet", tmp_path, "train", train=False, image_size=32, crop_faces=True)
    assert plain.load_image(0).size == (24, 24) and cropped.load_image(0).size == (20, 20)


@pytest.mark.parametrize("header, row, message", [
    (["subDirectory_filePath", "valence"], ["1/a.jpg", "0.1"], r"missing column\(s\) \['expression'\]"),
    (["subDirectory_filePath", "expression"], ["1/a.jpg", "happy"], "expression 'happy' is not an integer"),
    (["subDirectory_filePath", "expression"], ["1/a.jpg", "12"], "not an AffectNet class id"),
    (["subDirectory_filePath", "expression", "valence", "arousal"], ["1/a.jpg", "1", "x", "0"], "not a number"),
])
def test_affectnet_bad_csv_is_a_clear_error(tmp_path, header, row, message):
    with (tmp_path / "training.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([header, row])
    with pytest.raises(DatasetError, match=message):
        build_dataset("affectnet", tmp_path, "train", train=False, image_size=32)


def test_affectnet_without_split_csv_names_what_it_looked_for(tmp_path):
    with pytest.raises(DatasetError, match="no test CSV .*validation.csv"):
        build_dataset("affectnet", tmp_path, "test", train=False, image_size=32)


# ---------------------------------------------------------------- folder per class


def test_folder_canonicalises_class_names_and_uses_rafdb_order(tmp_path):
    written = make_folder(tmp_path, n_train=14, n_test=7)
    train = build_dataset("folder", tmp_path, "train", train=True, image_size=32)
    test = build_dataset("folder", tmp_path, "test", train=False, image_size=32)
    assert train.classes == RAFDB_BASIC7 == test.classes
    for split, loaded in (("train", train), ("test", test)):
        expected = zip(written.paths[split], written.labels[split], strict=True)
        assert sorted(zip(loaded.paths, names(loaded), strict=True)) == sorted(expected)
    assert train.va is None


def test_folder_classes_are_the_union_over_splits(tmp_path):
    (tmp_path / "train" / "Empty").mkdir(parents=True)  # a folder without images is no class
    for split, cls in (("train", "Happy"), ("train", "Sad"), ("test", "Happy"), ("test", "Contempt")):
        (tmp_path / split / cls).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 20)).save(tmp_path / split / cls / "a.png")
    train = build_dataset("folder", tmp_path, "train", train=False, image_size=32)
    assert train.classes == ["Happiness", "Sadness", "Contempt"]  # AffectNet order (Contempt is not RAF-DB)
    assert names(train) == ["Happiness", "Sadness"]


def test_folder_manifest_gives_valence_arousal(tmp_path):
    written = make_folder(tmp_path, n_train=8, n_test=3, manifest=True)
    train = build_dataset("folder", tmp_path, "train", train=False, image_size=32)
    expected = dict(zip(written.paths["train"], map(tuple, written.va["train"]), strict=False))
    got = dict(zip(train.paths, map(tuple, train.va), strict=False))
    for path, va in expected.items():
        np.testing.assert_allclose(got[path], va, atol=1e-4)


def test_folder_of_synthetic_write_dataset_reads_labels_and_va(tmp_path):
    from ml.data.synthetic import write_dataset

    write_dataset(tmp_path / "train", 10, seed=1, layout="folder", size=20)
    write_dataset(tmp_path / "test", 4, seed=2, layout="folder", size=20)
    train = build_dataset("folder", tmp_path, "train", train=False, image_size=32)
    with (tmp_path / "train" / "manifest.csv").open() as fh:
        rows = {f"train/{r['filename']}": r for r in csv.DictReader(fh)}
    assert len(train) == 10
    for i, path in enumerate(train.paths):
        assert train.classes[train.labels[i]] == rows[path]["label"]
        assert train.va[i, 0] == pytest.approx(float(rows[path]["valence"]), abs=1e-4)


def test_folder_split_all_and_missing_split_folder(tmp_path):
    tmp_path = tmp_path / "faces"
    tmp_path.mkdir()
    (tmp_path / "Angry").mkdir()
    Image.new("RGB", (20, 20)).save(tmp_path / "Angry" / "x.jpg")
    (tmp_path / "Neutral").mkdir()
    Image.new("RGB", (20, 20)).save(tmp_path / "Neutral" / "y.jpg")
    everything = build_dataset("folder", tmp_path, "all", train=False, image_size=32)
    assert everything.classes == ["Anger", "Neutral"] and names(everything) == ["Anger", "Neutral"]
    with pytest.raises(DatasetError, match="no train folder .*found \\['Angry', 'Neutral'\\].*split 'all'"):
        build_dataset("folder", tmp_path, "train", train=False, image_size=32)


def test_official_csv_attaches_va_to_a_folder_dataset(tmp_path):
    written = make_folder(tmp_path / "sfew", n_train=6, n_test=2)
    csv_path = make_official_csv(tmp_path / "sfew_va.csv", [p.split("/")[-1] for p in written.paths["train"]],
                                 written.labels["train"], written.va["train"])
    train = build_dataset("folder", tmp_path / "sfew", "train", train=False, image_size=32, va_csv=csv_path)
    got = dict(zip(train.paths, map(tuple, train.va), strict=False))
    for path, va in zip(written.paths["train"], written.va["train"], strict=False):
        np.testing.assert_allclose(got[path], va, atol=1e-4)


# ---------------------------------------------------------------- class remapping


def test_classes_argument_remaps_by_name_and_counts_dropped_images(tmp_path, caplog):
    written = make_affectnet(tmp_path, n_train=16, n_test=1)
    with caplog.at_level(logging.WARNING, logger="ml.data"):
        dataset = build_dataset("affectnet", tmp_path, "train", train=False, image_size=32, classes=RAFDB_BASIC7)
    kept = [(p, n) for p, n in zip(written.paths["train"], written.labels["train"], strict=False) if n != "Contempt"]
    assert dataset.classes == RAFDB_BASIC7
    assert list(zip(dataset.paths, names(dataset), strict=False)) == kept
    assert dataset.dropped == {"Contempt": written.labels["train"].count("Contempt")}
    assert "dropped 2 image(s)" in caplog.text and "Contempt 2" in caplog.text
    assert dataset.va.shape == (len(kept), 2)


def test_classes_argument_accepts_aliases_and_reorders(tmp_path):
    written = make_rafdb(tmp_path, n_train=14, n_test=1)
    dataset = build_dataset("rafdb", tmp_path, "train", train=False, image_size=32, classes=["happy", "Sad"])
    assert dataset.classes == ["happy", "Sad"]
    assert [("Happiness", "Sadness")[i] for i in dataset.labels] == \
        [n for n in written.labels["train"] if n in ("Happiness", "Sadness")]


# ---------------------------------------------------------------- synthetic


def test_synthetic_splits_are_disjoint_reproducible_and_carry_truth():
    train = build_dataset("synthetic", None, "train", train=False, image_size=24, n=12, seed=5)
    again = build_dataset("synthetic", None, "train", train=False, image_size=24, n=12, seed=5)
    test = build_dataset("synthetic", None, "test", train=False, image_size=24, n=12, seed=5)
    assert np.array_equal(np.asarray(train.load_image(3)), np.asarray(again.load_image(3)))
    assert not any(np.array_equal(np.asarray(train.load_image(i)), np.asarray(test.load_image(j)))
                   for i in range(12) for j in range(12))
    assert train.mixtures.shape == (12, 7) and np.allclose(train.mixtures.sum(1), 1, atol=1e-4)
    assert train.votes.shape == (12, 7) and (train.votes.sum(1) == 10).all()
    assert np.array_equal(train.labels, train.mixtures.argmax(1))
    assert train.va.shape == (12, 2) and np.all(np.abs(train.va) <= 1)


def test_synthetic_train_split_is_the_generators_faces():
    from ml.data.synthetic import generate_faces

    dataset = build_dataset("synthetic", None, "train", train=False, image_size=24, n=3, seed=9)
    faces = generate_faces(3, seed=9, size=24)
    assert np.array_equal(np.asarray(dataset.load_image(2)), np.asarray(faces[2].image))
    assert dataset.va[1, 0] == pytest.approx(faces[1].valence, abs=1e-6)


def test_synthetic_labels_are_mutable_per_dataset_even_when_cached():
    first = build_dataset("synthetic", None, "train", train=True, image_size=24, n=10, seed=2)
    second = build_dataset("synthetic", None, "train", train=True, image_size=24, n=10, seed=2, erasing=False)
    original = second.labels.copy()
    first.labels[:] = (first.labels + 1) % 7
    assert np.array_equal(second.labels, original) and np.array_equal(first.true_labels, original)


def test_synthetic_disk_cache_round_trips(tmp_path):
    a = build_dataset("synthetic", None, "val", train=False, image_size=20, n=4, seed=77, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("synthetic_*.npz"))) == 1
    from ml.data import synthetic_dataset

    synthetic_dataset._MEMORY.clear()
    b = build_dataset("synthetic", None, "val", train=False, image_size=20, n=4, seed=77, cache_dir=tmp_path)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.votes, b.votes)


def test_synthetic_classes_choose_the_emotions_drawn():
    dataset = build_dataset("synthetic", None, "train", train=False, image_size=24, n=16, seed=0,
                            classes=AFFECTNET8)
    assert dataset.classes == AFFECTNET8 and dataset.mixtures.shape == (16, 8)
    with pytest.raises(DatasetError, match="cannot draw"):
        build_dataset("synthetic", None, "train", train=False, image_size=24, n=2, classes=["Boredom", "Happy"])


def test_a_dataloader_batches_items():
    dataset = build_dataset("synthetic", None, "train", train=True, image_size=24, n=6, seed=0)
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert batch["image"].shape == (4, 3, 24, 24) and batch["va"].shape == (4, 2)
    assert batch["index"].tolist() == [0, 1, 2, 3] and batch["label"].dtype == torch.int64


# ---------------------------------------------------------------- transforms


def test_test_transform_is_resize_and_scale_to_minus_one_one():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    x = build_transform(16, train=False)(image)
    expected = (torch.from_numpy(np.array(image)).permute(2, 0, 1).float() - 127.5) / 127.5
    assert torch.allclose(x, expected)
    assert build_transform(8, train=False)(image).shape == (3, 8, 8)


def test_training_transform_flips_shifts_and_pads_with_minus_one():
    torch.manual_seed(0)
    image = Image.fromarray(np.full((32, 32, 3), 255, dtype=np.uint8))
    transform = build_transform(32, train=True, erasing=False, pad=4)
    outs = torch.stack([transform(image) for _ in range(200)])
    assert outs.min() == -1 and outs.max() == 1  # the zero pad became -1 somewhere, the image stayed 1
    # the pad strip is at most 2*pad wide in each direction
    assert (outs[:, :, 8:24, 8:24] == 1).all()


def test_training_transform_flips_about_half_the_time():
    torch.manual_seed(1)
    left_dark = np.full((16, 16, 3), 255, dtype=np.uint8)
    left_dark[:, :8] = 0
    transform = build_transform(16, train=True, erasing=False, pad=0)
    flips = sum(float(transform(Image.fromarray(left_dark))[0, 0, 0]) > 0 for _ in range(400))
    assert 150 < flips < 250


def test_random_erasing_fills_a_box_with_uniform_noise_half_the_time():
    torch.manual_seed(2)
    erased = 0
    for _ in range(300):
        x = torch.full((3, 40, 40), 100.0)
        random_erasing_(x)
        changed = x != 100.0
        if changed.any():
            erased += 1
            rows, cols = changed.any(0).any(1).nonzero(), changed.any(0).any(0).nonzero()
            area = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            assert 0.01 * 1600 <= area <= 0.31 * 1600 + 80
            assert x.min() >= 0 and x.max() < 255
    assert 110 < erased < 190


def test_reference_sizes_pads_and_normalisation_are_recorded():
    assert default_pad(224) == 8 and default_pad(112) == 4 and default_pad(64) == 2
    dataset = build_dataset("synthetic", None, "train", train=True, image_size=24, n=2, seed=0)
    assert dataset.normalization == NORMALIZATION == {"mean": [0.5] * 3, "std": [0.5] * 3}
    neighbour = build_dataset("synthetic", None, "train", train=True, image_size=24, n=2, seed=0, erasing=False)
    assert dataset.transform.erasing and not neighbour.transform.erasing


# ---------------------------------------------------------------- errors and import hygiene


@pytest.mark.parametrize("name, root, message", [("imagenet", None, "unknown dataset"),
                                                 ("rafdb", None, "needs a root folder"),
                                                 ("folder", "/nonexistent/faces", "data root not found")])
def test_build_dataset_bad_names_and_roots(name, root, message):
    with pytest.raises(DatasetError, match=message):
        build_dataset(name, root, "train", train=False, image_size=32)


def test_name_key_matches_aligned_and_plain_names():
    assert name_key("Image/aligned/train_00001_aligned.jpg") == name_key("train_00001.jpg") == "train_00001"


def test_importing_ml_data_does_not_import_torch():
    code = "import sys, ml.data, ml.data.synthetic, ml.data.label_noise; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
