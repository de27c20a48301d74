"""A real headless Chromium (Debian's, driven by Playwright) clicks through a whole two-trial test.

Skips with a reason when /usr/bin/chromium or the playwright package is missing.  Playwright never
downloads a browser here: it launches Debian's chromium.  The trial page's screenshot goes to
``$NEUROCODEC_LISTEN_SCREENSHOT`` when set (the README's docs/img/listen-trial.png is made so)."""

import json
import os
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required", "--mute-audio"]

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (scripts/install_sysdeps.sh)"),
]


def test_a_rater_clicks_through_a_two_trial_test(fresh_test, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install -e '.[listen]')")
    from neurocodec.listen.plan import Plan
    from neurocodec.listen.server.runner import running_server
    from neurocodec.listen.store import read_ratings

    plan = Plan.load(fresh_test)
    token = json.loads((fresh_test / "secrets.json").read_text())["raters"]["r01"]
    errors: list[str] = []
    shot = tmp_path / "trial.png"
    sent: dict[tuple[int, str], float] = {}
    with running_server(fresh_test) as url, sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM, args=FLAGS,
                                                   headless=True, viewport={"width": 900, "height": 700})
        try:
            page = ctx.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{url}/#{token}")
            expect = sync_api.expect
            # training: the player works without sliders; playback advances the position
            page.click("#play-ref")
            page.click("#play-C")
            expect(page.locator("#time")).not_to_have_text("0.00 s")
            assert page.locator("input[type=range][id^=slider-]").count() == 0
            page.click("#start-test")
            for k in range(2):
                expect(page.locator("#where")).to_have_text(f"Trial {k + 1} of 2")
                page.wait_for_selector("#slider-E")
                letters = page.eval_on_selector_all(".stim-play", "els => els.map(e => e.dataset.letter)")
                assert letters == ["A", "B", "C", "D", "E"]
                assert page.is_disabled("#next")
                page.click("#play-ref")
                for L in letters[:-1]:
                    page.click(f"#play-{L}")
                assert page.is_disabled("#next")  # one stimulus not played yet
                for i, L in enumerate(letters):
                    value = [100, 23, 57, 81, 9][i] - 4 * k
                    page.fill(f"#slider-{L}", str(value))
                    sent[(k, L)] = float(value)
                page.click(f"#play-{letters[-1]}")
                expect(page.locator("#next")).to_be_enabled()
                if k == 0:
                    # switching keeps the position: the sources are not restarted, only the gains change
                    before = page.evaluate("[mushraPlayer.t0, mushraPlayer.position()]")
                    time.sleep(0.1)
                    page.click("#play-B")
                    after = page.evaluate("[mushraPlayer.t0, mushraPlayer.selected, mushraPlayer.position()]")
                    assert after[0] == before[0] and after[1] == "B"
                    # a loop region: playback restarts inside it and stays there
                    page.fill("#loop-start", "400")
                    page.fill("#loop-end", "700")
                    time.sleep(0.3)
                    loop = page.evaluate("[mushraPlayer.loopStart, mushraPlayer.loopEnd, mushraPlayer.position()]")
                    assert loop[0] == pytest.approx(0.6) and loop[1] == pytest.approx(1.05)
                    assert loop[0] <= loop[2] < loop[1]
                    assert page.text_content("#loop-text") == "0.60–1.05 s"
                    page.screenshot(path=str(shot))
                page.click("#next")
            expect(page.locator("#done")).to_have_text("Thank you!")
        finally:
            ctx.close()
    assert errors == []
    stored = read_ratings(fresh_test / "ratings.sqlite")
    assert {(r.trial, r.letter): r.score for r in stored if r.rater == "r01"} == sent
    for r in stored:
        t = plan.rater("r01").trials[r.trial]
        assert r.item == t.item and r.condition == t.order["ABCDE".index(r.letter)]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    target = os.environ.get("NEUROCODEC_LISTEN_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
