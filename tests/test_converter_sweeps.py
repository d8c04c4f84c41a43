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
from typing import Any, Callable

import pytest
import torch
import transformers
from transformers.activations import ACT2CLS

from annotated.encoder_decoder import (
    Encoder,
    _bert_names,
    _copy_weights,
    config_from_bert,
    decoder_from_transformers,
    encoder_decoder_from_transformers,
    encoder_from_transformers,
)
from annotated.reformer import reformer_from_transformers
from annotated.warm_starting import load_bert_checkpoint
from annotated.wav2vec2 import compute_time_mask, feature_lengths, sample_negative_indices, wav2vec2_from_transformers


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
        message = str(error)
        assert field in message, f"{field}={value!r}: the ValueError does not name the field: {message}"
        if isinstance(value, (str, int, float, bool)) or value is None:
            named = repr(value) in message or str(value) in message
            assert named, f"{field}={value!r}: the ValueError does not name the value: {message}"
        assert "supported" in message, f"{field}={value!r}: the ValueError does not say what is supported: {message}"
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


def assert_activations_convert(field: str, outcomes: dict[str, str]) -> None:
    """Every activation transformers names converts, except the two with learned parameters."""
    if field in ("hidden_act", "feat_extract_activation"):
        refused = {value for value, outcome in outcomes.items() if outcome != "converted"}
        assert refused <= {"'prelu'", "'xielu'"}, refused


def assert_covers(reference_fields: set[str], swept: dict, metadata: set[str]) -> None:
    missing = reference_fields - set(swept) - metadata
    assert not missing, f"fields of the reference config that no sweep covers: {sorted(missing)}"


# --------------------------------------------------------------------------------------------------------------------
# wav2vec 2.0
# --------------------------------------------------------------------------------------------------------------------

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
    "tdnn_kernel": "x-vector head only", "tdnn_dilation": "x-vector head only",
    "xvector_output_dim": "x-vector head only",
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
    negatives = sample_negative_indices(
        time_mask, pretraining.config.num_negatives, generator=torch.Generator().manual_seed(0)
    )
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
    assert_activations_convert(field, outcomes)


# --------------------------------------------------------------------------------------------------------------------
# BERT: encoder_from_transformers, decoder_from_transformers, encoder_decoder_from_transformers
# --------------------------------------------------------------------------------------------------------------------

BERT_BASE = dict(
    vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24,
    max_position_embeddings=16, initializer_range=0.3, pad_token_id=0,
)
BERT_VALUES: dict[str, list] = {
    "vocab_size": [40], "hidden_size": [24], "num_hidden_layers": [2], "num_attention_heads": [4],
    "intermediate_size": [20], "hidden_act": ACTIVATIONS, "hidden_dropout_prob": [0.3],
    "attention_probs_dropout_prob": [0.3], "max_position_embeddings": [20], "type_vocab_size": [3],
    "initializer_range": [0.5], "layer_norm_eps": [0.1], "pad_token_id": [5, None], "use_cache": [False],
    "classifier_dropout": [0.3], "is_decoder": [True, False], "add_cross_attention": [True, False],
    "tie_word_embeddings": [False], "chunk_size_feed_forward": [1], "bos_token_id": [1], "eos_token_id": [2],
    # a field of older BertConfigs and config.json files (transformers 5 no longer reads it)
    "position_embedding_type": ["relative_key", "relative_key_query"],
}
BERT_RENAMES = {
    "num_hidden_layers": "num_layers", "num_attention_heads": "num_heads", "hidden_dropout_prob": "dropout",
    "attention_probs_dropout_prob": "attention_dropout",
}
BERT_NO_EFFECT = {
    "use_cache": "a decoder's key/value cache changes speed, not values (ours is asked for per call)",
    "classifier_dropout": "classification heads only",
    "chunk_size_feed_forward": "transformers then computes the same feed-forward slice by slice",
    "bos_token_id": "a BERT module does not read it",
    "eos_token_id": "as bos_token_id (the encoder-decoder's is swept below)",
    "tie_word_embeddings": "the encoder has no LM head (decoders refuse False)",
}


