"""annotated.wav2vec2 against transformers' Wav2Vec2ForCTC / Wav2Vec2ForPreTraining, plus decoding, WER and data checks."""

from __future__ import annotations

import itertools

import jiwer
import numpy as np
import pytest
import torch
import transformers

from annotated.wav2vec2 import (
    CharTokenizer,
    NGramLM,
    Utterance,
    Wav2Vec2ForCTC,
    chunked_logits,
    compute_time_mask,
    ctc_greedy_decode,
    ctc_prefix_beam_search,
    embedded_config,
    feature_lengths,
    normalize_audio,
    pad_batch,
    pyctcdecode_labels,
    sample_negative_indices,
    synthesize_speech,
    wav2vec2_from_transformers,
    word_error_rate,
)


VARIANTS = [("group", False, False), ("layer", True, True), ("layer", False, True)]


def hf_config(norm: str, stable: bool, bias: bool, **overrides) -> transformers.Wav2Vec2Config:
    settings = dict(
        vocab_size=12, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        conv_dim=(16, 24, 16), conv_stride=(5, 2, 2), conv_kernel=(10, 3, 3), conv_bias=bias,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, feat_extract_norm=norm,
        do_stable_layer_norm=stable, num_codevectors_per_group=7, num_codevector_groups=2, codevector_dim=12,
        proj_codevector_dim=10, num_negatives=5, mask_time_prob=0.3, mask_time_length=2,
    )
    settings.update(overrides)
    return transformers.Wav2Vec2Config(**settings)


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    values = torch.randn(3, 4000)
    mask = torch.ones(3, 4000, dtype=torch.long)
    mask[1, 3000:] = 0
    mask[2, 2100:] = 0
    return values, mask


