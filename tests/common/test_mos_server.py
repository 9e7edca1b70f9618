"""MOS study building and the rating server: images, blindness, order, bad requests, restarts."""
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from common.data import eval_pairs
from common.degradations import imresize
from common.images import mod_crop, read_image, to_uint8, write_image
from common.mos.__main__ import main
from common.mos.build import build_study
from common.mos.server import make_server
from common.mos.study import load_manifest, rater_order, read_ratings

METHODS = [("original", "hr"), ("bicubic", "bicubic"), ("nearest", "nearest")]
ITEMS = ("pic_alpha", "pic_beta")


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("mos")
    rng = np.random.default_rng(1)
    data = root / "data"
    data.mkdir()
    for name in ITEMS:  # odd sizes: the HR image is cropped to a multiple of the scale
        write_image(data / f"{name}.png", rng.uniform(0, 1, (15, 13, 3)).astype(np.float32))
    build_study(data, 2, METHODS, root / "study", seed=7)
    return root / "study"


@pytest.fixture()
def server(study_dir):
    (study_dir / "ratings.csv").unlink(missing_ok=True)
    srv = make_server(study_dir, port=0)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    thread.join()


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def post(url, body: bytes, headers=None):
    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def rating(**fields):
    return json.dumps({"rater": "r1", "image": None, "score": 3, "seconds": 1.25, **fields}).encode()


def test_build_writes_every_method_by_the_protocol(study_dir):
    manifest = load_manifest(study_dir)
    assert manifest["items"] == list(ITEMS) and [m["name"] for m in manifest["methods"]] == [n for n, _ in METHODS]
    assert len(manifest["trials"]) == 6
    # Default calibration (SRGAN paper): nearest as 1, then the original as 5, on the first 2 images.
    assert [(c["item"], c["method"], c["score"]) for c in manifest["calibration"]] == [
        ("pic_alpha", "nearest", 1), ("pic_alpha", "original", 5), ("pic_beta", "nearest", 1), ("pic_beta", "original", 5)]
    ids = [t["id"] for t in manifest["trials"] + manifest["calibration"]]
    assert len(set(ids)) == len(ids) == len(list((study_dir / "images").iterdir()))
    (name, hr, lr), = [p for p in eval_pairs(study_dir.parent / "data", 2) if p[0] == "pic_beta"]
    images = {t["method"]: read_image(study_dir / "images" / f"{t['id']}.png")
              for t in manifest["trials"] if t["item"] == "pic_beta"}
    original = read_image(study_dir.parent / "data" / "pic_beta.png")
    assert images["original"].shape == (14, 12, 3) and np.array_equal(images["original"], mod_crop(original, 2))
    assert np.array_equal(to_uint8(images["bicubic"]), to_uint8(imresize(lr, 2.0)))
    assert np.array_equal(images["nearest"][::2, ::2], lr) and np.array_equal(images["nearest"][1::2, 1::2], lr)


def test_page_session_and_image_urls_are_blind(server, study_dir):
    manifest = load_manifest(study_dir)
    secrets = [n for n, _ in METHODS] + list(ITEMS) + ["pic_", ".png"]
    texts = [get(server + path)[1].decode() for path in ("/", "/app.js", "/style.css", "/api/session?rater=r1")]
    assert "<img" in texts[0] and "fetch(" in texts[1]
    for text in texts:
        assert not [s for s in secrets if s in text]
    session = json.loads(texts[3])
    assert [c["id"] for c in session["calibration"]] == [c["id"] for c in manifest["calibration"]]
    assert session["trials"] == rater_order(manifest, "r1") and session["done"] == []
    status, png = get(f"{server}/img/{manifest['trials'][0]['id']}")
    assert status == 200 and png == (study_dir / "images" / f"{manifest['trials'][0]['id']}.png").read_bytes()
    for path in ("/study.json", "/ratings.csv", "/img/../study.json", "/img/0123456789abcdef", "/page/app.js",
                 f"/img/{manifest['trials'][0]['id']}.png", "/api/session", "/api/session?rater=a%20b"):
        assert get(server + path)[0] in (400, 404), path


def test_order_is_a_per_rater_shuffle_reproducible_across_runs(study_dir):
    manifest = load_manifest(study_dir)
    ids = sorted(t["id"] for t in manifest["trials"])
    orders = {r: rater_order(manifest, r) for r in ("r1", "r2", "r3", "r4")}
    assert all(sorted(o) == ids for o in orders.values())
    assert len({tuple(o) for o in orders.values()}) > 1
    assert rater_order(manifest, "r1") == orders["r1"]
    assert rater_order({**manifest, "seed": 8}, "r1") != orders["r1"] or rater_order({**manifest, "seed": 9}, "r1") != orders["r1"]


