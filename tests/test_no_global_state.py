"""Library code never changes process-wide state: environment, umask, root logger, global RNGs.

Entry points may (``rag/cli/``, the benchmark scripts in ``eval/benchmarks/``); everything else
passes options (``local_files_only``), uses its own generator objects, or restores what a
dependency changed.
"""

from __future__ import annotations

import ast
import os
import random
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).parents[1]
LIBRARY = ("indexes", "rag", "eval", "service")
ENTRY_POINTS = ("rag/cli/", "eval/benchmarks/")

#: Dotted call names that change process-wide state.
FORBIDDEN_CALLS = {"os.umask", "os.putenv", "os.environ.setdefault", "os.environ.update", "os.environ.pop",
                   "logging.basicConfig", "random.seed", "np.random.seed", "numpy.random.seed", "torch.manual_seed",
                   "torch.cuda.manual_seed_all", "transformers.set_seed", "set_seed"}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    if isinstance(node, ast.Call):  # logging.getLogger().setLevel
        parts.append(_dotted(node.func) + "()")
    return ".".join(reversed(parts))


def _violations(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            root_level = name in ("logging.getLogger().setLevel", "logging.root.setLevel") and not (
                node.func.value.args if isinstance(node.func.value, ast.Call) else False)
            if name in FORBIDDEN_CALLS or root_level:
                out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}()")
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Subscript) and _dotted(t.value) == "os.environ":
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno}: os.environ[...] =")
    return out


def test_library_code_changes_no_global_state():
    # Given every library module outside the entry points
    files = [p for pkg in LIBRARY for p in (ROOT / pkg).rglob("*.py")
             if not str(p.relative_to(ROOT)).startswith(ENTRY_POINTS)]
    assert len(files) > 50
    # Then none sets environment variables, the umask, the root logger or a global RNG seed
    found = [v for p in files for v in _violations(p)]
    assert found == []


def test_the_scan_finds_what_it_looks_for(tmp_path):
    # Given a module doing each forbidden thing
    bad = ROOT / "rag" / "_probe_global_state.py"
    bad.write_text("import os, random, logging\nos.environ['X'] = '1'\nos.umask(0)\nrandom.seed(1)\n"
                   "logging.getLogger().setLevel(10)\nlogging.getLogger('mine').setLevel(10)\n")
    try:
        # Then each is reported (the named logger is fine)
        assert [v.split(": ", 1)[1] for v in _violations(bad)] == [
            "os.environ[...] =", "os.umask()", "random.seed()", "logging.getLogger().setLevel()"]
    finally:
        bad.unlink()


def test_training_loop_keeps_the_callers_random_state():
    # Given the caller's random and torch states
    from rag.training.step_loop import isolated_torch_rng

    random.seed(123)
    torch.manual_seed(123)
    model = torch.nn.Linear(2, 2)
    py_state, torch_state = random.getstate(), torch.random.get_rng_state()
    # When a block runs seeded, twice
    draws = []
    for _ in range(2):
        with isolated_torch_rng(7, model):
            draws.append(torch.rand(3))
    # Then it is reproducible and the caller's states are as they were
    assert torch.equal(draws[0], draws[1])
    assert random.getstate() == py_state and torch.equal(torch.random.get_rng_state(), torch_state)


def test_run_steps_shuffles_with_its_own_generator(tmp_path):
    # Given a tiny loop whose batches are recorded
    from types import SimpleNamespace

    from rag.training.step_loop import run_steps

    cfg = SimpleNamespace(steps=6, batch_size=2, lr=0.1, warmup_steps=1, min_lr_ratio=0.1, weight_decay=0.0,
                          max_grad_norm=1.0, eval_every=100, checkpoint_every=0, time_limit_s=None, seed=3)
    w = torch.nn.Parameter(torch.zeros(1))

    def batches() -> list[list[int]]:
        seen = []

        def loss(indices):
            seen.append(indices)
            return (w - 1).pow(2).sum()

        run_steps([w], cfg, 5, loss, evaluate=dict, checkpoint=lambda p: None, out_dir=tmp_path)
        return seen

    random.seed(0)
    state = random.getstate()
    # When it runs twice
    first, second = batches(), batches()
    # Then the batches are the same epochs of a seeded shuffle, and the global random state is untouched
    assert first == second and sorted(first[0] + first[1] + [first[2][0]]) == [0, 1, 2, 3, 4]
    assert random.getstate() == state


def test_encoder_does_not_set_hf_hub_offline(monkeypatch, encoder):
    # Given no HF_HUB_OFFLINE in the environment
    from rag.encoder import Encoder, EncoderConfig

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # When an encoder loads (from local files only, by argument)
    Encoder(EncoderConfig(device="cpu"))
    # Then the environment is as it was
    assert "HF_HUB_OFFLINE" not in os.environ


def test_atomic_writes_never_touch_the_umask(monkeypatch, tmp_path):
    # Given os.umask made unusable, and the process umask
    import indexes.atomic
    from indexes.atomic import atomic_directory, atomic_write_text

    mask = os.umask(0o022)
    os.umask(mask)

    def no(*args):
        raise AssertionError("os.umask called")

    monkeypatch.setattr(indexes.atomic.os, "umask", no)
    # When a file and a directory are written atomically
    atomic_write_text(tmp_path / "f", "x")
    with atomic_directory(tmp_path / "d") as tmp:
        (tmp / "a").write_text("y")
    # Then they still get the normal permissions (0666 / 0777 less the umask)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~mask


@pytest.mark.skipif(__import__("importlib").util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")
def test_int8_quantisation_leaves_the_root_logger_alone(monkeypatch, tmp_path):
    # Given an unconfigured root logger (no handlers, its level)
    import logging

    import onnx
    from onnx import TensorProto, helper

    from rag.onnx_backend import _quantize

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    level = root.level
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], [0.1 * i for i in range(16)])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))
    # When a model is quantised
    _quantize(tmp_path / "m.onnx", tmp_path / "q.onnx")
    # Then the root logger has the same level and still no handler
    assert (tmp_path / "q.onnx").is_file() and root.level == level and root.handlers == []
