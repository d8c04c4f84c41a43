"""Tests of annotated.encoder_decoder: parity with transformers' BERT encoder, decoder, EncoderDecoderModel and
generate on the same weights, the decoding methods' defining properties, and the toy corpus."""

from __future__ import annotations

import warnings

import pytest
import torch

from annotated.encoder_decoder import (
    Encoder,
    EncoderDecoderModel,
    ProbabilityTree,
    TransformerConfig,
    Vocabulary,
    beam_search,
    decoder_from_transformers,
    encoder_decoder_from_transformers,
    encoder_from_transformers,
    greedy_search,
    make_toy_corpus,
    random_sentence,
    sample,
    shift_tokens_right,
    top_k_filter,
    top_p_filter,
)


transformers = pytest.importorskip("transformers")

START, EOS, PAD = 2, 3, 0


def bert_config(vocab_size: int, decoder: bool = False, init: float = 0.2) -> "transformers.BertConfig":
    return transformers.BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=40, initializer_range=init, is_decoder=decoder, add_cross_attention=decoder,
        pad_token_id=PAD,
    )


@pytest.fixture(scope="module")
def hf_pair():
    """A random-init transformers EncoderDecoderModel (BERT encoder, BERT decoder) and our converted copy."""
    torch.manual_seed(0)
    hf = transformers.EncoderDecoderModel(
        encoder=transformers.BertModel(bert_config(50)), decoder=transformers.BertLMHeadModel(bert_config(60, decoder=True))
    ).eval()
    for config in (hf.config, hf.generation_config):
        config.decoder_start_token_id, config.eos_token_id, config.pad_token_id = START, EOS, PAD
    ours = encoder_decoder_from_transformers(hf).eval()
    return hf, ours


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(1)
    ids = torch.randint(4, 50, (4, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[3, 4:] = 0
    return ids.masked_fill(mask == 0, PAD), mask


def test_encoder_matches_bert_model(batch):
    torch.manual_seed(0)
    hf = transformers.BertModel(bert_config(50)).eval()
    ours = encoder_from_transformers(hf).eval()
    ids, mask = batch
    token_types = (torch.arange(ids.shape[1]) >= 4).long().expand_as(ids)
    with torch.no_grad():
        expected = hf(ids, attention_mask=mask, token_type_ids=token_types).last_hidden_state
        got = ours(ids, mask, token_types)
    assert (expected - got)[mask.bool()].abs().max() < 1e-5


def test_decoder_matches_bert_lm_head_model(batch):
    torch.manual_seed(0)
    hf = transformers.BertLMHeadModel(bert_config(60, decoder=True)).eval()
    ours = decoder_from_transformers(hf).eval()
    ids, mask = batch
    encoded = torch.randn(4, 9, 32)
    target = torch.randint(4, 60, (4, 7))
    with torch.no_grad():
        expected = hf(target, encoder_hidden_states=encoded, encoder_attention_mask=mask).logits
        got = ours(target, encoded, mask).logits
    assert (expected - got).abs().max() < 1e-5


def test_encoder_decoder_logits_and_loss_match(hf_pair, batch):
    hf, ours = hf_pair
    ids, mask = batch
    labels = torch.randint(4, 60, (4, 6))
    labels[0, 4:] = -100
    labels[2, 2:] = -100
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = hf(input_ids=ids, attention_mask=mask, labels=labels)
        got = ours(ids, mask, labels=labels)
    assert (expected.encoder_last_hidden_state - got.encoder_hidden_states)[mask.bool()].abs().max() < 1e-5
    assert (expected.logits - got.logits).abs().max() < 1e-5
    assert abs(expected.loss.item() - got.loss.item()) < 1e-5


def test_shift_tokens_right_matches_transformers():
    from transformers.models.encoder_decoder.modeling_encoder_decoder import shift_tokens_right as hf_shift

    labels = torch.tensor([[5, 6, 3, -100], [7, 8, 9, 3]])
    assert torch.equal(shift_tokens_right(labels, PAD, START), hf_shift(labels, PAD, START))


def until_eos(rows: torch.Tensor) -> list[list[int]]:
    out = []
    for row in rows.tolist():
        out.append(row[: row.index(EOS) + 1] if EOS in row else row)
    return out


def test_greedy_matches_generate(hf_pair, batch):
    hf, ours = hf_pair
    ids, mask = batch
    expected = hf.generate(ids, attention_mask=mask, max_length=12, do_sample=False, num_beams=1)
    got = greedy_search(ours, ids, mask, max_length=12)
    assert until_eos(expected) == until_eos(got)
    assert len({tuple(r) for r in until_eos(got)}) > 1, "the test model should depend on its input"


@pytest.mark.parametrize(
    "settings",
    [
        dict(num_beams=3, early_stopping=True),
        dict(num_beams=4, early_stopping=False, length_penalty=0.5),
        dict(num_beams=3, early_stopping="never", length_penalty=1.5, num_return_sequences=2),
        dict(num_beams=3, no_repeat_ngram_size=2, min_length=6),
    ],
    ids=["early", "not-early", "never-return2", "ngram-minlen"],
)
def test_beam_search_matches_generate(hf_pair, batch, settings):
    hf, ours = hf_pair
    ids, mask = batch
    expected = hf.generate(ids, attention_mask=mask, max_length=12, do_sample=False, **settings)
    got = beam_search(ours, ids, mask, max_length=12, **settings).sequences
    assert until_eos(expected) == until_eos(got)


def test_cache_changes_nothing(hf_pair, batch):
    _, ours = hf_pair
    ids, mask = batch
    assert torch.equal(greedy_search(ours, ids, mask, max_length=12), greedy_search(ours, ids, mask, max_length=12, use_cache=False))
    with_cache = beam_search(ours, ids, mask, num_beams=3, max_length=12)
    without = beam_search(ours, ids, mask, num_beams=3, max_length=12, use_cache=False)
    assert torch.equal(with_cache.sequences, without.sequences)
    assert torch.allclose(with_cache.scores, without.scores, atol=1e-5)


def test_one_beam_and_top_k_one_are_greedy(hf_pair, batch):
    _, ours = hf_pair
    ids, mask = batch
    greedy = until_eos(greedy_search(ours, ids, mask, max_length=12))
    assert until_eos(beam_search(ours, ids, mask, num_beams=1, max_length=12).sequences) == greedy
    assert until_eos(sample(ours, ids, mask, top_k=1, max_length=12, generator=torch.Generator().manual_seed(0))) == greedy


def test_sampling_is_seeded_and_varies(hf_pair, batch):
    _, ours = hf_pair
    ids, mask = batch
    draw = lambda seed: sample(ours, ids, mask, temperature=2.0, max_length=12, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(draw(0), draw(0))
    assert not torch.equal(draw(0), draw(1))


def test_top_p_keeps_the_smallest_set_above_p():
    logits = torch.tensor([[0.1, 0.5, 0.15, 0.25]]).log()
    assert top_p_filter(logits, 0.5).isfinite().tolist() == [[False, True, False, False]]
    assert top_p_filter(logits, 0.6).isfinite().tolist() == [[False, True, False, True]]
    assert top_p_filter(logits, 0.9).isfinite().tolist() == [[False, True, True, True]]
    assert top_p_filter(logits, 1.0).isfinite().all()
    assert top_k_filter(logits, 2).isfinite().tolist() == [[False, True, False, True]]
    with pytest.raises(ValueError, match="top_p"):
        top_p_filter(logits, 0.0)


def test_toy_tree_greedy_and_beam():
    tree = ProbabilityTree({
        ("The",): {"nice": 0.5, "dog": 0.4, "car": 0.1},
        ("The", "nice"): {"woman": 0.4, "house": 0.3, "guy": 0.3},
        ("The", "dog"): {"has": 0.9, "runs": 0.05, "and": 0.05},
        ("The", "car"): {"is": 0.3, "drives": 0.5, "turns": 0.2},
    }, start="The")
    no_input = torch.zeros(1, 1, dtype=torch.long)
    assert tree.words(greedy_search(tree, no_input, max_length=5)[0]) == ["The", "nice", "woman"]
    assert tree.words(beam_search(tree, no_input, num_beams=2, max_length=5).sequences[0]) == ["The", "dog", "has"]
    with pytest.raises(ValueError, match="sum to 1"):
        ProbabilityTree({("a",): {"b": 0.5}}, start="a")


def test_converter_errors_name_the_tensor():
    hf = transformers.BertModel(bert_config(50)).eval()
    wrong_vocab = Encoder(TransformerConfig(vocab_size=51, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64, max_position_embeddings=40))
    with pytest.raises(ValueError, match="embeddings.word_embeddings.weight"):
        encoder_from_transformers(hf, wrong_vocab)
    too_deep = Encoder(TransformerConfig(vocab_size=50, hidden_size=32, num_layers=3, num_heads=4, intermediate_size=64, max_position_embeddings=40))
    with pytest.raises(ValueError, match="encoder.layer.2"):
        encoder_from_transformers(hf, too_deep)
    prelu = transformers.BertModel(transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64, hidden_act="prelu"))
    with pytest.raises(ValueError, match="hidden_act='prelu'"):  # a learned activation (relu and the GELUs convert)
        encoder_from_transformers(prelu)
    with pytest.raises(ValueError, match="is_decoder"):
        decoder_from_transformers(transformers.BertLMHeadModel(bert_config(60)))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="divisible"):
        TransformerConfig(vocab_size=10, hidden_size=30, num_heads=4)
    model = EncoderDecoderModel(TransformerConfig(10, 16, 1, 2, 32, 8), TransformerConfig(12, 16, 1, 2, 32, 8), START, EOS)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model.encode(torch.ones(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="max_length"):
        greedy_search(model, torch.ones(1, 3, dtype=torch.long), max_length=1)
    with pytest.raises(ValueError, match="decoder_input_ids or labels"):
        model(torch.ones(1, 3, dtype=torch.long))


def test_toy_corpus_holds_out_combinations_and_has_grammar():
    import random

    corpus = make_toy_corpus(num_train=2000, num_test=100, seed=0)
    seen = {(s.verb, s.noun) for s in corpus.train}
    assert all((s.verb, s.noun) not in seen for s in corpus.test)
    assert ("buy", "car") in corpus.held_out_pairs
    rng = random.Random(1)
    sentences = [random_sentence(rng, "buy", "car") for _ in range(5000)]
    example = next(s for s in sentences if s.english == ["I", "want", "to", "buy", "a", "car"])
    assert example.german == ["ich", "will", "ein", "Auto", "kaufen"]
    vocab = Vocabulary([s.german for s in corpus.train])
    ids, mask = vocab.batch([["ich", "will"], ["ich"]], pad_value=-100)
    assert ids.tolist()[1][-1] == -100 and mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert vocab.decode(vocab.encode(["ich", "will"], start=True)) == ["ich", "will"]


def test_training_reduces_the_loss():
    torch.manual_seed(0)
    model = EncoderDecoderModel(TransformerConfig(20, 32, 1, 4, 64, 16, dropout=0.0, attention_dropout=0.0),
                                TransformerConfig(20, 32, 1, 4, 64, 16, dropout=0.0, attention_dropout=0.0), START, EOS)
    ids = torch.randint(4, 20, (8, 6))
    labels = torch.cat([ids.flip(1), torch.full((8, 1), EOS)], 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = model(ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