def test_rating_is_appended_at_once_and_a_rater_continues_after_a_restart(server, study_dir):
    manifest = load_manifest(study_dir)
    trial, calib = manifest["trials"][4], manifest["calibration"][0]
    assert post(server + "/api/rate", rating(image=trial["id"], score=4)) == (200, {"done": 1})
    assert post(server + "/api/rate", rating(image=calib["id"], score=1, seconds=0)) == (200, {"done": 2})
    rows, bad = read_ratings(study_dir / "ratings.csv")  # on disk before the reply
    assert bad == 0 and [(r["rater"], r["item"], r["method"], r["score"], r["seconds"]) for r in rows] == [
        ("r1", trial["item"], trial["method"], 4, 1.25), ("r1", "calibration:" + calib["item"], calib["method"], 1, 0.0)]
    before = (study_dir / "ratings.csv").read_bytes()
    assert post(server + "/api/rate", rating(image=trial["id"], score=2))[0] == 409  # rated once only
    assert (study_dir / "ratings.csv").read_bytes() == before
    # A new server on the same folder knows what r1 has done; r2 starts fresh.
    with (study_dir / "ratings.csv").open("a") as f:
        f.write("r1,pic_alpha,bic")  # a row cut off by a crash
    again = make_server(study_dir, port=0)
    try:
        assert sorted(again.study.session("r1")["done"]) == sorted([trial["id"], calib["id"]])
        assert again.study.session("r2")["done"] == []
        again.study.rate("r2", trial["id"], 5, 0.5)
    finally:
        again.server_close()
    rows, bad = read_ratings(study_dir / "ratings.csv")
    assert bad == 1 and [(r["rater"], r["score"]) for r in rows] == [("r1", 4), ("r1", 1), ("r2", 5)]


BAD = [
    (rating(image="0123456789abcdef"), 404),             # unknown image (item/method) id
    (rating(image="../study.json"), 404),
    (rating(score=0), 422), (rating(score=6), 422), (rating(score=3.5), 422), (rating(score="3"), 422),
    (rating(score=True), 422), (rating(score=None), 422),
    (rating(seconds=-1), 422), (rating(seconds="1"), 422), (b'{"rater": "r1", "image": "ID", "score": 3, "seconds": NaN}', 422),
    (rating(rater=""), 400), (rating(rater="a b"), 400), (rating(rater="x" * 65), 400), (rating(rater="r1,evil"), 400),
    (rating(rater=7), 400), (rating(rater="-r"), 400),
    (b"{not json", 400), (b"\xff\xfe", 400), (b"[1, 2]", 400), (b"", 400),
    (json.dumps({"rater": "r1", "image": "ID", "score": 3}).encode(), 400),                           # missing field
    (json.dumps({"rater": "r1", "image": "ID", "score": 3, "seconds": 1, "method": "x"}).encode(), 400),  # extra field
    (b" " * 2000, 413),                                      # oversize body
    (rating(rater="r1\n"), 400), (rating(rater="r1\r"), 400), (rating(rater="\nr1"), 400),  # issue 34
    (rating(seconds=10**400), 422), (rating(seconds=-10**400), 422), (rating(seconds=86401), 422),
    (b'{"rater": "r1", "image": "ID", "score": 3, "seconds": 1e400}', 422),
    (b'{"rater": "r1", "image": "ID", "score": 3, "seconds": Infinity}', 422),
]


@pytest.mark.parametrize("body, status", BAD)
def test_bad_ratings_are_refused_and_write_nothing(server, study_dir, body, status):
    image_id = load_manifest(study_dir)["trials"][0]["id"]
    body = body.replace(b'"image": null', f'"image": "{image_id}"'.encode()).replace(b'"ID"', f'"{image_id}"'.encode())
    before = (study_dir / "ratings.csv").read_bytes()
    assert post(server + "/api/rate", body)[0] == status
    assert post(server + "/api/other", rating(image=image_id))[0] == 404
    assert (study_dir / "ratings.csv").read_bytes() == before
    assert get(server + "/api/session?rater=r1")[0] == 200  # still up


def test_session_rater_is_matched_whole(server):
    assert get(server + "/api/session?rater=r1%0A")[0] == 400
    assert get(server + "/api/session?rater=r1")[0] == 200


def test_a_body_without_length_is_refused(server, study_dir):
    import http.client

    before = (study_dir / "ratings.csv").read_bytes()
    conn = http.client.HTTPConnection(server.removeprefix("http://"), timeout=10)
    conn.putrequest("POST", "/api/rate")
    conn.endheaders()
    assert conn.getresponse().status == 411
    conn.close()
    assert (study_dir / "ratings.csv").read_bytes() == before


