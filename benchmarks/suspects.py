"""Do the suspect labels find labels that are wrong? Precision and recall on real folders with
labels flipped on purpose.

For each real image set, a share of its images (2%, 5%, 10%) is moved into another class's
folder, chosen at random: a wrong label whose true class is known. A run is trained on the
flipped folder with the default settings (only the weights file and the image size chosen),
and its suspects are found by `core.insight.suspects.review_suspects`, the call behind the
window's Suspect labels tab, its map's crosses and `finetune-gui suspects`. With k the number
flipped, the top-k of the list is scored: precision (flipped among the k listed first) and
recall (the flipped found among them); with k the number flipped the two are one number unless
the list is shorter than k. The whole list's length, precision and recall say what the rule
itself marks. Other orders of the same list (by the held-out probability of the suggested class,
by 1 - the probability of the given one) are scored beside the one the app uses.

The sets are those of `benchmarks/quality.py`, made from files installed packages ship (this
machine is offline): scikit-learn's 1,797 handwritten digits (8 x 8 grey, upscaled to 32 px;
10 classes) and the GNOME Adwaita 48 px icons, one class per folder (6 classes, 590 icons; the
"messy" one: the run is right on about half of them). No ImageNet weights are on this machine;
the base is quality.py's MobileNetV2 pretrained on capital letters rendered from the DejaVu
fonts, frozen as a pretrained base would be (the default run fine-tunes only if that wins).

    python benchmarks/suspects.py --work /tmp/suspects-bench --size 48 --seeds 0
    python benchmarks/suspects.py --summarise /tmp/suspects-bench/results.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).parent))

RATES = (0.02, 0.05, 0.10)
ORDERS = ("app", "p_suggested", "1-p_given", "margin")


def flat_set(name: str, work: Path) -> Path:
    """The set as one folder per class (quality.py's pool and test folders together)."""
    from quality import make_digits, make_icons

    clean = work / name / "clean"
    if clean.exists():
        return clean
    made = {"digits": make_digits, "icons": make_icons}[name](work / name / "made")
    for path in sorted(made.rglob("*.png")):
        target = clean / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return clean


def flipped_copy(clean: Path, out: Path, rate: float, seed: int) -> dict[Path, str]:
    """A copy of `clean` with round(rate * N) images moved to another class's folder, at
    random; returns each moved image's new path -> its true class."""
    record = out / "flipped.json"
    if record.exists():
        return {Path(p): c for p, c in json.loads(record.read_text()).items()}
    if out.exists():
        shutil.rmtree(out)
    classes = sorted(p.name for p in clean.iterdir() if p.is_dir())
    images = sorted(clean.rglob("*.png"))
    rng = random.Random(f"{seed}-{rate}")
    chosen = set(rng.sample(range(len(images)), round(rate * len(images))))
    flipped = {}
    for index, path in enumerate(images):
        true_class = path.parent.name
        label = true_class
        if index in chosen:
            label = rng.choice([c for c in classes if c != true_class])
        target = out / "data" / label / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        if label != true_class:
            flipped[target] = true_class
    record.write_text(json.dumps({str(p): c for p, c in flipped.items()}, indent=1))
    return flipped


def trained_run(data: Path, out: Path, weights: Path, size: int, seed: int) -> tuple[Path, float]:
    """The default run on `data` (trained once; a finished one is reused)."""
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob

    if (out / "model.keras").exists():
        return out, 0.0
    if out.exists():
        shutil.rmtree(out)
    start = time.monotonic()
    settings = TrainingSettings(weights=str(weights), image_size=size, seed=seed)
    result = TrainingJob(data, settings, out).run()
    assert result.status == "completed", result.message
    return out, time.monotonic() - start


def orders(review) -> dict[str, list[Path]]:
    """The suspect list in the app's order and in the other candidate orders."""
    scored = review.scored
    row = {path: i for i, path in enumerate(scored.paths)}
    index = {name: k for k, name in enumerate(scored.classes)}

    def probability(s, name):
        return float(scored.probabilities[row[s.path], index[name]])

    keys = {
        "p_suggested": lambda s: probability(s, s.suggested_label),
        "1-p_given": lambda s: 1 - probability(s, s.given_label),
        "margin": lambda s: probability(s, s.suggested_label) - probability(s, s.given_label),
    }
    found = {"app": [s.path for s in review.suspects]}
    for name, key in keys.items():
        found[name] = [s.path for s in sorted(review.suspects, key=key, reverse=True)]
    return found


def measure(run_dir: Path, flipped: dict[Path, str]) -> dict:
    from finetune_gui.core.insight.suspects import review_suspects
    from finetune_gui.core.run.folder import RunFolder

    run = RunFolder.open(run_dir)
    start = time.monotonic()
    review = review_suspects(run)
    seconds = time.monotonic() - start
    k = len(flipped)
    listed = [s.path for s in review.suspects]
    hits_all = len(set(listed) & set(flipped))
    by_path = {s.path: s for s in review.suspects}
    right_class = sum(1 for p in flipped if p in by_path and by_path[p].suggested_label == flipped[p])
    row = {
        "images": review.images, "flipped": k, "listed": len(listed),
        "list_precision": hits_all / max(len(listed), 1), "list_recall": hits_all / max(k, 1),
        "right_class": right_class, "suspects_seconds": round(seconds, 1),
        "kept": run.facts.kept_model or "", "saw_labels": review.saw_labels,
        "test_accuracy": run.report.accuracy if run.report else None,
    }
    for name, ranked in orders(review).items():
        hits = len(set(ranked[:k]) & set(flipped))
        row[f"top_k_{name}"] = {"hits": hits, "precision": hits / max(min(k, len(ranked)), 1),
                                "recall": hits / max(k, 1)}
    return row


def summarise(results: Path) -> str:
    """The results file as the markdown table in docs/insight.md."""
    rows = {}
    for line in results.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[(row["set"], row["rate"], row["seed"])] = row  # the latest measurement wins
    lines = [
        "| set | flipped | images | seed | run's test accuracy | top-k precision | top-k recall "
        "| right class named | listed by the rule | list precision / recall | top-k by p(suggested) "
        "/ 1 - p(given) / margin |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, rate, seed), r in sorted(rows.items()):
        app = r["top_k_app"]
        others = " / ".join(f"{r[f'top_k_{o}']['hits']}" for o in ORDERS[1:])
        accuracy = "" if r["test_accuracy"] is None else f"{r['test_accuracy']:.3f}"
        lines.append(
            f"| {name} | {rate:.0%} ({r['flipped']}) | {r['images']} | {seed} | {accuracy} | "
            f"{app['precision']:.2f} ({app['hits']} of {r['flipped']}) | {app['recall']:.2f} | "
            f"{r['right_class']} of {r['flipped']} | {r['listed']} | "
            f"{r['list_precision']:.2f} / {r['list_recall']:.2f} | {others} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/suspects-bench"))
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--sets", nargs="+", default=["icons", "digits"])
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    parser.add_argument("--summarise", type=Path, default=None, help="print a results file's table")
    args = parser.parse_args()
    if args.summarise:
        print(summarise(args.summarise))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FINETUNE_GUI_CACHE_DIR", str(args.work / "cache"))
    from quality import pretrain_base

    weights = pretrain_base(args.work, args.size)
    results = args.work / "results.jsonl"
    for seed in args.seeds:
        for name in args.sets:
            clean = flat_set(name, args.work)
            for rate in args.rates:
                folder = args.work / name / f"flip-{rate:.2f}-seed{seed}"
                flipped = flipped_copy(clean, folder, rate, seed)
                run_dir, train_seconds = trained_run(
                    folder / "data", folder / "run", weights, args.size, seed)
                row = {"set": name, "rate": rate, "seed": seed,
                       "train_seconds": round(train_seconds, 1), **measure(run_dir, flipped)}
                print(json.dumps(row), flush=True)
                with open(results, "a") as handle:
                    handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
