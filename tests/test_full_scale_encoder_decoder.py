"""The encoder-decoder chapter's full-scale command, run offline on stand-ins in the real formats.

Only the downloads are replaced: ``datasets.load_dataset`` returns a tiny ``DatasetDict`` with WMT16 de-en's splits
and its ``translation`` column of ``{"de": ..., "en": ...}`` dicts, and ``Helsinki-NLP/opus-mt-en-de``'s config (the
only part of the checkpoint the command reads) is a ``transformers.MarianConfig`` with its sizes saved with
``save_pretrained``. Nothing is shrunk: the model is 6+6 layers, 512 wide, on the stand-in's small vocabulary.
"""

from __future__ import annotations

import json

import pytest


datasets = pytest.importorskip("datasets")
transformers = pytest.importorskip("transformers")
pytest.importorskip("sacrebleu")

from annotated.encoder_decoder import WMT16_FULL, translation_pairs  # noqa: E402


# Helsinki-NLP/opus-mt-en-de's config.json (the fields that size the model)
OPUS_MT_EN_DE = dict(d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                     decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
                     max_position_embeddings=512, dropout=0.1, attention_dropout=0.0, vocab_size=58101)

PAIRS = [("I want to buy a car.", "Ich will ein Auto kaufen."),
         ("The house is small.", "Das Haus ist klein."),
         ("She reads a book today.", "Sie liest heute ein Buch."),
         ("We have seen the old dog.", "Wir haben den alten Hund gesehen."),
         ("The weather was good yesterday.", "Das Wetter war gestern gut.")]


def wmt_standin(rows: int, offset: int = 0):
    """Rows in WMT16 de-en's layout."""
    return datasets.Dataset.from_dict({"translation": [
        {"de": PAIRS[(offset + i) % len(PAIRS)][1], "en": PAIRS[(offset + i) % len(PAIRS)][0]} for i in range(rows)]})


@pytest.fixture
def offline_wmt(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    calls = []

    def fake_load_dataset(name, *args, **kwargs):
        calls.append((name, *args))
        return datasets.DatasetDict({"train": wmt_standin(8), "validation": wmt_standin(2, 3), "test": wmt_standin(2, 3)})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    checkpoint = tmp_path / "opus-mt-en-de"
    transformers.MarianConfig(**OPUS_MT_EN_DE).save_pretrained(checkpoint)
    return checkpoint, calls


def test_smoke_run_writes_results(offline_wmt, tmp_path):
    from scripts.full_scale import encoder_decoder as script

    checkpoint, calls = offline_wmt
    out = tmp_path / "run"
    record = script.main(["--out", str(out), "--smoke", "--checkpoint", str(checkpoint)])
    assert calls == [("wmt16", "de-en")]
    assert record["smoke"] and record["steps"] == 2 and record["chapter"] == "encoder_decoder"
    assert 0 <= record["metrics"]["bleu"] <= 100 and record["settings"]["num_test"] == 2
    assert record["settings"]["hidden_size"] == 512 and record["settings"]["layers"] == [6, 6]
    assert json.loads((out / "results.json").read_text())["metrics"] == record["metrics"]
    assert list((out / "checkpoints").glob("*.safetensors")) and (out / "checkpoints" / "tokenizer.json").is_file()


def test_missing_language_or_column_is_refused():
    with pytest.raises(ValueError, match="expected a column 'translation'"):
        translation_pairs(wmt_standin(2).rename_column("translation", "pairs"))
    with pytest.raises(ValueError, match="expected the languages 'en' and 'fr'"):
        translation_pairs(wmt_standin(2), "en", "fr")


def test_full_config_is_the_cited_recipe():
    """The post's model and beam count; the Transformer paper's optimiser, warm-up and steps."""
    cited = dict(checkpoint="Helsinki-NLP/opus-mt-en-de", dataset="wmt16", dataset_config="de-en", source_lang="en",
                 target_lang="de", num_beams=6, warmup_steps=4000, steps=100_000, adam_betas=(0.9, 0.98), adam_eps=1e-9)
    assert {name: getattr(WMT16_FULL, name) for name in cited} == cited
    assert WMT16_FULL.learning_rate(3999, 512) == pytest.approx(512**-0.5 * 4000**-0.5)
