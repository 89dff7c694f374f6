"""tools/app.py in a real browser: headless Chromium (selenium) drives the Gradio page.

Starts the app on 127.0.0.1 with the tiny config's random weights, uploads an image, asks a
question with the fixed answer ``<SEG>.``, waits for the overlay and checks the chat text
and that the mask the page shows is ``lisakit.apis.inference_model``'s; a follow-up
question (generated answer, no ``<SEG>`` from random weights) must say "no matching
object", and a file that is not an image must give a one-line error in the page.
Screenshots go to ``$LISAKIT_TEST_ARTIFACTS/app`` (default ``work_dirs/test_artifacts/app``).
Skips only when Chromium or its driver is not installed (CI installs them: .ci/run).
"""

import io
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image
from tool_runner import DEMO, REPO

from lisakit.apis import inference_model, init_model
from lisakit.datasets.shapes_reasonseg import render_scene

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CHROMEDRIVER = shutil.which('chromedriver')
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason='needs Debian chromium + chromium-driver (apt-get install chromium chromium-driver)',
)
ARTIFACTS = os.environ.get('LISAKIT_TEST_ARTIFACTS', osp.join(REPO, 'work_dirs', 'test_artifacts'))
#: Generous limits for loaded machines; an unloaded 2-core run takes about 35 s in all.
START_TIMEOUT_S = 180
ANSWER_TIMEOUT_S = 90
QUESTION = 'Can you segment the red shape in this image?'
FORCED = '<SEG>.'
SHAPES = [
    dict(kind='square', color='red', cx=20.0, cy=20.0, r=10.0, angle=0.0),
    dict(kind='circle', color='blue', cx=44.0, cy=44.0, r=10.0, angle=0.0),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def app_url():
    port = free_port()
    cmd = [sys.executable, osp.join(REPO, 'tools', 'app.py'), DEMO, '--random-weights']
    cmd += ['--port', str(port)]
    env = dict(os.environ, OMP_NUM_THREADS='1', GRADIO_ANALYTICS_ENABLED='False')
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f'http://127.0.0.1:{port}/'
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f'app exited: {proc.stdout.read()[-3000:]}')
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail('app did not answer within the start timeout')
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope='module')
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'):
        options.add_argument(flag)
    options.add_argument('--window-size=1400,1200')
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def screenshot(driver, name: str) -> None:
    folder = osp.join(ARTIFACTS, 'app')
    os.makedirs(folder, exist_ok=True)
    driver.save_screenshot(osp.join(folder, f'{name}.png'))


def css(driver, selector: str, timeout: float = ANSWER_TIMEOUT_S):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, selector))
        )
    except Exception:
        screenshot(driver, 'timeout')
        raise


def wait_text(driver, selector: str, text: str, timeout: float = ANSWER_TIMEOUT_S) -> str:
    """Wait until ``selector``'s visible text contains ``text``; return that text."""
    deadline = time.monotonic() + timeout
    seen = ''
    while time.monotonic() < deadline:
        seen = css(driver, selector).text
        if text in seen:
            return seen
        time.sleep(0.3)
    screenshot(driver, 'timeout')
    raise AssertionError(f'{text!r} not in {selector}: {seen!r}')


def upload(driver, path: str, status: str = 'Image loaded') -> None:
    """Upload ``path`` and wait until the page has read it (``status`` in the status line),
    as a person waits for the preview before asking."""
    css(driver, '#input-image input[type=file]').send_keys(path)
    wait_text(driver, '#status', status)


def ask(driver, question: str, forced: str = '') -> None:
    from selenium.webdriver.common.keys import Keys

    box = css(driver, '#forced-answer textarea')
    box.send_keys(Keys.CONTROL, 'a')
    box.send_keys(Keys.DELETE)  # as a person would: .clear() does not reach Gradio
    if forced:
        box.send_keys(forced)
    css(driver, '#question textarea').send_keys(question)
    css(driver, '#ask').click()


def fetch_png(src: str) -> np.ndarray:
    with urllib.request.urlopen(src, timeout=10) as response:
        return np.array(Image.open(io.BytesIO(response.read())))


def test_browser_question_overlay_and_mask(app_url, browser, tiny_cfg, tmp_path):
    image, _ = render_scene(SHAPES, 64)
    path = str(tmp_path / 'scene.png')
    Image.fromarray(image).save(path)
    browser.get(app_url)
    upload(browser, path)
    ask(browser, QUESTION, FORCED)
    overlay = css(browser, '#overlay img')
    wait_text(browser, '#details', 'predicted IoU (SAM)')
    screenshot(browser, 'answer')
    chat = wait_text(browser, '#chat', FORCED)
    assert QUESTION in chat
    expected = inference_model(init_model(tiny_cfg), path, QUESTION, answer=FORCED)
    shown = fetch_png(css(browser, '#masks img').get_attribute('src'))
    mask = shown[..., 0] if shown.ndim == 3 else shown
    np.testing.assert_array_equal(mask > 127, expected.pred_masks[0].numpy())
    details = css(browser, '#details').text
    assert f'{expected.pred_iou_scores[0].item():.3f}' in details
    assert fetch_png(overlay.get_attribute('src')).shape[:2] == image.shape[:2]

    ask(browser, 'Which shape is the largest?')  # follow-up, generated: no <SEG> here
    chat = wait_text(browser, '#chat', 'no matching object')
    assert QUESTION in chat and 'Which shape is the largest?' in chat  # the history stays
    screenshot(browser, 'follow_up')

    bad = tmp_path / 'not_an_image.png'
    bad.write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 64)  # a PNG signature, then junk
    upload(browser, str(bad), status='not_an_image.png is not a readable image')
    ask(browser, QUESTION)
    time.sleep(1)  # the answer to the question replaces the status line
    status = wait_text(browser, '#status', 'not_an_image.png is not a readable image')
    screenshot(browser, 'bad_image')
    assert 'Traceback' not in browser.page_source
    assert len(status.splitlines()) == 1, status
