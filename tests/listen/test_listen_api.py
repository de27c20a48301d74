"""The server's API: tokens, rater isolation, validation, replays, blinding, persistence."""

import json
import sqlite3

import httpx
import pytest
from neurocodec.listen.plan import Plan
from neurocodec.listen.server.app import create_app
from neurocodec.listen.server.runner import running_server


def secrets_of(folder):
    return json.loads((folder / "secrets.json").read_text())


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def count(folder, table="ratings"):
    path = folder / "ratings.sqlite"
    con = sqlite3.connect(path)
    try:
        return con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def client(fresh_test):
    """An HTTP client of a real uvicorn server on loopback serving a fresh copy of the tiny test."""
    with running_server(fresh_test) as url, httpx.Client(base_url=url) as c:
        c.folder = fresh_test
        c.sec = secrets_of(fresh_test)
        yield c


def start(client, rater="r01"):
    h = auth(client.sec["raters"][rater])
    assert client.post("/api/rater/training", headers=h).status_code == 200
    t = client.get("/api/rater/trials/0", headers=h).json()
    return h, t


def full_body(t, score=50):
    return {"nonce": t["nonce"], "ratings": {x: score for x in t["letters"]}, "played": t["letters"]}


def test_tokens_are_checked_on_every_route(client):
    rater, admin = client.sec["raters"]["r01"], client.sec["admin"]
    routes = [("GET", "/api/rater"), ("POST", "/api/rater/training"), ("GET", "/api/rater/trials/0"),
              ("GET", "/api/rater/trials/0/audio/A"), ("PUT", "/api/rater/trials/0/draft"),
              ("POST", "/api/rater/trials/0")]
    for method, path in routes:
        for headers in ({}, auth("x" * 43), {"Authorization": rater}, auth(admin)):
            r = client.request(method, path, headers=headers, json={})
            assert r.status_code == 401, (method, path, headers)
            assert r.headers["WWW-Authenticate"] == "Bearer"
    for headers in ({}, auth(rater), auth("nope")):
        assert client.get("/api/admin/progress", headers=headers).status_code == 401
    assert count(client.folder, "progress") == 0  # nothing was recorded for any of these


def test_pages_are_public_but_hold_no_data_and_send_security_headers(client):
    r = client.get("/")
    assert r.status_code == 200 and client.sec["raters"]["r01"] not in r.text
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/../plan.json").status_code == 404
    assert client.get("/secrets.json").status_code == 404


def test_trial_is_blind_and_audio_is_served_by_letter(client):
    plan = Plan.load(client.folder)
    h, t = start(client)
    text = json.dumps(t)
    for c in plan.conditions:
        assert c.id not in text  # the rater sees letters only
    assert t["letters"] == ["A", "B", "C", "D", "E"] and t["sample_rate"] == 16000
    order = plan.rater("r01").trials[0].order
    ref_letter = "ABCDE"[order.index("reference")]
    ref = client.get("/api/rater/trials/0/audio/ref", headers=h)
    assert ref.status_code == 200 and ref.headers["content-type"] == "audio/wav"
    assert client.get(f"/api/rater/trials/0/audio/{ref_letter}", headers=h).content == ref.content  # hidden reference
    assert client.get("/api/rater/trials/0/audio/F", headers=h).status_code == 404
    assert client.get("/api/rater/trials/0/audio/..%2Fsecrets.json", headers=h).status_code == 404
    assert client.get("/api/rater/trials/1/audio/A", headers=h).status_code == 409  # not the current trial
    assert client.get("/api/rater/trials/9", headers=h).status_code == 404
    assert client.get("/api/rater/trials/x", headers=h).status_code == 404


def test_training_allows_every_item_without_nonce(client):
    h = auth(client.sec["raters"]["r02"])
    for k in range(2):
        t = client.get(f"/api/rater/trials/{k}", headers=h).json()
        assert t["training"] is True and "nonce" not in t
        assert client.get(f"/api/rater/trials/{k}/audio/B", headers=h).status_code == 200
    assert client.post("/api/rater/trials/0", headers=h, json={"nonce": "x", "ratings": {}, "played": []}).status_code == 422


