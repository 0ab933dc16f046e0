"""The dependency adapters: a clear version error, and the one place that picks the cache argument."""

from __future__ import annotations

import pytest
import torch

from indexes.errors import InputError
from rag.compat import DependencyVersionError, require
from rag.compat.transformers import causal_lm_forward, t5_blocks


def test_an_old_dependency_is_refused_with_the_fix():
    # Given a requirement newer than anything installed / When / Then: package, versions and the pip command
    with pytest.raises(DependencyVersionError, match=r"KV caching needs transformers>=999\.0, found .*: pip install -U 'transformers>=999\.0'"):
        require("transformers", "999.0", "KV caching")
    with pytest.raises(DependencyVersionError, match="not installed: pip install 'no-such-package-xyz>=1'"):
        require("no-such-package-xyz", "1", "this")


class _Out(dict):
    logits = torch.zeros(1, 2, 3)  # (1, L, V)


class _NewStyleLM(torch.nn.Module):
    def forward(self, input_ids, position_ids=None, cache=None, use_cache=False, logits_to_keep=0):
        return _Out(cache=("new", cache))


class _OldStyleLM(torch.nn.Module):
    def forward(self, input_ids, position_ids=None, past_key_values=None, use_cache=False, logits_to_keep=0):
        return _Out(past_key_values=("old", past_key_values))


@pytest.mark.parametrize("model, name", [(_NewStyleLM(), "new"), (_OldStyleLM(), "old")])
def test_the_cache_goes_in_and_out_under_the_name_the_model_uses(model, name):
    # Given a model whose forward names its cache argument `cache` (newer 5.x) or `past_key_values`
    # When
    logits, cache = causal_lm_forward(model, torch.zeros(1, 2, dtype=torch.long), None, "C")
    # Then the cache was passed and read back under that name
    assert cache == (name, "C") and logits.shape == (1, 2, 3)


def test_a_stack_that_is_not_t5_is_a_user_error():
    with pytest.raises(InputError, match="not a T5-family encoder stack"):
        t5_blocks(torch.nn.Linear(2, 2))
