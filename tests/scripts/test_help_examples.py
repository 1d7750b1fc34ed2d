"""Every `--help` shows each example on a line of its own, as it would be typed."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from scripts.cli import cli


def commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


def examples(command: click.Command) -> list[str]:
    """The lines of the docstring that are commands to type."""
    lines = (command.help or "").splitlines()
    return [line.strip() for line in lines if line.strip().startswith("xsell ")]


def lookup(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


ALL = list(commands())


def test_commands_with_several_examples_exist() -> None:
    several = [path for path in ALL if len(examples(lookup(path))) > 1]
    assert len(several) >= 5, several  # the check below must have something to check


@pytest.mark.parametrize("path", ALL, ids=" ".join)
def test_each_example_is_a_line_of_its_own(path: tuple[str, ...]) -> None:
    wanted = examples(lookup(path))
    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    shown = [line.strip() for line in result.output.splitlines()]
    for example in wanted:
        assert example in shown, f"{' '.join(path)} --help runs examples together:\n{result.output}"