@pytest.mark.parametrize("mutate, status", [
    (lambda b: b["ratings"].update(A=101), 422),
    (lambda b: b["ratings"].update(A=-0.5), 422),
    (lambda b: b["ratings"].update(A="50"), 422),
    (lambda b: b["ratings"].update(A=True), 422),
    (lambda b: b["ratings"].update(A=None), 422),
    (lambda b: b["ratings"].pop("C"), 422),
    (lambda b: b["ratings"].update(Z=3), 422),
    (lambda b: b["ratings"].update(ref=100), 422),
    (lambda b: b["played"].remove("B"), 422),
    (lambda b: b.update(played="ABCDE"), 422),
    (lambda b: b.update(ratings=[1, 2]), 422),
    (lambda b: b.pop("nonce"), 422),
    (lambda b: b.update(seconds=-1), 422),
    (lambda b: b.update(nonce="forged"), 409),
])
def test_invalid_submissions_are_refused_and_store_nothing(client, mutate, status):
    h, t = start(client)
    body = full_body(t)
    mutate(body)
    r = client.post("/api/rater/trials/0", headers=h, json=body)
    assert r.status_code == status and r.json()["error"]
    assert count(client.folder) == 0 and count(client.folder, "submissions") == 0
    assert client.get("/api/rater", headers=h).json()["next_trial"] == 0


def test_malformed_bodies(client):
    h, t = start(client)
    r = client.post("/api/rater/trials/0", headers={**h, "Content-Type": "application/json"}, content=b"{not json")
    assert r.status_code == 400
    assert client.post("/api/rater/trials/0", headers=h, json=[1]).status_code == 400
    big = {**full_body(t), "pad": "x" * 20000}
    assert client.post("/api/rater/trials/0", headers=h, json=big).status_code == 413
    assert count(client.folder) == 0


def test_submission_replay_and_wrong_trial(client):
    h, t = start(client)
    assert client.post("/api/rater/trials/1", headers=h, json=full_body(t)).status_code == 409  # not current
    r = client.post("/api/rater/trials/0", headers=h, json=full_body(t, 70))
    assert r.status_code == 201 and r.json() == {"stored": 5, "next_trial": 1, "finished": False}
    for body in (full_body(t, 70), full_body(t, 10)):  # the same request again, or a changed one
        r = client.post("/api/rater/trials/0", headers=h, json=body)
        assert r.status_code == 409 and "already submitted" in r.json()["error"]
    assert client.put("/api/rater/trials/0/draft", headers=h, json=full_body(t)).status_code == 409
    assert client.get("/api/rater/trials/0", headers=h).status_code == 409
    assert count(client.folder) == 5 and {r[0] for r in sqlite3.connect(client.folder / "ratings.sqlite")
                                         .execute("SELECT score FROM ratings")} == {70.0}
    t1 = client.get("/api/rater/trials/1", headers=h).json()
    assert t1["nonce"] != t["nonce"]
    assert client.post("/api/rater/trials/1", headers=h, json={**full_body(t1), "nonce": t["nonce"]}).status_code == 409
    assert client.post("/api/rater/trials/1", headers=h, json=full_body(t1, 33)).json()["finished"] is True
    assert client.get("/api/rater", headers=h).json()["finished"] is True
    assert client.get("/api/rater/trials/2", headers=h).status_code == 404


def test_raters_are_isolated(client):
    ha, ta = start(client, "r01")
    hb, tb = start(client, "r02")
    assert client.put("/api/rater/trials/0/draft", headers=ha,
                      json={"nonce": ta["nonce"], "ratings": {"A": 12}, "played": ["A"]}).status_code == 204
    assert client.get("/api/rater/trials/0", headers=hb).json()["draft"] is None  # B never sees A's draft
    # B cannot use A's nonce, and A's submission does not move B
    assert client.post("/api/rater/trials/0", headers=hb, json=full_body(ta)).status_code == 409
    assert client.post("/api/rater/trials/0", headers=ha, json=full_body(ta, 80)).status_code == 201
    assert client.get("/api/rater", headers=hb).json()["next_trial"] == 0
    assert client.get("/api/rater/trials/0", headers=hb).json()["nonce"] == tb["nonce"]
    con = sqlite3.connect(client.folder / "ratings.sqlite")
    assert {r[0] for r in con.execute("SELECT rater FROM ratings")} == {"r01"}


