"""End to end in a real headless Chromium (Debian's chromium + chromium-driver, installed by .ci/run):
a scripted rater rates calibration and trial images by keyboard and by clicks, reloads twice,
continues, finishes, and ratings.csv then holds exactly those ratings."""
import csv
import shutil
import subprocess
import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from common.images import write_image
from common.mos.build import build_study
from common.mos.server import make_server
from common.mos.study import RATINGS_FIELDS, load_manifest, rater_order

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1000,760")
RATER = "e2e.rater-01"
METHODS = [("original", "hr"), ("bicubic", "bicubic"), ("nearest", "nearest")]
ITEMS = ("scene_a", "scene_b", "scene_c")


@pytest.fixture()
def served_study(tmp_path):
    rng = np.random.default_rng(5)
    (tmp_path / "data").mkdir()
    for name in ITEMS:
        write_image(tmp_path / "data" / f"{name}.png", rng.uniform(0, 1, (40, 48, 3)).astype(np.float32))
    study = tmp_path / "study"
    build_study(tmp_path / "data", 2, METHODS, study, seed=11)
    server = make_server(study, port=0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield study, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture()
def browser(tmp_path, record_property):
    # Fail, not skip: CI installs both (.ci/run); a missing browser must not pass silently.
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)} (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.binary_location = str(CHROMIUM)
    # An explicit driver path: Selenium Manager (which would download a driver) is not run.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    version = driver.capabilities["browserVersion"]
    record_property("chromium", version)
    print(f"\nChromium {version}, {subprocess.run([str(CHROMEDRIVER), '--version'], capture_output=True, text=True).stdout.strip()}")
    yield driver
    driver.quit()
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


class Rater:
    """Drives the page like a person: reads what is shown, presses keys or clicks buttons."""

    def __init__(self, driver, url, manifest):
        self.driver, self.url = driver, url
        self.wait = WebDriverWait(driver, 15, poll_frequency=0.02)
        self.keys = {c["id"]: ("calibration:" + c["item"], c["method"]) for c in manifest["calibration"]}
        self.keys.update({t["id"]: (t["item"], t["method"]) for t in manifest["trials"]})
        self.rated = []  # (image id, score) in the order rated

    def start(self, type_id=True):
        field = self.driver.find_element(By.ID, "rater")
        if type_id:
            field.clear()
            field.send_keys(RATER)
        assert field.get_attribute("value") == RATER
        self.driver.find_element(By.ID, "start").click()
        self.wait_ready()

    def wait_ready(self):
        self.wait.until(lambda d: d.find_element(By.ID, "finished").is_displayed()
                        or d.find_element(By.ID, "rating").get_attribute("data-ready") == "1")

    def shown(self) -> str:
        src = self.driver.find_element(By.ID, "image").get_attribute("src")
        assert src.startswith(self.url + "img/")
        return src.rsplit("/", 1)[1]

    def rate(self, score: int, by: str) -> str:
        image_id = self.shown()
        if by == "key":
            self.driver.find_element(By.TAG_NAME, "body").send_keys(str(score))
        else:
            self.driver.find_element(By.CSS_SELECTOR, f'#scores button[data-score="{score}"]').click()
        self.wait.until(lambda d: d.find_element(By.ID, "finished").is_displayed() or self.shown() != image_id)
        self.wait_ready()
        self.rated.append((image_id, score))
        return image_id

    def text(self, element_id) -> str:
        return self.driver.find_element(By.ID, element_id).text


def test_rating_in_chromium_with_reloads(served_study, browser):
    study, url = served_study
    manifest = load_manifest(study)
    rater = Rater(browser, url, manifest)
    calibration = manifest["calibration"]
    assert [c["score"] for c in calibration] == [1, 5, 1, 5]

    browser.get(url)
    rater.start()
    # Calibration first, in order, each with its intended score shown and its button marked.
    for k, (score, by) in enumerate([(1, "key"), (4, "click")]):
        assert rater.text("progress") == f"Calibration {k + 1} / 4"
        assert f"meant as a {calibration[k]['score']}" in rater.text("calibration-note")
        marked = browser.find_elements(By.CSS_SELECTOR, "#scores button.intended")
        assert [b.get_attribute("data-score") for b in marked] == [str(calibration[k]["score"])]
        assert rater.rate(score, by) == calibration[k]["id"]

    browser.refresh()  # mid-calibration: the id is remembered, the page continues at 3 / 4
    rater.start(type_id=False)
    assert rater.text("progress") == "Calibration 3 / 4"
    assert rater.rate(2, "click") == calibration[2]["id"]
    assert rater.rate(5, "key") == calibration[3]["id"]
    order = rater_order(manifest, RATER)
    assert rater.text("progress") == "1 / 9" and rater.text("calibration-note") == ""
    assert not browser.find_elements(By.CSS_SELECTOR, "#scores button.intended")
    for k, (score, by) in enumerate([(3, "key"), (4, "click"), (1, "key")]):
        assert rater.text("progress") == f"{k + 1} / 9"
        assert rater.rate(score, by) == order[k]

    browser.refresh()  # mid-trials
    rater.start(type_id=False)
    assert rater.text("progress") == "4 / 9"
    for k, score in enumerate([2, 5, 3, 4, 1, 2], start=3):
        assert rater.rate(score, "click" if k % 2 else "key") == order[k]
    assert browser.find_element(By.ID, "finished").is_displayed()

    # Blind: no method or file name in the page's text, markup or any URL it loaded.
    html = browser.page_source
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    names = [n for n, _ in METHODS] + list(ITEMS) + [".png"]
    assert not [n for n in names if n in html or any(n in u for u in urls + [browser.current_url])]

    # The file holds exactly those ratings: the right item, method and score for every image shown.
    with open(study / "ratings.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(RATINGS_FIELDS)
    expected = [(RATER, *rater.keys[image_id], str(score)) for image_id, score in rater.rated]
    assert [(r["rater"], r["item"], r["method"], r["score"]) for r in rows] == expected
    assert len(rows) == 13 and len({(r["item"], r["method"]) for r in rows}) == 13
    for r in rows:
        assert 0 <= float(r["seconds"]) < 60 and datetime.fromisoformat(r["timestamp"]).tzinfo is not None