def bert_reference(overrides: dict, decoder: bool) -> Any:
    settings = {**BERT_BASE, "is_decoder": decoder, "add_cross_attention": decoder, **overrides}
    torch.manual_seed(0)
    config = transformers.BertConfig(**settings)
    if decoder:
        return transformers.BertLMHeadModel(config).eval()
    return transformers.BertModel(config, add_pooling_layer=False).eval()


def bert_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    ids = torch.randint(1, 30, (2, 7))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    return ids, mask, (torch.arange(7) >= 4).long().expand_as(ids)


def bert_encoder_compare(reference: Any, ours: Any) -> None:
    ids, mask, token_types = bert_inputs()
    with torch.no_grad():
        expected = reference(ids, attention_mask=mask, token_type_ids=token_types).last_hidden_state
        got = ours.eval()(ids, mask, token_types)
    torch.testing.assert_close(got[mask.bool()], expected[mask.bool()], atol=1e-5, rtol=1e-5)


def bert_decoder_compare(reference: Any, ours: Any) -> None:
    ids, mask, _ = bert_inputs()
    encoded = torch.randn(2, 7, reference.config.hidden_size)
    with torch.no_grad():
        expected = reference(ids[:, :6], encoder_hidden_states=encoded, encoder_attention_mask=mask).logits
        got = ours.eval()(ids[:, :6], encoded, mask).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_bert_sweep_covers_every_reference_field():
    assert_covers(set(transformers.BertConfig().to_dict()), BERT_VALUES, METADATA)


def sweep_bert_encoder_field(field: str, reference: Callable, convert: Callable, compare: Callable,
                             no_effect: dict) -> None:
    """Every value of ``field`` on a BERT encoder: converted and compared, or refused on both sides."""
    outcomes = {
        repr(value): check_value(field, value, reference, convert, compare, lambda ours: ours.config, BERT_RENAMES,
                                 no_effect)
        for value in BERT_VALUES[field]
        if not (field in ("is_decoder", "add_cross_attention") and value is False)  # an encoder's own setting
    }
    if field == "add_cross_attention":  # transformers refuses cross-attention in a model that is not a decoder
        assert outcomes == {"True": "refused by reference"}
        return
    assert any(o != "refused by reference" for o in outcomes.values()), f"the reference refused every value: {outcomes}"
    assert_activations_convert(field, outcomes)


@pytest.mark.parametrize("field", sorted(BERT_VALUES))
def test_bert_encoder_converter_honours_or_refuses(field):
    sweep_bert_encoder_field(field, lambda o: bert_reference(o, decoder=False), encoder_from_transformers,
                             bert_encoder_compare, BERT_NO_EFFECT)


@pytest.mark.parametrize("field", sorted(BERT_VALUES))
def test_bert_decoder_converter_honours_or_refuses(field):
    no_effect = {k: v for k, v in BERT_NO_EFFECT.items() if k != "tie_word_embeddings"}
    outcomes = {
        repr(value): check_value(
            field, value, lambda o: bert_reference(o, decoder=True), decoder_from_transformers, bert_decoder_compare,
            lambda ours: ours.config, BERT_RENAMES, no_effect,
        )
        for value in BERT_VALUES[field]
        if not (field in ("is_decoder", "add_cross_attention") and value is True)  # a decoder's own setting
    }
    if field == "is_decoder":  # as above: with add_cross_attention=True transformers refuses is_decoder=False
        assert outcomes == {"False": "refused by reference"}
        return
    assert any(o != "refused by reference" for o in outcomes.values()), f"the reference refused every value: {outcomes}"
    assert_activations_convert(field, outcomes)