def test_admin_sees_progress_of_everyone(client):
    h, t = start(client, "r03")
    client.post("/api/rater/trials/0", headers=h, json=full_body(t))
    r = client.get("/api/admin/progress", headers=auth(client.sec["admin"]))
    assert r.status_code == 200
    rows = {x["rater"]: x for x in r.json()["raters"]}
    assert rows["r03"]["done"] == 1 and rows["r03"]["training_done"] and rows["r01"]["done"] == 0
    assert rows["r01"]["link"] == "/#" + client.sec["raters"]["r01"]
    assert client.get("/admin").status_code == 200


def test_drafts_and_ratings_survive_a_server_restart(fresh_test):
    sec = secrets_of(fresh_test)
    h = auth(sec["raters"]["r02"])
    with running_server(fresh_test) as url:
        assert httpx.post(f"{url}/api/rater/training", headers=h).status_code == 200
        t = httpx.get(f"{url}/api/rater/trials/0", headers=h).json()
        assert httpx.post(f"{url}/api/rater/trials/0", headers=h, json=full_body(t, 64)).status_code == 201
        t1 = httpx.get(f"{url}/api/rater/trials/1", headers=h).json()
        draft = {"nonce": t1["nonce"], "ratings": {"A": 40, "C": 90}, "played": ["A", "C"]}
        assert httpx.put(f"{url}/api/rater/trials/1/draft", headers=h, json=draft).status_code == 204
    with running_server(fresh_test) as url:  # a new server process state on the same folder
        s = httpx.get(f"{url}/api/rater", headers=h).json()
        assert s["training_done"] and s["next_trial"] == 1
        again = httpx.get(f"{url}/api/rater/trials/1", headers=h).json()
        assert again["nonce"] == t1["nonce"]
        assert again["draft"] == {"ratings": {"A": 40.0, "C": 90.0}, "played": ["A", "C"]}
        assert httpx.post(f"{url}/api/rater/trials/0", headers=h, json=full_body(t, 64)).status_code == 409
    assert count(fresh_test) == 5
    con = sqlite3.connect(fresh_test / "ratings.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_database_of_another_plan_is_refused(fresh_test, tmp_path):
    from neurocodec.listen.plan import PlanError

    create_app(fresh_test).state.test.store.close()
    plan = json.loads((fresh_test / "plan.json").read_text())
    plan["seed"] += 1
    (fresh_test / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(PlanError, match="another plan"):
        create_app(fresh_test)


def test_cli_serve_binds_loopback_prints_links_and_serves(fresh_test):
    import subprocess
    import sys

    sec = secrets_of(fresh_test)
    proc = subprocess.Popen([sys.executable, "-m", "neurocodec", "listen", "serve", str(fresh_test), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        admin = proc.stdout.readline().split()
        assert admin[0] == "admin" and admin[1].startswith("http://127.0.0.1:")
        base, _, token = admin[1].partition("/admin#")
        assert token == sec["admin"]
        links = dict(proc.stdout.readline().split() for _ in sec["raters"])
        assert links["r01"] == f"{base}/#{sec['raters']['r01']}"
        assert httpx.get(f"{base}/api/admin/progress", headers=auth(token)).status_code == 200
        assert httpx.get(f"{base}/api/rater", headers=auth(sec["raters"]["r04"])).json()["rater"] == "r04"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_cli_serve_errors(fresh_test, tmp_path, capsys):
    import socket

    from neurocodec.cli import main

    assert main(["listen", "serve", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        assert main(["listen", "serve", str(fresh_test), "--port", str(s.getsockname()[1])]) == 2
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
