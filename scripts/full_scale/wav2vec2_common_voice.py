"""Fine-tune XLS-R (300M) on Common Voice Turkish with the XLS-R post's settings and report the test WER.

    python -m scripts.full_scale.wav2vec2_common_voice [--out DIR] [--language tr] [--checkpoint facebook/wav2vec2-xls-r-300m] [--smoke]

The code is the chapter's (``annotated.wav2vec2``: ``COMMON_VOICE_TR``, ``load_common_voice``, ``finetune_on_timit``,
which fine-tunes any ``LabelledAudio``); this file only parses the command line and writes the results JSON. The
training split is Common Voice's ``train+validation`` and the test split ``test``, as in the post. ``--smoke`` (CI)
runs two optimisation steps of batch 2 on the first 4 training clips and decodes the first 2 test clips.
"""

from __future__ import annotations

import dataclasses

from annotated.wav2vec2 import COMMON_VOICE_TR, finetune_on_timit, load_common_voice
from scripts.full_scale import common

CHAPTER = "wav2vec2_common_voice"
SMOKE_TRAIN, SMOKE_TEST, SMOKE_STEPS, SMOKE_BATCH = 4, 2, 2, 2


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(CHAPTER, __doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=COMMON_VOICE_TR.checkpoint,
                        help="pretrained wav2vec 2.0 / XLS-R: a hub id or a folder in the hub's layout")
    parser.add_argument("--dataset", default=COMMON_VOICE_TR.dataset, help="the datasets name of Common Voice")
    parser.add_argument("--language", default="tr", help="Common Voice's language code (its config name)")
    args = parser.parse_args(argv)
    stopwatch = common.Stopwatch()
    config = dataclasses.replace(COMMON_VOICE_TR, checkpoint=args.checkpoint, dataset=args.dataset)
    common.require_checkpoint(config.checkpoint)
    limit_train, limit_test = (SMOKE_TRAIN, SMOKE_TEST) if args.smoke else (None, None)
    with common.reaching(common.hub_dataset(config.dataset, args.language), common.HUB_CACHE_REMEDY):
        train = load_common_voice(args.language, "train+validation", name=config.dataset, limit=limit_train)
        test = load_common_voice(args.language, "test", name=config.dataset, limit=limit_test)
    with common.reaching(common.hub_checkpoint(config.checkpoint), common.CHECKPOINT_REMEDY):  # the weights
        metrics = finetune_on_timit(
            train, test, config, checkpoint_dir=args.out / "checkpoints",
            max_steps=SMOKE_STEPS if args.smoke else None, batch_size=SMOKE_BATCH if args.smoke else None,
        )
    if not common.is_main_process():
        return {}
    settings = dataclasses.asdict(config) | {
        "language": args.language, "num_train": len(train), "num_test": len(test),
        "train_hours": round(train.seconds() / 3600, 3), "vocab_size": metrics["vocab_size"],
        "final_train_loss": metrics["final_train_loss"], "examples": metrics["examples"],
    }
    return common.write_results(CHAPTER, args.out, metrics={"wer": metrics["wer"], "wer_with_lm": metrics["wer_with_lm"]},
                                steps=metrics["steps"], wall_seconds=stopwatch.seconds(), settings=settings,
                                smoke=args.smoke)


if __name__ == "__main__":
    common.run(CHAPTER, main)
