"""Fine-tune wav2vec 2.0 BASE on TIMIT with the fine-tuning post's settings and report the test WER.

    python -m scripts.full_scale.wav2vec2 [--out DIR] [--checkpoint facebook/wav2vec2-base] [--data-dir TIMIT] [--smoke]

The code is the chapter's (``annotated.wav2vec2``: ``TIMIT_FULL``, ``load_timit``, ``finetune_on_timit``); this file
only parses the command line and writes the results JSON. ``--smoke`` (CI) runs two optimisation steps of batch 2 on
the first 4 training clips and decodes the first 2 test clips.
"""

from __future__ import annotations

import dataclasses

from annotated.wav2vec2 import TIMIT_FULL, LabelledAudio, finetune_on_timit, load_timit
from scripts.full_scale import common


CHAPTER = "wav2vec2"
SMOKE_TRAIN, SMOKE_TEST, SMOKE_STEPS, SMOKE_BATCH = 4, 2, 2, 2
TIMIT_REMEDY = (f"pass --data-dir with a local copy of TIMIT (its licence keeps it off the hub), or --dataset parquet "
                f"--data-dir DIR for a copy with its audio and text columns, or {common.HUB_CACHE_REMEDY}")


def _head(data: LabelledAudio, count: int) -> LabelledAudio:
    return LabelledAudio(data.texts[:count], data.audio[:count], data.sampling_rate)


def finetune_and_report(chapter: str, args, config, train, test, stopwatch, **settings) -> dict:
    """Fine-tune ``config.checkpoint`` on ``train`` (``finetune_on_timit``), decode ``test`` and write the results JSON
    (``settings`` are recorded beside the config and the data's sizes); shared by the TIMIT and Common Voice commands."""
    with common.reaching(common.hub_checkpoint(config.checkpoint), common.CHECKPOINT_REMEDY):  # the weights
        metrics = finetune_on_timit(
            train, test, config, checkpoint_dir=args.out / "checkpoints",
            max_steps=SMOKE_STEPS if args.smoke else None, batch_size=SMOKE_BATCH if args.smoke else None,
        )
    if not common.is_main_process():
        return {}
    settings = dataclasses.asdict(config) | settings | {
        "num_train": len(train), "num_test": len(test), "train_hours": round(train.seconds() / 3600, 3),
        "vocab_size": metrics["vocab_size"], "final_train_loss": metrics["final_train_loss"],
        "examples": metrics["examples"],
    }
    return common.write_results(chapter, args.out, metrics={"wer": metrics["wer"], "wer_with_lm": metrics["wer_with_lm"]},
                                steps=metrics["steps"], wall_seconds=stopwatch.seconds(), settings=settings,
                                smoke=args.smoke)


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(CHAPTER, __doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=TIMIT_FULL.checkpoint,
                        help="pretrained wav2vec 2.0: a hub id or a folder in the hub's layout")
    parser.add_argument("--dataset", default=TIMIT_FULL.dataset, help="the datasets name of TIMIT")
    parser.add_argument("--data-dir", default=None, help="a local copy of the TIMIT corpus, if the loader needs one")
    args = parser.parse_args(argv)
    stopwatch = common.Stopwatch()
    config = dataclasses.replace(TIMIT_FULL, checkpoint=args.checkpoint, dataset=args.dataset)
    common.require_checkpoint(config.checkpoint)
    with common.reaching(common.hub_dataset(config.dataset), TIMIT_REMEDY):
        train, test = load_timit(config.dataset, data_dir=args.data_dir)
    if args.smoke:
        train, test = _head(train, SMOKE_TRAIN), _head(test, SMOKE_TEST)
    return finetune_and_report(CHAPTER, args, config, train, test, stopwatch)

if __name__ == "__main__":
    common.run(CHAPTER, main)
