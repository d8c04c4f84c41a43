"""The warm-starting chapter's full-scale command, run offline on stand-ins in the real formats.

Only the downloads are replaced: ``datasets.load_dataset`` returns a tiny ``DatasetDict`` with CNN/DailyMail's
splits and columns (``article``, ``highlights``, ``id``), and the checkpoint is a randomly initialised
``transformers.BertForMaskedLM`` with ``bert-base-uncased``'s configuration saved with ``save_pretrained``, next to a
``BertTokenizerFast`` built offline from a small vocabulary laid out like BERT's (30,522 entries, ``[PAD]`` 0,
``[UNK]`` 100, ``[CLS]`` 101, ``[SEP]`` 102, ``[MASK]`` 103). One size is shrunk for CPU time: 2 layers instead of
12 (BERT2BERT at full depth has 247 M parameters); every other field is bert-base-uncased's.
"""

from __future__ import annotations

import json

import pytest


datasets = pytest.importorskip("datasets")
transformers = pytest.importorskip("transformers")

from annotated.warm_starting import CNN_DAILYMAIL_FULL, articles_and_highlights  # noqa: E402


# bert-base-uncased's config.json
BERT_BASE_UNCASED = dict(
    vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
    hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, max_position_embeddings=512,
    type_vocab_size=2, initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0,
)

ARTICLES = [
    "(CNN) -- The city council voted on Tuesday to build a new bridge over the river, officials said.",
    "LONDON, England -- A rare bird was seen in a park for the first time in forty years, a spokesman said.",
    "The team won the final match of the season after a late goal in the second half of the game.",
    "Scientists said on Monday that the new telescope had taken its first pictures of a distant galaxy.",
    "A storm brought heavy rain and strong winds to the coast on Sunday, closing roads and schools.",
]
HIGHLIGHTS = [
    "City council votes to build a new bridge .\nOfficials said the vote was on Tuesday .",
    "A rare bird is seen in a London park .\nFirst time in forty years .",
    "The team wins the final match with a late goal .",
    "New telescope takes its first pictures .\nThe galaxy is far away .",
    "Storm brings rain and wind to the coast .",
]


def cnn_standin(rows: int, offset: int = 0):
    """Rows in CNN/DailyMail 3.0.0's layout."""
    index = [(offset + i) % len(ARTICLES) for i in range(rows)]
    return datasets.Dataset.from_dict({
        "article": [ARTICLES[i] for i in index],
        "highlights": [HIGHLIGHTS[i] for i in index],
        "id": [f"{offset + i:040x}" for i in range(rows)],
    })


def bert_vocabulary() -> list[str]:
    """30,522 entries with BERT's special ids, the stand-in's words, then unused fillers."""
    words = sorted({w for text in ARTICLES + HIGHLIGHTS for w in transformers.BasicTokenizer().tokenize(text)})
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    return vocab + [f"[unused{i}]" for i in range(99, 99 + 30522 - len(vocab))]


@pytest.fixture
def offline_cnn(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    calls = []

    def fake_load_dataset(name, *args, **kwargs):
        calls.append((name, *args))
        return datasets.DatasetDict({"train": cnn_standin(4), "validation": cnn_standin(1, 4), "test": cnn_standin(1, 4)})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    checkpoint = tmp_path / "bert-base-uncased"
    checkpoint.mkdir()
    (tmp_path / "vocab.txt").write_text("\n".join(bert_vocabulary()) + "\n")
    transformers.BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"), do_lower_case=True).save_pretrained(checkpoint)
    transformers.set_seed(0)
    shrunk = BERT_BASE_UNCASED | {"num_hidden_layers": 2}  # CPU time: see the module docstring
    transformers.BertForMaskedLM(transformers.BertConfig(**shrunk)).save_pretrained(checkpoint)
    return checkpoint, calls


def test_smoke_run_writes_results(offline_cnn, tmp_path):
    from scripts.full_scale import warm_starting as script

    checkpoint, calls = offline_cnn
    assert (checkpoint / "tokenizer.json").is_file() and (checkpoint / "model.safetensors").is_file()
    out = tmp_path / "run"
    record = script.main(["--out", str(out), "--smoke", "--checkpoint", str(checkpoint)])
    assert calls == [("cnn_dailymail", "3.0.0")]
    assert record["smoke"] and record["steps"] == 2 and record["chapter"] == "warm_starting"
    assert 0 <= record["metrics"]["rouge2"] <= 100 and record["settings"]["num_test"] == 1
    assert isinstance(record["settings"]["examples"][0]["summary"], str)
    assert record["settings"]["min_length"] == 4  # the smoke run's shorter summaries are recorded as such
    assert json.loads((out / "results.json").read_text())["metrics"] == record["metrics"]
    assert list((out / "checkpoints").glob("*.safetensors")), "no safetensors checkpoint was written"


def test_renamed_column_is_refused():
    standin = cnn_standin(2).rename_column("highlights", "summary")
    with pytest.raises(ValueError, match="expected a column 'highlights'"):
        articles_and_highlights(standin)


def test_full_config_is_the_posts():
    """The warm-starting post's recipe: lengths, batch size, warm-up, fp16 and bart-large-cnn's generation settings;
    the learning rate, weight decay and epochs are the Seq2SeqTrainer's defaults, which the post does not change."""
    post = dict(checkpoint="bert-base-uncased", dataset="cnn_dailymail", dataset_config="3.0.0", source_length=512,
                target_length=128, batch_size=16, warmup_steps=2000, mixed_precision="fp16", save_every=500,
                num_beams=4, length_penalty=2.0, no_repeat_ngram_size=3, min_length=56, max_length=142,
                early_stopping=True, learning_rate=5e-5, weight_decay=0.0, epochs=3)
    assert {name: getattr(CNN_DAILYMAIL_FULL, name) for name in post} == post
