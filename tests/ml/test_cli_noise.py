"""ml.noise end to end on tiny synthetic runs; its tables; ml.uncertainty's Figure 4 grid from a run."""
import math
import subprocess
import sys

import pytest
from PIL import Image

from ml.noise import get_args_parser, main, markdown_table, parse_args, summarise
from tests.files import read_rows

TINY = ["--dataset", "synthetic", "--synthetic-n", "20", "--synthetic-test-n", "8", "--arch", "resnet18_small",
        "--image-size", "16", "--epochs", "1", "--batch-size", "10", "--workers", "0", "--lr-steps", "1",
        "--no-progress"]


@pytest.fixture(scope="module")
def noise_run(tmp_path_factory):
    """One tiny grid: ce and uldl at 25% noise, 2 seeds (4 one-epoch runs on 20 faces of 16 px)."""
    out = tmp_path_factory.mktemp("noise")
    rows = main(parse_args(["--out", str(out), "--rates", "0.25", "--seeds", "2", "--methods", "ce", "uldl", *TINY]))
    return out, rows


def test_noise_grid_writes_one_row_per_run_and_a_table(noise_run):
    out, rows = noise_run
    saved = read_rows(out / "results.csv")
    assert [(r["method"], r["rate"], r["seed"]) for r in saved] == [
        ("ce", "0.25", "0"), ("ce", "0.25", "1"), ("uldl", "0.25", "0"), ("uldl", "0.25", "1")]
    for row in saved:
        assert 0 <= float(row["test_acc"]) <= 1 and row["epochs"] == "1"
        assert (row["lambda_auroc"] == "") == (row["method"] == "ce")
        assert 0 <= float(row["lambda_auroc"] or 0) <= 1
    table = (out / "table.md").read_text()
    assert "| method | noise 25% |" in table and "| ce |" in table and "| uldl |" in table
    assert "(n=2)" in table and "λ AUROC" in table


def test_each_run_keeps_metrics_lambdas_and_its_arguments_but_no_checkpoints(noise_run):
    out, _ = noise_run
    run = out / "runs" / "uldl_noise0.25_seed1"
    assert (run / "metrics.csv").is_file() and (run / "run.json").is_file()
    lam = read_rows(run / "lambdas.csv")
    assert len(lam) == 20 and sum(int(r["flipped"]) for r in lam) == 5  # round(0.25 * 20)
    assert not (run / "last.pt").exists() and not (run / "best.pt").exists()


def test_methods_share_the_label_flips_of_a_seed(noise_run):
    out, _ = noise_run
    a = read_rows(out / "runs" / "uldl_noise0.25_seed0" / "lambdas.csv")
    b = read_rows(out / "runs" / "uldl_noise0.25_seed1" / "lambdas.csv")
    assert [r["flipped"] for r in a] != [r["flipped"] for r in b]  # seeds differ
    import json

    cfg = json.loads((out / "runs" / "ce_noise0.25_seed0" / "run.json").read_text())
    assert cfg["noise"] == 0.25 and cfg["seed"] == 0 and cfg["method"] == "ce" and cfg["synthetic_n"] == 20


def test_rerunning_skips_recorded_runs(noise_run, capsys):
    out, _ = noise_run
    rows = main(parse_args(["--out", str(out), "--rates", "0.25", "--seeds", "2", "--methods", "ce", "uldl", *TINY]))
    assert len(rows) == 4 and len(read_rows(out / "results.csv")) == 4
    assert "4 runs (4 already in" in capsys.readouterr().out


def test_uncertainty_figure_orders_training_images_by_lambda(noise_run, tmp_path):
    from ml.uncertainty import get_args_parser as fig_parser
    from ml.uncertainty import main as fig_main

    out, _ = noise_run
    fig = tmp_path / "fig4.png"
    shown = fig_main(fig_parser().parse_args(["--run", str(out / "runs" / "uldl_noise0.25_seed0"), "--out", str(fig),
                                              "--n", "8", "--tile", "48"]))
    lam = sorted(float(r["lambda"]) for r in read_rows(out / "runs" / "uldl_noise0.25_seed0" / "lambdas.csv"))
    assert [row["lambda"] for row in shown["lowest"]] == pytest.approx(lam[:4], abs=1e-6)
    assert [row["lambda"] for row in shown["highest"]] == pytest.approx(lam[::-1][:4], abs=1e-6)
    assert shown["images_found"] == 8
    image = Image.open(fig)
    assert image.width >= 4 * 48 and image.height >= 2 * 48


def test_summary_mean_and_standard_error():
    rows = [{"method": "ce", "rate": "0.1", "test_acc": v} for v in ("0.5", "0.7", "0.6")]
    rows.append({"method": "ce", "rate": "0.2", "test_acc": "0.4"})
    stats = summarise(rows)
    mean, se, n = stats[("ce", 0.1)]
    assert mean == pytest.approx(0.6) and se == pytest.approx(0.1 / math.sqrt(3)) and n == 3
    assert math.isnan(stats[("ce", 0.2)][1])
    table = markdown_table(rows)
    assert "| ce | 60.00 ± 5.77 (n=3) | 40.00 (n=1) |" in table


@pytest.mark.parametrize("argv, message", [
    (["--methods", "svm"], "unknown method"),
    (["--rates", "1.2"], "--rates must lie in [0, 1)"),
    (["--seed", "4"], "ml.noise sets --seed itself"),
    (["--noise", "0.1"], "ml.noise sets --noise itself"),
])
def test_bad_arguments_exit_2_with_a_message(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main(parse_args(["--out", str(tmp_path / "o"), *argv, *TINY]))
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_missing_data_root_is_reported_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ml.noise", "--out", str(tmp_path / "o"), "--methods", "ce",
                             "--seeds", "1", "--rates", "0", "--dataset", "rafdb", "--data-root",
                             str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "data root not found" in result.stderr and "Traceback" not in result.stderr


def test_every_flag_is_documented():
    from ml.uncertainty import get_args_parser as fig_parser

    for parser in (get_args_parser(), fig_parser()):
        assert [a.dest for a in parser._actions if a.dest != "help" and not a.help] == []


@pytest.mark.parametrize("content, message", [(None, "no lambdas.csv"), ("index,path\n0,a.png\n", "needs a 'lambda' column"),
                                              ("index,lambda\n0,high\n", "lambdas.csv:2"), ("index,lambda\n", "no rows")])
def test_uncertainty_bad_lambdas_csv_exits_2(tmp_path, capsys, content, message):
    from ml.uncertainty import get_args_parser as fig_parser
    from ml.uncertainty import main as fig_main

    if content is not None:
        (tmp_path / "lambdas.csv").write_text(content)
    with pytest.raises(SystemExit) as info:
        fig_main(fig_parser().parse_args(["--run", str(tmp_path), "--out", str(tmp_path / "f.png")]))
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_uncertainty_draws_grey_tiles_for_images_it_cannot_find(tmp_path):
    from ml.uncertainty import get_args_parser as fig_parser
    from ml.uncertainty import main as fig_main

    (tmp_path / "lambdas.csv").write_text("index,path,given_label,original_label,flipped,lambda\n"
                                          "0,gone.png,Fear,Anger,1,0.2\n1,gone2.png,Anger,Anger,0,0.9\n")
    shown = fig_main(fig_parser().parse_args(["--run", str(tmp_path), "--out", str(tmp_path / "f.png"), "--n", "2"]))
    assert shown["images_found"] == 0 and shown["lowest"][0]["flipped"] and not shown["highest"][0]["flipped"]
    assert Image.open(tmp_path / "f.png").size[0] > 0
