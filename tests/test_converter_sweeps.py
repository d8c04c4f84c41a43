"""Every field of the reference configs a converter receives is either converted exactly or refused.

For each converter, every field of the reference (``transformers``) config class gets a list of representative
non-default values. For each value the reference library accepts, a tiny reference model is built, converted, and
either the conversion raises a ``ValueError`` naming the field, or

* the converted model's outputs equal the reference's to a tight tolerance, and
* the field is honoured: it is mapped to our config (same value, possibly under another name), or it is listed in
  the converter's ``NO_EFFECT`` table with the reason why it cannot change what the converted model computes.

A coverage test per converter fails when the reference config class has a field that neither the sweep nor the
commented ``METADATA`` list names, so a field added by a new ``transformers`` release cannot slip through.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Callable

import pytest
import torch
import transformers
from transformers.activations import ACT2CLS

ACTIVATIONS = sorted(ACT2CLS)  # every activation name transformers knows, so a new one is swept too

# Fields of every transformers config that describe the checkpoint or the call, never the computation.
METADATA = {
    "_name_or_path",  # where the checkpoint came from
    "architectures",  # which classes the checkpoint was saved from
    "dtype",  # storage dtype; conversion keeps the tensors' dtype
    "id2label", "label2id", "problem_type",  # classification heads, which no converter here converts
    "model_type", "transformers_version",  # identification
    "output_attentions", "output_hidden_states", "return_dict",  # what a forward call returns, not its values
    "is_encoder_decoder",  # fixed per model family (what `generate` expects); not a switch of the computation
}


def check_value(
    field: str,
    value: Any,
    build_reference: Callable[[dict], Any],
    convert: Callable[[Any], Any],
    compare: Callable[[Any, Any], None],
    our_config: Callable[[Any], Any],
    renames: dict[str, str],
    no_effect: dict[str, str],
) -> str:
    """Build, convert and compare one (field, value); returns "refused by reference", "refused" or "converted"."""
    try:
        reference = build_reference({field: value})
    except (ValueError, TypeError, AssertionError, AttributeError, RuntimeError):
        return "refused by reference"
    try:
        ours = convert(reference)
    except ValueError as error:
        assert field in str(error), f"{field}={value!r}: the ValueError does not name the field: {error}"
        return "refused"
    try:
        compare(reference, ours)
    except AssertionError as error:
        raise AssertionError(f"{field}={value!r} was converted, but the outputs differ: {error}") from None
    if field in no_effect:
        return "converted"
    name = renames.get(field, field)
    config = our_config(ours)
    assert hasattr(config, name), (
        f"{field}={value!r} was accepted but is neither mapped to our config nor listed as having no effect"
    )
    ours_value = getattr(config, name)
    if isinstance(ours_value, tuple):
        ours_value = list(ours_value)
    expected = list(value) if isinstance(value, tuple) else value
    assert ours_value == expected, f"{field}={value!r} became {name}={ours_value!r}"
    return "converted"


def assert_covers(reference_fields: set[str], swept: dict, metadata: set[str]) -> None:
    missing = reference_fields - set(swept) - metadata
    assert not missing, f"fields of the reference config that no sweep covers: {sorted(missing)}"


# --------------------------------------------------------------------------------------------------------------------
# wav2vec 2.0
# --------------------------------------------------------------------------------------------------------------------
from annotated.wav2vec2 import compute_time_mask, feature_lengths, sample_negative_indices, wav2vec2_from_transformers

WAV2VEC2_BASE = dict(
    vocab_size=9, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=20,
    conv_dim=(8, 8), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=8,
    num_conv_pos_embedding_groups=2, num_codevectors_per_group=4, num_codevector_groups=2, codevector_dim=8,
    proj_codevector_dim=8, num_negatives=3, mask_time_prob=0.3, mask_time_length=2,
)
WAV2VEC2_VALUES: dict[str, list] = {
    "vocab_size": [7], "hidden_size": [24], "num_hidden_layers": [2], "num_attention_heads": [4],
    "intermediate_size": [7], "hidden_act": ACTIVATIONS, "feat_extract_activation": ACTIVATIONS,
    "hidden_dropout": [0.3], "activation_dropout": [0.3], "attention_dropout": [0.3], "feat_proj_dropout": [0.3],
    "feat_quantizer_dropout": [0.3], "final_dropout": [0.3], "layerdrop": [0.5], "layer_norm_eps": [0.1],
    "feat_extract_norm": ["layer", "none"], "conv_dim": [(12, 8)], "conv_stride": [(4, 3)], "conv_kernel": [(8, 2)],
    "conv_bias": [True], "num_conv_pos_embeddings": [7], "num_conv_pos_embedding_groups": [4],
    "do_stable_layer_norm": [True], "apply_spec_augment": [False], "mask_time_prob": [0.0, 0.5],
    "mask_time_length": [3], "mask_time_min_masks": [0], "mask_feature_prob": [0.2], "mask_feature_length": [3],
    "mask_feature_min_masks": [1], "num_codevectors_per_group": [5], "num_codevector_groups": [4],
    "contrastive_logits_temperature": [0.5], "num_negatives": [2], "codevector_dim": [12], "proj_codevector_dim": [6],
    "diversity_loss_weight": [0.5], "ctc_loss_reduction": ["mean"], "ctc_zero_infinity": [True],
    "use_weighted_layer_sum": [True], "classifier_proj_size": [8], "tdnn_dim": [(8, 8)], "tdnn_kernel": [(3, 1)],
    "tdnn_dilation": [(1, 2)], "xvector_output_dim": [8], "pad_token_id": [6], "bos_token_id": [3],
    "eos_token_id": [4], "add_adapter": [True], "adapter_kernel_size": [2], "adapter_stride": [3],
    "num_adapter_layers": [1], "output_hidden_size": [8], "adapter_attn_dim": [4], "initializer_range": [0.5],
    "chunk_size_feed_forward": [2],
}
WAV2VEC2_NO_EFFECT = {
    "bos_token_id": "wav2vec 2.0 has no sequence start or end tokens", "eos_token_id": "as bos_token_id",
    "initializer_range": "initialisation only; the converter copies every weight",
    "chunk_size_feed_forward": "not read by transformers' wav2vec 2.0",
    "use_weighted_layer_sum": "only the sequence-classification and x-vector heads read it; they are not converted",
    "classifier_proj_size": "as use_weighted_layer_sum", "tdnn_dim": "x-vector head only",
    "tdnn_kernel": "x-vector head only", "tdnn_dilation": "x-vector head only", "xvector_output_dim": "x-vector head only",
    "adapter_kernel_size": "read only when add_adapter=True, which is refused",
    "adapter_stride": "read only when add_adapter=True", "num_adapter_layers": "read only when add_adapter=True",
    "output_hidden_size": "read only when add_adapter=True",
    "mask_feature_length": "read only when mask_feature_prob > 0, which is refused",
    "mask_feature_min_masks": "read only when mask_feature_prob > 0",
}
WAV2VEC2_METADATA = METADATA | {"num_feat_extract_layers"}  # derived: transformers sets it to len(conv_dim)


def wav2vec2_reference(overrides: dict) -> tuple[Any, Any]:
    """A tiny ``Wav2Vec2ForCTC`` and ``Wav2Vec2ForPreTraining`` (the converter's two inputs) with ``overrides``."""
    settings = {**WAV2VEC2_BASE, **overrides}
    config = transformers.Wav2Vec2Config(**settings)
    torch.manual_seed(0)
    return transformers.Wav2Vec2ForCTC(config).eval(), transformers.Wav2Vec2ForPreTraining(config).eval()


def wav2vec2_convert(references: tuple[Any, Any]) -> tuple[Any, Any]:
    return tuple(wav2vec2_from_transformers(reference).eval() for reference in references)


def wav2vec2_compare(references: tuple[Any, Any], ours: tuple[Any, Any]) -> None:
    ctc_reference, pretraining_reference = references
    ctc, pretraining = ours
    torch.manual_seed(1)
    values = torch.randn(2, 700)
    mask = torch.ones(2, 700, dtype=torch.long)
    mask[1, 560:] = 0
    labels = torch.tensor([[1, 2, 3, 1], [2, 3, -100, -100]])  # no id equal to a swept pad_token_id
    with torch.no_grad():
        theirs = ctc_reference(values, attention_mask=mask, labels=labels)
        mine = ctc(values, mask, labels)
    for row, length in enumerate(mine.frame_lengths.tolist()):
        torch.testing.assert_close(mine.logits[row, :length], theirs.logits[row, :length], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mine.loss, theirs.loss, atol=1e-5, rtol=1e-5)
    if not hasattr(pretraining_reference.wav2vec2, "masked_spec_embed"):
        return  # transformers builds no mask embedding when both mask probabilities are 0 and then cannot pretrain
    frames = int(feature_lengths(pretraining.config, torch.tensor(700)))
    time_mask = compute_time_mask(2, frames, 0.4, 2, min_masks=2, generator=torch.Generator().manual_seed(0))
    negatives = sample_negative_indices(time_mask, pretraining.config.num_negatives, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        theirs = pretraining_reference(values, mask_time_indices=time_mask, sampled_negative_indices=negatives)
        mine = pretraining(values, mask_time_indices=time_mask, sampled_negative_indices=negatives)
    for name in ("loss", "contrastive_loss", "diversity_loss", "codevector_perplexity", "projected_states"):
        torch.testing.assert_close(getattr(mine, name), getattr(theirs, name), atol=1e-5, rtol=1e-5)


def test_wav2vec2_sweep_covers_every_reference_field():
    assert_covers(set(transformers.Wav2Vec2Config().to_dict()), WAV2VEC2_VALUES, WAV2VEC2_METADATA)
    assert set(WAV2VEC2_NO_EFFECT) <= set(WAV2VEC2_VALUES)


@pytest.mark.parametrize("field", sorted(WAV2VEC2_VALUES))
def test_wav2vec2_converter_honours_or_refuses(field):
    outcomes = {}
    for value in WAV2VEC2_VALUES[field]:
        outcomes[repr(value)] = check_value(
            field, value, wav2vec2_reference, wav2vec2_convert, wav2vec2_compare,
            lambda ours: ours[0].config, {}, WAV2VEC2_NO_EFFECT,
        )
    assert any(o != "refused by reference" for o in outcomes.values()), f"the reference refused every value: {outcomes}"
