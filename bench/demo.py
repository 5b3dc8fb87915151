"""Demo page latency: upload -> result through Django and the task, against the raw detector + model forward.

    python bench/demo.py [--repeats 10] [--concurrent 10] [--rounds 2]

One 640x480 photo with 3 faces (scikit-image's public-domain astronaut, pasted three times). Both sides
run in this process with warm models (the detector and the FER2013 mini-Xception loaded once):
  raw        = detect(image) + crop + predictor.predict(crops) on the already decoded image;
  end to end = POST /demo/upload/ (multipart parse, Pillow sniffing and decoding, EXIF strip, PNG written,
               row created, task run: re-read, detect, crop, predict, result JSON stored, file deleted)
               + GET of the status JSON. Celery runs eagerly (in the request thread), so the queue hop of a
               real broker is not included; the goal is <= 1.3x raw.
Then --concurrent uploads at once from threads (the tasks share the 2 cores), --rounds times: p50 and p95
of the per-upload latency. Not a pass/fail test.
"""
import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._django import setup_django  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed uploads / raw runs (median kept)")
    parser.add_argument("--concurrent", type=int, default=10, help="simultaneous uploads")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of simultaneous uploads")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadiest on a loaded machine)")
    args = parser.parse_args()

    os.environ["DEMO_UPLOADS_PER_MINUTE"] = "1000000"  # the benchmark is one client
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    workdir = setup_django()
    import torch
    from django.core.files.base import ContentFile
    from django.test import Client

    from ml.analyse import analyse_photo
    from ml.faces import crop_face, get_detector
    from ml.fer_baseline import convert
    from ml.predictor import get_predictor
    from study.models import ModelVersion
    from tests.study import demo_photos

    torch.set_num_threads(args.threads)
    checkpoint = convert(workdir / "fer.pt")
    ModelVersion.objects.create(name="FER2013 mini-Xception (baseline)", arch="mini_xception", is_demo=True,
                                sha256="0" * 64, status=ModelVersion.Status.VALID, training_data="FER2013",
                                checkpoint=ContentFile(checkpoint.read_bytes(), name="fer.pt"))
    image = demo_photos.three_faces_640x480()
    jpeg = demo_photos.encode(image, "JPEG", quality=92)
    detector = get_detector("cpu")
    predictor = get_predictor(ModelVersion.objects.get().checkpoint.path, device="cpu")

    def raw() -> float:
        started = time.perf_counter()
        faces = detector.detect(image)
        predictor.predict([crop_face(image, f, margin=0.2) for f in faces])
        return time.perf_counter() - started

    def upload(client: Client) -> float:
        started = time.perf_counter()
        response = client.post("/demo/upload/", {"photo": ContentFile(jpeg, name="three.jpg")})
        assert response.status_code == 202, response.content
        status = client.get(response.json()["status_url"]).json()
        assert status["state"] == "done" and len(status["result"]["faces"]) == 3, status
        return time.perf_counter() - started

    client = Client()
    result, _ = analyse_photo(image, {"m": predictor}, detector=detector)
    assert len(result["faces"]) == 3
    for _ in range(2):  # warm both paths
        raw(), upload(client)
    raw_times, e2e_times = [], []
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit both sides alike
        raw_times.append(raw())
        e2e_times.append(upload(client))
    raw_ms, e2e_ms = statistics.median(raw_times) * 1000, statistics.median(e2e_times) * 1000
    print(f"raw detector + forward : median {raw_ms:7.1f} ms over {args.repeats}")
    print(f"upload -> result       : median {e2e_ms:7.1f} ms over {args.repeats}")
    print(f"ratio                  : {e2e_ms / raw_ms:.2f}x (goal <= 1.3x)")

    latencies: list[float] = []
    lock = threading.Lock()

    def one() -> None:
        from django.db import connection

        took = upload(Client())
        with lock:
            latencies.append(took)
        connection.close()

    for _ in range(args.rounds):
        threads = [threading.Thread(target=one) for _ in range(args.concurrent)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    print(f"{args.concurrent} concurrent uploads x {args.rounds}: p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"p95 {p95 * 1000:.0f} ms ({p95 * 1000 / raw_ms:.1f}x one raw run; n={len(latencies)})")
    leftovers = list((workdir / "media" / "demo" / "tmp").glob("*"))
    print(f"files left in demo/tmp: {len(leftovers)}")


if __name__ == "__main__":
    main()