def test_bert_converters_refuse_a_model_to_load_into_that_computes_differently():
    reference = bert_reference({}, decoder=False)
    target = Encoder(dataclasses.replace(config_from_bert(reference.config), hidden_act="relu"))
    with pytest.raises(ValueError, match="hidden_act"):
        encoder_from_transformers(reference, target)


ENCODER_DECODER_VALUES: dict[str, list] = {
    "decoder_start_token_id": [4, None], "pad_token_id": [1, None], "eos_token_id": [5, None],
    "chunk_size_feed_forward": [1],
    # the sub-configs' fields are swept one by one above; here what matters is how the two fit together
    "encoder": [{"hidden_size": 24}, {"hidden_act": "relu", "num_hidden_layers": 2}],
    "decoder": [{"hidden_size": 24}, {"hidden_act": "gelu_new", "layer_norm_eps": 0.1}],
}
ENCODER_DECODER_NO_EFFECT = {
    "chunk_size_feed_forward": "the encoder-decoder wrapper does not read it (its BERTs read their own)",
    "encoder": "the encoder config's fields are mapped by config_from_bert and swept above",
    "decoder": "as encoder",
}


def encoder_decoder_reference(overrides: dict) -> Any:
    overrides = dict(overrides)
    encoder = bert_reference(overrides.pop("encoder", {}), decoder=False)
    decoder = bert_reference({"vocab_size": 35, **overrides.pop("decoder", {})}, decoder=True)
    model = transformers.EncoderDecoderModel(encoder=encoder, decoder=decoder).eval()
    settings = {"decoder_start_token_id": 2, "eos_token_id": 3, "pad_token_id": 0, **overrides}
    for name, value in settings.items():
        setattr(model.config, name, value)
    return model


