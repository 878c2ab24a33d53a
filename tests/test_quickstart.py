"""The README's Quickstart and .ci/run agree: CI runs exactly the documented
test and documentation commands."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    return [
        line for block in blocks for line in block.splitlines() if line.startswith(".venv/bin/")
    ] + [line for block in blocks for line in block.splitlines() if line.startswith("bash .ci/")]


def test_ci_runs_exactly_the_readme_commands() -> None:
    ci_lines = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    commands = _readme_commands()
    test_command = next(c for c in commands if c.startswith("bash .ci/install-system-packages"))
    docs_command = next(c for c in commands if "sphinx" in c)
    assert ci_lines == [test_command, docs_command]
    assert "sudo" not in test_command  # the script elevates itself only when needed
    assert "-W" in docs_command


def test_install_script_elevates_only_when_needed() -> None:
    script = (ROOT / ".ci" / "install-system-packages").read_text()
    main = script[script.index('if [ "${#missing[@]}" -ne 0 ]') :]  # nothing missing: no sudo
    assert main.index('if [ "$(id -u)" -eq 0 ]') < main.index("install_packages")
    assert main.index("install_packages") < main.index('sudo bash "$0" --packages-only')
    policy = script.index("> /usr/sbin/policy-rc.d")  # written only by install_packages
    assert script.index("install_packages() {  # as root") < policy