def test_build_errors_leave_nothing(study_dir, tmp_path, capsys):
    data = study_dir.parent / "data"
    # A study is never overwritten.
    assert main(["build", "--data", str(data), "--scale", "2", "--method", "hr", "--out", str(study_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "never overwritten" in err[0]
    # A checkpoint that does not exist, a bad image among the data, a bad calibration: no folder, no temp files.
    bad_data = tmp_path / "bad"
    bad_data.mkdir()
    write_image(bad_data / "a.png", np.zeros((8, 8, 3), np.float32))
    (bad_data / "b.png").write_bytes(b"not a png")
    dup_data = tmp_path / "dup"  # two files, one item name
    dup_data.mkdir()
    for name in ("c.png", "c.bmp"):
        write_image(dup_data / name, np.zeros((8, 8, 3), np.float32))
    for args in (["--data", str(data), "--method", "x=missing.h5"],
                 ["--data", str(bad_data), "--method", "hr"],
                 ["--data", str(dup_data), "--method", "hr"],
                 ["--data", str(data), "--method", "hr", "--calibrate", "nearest=1"],
                 ["--data", str(data), "--method", "hr", "--calibrate", "hr=6"],
                 ["--data", str(data), "--method", "a=hr", "--method", "a=bicubic"]):
        assert main(["build", "--scale", "2", "--out", str(tmp_path / "new"), *args]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), (args, err)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "dup"], args
    assert main(["build", "--scale", "2", "--out", str(tmp_path / "new"), "--data", str(data),
                 "--method", "hr", "--method", "nearest", "--calibration-images", "1"]) == 0
    assert len(load_manifest(tmp_path / "new")["calibration"]) == 2 and not Path(tmp_path / "new" / "ratings.csv").exists()


# --- many raters, slow and idle connections (issue 34) ---------------------------------------------------------


def test_fifty_raters_at_once_keep_every_rating(server, study_dir):
    import http.client

    trials = [t["id"] for t in load_manifest(study_dir)["trials"]][:3]
    host = server.removeprefix("http://")
    replies = []

    def rate(rater, image_id, barrier):
        conn = http.client.HTTPConnection(host, timeout=30)
        body = rating(rater=rater, image=image_id)
        barrier.wait()  # all 50 connect and send together
        try:
            conn.request("POST", "/api/rate", body, {"Content-Type": "application/json"})
            replies.append(conn.getresponse().status)
        except OSError as exc:
            replies.append(repr(exc))
        finally:
            conn.close()

    for image_id in trials:  # 3 repetitions of 50 at once
        barrier = threading.Barrier(50)
        threads = [threading.Thread(target=rate, args=(f"r{i}", image_id, barrier)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert replies == [200] * 150
    rows, bad = read_ratings(study_dir / "ratings.csv")
    assert bad == 0 and len(rows) == 150 and len({(r["rater"], r["item"], r["method"]) for r in rows}) == 150


@pytest.fixture()
def strict_server(study_dir):
    """A server with a 0.5 s timeout and room for 4 connections."""
    (study_dir / "ratings.csv").unlink(missing_ok=True)
    srv = make_server(study_dir, port=0, timeout=0.5, max_connections=4)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


def test_idle_and_half_sent_requests_time_out(strict_server, study_dir):
    import socket
    import time

    address = strict_server.server_address
    before = (study_dir / "ratings.csv").read_bytes()
    base = threading.active_count()
    idle = [socket.create_connection(address, timeout=5) for _ in range(4)]
    idle[1].sendall(b"POST /api/rate HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    idle[2].sendall(b"POST /api/rate HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"rater\"")  # body cut short
    idle[3].sendall(b"GET /api/sess")
    time.sleep(0.2)
    # at the cap: a fifth connection is answered 503 at once, not queued behind the idle ones
    url = f"http://127.0.0.1:{address[1]}"
    assert get(url + "/api/session?rater=r1")[0] == 503
    deadline = time.monotonic() + 10
    while threading.active_count() > base and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= base  # every idle connection's thread is gone
    for sock in idle:
        sock.settimeout(5)
        reply = sock.recv(1000)  # closed by the server (with a 408 for the cut body), never left open
        assert reply == b"" or reply.startswith(b"HTTP/1.") and b" 408 " in reply.split(b"\r\n")[0]
        sock.close()
    assert get(url + "/api/session?rater=r1")[0] == 200
    assert (study_dir / "ratings.csv").read_bytes() == before


def test_ratings_file_rows_with_bad_rater_ids_are_not_counted(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text('rater,item,method,score,seconds,timestamp\nr1,a,m,3,1.0,t\n"r1\n",a,m,4,1.0,t\n')
    rows, bad = read_ratings(path)
    assert [r["rater"] for r in rows] == ["r1"] and bad == 1
