"""Train the chapter's encoder-decoder at MarianMT's size on WMT16 English-German and report the test BLEU.

    python -m scripts.full_scale.encoder_decoder [--out DIR] [--checkpoint Helsinki-NLP/opus-mt-en-de] [--smoke]

The code is the chapter's (``annotated.encoder_decoder``: ``WMT16_FULL``, ``load_translation_data``,
``train_translation``); this file only parses the command line and writes the results JSON. ``--checkpoint`` names
the config the model's sizes are read from. ``--smoke`` (CI) runs two optimisation steps of batch 2 on the first 8
training pairs and translates the first 2 test sentences with 6 beams but at most 8 new tokens.
"""

from __future__ import annotations

import dataclasses

from annotated.encoder_decoder import WMT16_FULL, load_translation_data, train_translation
from scripts.full_scale import common


CHAPTER = "encoder_decoder"
SMOKE_TRAIN, SMOKE_TEST, SMOKE_STEPS, SMOKE_BATCH = 8, 2, 2, 2
SMOKE_SETTINGS = dict(max_new_tokens=8, vocab_size=300)


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(CHAPTER, __doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=WMT16_FULL.checkpoint,
                        help="the encoder-decoder config (hub id or folder) whose sizes the model takes")
    args = parser.parse_args(argv)
    stopwatch = common.Stopwatch()
    config = dataclasses.replace(WMT16_FULL, checkpoint=args.checkpoint)
    common.require_checkpoint(config.checkpoint)  # the only part of it the model needs: its config
    with common.reaching(common.hub_dataset(config.dataset, config.dataset_config), common.HUB_CACHE_REMEDY):
        data = load_translation_data(config)
    if args.smoke:
        config = dataclasses.replace(config, **SMOKE_SETTINGS)
        data = common.first_pairs(data, SMOKE_TRAIN, SMOKE_TEST)
    metrics = train_translation(data, config, checkpoint_dir=args.out / "checkpoints",
                                max_steps=SMOKE_STEPS if args.smoke else None,
                                batch_size=SMOKE_BATCH if args.smoke else None)
    if not common.is_main_process():
        return {}
    settings = dataclasses.asdict(config) | {
        "num_train": len(data["train"][0]), "num_test": metrics["num_test"], "trained_vocab_size": metrics["vocab_size"],
        "hidden_size": metrics["hidden_size"], "layers": metrics["layers"],
        "final_train_loss": metrics["final_train_loss"], "examples": metrics["examples"],
    }
    return common.write_results(CHAPTER, args.out, metrics={"bleu": metrics["bleu"]}, steps=metrics["steps"],
                                wall_seconds=stopwatch.seconds(), settings=settings, smoke=args.smoke)


if __name__ == "__main__":
    common.run(CHAPTER, main)