def encoder_decoder_compare(reference: Any, ours: Any) -> None:
    ids, mask, _ = bert_inputs()
    labels = torch.randint(4, 35, (2, 5))
    labels[1, 3:] = -100
    decoder_inputs = torch.randint(4, 35, (2, 5))
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_inputs).logits
        got = ours.eval()(ids, mask, decoder_input_ids=decoder_inputs).logits
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        if reference.config.pad_token_id is not None:  # transformers needs it to shift the labels
            expected = reference(input_ids=ids, attention_mask=mask, labels=labels)
            got = ours(ids, mask, labels=labels)
            torch.testing.assert_close(got.logits, expected.logits, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(got.loss, expected.loss, atol=1e-5, rtol=1e-5)


def test_encoder_decoder_sweep_covers_every_reference_field():
    bert = transformers.BertConfig()
    config = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(bert, bert)
    assert_covers(set(config.to_dict()), ENCODER_DECODER_VALUES, METADATA)


@pytest.mark.parametrize("field", sorted(ENCODER_DECODER_VALUES))
def test_encoder_decoder_converter_honours_or_refuses(field):
    outcomes = {}
    for value in ENCODER_DECODER_VALUES[field]:
        if field == "pad_token_id" and value is None:  # transformers has no pad then; ours takes the decoder's (0)
            reference = encoder_decoder_reference({field: value})
            ours = encoder_decoder_from_transformers(reference)
            assert ours.pad_token_id == reference.decoder.config.pad_token_id
            encoder_decoder_compare(reference, ours)
            outcomes[repr(value)] = "converted (decoder's pad_token_id)"
            continue
        outcomes[repr(value)] = check_value(
            field, value, encoder_decoder_reference, encoder_decoder_from_transformers, encoder_decoder_compare,
            lambda ours: ours, {}, ENCODER_DECODER_NO_EFFECT,  # our model carries the three token ids itself
        )
    assert any(o != "refused by reference" for o in outcomes.values()), f"the reference refused every value: {outcomes}"
    assert_activations_convert(field, outcomes)


# --------------------------------------------------------------------------------------------------------------------
# load_bert_checkpoint (warm starting): a config.json and model.safetensors written by transformers
# --------------------------------------------------------------------------------------------------------------------
def checkpoint_reference(overrides: dict, directory) -> Any:
    settings = {**BERT_BASE, **overrides}
    torch.manual_seed(0)
    model = transformers.BertForMaskedLM(transformers.BertConfig(**settings)).eval()
    target = directory / f"checkpoint_{len(list(directory.iterdir()))}"
    model.save_pretrained(target)
    return model, target


def checkpoint_convert(reference: tuple[Any, Any]) -> Any:
    checkpoint = load_bert_checkpoint(reference[1])
    encoder = Encoder(checkpoint.config)
    _copy_weights(encoder, checkpoint.tensors, _bert_names(checkpoint.config.num_layers, "", decoder=False), "test")
    return encoder


def checkpoint_compare(reference: tuple[Any, Any], ours: Any) -> None:
    bert_encoder_compare(reference[0].bert, ours)


@pytest.mark.parametrize("field", sorted(BERT_VALUES))
def test_load_bert_checkpoint_honours_or_refuses(field, tmp_path):
    no_effect = {k: v for k, v in BERT_NO_EFFECT.items() if k != "tie_word_embeddings"}
    sweep_bert_encoder_field(field, lambda o: checkpoint_reference(o, tmp_path), checkpoint_convert,
                             checkpoint_compare, no_effect)


# --------------------------------------------------------------------------------------------------------------------
# Reformer: reformer_from_transformers
# --------------------------------------------------------------------------------------------------------------------

REFORMER_BASE = dict(
    vocab_size=30, hidden_size=16, num_attention_heads=2, attention_head_size=8, feed_forward_size=24,
    attn_layers=["local", "lsh"], is_decoder=True, local_attn_chunk_length=8, lsh_attn_chunk_length=8, num_buckets=4,
    num_hashes=1, hash_seed=7, axial_pos_shape=[4, 8], axial_pos_embds_dim=[6, 10], max_position_embeddings=32,
    hidden_dropout_prob=0.0, local_attention_probs_dropout_prob=0.0, lsh_attention_probs_dropout_prob=0.0,
)
REFORMER_VALUES: dict[str, list] = {
    "vocab_size": [40], "hidden_size": [24], "num_attention_heads": [3], "attention_head_size": [4],
    "attn_layers": [["local"], ["lsh"], ["lsh", "local", "lsh"]], "feed_forward_size": [20],
    "hidden_act": ACTIVATIONS, "is_decoder": [False], "local_attn_chunk_length": [4, 16],
    "local_num_chunks_before": [0, 2], "local_num_chunks_after": [1], "lsh_attn_chunk_length": [4, 16],
    "lsh_num_chunks_before": [0, 2], "lsh_num_chunks_after": [1], "num_buckets": [2, [2, 2], None],
    "num_hashes": [2, 3], "hash_seed": [3, None], "axial_pos_embds": [False], "axial_pos_shape": [[2, 16]],
    "axial_pos_embds_dim": [[8, 8]], "axial_norm_std": [0.5], "max_position_embeddings": [64],
    "chunk_size_feed_forward": [4], "chunk_size_lm_head": [4], "hidden_dropout_prob": [0.3],
    "local_attention_probs_dropout_prob": [0.3], "lsh_attention_probs_dropout_prob": [0.3], "layer_norm_eps": [0.1],
    "pad_token_id": [5], "tie_word_embeddings": [True], "use_cache": [False], "classifier_dropout": [0.3],
    "bos_token_id": [1], "eos_token_id": [3], "initializer_range": [0.5],
}
REFORMER_NO_EFFECT = {
    "axial_norm_std": "initialisation only", "initializer_range": "initialisation only",
    "chunk_size_lm_head": "transformers then computes the same logits slice by slice",
    "use_cache": "the cache of past buckets speeds up generation; it does not change the logits",
    "classifier_dropout": "classification heads only", "bos_token_id": "not read by the language model",
    "eos_token_id": "as bos_token_id",
    "tie_word_embeddings": "transformers cannot tie either: the LM head reads both streams (2 x hidden_size)",
}
REFORMER_METADATA = METADATA | {"num_hidden_layers"}  # derived: transformers sets it to len(attn_layers)


def reformer_reference(overrides: dict) -> Any:
    settings = {**REFORMER_BASE, **overrides}
    if "hidden_size" in overrides:  # the axial dimensions must add up to the width
        settings["axial_pos_embds_dim"] = [overrides["hidden_size"] // 2] * 2
    if "max_position_embeddings" in overrides:
        settings["axial_pos_shape"] = [8, 8]
    torch.manual_seed(0)
    model = transformers.ReformerModelWithLMHead(transformers.ReformerConfig(**settings)).eval()
    with torch.no_grad():  # non-trivial biases and norms, as in tests/test_reformer.py
        for name, parameter in model.named_parameters():
            if "layer_norm" in name or name.endswith("bias"):
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def reformer_compare(reference: Any, ours: Any) -> None:
    ids = torch.randint(0, 30, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(ids), reference(ids).logits, atol=1e-5, rtol=1e-5)


def test_reformer_sweep_covers_every_reference_field():
    assert_covers(set(transformers.ReformerConfig().to_dict()), REFORMER_VALUES, REFORMER_METADATA)


@pytest.mark.parametrize("field", sorted(REFORMER_VALUES))
def test_reformer_converter_honours_or_refuses(field):
    outcomes = {
        repr(value): check_value(
            field, value, reformer_reference, reformer_from_transformers, reformer_compare,
            lambda ours: ours.config, {}, REFORMER_NO_EFFECT,
        )
        for value in REFORMER_VALUES[field]
    }
    if field in ("is_decoder", "local_num_chunks_after", "lsh_num_chunks_after"):
        # transformers' language model must be causal; our converter takes nothing else (and says so, naming is_decoder)
        assert set(outcomes.values()) == {"refused by reference"}
        return
    assert any(o != "refused by reference" for o in outcomes.values()), f"the reference refused every value: {outcomes}"
    assert_activations_convert(field, outcomes)


def test_reformer_converter_refuses_other_models_naming_the_field():
    with pytest.raises(ValueError, match="ReformerModelWithLMHead"):
        reformer_from_transformers(transformers.ReformerModel(transformers.ReformerConfig(**REFORMER_BASE)))
    reference = reformer_reference({})
    reference.config.is_decoder = False  # transformers checks it only when building the model
    with pytest.raises(ValueError, match="is_decoder=False"):
        reformer_from_transformers(reference)


# --------------------------------------------------------------------------------------------------------------------
# our own configs, built directly: an activation or option we do not implement is refused at construction
# --------------------------------------------------------------------------------------------------------------------
def test_our_configs_refuse_what_they_do_not_implement():
    from annotated.encoder_decoder import TransformerConfig
    from annotated.reformer import ReformerConfig
    from annotated.wav2vec2 import Wav2Vec2Config

    for make, field in [
        (lambda v: TransformerConfig(vocab_size=10, hidden_act=v), "hidden_act"),
        (lambda v: ReformerConfig(hidden_act=v), "hidden_act"),
        (lambda v: Wav2Vec2Config(hidden_act=v), "hidden_act"),
        (lambda v: Wav2Vec2Config(feat_extract_activation=v), "feat_extract_activation"),
        (lambda v: Wav2Vec2Config(feat_extract_norm=v), "feat_extract_norm"),
        (lambda v: Wav2Vec2Config(ctc_loss_reduction=v), "ctc_loss_reduction"),
    ]:
        with pytest.raises(ValueError, match=field):
            make("swiglu")
    assert TransformerConfig(vocab_size=10, hidden_act="gelu_new").hidden_act == "gelu_new"
