"""The documentation keeps its promises: every code block in README.md and
docs/ runs as pasted against the examples server (or is marked as not run),
the API reference covers every public name and every ClientConnection
attribute, and the documented REQUESTS_CA_BUNDLE precedence holds."""

from __future__ import annotations

import ast
import os
import pathlib
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

import requests_ws

from .test_examples import ExamplesServer, examples_server  # noqa: F401 (fixture)

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RUNNABLE = {"python", "sh"}


@dataclass
class Block:
    where: str
    language: str
    code: str
    marked: bool


def _markdown_blocks(path: pathlib.Path) -> list[Block]:
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = re.match(r"^```(\w*)\s*$", lines[index])
        if not opening:
            index += 1
            continue
        marked = index > 0 and lines[index - 1].startswith("<!-- not run by the tests:")
        end = lines.index("```", index + 1)
        code = "\n".join(lines[index + 1 : end]) + "\n"
        blocks.append(Block(f"{path.name}:{index + 1}", opening.group(1), code, marked))
        index = end + 1
    return blocks


def _rst_blocks(path: pathlib.Path) -> list[Block]:
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        directive = re.match(r"^(\s*)\.\. code-block:: (\w+)\s*$", line)
        if not directive:
            continue
        indent = len(directive.group(1))
        marked = index > 0 and lines[index - 1].strip().startswith(".. not run by the tests:")
        body: list[str] = []
        for following in lines[index + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        code = "\n".join(body)
        dedent = min((len(text) - len(text.lstrip()) for text in body if text.strip()), default=0)
        code = "\n".join(text[dedent:] for text in body).strip("\n") + "\n"
        blocks.append(Block(f"docs/{path.name}:{index + 1}", directive.group(2), code, marked))
    return blocks


def all_blocks() -> list[Block]:
    blocks = _markdown_blocks(ROOT / "README.md")
    for page in sorted(DOCS.glob("*.rst")):
        blocks += _rst_blocks(page)
    return blocks


BLOCKS = all_blocks()
TO_RUN = [block for block in BLOCKS if not block.marked]


def test_every_block_is_runnable_or_marked() -> None:
    assert len(BLOCKS) > 20
    for block in BLOCKS:
        assert block.marked or block.language in RUNNABLE, (
            f"{block.where}: a {block.language or 'plain'} block must be marked as not run"
        )
    for page in DOCS.glob("*.rst"):
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
                pytest.fail(f"docs/{page.name}:{number}: a literal block (::) is not checked")


@pytest.mark.parametrize("block", TO_RUN, ids=[block.where for block in TO_RUN])
def test_block_runs_as_pasted(block: Block, examples_server: ExamplesServer) -> None:  # noqa: F811
    code = examples_server.localize(block.code)
    environment = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    environment["TMPDIR"] = str(examples_server.directory)
    environment["PATH"] = os.path.dirname(sys.executable) + os.pathsep + environment["PATH"]
    if block.language == "python":
        command = [sys.executable, "-c", code]
    else:
        command = ["bash", "-e", "-o", "pipefail", "-c", code]
    result = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, f"{block.where}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout.strip(), f"{block.where} printed nothing"


# -- the API reference ------------------------------------------------------------


def _api_text() -> str:
    return (DOCS / "api.rst").read_text()


def test_api_reference_covers_every_public_name() -> None:
    text = _api_text()
    for name in requests_ws.__all__:
        if name == "TimeoutError":
            assert "``requests_ws.TimeoutError`` is the built-in" in text
            continue
        pattern = rf"^\.\. (auto)?(function|class|exception|data):: requests_ws\.{re.escape(name)}$"
        assert re.search(pattern, text, re.M), f"requests_ws.{name} is not in docs/api.rst"


def _instance_attributes() -> set[str]:
    tree = ast.parse((ROOT / "requests_ws" / "connection.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "ClientConnection":
            for sub in ast.walk(node):
                targets: list[Any] = []
                if isinstance(sub, ast.Assign):
                    targets = sub.targets
                elif isinstance(sub, ast.AnnAssign):
                    targets = [sub.target]
                for target in targets:
                    if (
                        isinstance(target, ast.Attribute)
                        and isinstance(target.value, ast.Name)
                        and target.value.id == "self"
                        and not target.attr.startswith("_")
                    ):
                        names.add(target.attr)
    return names


def test_api_reference_covers_every_client_connection_attribute() -> None:
    """Each public attribute has a docstring (autodoc shows it) or an entry."""
    text = _api_text()
    documented = set(re.findall(r"^   \.\. attribute:: (\w+)$", text, re.M))
    cls = requests_ws.ClientConnection
    public = {name for name in dir(cls) if not name.startswith("_")} | _instance_attributes()
    for required in ("latency", "id", "request", "response", "local_address", "remote_address"):
        assert required in public
    missing = []
    for name in sorted(public):
        member = getattr(cls, name, None)
        has_docstring = (callable(member) or isinstance(member, property)) and bool(
            getattr(member, "__doc__", None)
        )
        if not has_docstring and name not in documented:
            missing.append(name)
    assert not missing, f"ClientConnection attributes without documentation: {missing}"


# -- the documented REQUESTS_CA_BUNDLE precedence ---------------------------------


def test_requests_ca_bundle_wins_over_session_verify(
    examples_server: ExamplesServer,  # noqa: F811
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wss = examples_server.addresses["wss"]
    ca = examples_server.addresses["ca"]
    empty_bundle = tmp_path / "other-ca.pem"
    empty_bundle.write_text((ROOT / "LICENSE").read_text())  # no certificate in it
    session = requests_ws.Session()
    session.verify = ca
    with session.ws_connect(wss) as ws:  # no variable: session.verify applies
        ws.send("session.verify")
        assert ws.recv() == "session.verify"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(empty_bundle))
    with pytest.raises((OSError, requests_ws.WebSocketException)):
        session.ws_connect(wss, open_timeout=5).close()  # the variable replaced it
    with session.ws_connect(wss, verify=ca) as ws:  # a per-call verify= still wins
        ws.send("verify=")
        assert ws.recv() == "verify="
    session.trust_env = False
    with session.ws_connect(wss) as ws:  # trust_env=False: session.verify again
        ws.send("trust_env")
        assert ws.recv() == "trust_env"
