"""README as a new user meets it: its commands run as copied, from the root of a clean copy of the repository.

A block README (or docs/APP.md) marks with `<!-- runs-in-test -->` is run there (a bash block line by line, a
python block as one script); `<!-- runs-in-test: needs the app -->` runs the block against `python app.py`,
started on a free port through GRADIO_SERVER_PORT as README says. Every `# prints: TEXT` comment in a block
names a line the block must print. The copy is the working tree's tracked files plus its untracked files that
git does not ignore (`git ls-files -co --exclude-standard`): what a fresh clone of main has in CI, and in a dirty
development tree what its next commit would have. Fast checks beside it: the two commands are `.ci/run`'s,
every file the docs' code uses is shipped, the example image is what `python -m mmdemo.examples` makes,
README's links stay in the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
LAUNCH = "pip install -r requirements.txt && python app.py"
APP_URL = "http://127.0.0.1:7860/"  # the address README's client snippet uses; replaced by the test server's

MARKED = re.compile(r"<!-- runs-in-test(?P<app>: needs the app)? -->\n```(?P<lang>\w+)\n(?P<code>.*?)\n```", re.DOTALL)
FENCED = re.compile(r"^```(\w*)\n(.*?)\n```", re.DOTALL | re.MULTILINE)
PRINTS = re.compile(r"#[^\n]*?\bprints: ([^\n]+?)\s*$", re.MULTILINE)


def readme() -> str:
    return README.read_text(encoding="utf-8")


def marked_blocks(doc: Path = README) -> list[tuple[bool, str, str]]:
    """(needs the app, language, code) of every block a doc marks as run by this test, in order."""
    return [(bool(m["app"]), m["lang"], m["code"]) for m in MARKED.finditer(doc.read_text(encoding="utf-8"))]


def fenced(text: str, lang: str | None = None) -> list[str]:
    return [code for tag, code in FENCED.findall(text) if lang is None or tag == lang]


# ------------------------------------------------------------------------------------------------ fast checks


def test_readme_marks_the_blocks_it_runs() -> None:
    blocks = marked_blocks()
    kinds = {(app, lang) for app, lang, _ in blocks}
    assert {(False, "bash"), (False, "python"), (True, "python")} <= kinds, kinds
    for _, lang, code in blocks:
        assert lang in ("bash", "python"), lang
        assert PRINTS.findall(code), f"a block this test runs says nothing it prints:\n{code}"
    app_code = next(code for app, _, code in blocks if app)
    assert APP_URL in app_code
    assert [(app, lang) for app, lang, _ in marked_blocks(ROOT / "docs" / "APP.md")] == [(True, "python")]
    assert APP_URL in marked_blocks(ROOT / "docs" / "APP.md")[0][2]


def test_the_two_commands_are_readmes_and_ci_runs_the_test_command() -> None:
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert len(ci) == 1, ci
    bash = [code.strip() for code in fenced(readme(), "bash")]
    assert LAUNCH in bash and ci[0].strip() in bash


def test_readme_is_short_and_its_links_stay_in_the_repository() -> None:
    text = readme()
    assert len(text.splitlines()) <= 250
    prose = FENCED.sub("", text)
    links = re.findall(r"\]\(([^)\s]+)\)", prose)
    assert links
    slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", prose, re.MULTILINE)}
    for link in links:
        assert not re.match(r"[a-z]+:", link), f"a link outside the repository: {link}"
        path, _, anchor = link.partition("#")
        if path:
            assert (ROOT / path).exists(), link
        elif anchor:
            assert anchor in slugs, link


def _files_used(code: str) -> list[str]:
    found = re.findall(r"--(?:image|audio)\s+(\S+)", code)
    found += re.findall(r"handle_file\(\"([^\"]+)\"\)", code)
    found += [a for args in re.findall(r"\.predict\(((?:\"[^\"]*\",?\s*)+)", code) for a in re.findall(r"\"([^\"]+)\"", args)]
    return [f for f in found if re.search(r"\.(png|jpe?g|webp|wav|ogg|flac|mp3)$", f, re.IGNORECASE)]


def test_every_file_the_docs_code_uses_is_shipped() -> None:
    """An image or recording named in README's or docs' code exists, so a copied command finds it (FILE: a placeholder)."""
    used = {(doc.name, f) for doc in DOCS for code in fenced(doc.read_text(encoding="utf-8")) for f in _files_used(code)}
    assert ("README.md", "examples/scene.png") in used
    missing = [(doc, f) for doc, f in used if not (ROOT / f).is_file()]
    assert not missing, missing


def test_example_scene_is_what_the_command_makes(tmp_path: Path) -> None:
    from mmdemo import examples

    assert examples.main(["--out", str(tmp_path)]) == 0
    made = Image.open(tmp_path / "scene.png")
    shipped = Image.open(ROOT / "examples" / "scene.png")
    assert shipped.mode == made.mode == "RGB" and shipped.size == made.size == (75, 75)
    assert np.array_equal(np.asarray(shipped), np.asarray(made))
    assert np.array_equal(np.asarray(made), examples.scene_pixels())
    from mmdemo.demo.scenes import Scenes  # README: the app's "New random scene" with seed 42 shows this scene

    assert np.array_equal(Scenes.random(examples.SCENE_SEED).image, examples.scene_pixels())


# ------------------------------------------------------------------------------------------------ README, run


def copy_checkout(dst: Path) -> None:
    """The files a clone would have (tracked, plus untracked and not ignored), as they are in the working tree."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    for name in filter(None, listed.stdout.decode().split("\0")):
        src = ROOT / name
        if src.is_file():  # a tracked file deleted in the working tree is not copied
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_block(cmd: list[str], cwd: Path, env: dict, code: str, stdin: str | None = None) -> str:
    r = subprocess.run(cmd, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, f"{code}\nexit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    lines = {line.strip() for line in r.stdout.splitlines()}
    for expected in PRINTS.findall(code):  # a whole line of what it printed
        assert expected in lines, f"{code}\nshould print the line {expected!r}; printed:\n{r.stdout[-2000:]}"
    return r.stdout


def run_marked(block: tuple[bool, str, str], cwd: Path, env: dict) -> None:
    _, lang, code = block
    if lang == "python":
        run_block([sys.executable, "-"], cwd, env, code, stdin=code)
        return
    for line in code.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            run_block(["bash", "-c", line], cwd, env, line)


@pytest.mark.slow
def test_readme_commands_run_as_copied_in_a_clean_copy(tmp_path: Path) -> None:
    clone = tmp_path / "mmdemo"
    copy_checkout(clone)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_SERVER_", "PYTHONPATH"))}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")  # `python` is this Python
    env["CUDA_VISIBLE_DEVICES"] = ""  # README's numbers are CPU numbers
    env["MMDEMO_EXAMPLES"] = str(tmp_path / "app-examples")
    blocks = marked_blocks() + marked_blocks(ROOT / "docs" / "APP.md")  # APP.md: its API block
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = (tmp_path / "app.log").open("w+")
    # Started first, so that it warms its models while the commands run; addressed as README says.
    server = subprocess.Popen([sys.executable, "app.py"], cwd=clone, stdout=log, stderr=subprocess.STDOUT,
                              env={**env, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)})
    try:
        for block in blocks:
            if not block[0]:
                run_marked(block, clone, env)
        deadline = time.time() + 300
        while True:
            assert server.poll() is None, f"python app.py exited with {server.returncode}"
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                assert time.time() < deadline, "python app.py did not answer in 300 s"
                time.sleep(0.5)
        for needs_app, lang, code in blocks:
            if needs_app:
                run_marked((needs_app, lang, code.replace(APP_URL, url)), clone, env)
    finally:
        server.terminate()  # SIGTERM: README says accepted requests finish and it exits 0
        try:
            rc = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            rc = server.wait()
        log.seek(0)
        printed = log.read()
        log.close()
    assert f"Running on local URL:  {url}".rstrip("/") in printed, printed[-2000:]
    assert rc == 0, printed[-2000:]
