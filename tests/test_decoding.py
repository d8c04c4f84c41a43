"""Decoding options added for open-ended generation, against ``transformers``' ``generate`` on the same weights:
decoder prompts (``decoder_input_ids``), the repetition penalty, and sampling with ``num_return_sequences`` (the same
draws from the same global random state)."""

from __future__ import annotations

import pytest
import torch

from annotated.encoder_decoder import (
    beam_search,
    greedy_search,
    penalize_repetitions,
    sample,
)


transformers = pytest.importorskip("transformers")

# the same random BERT2BERT pair as the encoder-decoder parity tests
from tests.test_encoder_decoder import EOS, PAD, START, hf_pair  # noqa: E402,F401  (hf_pair is a fixture)


@pytest.fixture(scope="module")
def pair(hf_pair):  # noqa: F811 (pytest injects the imported fixture by its name)
    return hf_pair


@pytest.fixture(scope="module")
def inputs():
    torch.manual_seed(1)
    ids = torch.randint(4, 50, (4, 7))
    prompt = torch.cat([torch.full((4, 1), START), torch.randint(4, 60, (4, 4))], dim=1)
    return ids, torch.ones_like(ids), prompt


def until_eos(rows: torch.Tensor) -> list[list[int]]:
    return [row[: row.index(EOS) + 1] if EOS in row else row for row in rows.tolist()]


def test_penalty_divides_positive_and_multiplies_negative_scores():
    scores = torch.tensor([[2.0, -2.0, 1.0, -1.0]])
    got = penalize_repetitions(torch.tensor([[0, 1]]), scores, 2.0)
    assert got.tolist() == [[1.0, -4.0, 1.0, -1.0]]
    assert torch.equal(penalize_repetitions(torch.tensor([[0, 1]]), scores, 1.0), scores)
    with pytest.raises(ValueError, match="repetition_penalty must be > 0"):
        penalize_repetitions(torch.tensor([[0]]), scores, 0.0)


@pytest.mark.parametrize("settings", [dict(), dict(repetition_penalty=1.8), dict(repetition_penalty=0.7, no_repeat_ngram_size=2)])
def test_greedy_with_prompt_and_penalty_matches_generate(pair, inputs, settings):
    hf, ours = pair
    ids, mask, prompt = inputs
    expected = hf.generate(ids, attention_mask=mask, decoder_input_ids=prompt, max_length=16, do_sample=False, **settings)
    got = greedy_search(ours, ids, mask, decoder_input_ids=prompt, max_length=16, **settings)
    assert until_eos(expected) == until_eos(got)
    if settings:  # the option must change something on this model, or the test could not fail
        assert until_eos(greedy_search(ours, ids, mask, decoder_input_ids=prompt, max_length=16)) != until_eos(got)


@pytest.mark.parametrize("settings", [
    dict(num_beams=3, repetition_penalty=1.5),
    dict(num_beams=3, early_stopping="never", length_penalty=1.5, num_return_sequences=2),
    dict(num_beams=4, no_repeat_ngram_size=2, length_penalty=0.5),
])
def test_beam_search_with_prompt_matches_generate(pair, inputs, settings):
    hf, ours = pair
    ids, mask, prompt = inputs
    expected = hf.generate(ids, attention_mask=mask, decoder_input_ids=prompt, max_length=16, do_sample=False, **settings)
    got = beam_search(ours, ids, mask, decoder_input_ids=prompt, max_length=16, **settings).sequences
    assert until_eos(expected) == until_eos(got)


@pytest.mark.parametrize("settings", [
    dict(top_k=0, temperature=1.5),
    dict(top_k=5, top_p=0.8, num_return_sequences=3),
    dict(top_k=0, top_p=0.9, repetition_penalty=1.3, temperature=0.8, num_return_sequences=2),
])
def test_sampling_draws_the_same_tokens_as_generate(pair, inputs, settings):
    hf, ours = pair
    ids, mask, prompt = inputs
    torch.manual_seed(7)
    expected = hf.generate(ids, attention_mask=mask, decoder_input_ids=prompt, max_length=16, do_sample=True, **settings)
    torch.manual_seed(7)
    got = sample(ours, ids, mask, decoder_input_ids=prompt, max_length=16, **settings)
    assert got.shape[0] == ids.shape[0] * settings.get("num_return_sequences", 1)
    assert until_eos(expected) == until_eos(got)
    torch.manual_seed(8)
    assert until_eos(sample(ours, ids, mask, decoder_input_ids=prompt, max_length=16, **settings)) != until_eos(got)


def test_bad_prompts_and_options_are_refused(pair, inputs):
    _, ours = pair
    ids, mask, prompt = inputs
    with pytest.raises(ValueError, match="must begin with the start token 2"):
        greedy_search(ours, ids, mask, decoder_input_ids=prompt[:, 1:], max_length=16)
    with pytest.raises(ValueError, match=r"expected decoder_input_ids of shape \(batch=4, prompt\)"):
        beam_search(ours, ids, mask, decoder_input_ids=prompt[:2], max_length=16)
    with pytest.raises(ValueError, match="leaves nothing to generate"):
        sample(ours, ids, mask, decoder_input_ids=prompt, max_length=5)
    with pytest.raises(ValueError, match="num_return_sequences must be >= 1"):
        sample(ours, ids, mask, num_return_sequences=0)
    with pytest.raises(ValueError, match="repetition_penalty must be > 0"):
        greedy_search(ours, ids, mask, repetition_penalty=-1.0)
