"""``--device``: every command checks it while parsing, and the retrieval commands give it to the query encoder."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from rag.cli import _register, main
from rag.cli.apps import app
from rag.cli.options import check_device

FIXTURES = Path(__file__).parents[1] / "fixtures"


def _device_commands() -> list[list[str]]:
    """argv prefixes (``["eval", "retrieval"]``) of every leaf command that takes ``--device``."""
    _register()

    def walk(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        elif any(p.name == "device" for p in cmd.params):
            yield path

    commands = list(walk(typer.main.get_command(app), []))
    assert len(commands) >= 8 and ["search"] in commands and ["ask"] in commands, commands
    return commands


@pytest.mark.parametrize("bad", ["gpu", "GPU", "cuda:x", "cpu:0", "cuda:", "", "auto:1"])
def test_every_command_refuses_a_device_that_is_not_one(bad, capsys):
    for argv in _device_commands():
        # Given / When: a command run with a device name torch would not take (before any required argument)
        rc = main([*argv, "--device", bad])
        # Then: a usage error (exit 2) naming the option and the values it takes, before any work
        err = " ".join(capsys.readouterr().err.split())
        assert rc == 2, (argv, bad)
        assert "'--device'" in err and "give auto, cpu, cuda or cuda:N" in err, (argv, err)


def test_cuda_without_a_cuda_torch_is_a_usage_error_naming_device(monkeypatch, capsys):
    import torch

    # Given: a torch that sees no CUDA GPU (this CPU machine, or forced so on a GPU machine)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for argv in _device_commands():
        for device in ("cuda", "cuda:0"):
            # When
            rc = main([*argv, "--device", device])
            # Then: one clear error naming --device, not a silent run on the CPU
            err = " ".join(capsys.readouterr().err.split())
            assert rc == 2 and "'--device'" in err and "sees no CUDA GPU" in err, (argv, device, err)


def test_a_gpu_index_past_the_last_gpu_is_refused(monkeypatch):
    import torch

    # Given: a machine with one CUDA GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    # When / Then: cuda and cuda:0 are taken as given; cuda:1 does not exist
    assert check_device("cuda") == "cuda" and check_device("cuda:0") == "cuda:0"
    with pytest.raises(typer.BadParameter, match=r"1 CUDA GPU\(s\), cuda:0 to cuda:0"):
        check_device("cuda:1")


def test_auto_and_cpu_are_taken_without_asking_torch(monkeypatch):
    import torch

    # Given: a torch whose CUDA probe would fail the test if it were called
    monkeypatch.setattr(torch.cuda, "is_available", lambda: pytest.fail("asked torch for auto/cpu"))
    # When / Then
    assert check_device("auto") == "auto" and check_device("cpu") == "cpu"


@pytest.fixture
def index_devices(monkeypatch) -> list:
    """The ``device`` every :class:`rag.index.Index` opened during the test was given."""
    from rag import index as index_module

    seen: list = []
    real = index_module.Index.__init__

    def spy(self, path, **kwargs):
        seen.append(kwargs.get("device"))
        real(self, path, **kwargs)

    monkeypatch.setattr(index_module.Index, "__init__", spy)
    return seen


@pytest.mark.parametrize("argv", [
    ["search", "--mode", "dense", "-k", "3", "vaccine"],
    ["search", "--mode", "dense", "-k", "3", "--queries", str(FIXTURES / "queries.jsonl"), "--run", "-"],
    ["ask", "--mode", "dense", "-k", "2", "what do vaccines do?"],
    ["eval", "retrieval", "--mode", "dense", "--queries", str(FIXTURES / "queries.jsonl"),
     "--qrels", str(FIXTURES / "qrels.tsv"), "--json"],
])
def test_retrieval_commands_give_the_device_to_the_query_encoder(argv, sample_index, index_devices, capsys):
    # Given / When: a dense retrieval command run with --device cpu
    rc = main([*argv, "--index", str(sample_index), "--device", "cpu"])
    capsys.readouterr()
    # Then: the index (whose query encoder loads on first dense search) was opened on that device
    assert rc == 0
    assert index_devices and set(index_devices) == {"cpu"}, index_devices
