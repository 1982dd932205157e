"""The one CLI error path: a VadlibError becomes ``error: …`` on stderr and exit status 2."""

from __future__ import annotations

import pytest

from vadlib.errors import ConfigError, DataError, cli_errors


def test_cli_errors_prints_the_message_and_returns_2(capsys):
    @cli_errors
    def main(argv=None) -> int:
        """doc kept"""
        raise DataError("some/file.mp4", "cannot read it; re-encode it")

    assert main([]) == 2
    assert capsys.readouterr().err == "error: some/file.mp4: cannot read it; re-encode it\n"
    assert main.__doc__ == "doc kept"


def test_cli_errors_passes_results_and_other_exceptions_through():
    assert cli_errors(lambda: 0)() == 0

    @cli_errors
    def bug() -> int:
        raise KeyError("a bug is not a user error")

    with pytest.raises(KeyError):
        bug()


@pytest.mark.parametrize("module", ["vadlib.search", "vadlib.detect", "vadlib.features.extract"])
def test_commands_exit_2_on_a_user_error(module, tmp_path, capsys):
    """Each command's main goes through cli_errors: a missing input is a message, not a traceback."""
    import importlib

    main = importlib.import_module(module).main
    missing = str(tmp_path / "missing")
    argv = {"vadlib.search": ["a bicycle", missing, "--out", str(tmp_path / "o"), "--backbone", "vadlib-tiny",
                              "--pretrained", "random"],
            "vadlib.detect": [missing + ".mp4", "--backbone", "vadlib-tiny", "--pretrained", "random", "--prompt", "x",
                              "--out", str(tmp_path / "o")],
            "vadlib.features.extract": ["--dataset", "no_such_dataset", "--root", missing, "--out", str(tmp_path / "o"),
                                        "--backbone", "vadlib-tiny", "--pretrained", "random"]}[module]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_config_error_is_a_vadlib_error():
    from vadlib.errors import VadlibError

    assert issubclass(ConfigError, VadlibError)


def test_vadlib_command_unknown_benchmark_is_a_message(capsys):
    from vadlib.cli import main

    assert main(["bench", "no_such_bench"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown benchmark 'no_such_bench'") and "metrics" in err