@pytest.mark.parametrize("norm,stable,bias", VARIANTS)
def test_ctc_model_matches_transformers(norm, stable, bias):
    torch.manual_seed(0)
    reference = transformers.Wav2Vec2ForCTC(hf_config(norm, stable, bias)).eval()
    ours = wav2vec2_from_transformers(reference).eval()
    values, mask = batch()
    labels = torch.randint(1, 12, (3, 6))
    labels[2, 4:] = -100
    with torch.no_grad():
        theirs = reference(values, attention_mask=mask, labels=labels)
        theirs_hidden = reference.wav2vec2(values, attention_mask=mask).last_hidden_state
        mine = ours(values, mask, labels)
        hidden = ours.wav2vec2(values, mask).last_hidden_state
    for row, length in enumerate(mine.frame_lengths.tolist()):
        torch.testing.assert_close(mine.logits[row, :length], theirs.logits[row, :length], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(hidden[row, :length], theirs_hidden[row, :length], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mine.loss, theirs.loss, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm,stable,bias", VARIANTS)
def test_pretraining_model_matches_transformers(norm, stable, bias):
    torch.manual_seed(0)
    reference = transformers.Wav2Vec2ForPreTraining(hf_config(norm, stable, bias)).eval()
    ours = wav2vec2_from_transformers(reference).eval()
    values, _ = batch()
    frames = int(feature_lengths(ours.config, torch.tensor(4000)))
    mask = compute_time_mask(3, frames, 0.3, 2, min_masks=2, generator=torch.Generator().manual_seed(0))
    negatives = sample_negative_indices(mask, 5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        theirs = reference(values, mask_time_indices=mask, sampled_negative_indices=negatives)
        mine = ours(values, mask_time_indices=mask, sampled_negative_indices=negatives)
    for name in ("loss", "contrastive_loss", "diversity_loss", "codevector_perplexity"):
        torch.testing.assert_close(getattr(mine, name), getattr(theirs, name), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mine.projected_states, theirs.projected_states, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mine.projected_quantized_states, theirs.projected_quantized_states, atol=1e-5, rtol=1e-5)


def test_quantizer_codevectors_match_for_the_same_gumbel_noise():
    torch.manual_seed(0)
    reference = transformers.Wav2Vec2ForPreTraining(hf_config("group", False, False, layerdrop=0.0)).eval()
    ours = wav2vec2_from_transformers(reference).eval()
    features = torch.randn(2, 9, 16)
    with torch.no_grad():
        hard_theirs, ppl_theirs = reference.quantizer(features)
        hard_ours, ppl_ours = ours.quantizer(features)
        torch.testing.assert_close(hard_ours, hard_theirs, atol=1e-6, rtol=0)
        torch.testing.assert_close(ppl_ours, ppl_theirs)
        reference.quantizer.train()
        ours.quantizer.train()
        torch.manual_seed(5)
        soft_theirs, _ = reference.quantizer(features)
        torch.manual_seed(5)
        soft_ours, _ = ours.quantizer(features)
    torch.testing.assert_close(soft_ours, soft_theirs, atol=1e-6, rtol=0)  # same noise, same hard sample
    assert not torch.equal(soft_ours, hard_ours)  # and the noise did change the choice somewhere


def test_converter_rejects_other_models():
    with pytest.raises(ValueError, match="Wav2Vec2ForCTC or Wav2Vec2ForPreTraining"):
        wav2vec2_from_transformers(torch.nn.Linear(2, 2))


def test_greedy_decoding_on_hand_made_logits():
    # frames: a a _ b b _ b | c ; blank = 0, a=1, b=2, c=3, |=4
    path = torch.tensor([1, 1, 0, 2, 2, 0, 2, 4, 3])
    logits = torch.nn.functional.one_hot(path, 5).float() * 5
    assert ctc_greedy_decode(logits) == [[1, 2, 2, 4, 3]]
    assert ctc_greedy_decode(logits[None], lengths=torch.tensor([4])) == [[1, 2]]


def test_word_error_rate_on_hand_made_pairs():
    assert word_error_rate("a b c d", "a b c d") == 0
    assert word_error_rate("a b c d", "a x c") == 0.5  # one substitution, one deletion
    assert word_error_rate(["a b", "c"], ["a b e", "d"]) == pytest.approx(2 / 3)
    references, hypotheses = ["the cat sat on the mat", "hello world"], ["the cat sit on mat", "hello big world"]
    assert word_error_rate(references, hypotheses) == pytest.approx(jiwer.wer(references, hypotheses))


def test_tokenizer_round_trip_and_out_of_vocabulary_error():
    tokenizer = CharTokenizer.from_texts(["the cat", "a dog"])
    assert tokenizer.vocab[:3] == ["[PAD]", "[UNK]", "|"]
    assert tokenizer.decode(tokenizer.encode("The  dog")) == "the dog"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.encode("the cow")
    assert tokenizer.encode("the cow", unknown="unk").count(tokenizer.unk_id) == 1  # only "w" is new


def test_audio_errors_are_clear():
    with pytest.raises(ValueError, match="16000 Hz, got 8000 Hz"):
        normalize_audio(np.zeros(100), sampling_rate=8000)
    with pytest.raises(ValueError, match="empty clip"):
        pad_batch([np.zeros(0)], sampling_rate=16_000)
    model = wav2vec2_from_transformers(transformers.Wav2Vec2ForCTC(hf_config("group", False, False)))
    with pytest.raises(ValueError, match="at least"):
        model(torch.randn(1, 20))


def test_padding_does_not_change_real_frames():
    torch.manual_seed(0)
    model = wav2vec2_from_transformers(transformers.Wav2Vec2ForCTC(hf_config("layer", True, True))).eval()
    long, short = torch.randn(4000).numpy(), torch.randn(2500).numpy()
    values, mask = pad_batch([long, short], 16_000)
    alone, _ = pad_batch([short], 16_000)
    with torch.no_grad():
        batched, single = model(values, mask), model(alone)
    frames = int(single.frame_lengths[0])
    torch.testing.assert_close(batched.logits[1, :frames], single.logits[0], atol=1e-5, rtol=1e-5)


def test_chunked_inference_lines_up_with_full_inference():
    """Windows start on frame boundaries: a model whose outputs depend only on nearby audio gives the same logits."""
    torch.manual_seed(0)
    local = Wav2Vec2ForCTC(embedded_config(12, feat_extract_norm="layer", num_hidden_layers=0)).eval()
    clip = torch.randn(16_000 * 7 + 123)
    with torch.no_grad():
        full = local(normalize_audio(clip, 16_000)[None]).logits[0]
    # strides of at least 8 frames: the reach of the 16-frame position convolution
    for chunk, stride in [(2.0, 0.5), (3.0, 0.2), (1.0, 0.2)]:
        chunked = chunked_logits(local, clip, 16_000, chunk_seconds=chunk, stride_seconds=stride)
        assert chunked.shape == full.shape
        torch.testing.assert_close(chunked, full, atol=1e-5, rtol=1e-5)
    # any model: one window covering the clip is full inference
    torch.manual_seed(1)
    global_model = Wav2Vec2ForCTC(embedded_config(12)).eval()
    with torch.no_grad():
        expected = global_model(normalize_audio(clip, 16_000)[None]).logits[0]
    torch.testing.assert_close(chunked_logits(global_model, clip, 16_000, chunk_seconds=8.0, stride_seconds=0.5), expected)
    with pytest.raises(ValueError, match="stride_seconds"):
        chunked_logits(local, clip, 16_000, chunk_seconds=2.0, stride_seconds=0.0)
    with pytest.raises(ValueError, match="chunk_seconds"):
        chunked_logits(local, clip, 16_000, chunk_seconds=1.0, stride_seconds=0.5)


def test_language_model_is_normalised_and_beam_search_agrees_with_greedy_on_peaked_outputs():
    lm = NGramLM(["the cat sees a dog", "a dog sees the cat", "the dog likes a cat"], order=3)
    for history in ([], ["the"], ["the", "cat"], ["zebra", "sees"]):
        total = sum(lm.prob(w, history) for w in lm.vocab) + lm.prob("<never seen>", history)
        assert total == pytest.approx(1.0, abs=1e-9)
    tokenizer = CharTokenizer.from_texts(["the cat sees a dog"])
    ids = tokenizer.encode("a cat")
    log_probs = torch.full((2 * len(ids), len(tokenizer)), -6.0)
    for i, token in enumerate(ids):
        log_probs[2 * i, token] = 0
        log_probs[2 * i + 1, 0] = 0
    log_probs = log_probs.log_softmax(-1)
    greedy = tokenizer.decode(ctc_greedy_decode(log_probs)[0])
    assert ctc_prefix_beam_search(log_probs, tokenizer) == greedy == "a cat"
    assert ctc_prefix_beam_search(log_probs, tokenizer, lm) == "a cat"


def test_language_model_fixes_a_misspelt_word():
    lm = NGramLM(["sees"] * 3 + ["cat sees"] * 3, order=2)
    tokenizer = CharTokenizer.from_texts(["the cat sees a dog"])
    # acoustics slightly prefer "ses" over "sees": one frame of 'e' is ambiguous between e and blank
    text = "sees"
    frames = []
    for i, char in enumerate(text):
        row = torch.full((len(tokenizer),), -8.0)
        row[tokenizer.ids[char]] = 0.0
        if i == 2:
            row[tokenizer.ids[char]], row[0] = -0.8, -0.6
        frames.append(row)
        frames.append(torch.where(torch.arange(len(tokenizer)) == 0, 0.0, -8.0))
    log_probs = torch.stack(frames).log_softmax(-1)
    assert tokenizer.decode(ctc_greedy_decode(log_probs)[0]) == "ses"
    assert ctc_prefix_beam_search(log_probs, tokenizer, lm, alpha=1.0, beta=0.0) == "sees"


def test_time_mask_and_negatives():
    mask = compute_time_mask(4, 50, 0.5, 4, frame_lengths=torch.tensor([50, 40, 30, 20]),
                             generator=torch.Generator().manual_seed(0))
    assert not mask[1, 40:].any() and not mask[3, 20:].any() and mask.any(-1).all()
    negatives = sample_negative_indices(mask, 7, generator=torch.Generator().manual_seed(0))
    rows, cols = mask.nonzero(as_tuple=True)
    picked = negatives[rows, cols]
    assert (picked != (rows * 50 + cols)[:, None]).all()
    assert mask.flatten()[picked.flatten()].all() and (picked // 50 == rows[:, None]).all()


def test_synthesis_is_deterministic_across_fresh_processes(tmp_path):
    pytest.importorskip("espeakng_loader")
    plan = [Utterance("red cat sees a dog", "en-us+f2", 180, 50), Utterance("old man helps my fish", "en+m3", 170, 40)]
    first = synthesize_speech(plan, cache_dir=tmp_path / "one")
    second = synthesize_speech(plan, cache_dir=tmp_path / "two")
    assert len(first) == 2 and all(0.5 < len(a) / 16_000 < 3 for a in first.audio)
    assert all(np.array_equal(a, b) for a, b in zip(first.audio, second.audio))


def test_pretraining_script_runs_at_ci_size(tmp_path):
    """The chapter's longer experiment, at a tiny size: it must run end to end and write its JSON and figure."""
    pytest.importorskip("espeakng_loader")
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "wav2vec2_pretraining.py"
    spec = importlib.util.spec_from_file_location("wav2vec2_pretraining", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    results = script.main(["--ci", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")])
    stored = json.loads((tmp_path / "out" / "pretrain_vs_scratch_ci.json").read_text())
    assert (tmp_path / "out" / "pretrain_vs_scratch_ci.png").is_file()
    assert len(stored["pretraining_losses"]) == script.CI["pre_steps"]
    assert sorted(stored["pretraining"], key=int) == [str(s) for s in script.CI["eval_at"]]
    starts = ["scratch"] + [str(s) for s in script.CI["eval_at"]]
    assert len(stored["runs"]) == len(starts) * len(script.CI["ctc_lrs"]) * len(script.CI["seeds"])
    for run in stored["runs"].values():
        assert run["start"] in starts and len(run["ctc_losses"]) == script.CI["ctc_steps"]
        assert 0 <= run["greedy_wer"] and 0 <= run["lm_wer"]
    assert {row["start"] for row in stored["summary"]} == set(starts)
    # resuming: a second call finds every run in the results file and trains nothing again
    again = script.main(["--ci", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")])
    assert again["runs"] == results["runs"] and again["pretraining_losses"] == results["pretraining_losses"]


LM_SENTENCES = ["the cat sees a dog", "a dog sees the cat", "the dog likes a cat", "my cat likes the red dog",
                "a small bird sees my dog", "the bird likes a red cat"]


@pytest.mark.parametrize("order", [2, 3, 4])
def test_kenlm_reads_our_arpa_file_with_our_probabilities(tmp_path, order):
    import kenlm
    lm = NGramLM(LM_SENTENCES, order=order)
    model = kenlm.Model(str(lm.to_arpa(tmp_path / "lm.arpa")))
    assert model.order == order
    # seen sentences, unseen orders of seen words, and a word the LM never saw (KenLM's <unk>)
    for sentence in LM_SENTENCES + ["dog the likes small", "the zebra sees a cat", "cat"]:
        ours = lm.log_prob(sentence.split())
        theirs = model.score(sentence, bos=True, eos=True) * np.log(10)
        assert theirs == pytest.approx(ours, abs=1e-4), sentence


def test_reserved_words_are_refused():
    with pytest.raises(ValueError, match="reserved"):
        NGramLM(["the <unk> cat"])


def _most_probable_transcript(log_probs: torch.Tensor, tokenizer: CharTokenizer) -> str:
    """Brute force: the text whose paths (all V^T of them, summed) are most probable."""
    frames, vocab = log_probs.shape
    totals: dict[str, float] = {}
    for path in itertools.product(range(vocab), repeat=frames):
        collapsed = [token for i, token in enumerate(path) if i == 0 or token != path[i - 1]]
        text = tokenizer.decode(collapsed)
        totals[text] = float(np.logaddexp(totals.get(text, -np.inf), sum(log_probs[t, k] for t, k in enumerate(path))))
    return max(totals, key=totals.get)


def test_unpruned_beam_searches_find_the_most_probable_transcript():
    import pyctcdecode
    tokenizer = CharTokenizer.from_texts(["ab ba"])  # [PAD] (blank), [UNK], |, a, b
    decoder = pyctcdecode.build_ctcdecoder(pyctcdecode_labels(tokenizer))
    generator = torch.Generator().manual_seed(0)
    for _ in range(30):
        log_probs = (2 * torch.randn(6, len(tokenizer), generator=generator)).log_softmax(-1)
        best = _most_probable_transcript(log_probs.double().numpy(), tokenizer)
        ours = ctc_prefix_beam_search(log_probs, tokenizer, beam_width=10**6, top_k=len(tokenizer))
        theirs = decoder.decode(log_probs.numpy(), beam_width=10**6, beam_prune_logp=-1e9, token_min_logp=-1e9)
        assert ours == best
        assert theirs.replace("⁇", tokenizer.unk_token) == best
