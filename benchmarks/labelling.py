"""Labelling a folder with the model's help (issue 27): how many labels the app's asking order
saves over labelling in random order, on real folders.

A simulated user who knows every picture's true class starts from 2 labelled pictures per class
and labels, page by page (24 pictures), the pictures the app asks about; the same user in
random order labels random pictures. After every page: the share of the proposals that are
right on the pictures still unlabelled, the app's own estimate of that share, and the test
accuracy of the head trained on the labelled pictures (the app's head: scikit-learn's
`LogisticRegression()` on the frozen features) on the set's held-out test folder.

The folders are benchmarks/quality.py's real sets (its makers are reused): scikit-learn's
handwritten digits, GNOME Adwaita icons, scikit-image's face / not-face crops. The network is
quality.py's MobileNetV2 pretrained on DejaVu letters (ImageNet weights cannot be downloaded
here), at 48 px. The pool folder is given to the engine as one heap (its class folders are not
read as labels); copies of one picture are labelled once, as in the app. The features of pool
and test pictures are computed in one pass, so both share one projection (core/label/
features.py), which sees no label.

    python benchmarks/labelling.py --work /tmp/labelling --weights letters.weights.h5 \\
        --skimage-data /tmp/skimage-wheel/skimage/data
    python benchmarks/labelling.py --summarise /tmp/labelling/results.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import make_digits, make_faces, make_icons, pretrain_base

PAGE = 24
START_PER_CLASS = 2
BUDGET_SHARE = 0.6  # stop once this share of the pool is labelled
TARGET_GAP = 0.01  # the goal: every label's test accuracy minus one point
SIZE = 48


def plain_head(features: np.ndarray, labels: np.ndarray, classes: int):
    """The app's head (core/label/proposals.py) on (`features`, `labels`)."""
    from finetune_gui.core.model.softmax_head import plain_l2, search_softmax_head

    return search_softmax_head(features, labels, None, None, classes,
                               fallback_l2=plain_l2(len(labels)),
                               fallback_standardised=False).head


def load_set(root: Path, weights: Path):
    """The pool as the labeller sees it, its truth, and the test folder's features and labels."""
    from finetune_gui.core.label.features import FeatureSource, PictureFeatures, picture_features
    from finetune_gui.core.label.pictures import check_folder

    pool = check_folder(root / "pool", subfolders_are_classes=False)
    classes = sorted(p.name for p in (root / "pool").iterdir() if p.is_dir())
    test_paths = sorted((root / "test").rglob("*.png"))
    source = FeatureSource(backbone="mobilenetv2", weights=str(weights), image_size=SIZE)
    both = picture_features(source, pool.pictures + test_paths).features
    n = len(pool.pictures)
    truth = np.array([classes.index(pool.relative(p).split("/")[0]) for p in pool.pictures])
    test_y = np.array([classes.index(p.parent.name) for p in test_paths])
    return pool, PictureFeatures(both[:n], [], None), truth, both[n:], test_y, classes, source


def simulate(pool, features, truth, test_x, test_y, classes, source, order: str, seed: int):
    """Pages of a simulated user in the app's order or random order: one row per page."""
    from finetune_gui.core.label.labeller import Labeller
    from finetune_gui.core.label.session import LabelSession

    labeller = Labeller(pool, features, LabelSession(pool.root, source, classes=list(classes)))
    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        rows = np.flatnonzero(truth == k)
        for row in rng.choice(rows, min(START_PER_CLASS, len(rows)), replace=False):
            labeller.session.set_label(labeller.names[row], name)
    budget = int(BUDGET_SHARE * len(truth))
    pages = []
    while True:
        view = labeller.refresh(PAGE if order == "app" else 0)
        labelled = labeller.labelled_rows()
        rows = np.array(sorted(labelled))
        y = np.array([classes.index(labelled[r]) for r in rows])
        head = plain_head(features.features[rows], y, len(classes))
        rest = np.flatnonzero(~labeller.decided())
        proposed = view.proposals.label_index()[rest]
        pages.append({
            "labels": len(rows),
            "share": round(len(rows) / len(truth), 4),
            "proposals_right": round(float((proposed == truth[rest]).mean()), 4)
            if len(rest) else None,
            "estimated": None if view.proposals.estimated_accuracy is None
            else round(view.proposals.estimated_accuracy, 4),
            "test_accuracy": round(float(
                (head.probabilities(test_x).argmax(1) == test_y).mean()), 4),
        })
        if len(rows) >= budget or not len(rest):
            return pages
        ask = view.ask if order == "app" else rng.choice(rest, min(PAGE, len(rest)),
                                                         replace=False)
        labeller.answer_page({int(r): classes[truth[r]] for r in ask})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/labelling"))
    parser.add_argument("--weights", type=Path, default=None,
                        help="a base's weights file (default: quality.py pretrains one)")
    parser.add_argument("--skimage-data", type=Path, default=None)
    parser.add_argument("--sets", nargs="+", default=["digits", "icons", "faces"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--summarise", type=Path, default=None)
    args = parser.parse_args()
    if args.summarise:
        print(summarise(args.summarise))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FINETUNE_GUI_CACHE_DIR", str(args.work / "cache"))
    weights = args.weights or pretrain_base(args.work, SIZE)
    makers = {"digits": lambda: make_digits(args.work / "digits"),
              "icons": lambda: make_icons(args.work / "icons"),
              "faces": lambda: make_faces(args.work / "faces", args.skimage_data)}
    results = args.work / "results.jsonl"
    for name in args.sets:
        pool, features, truth, test_x, test_y, classes, source = load_set(makers[name](), weights)
        every = plain_head(features.features, truth, len(classes))
        reference = float((every.probabilities(test_x).argmax(1) == test_y).mean())
        print(f"{name}: {len(truth)} pictures, {len(classes)} classes, every label: test "
              f"{reference:.3f}", flush=True)
        for seed in args.seeds:
            for order in ("app", "random"):
                pages = simulate(pool, features, truth, test_x, test_y, classes, source, order,
                                 seed)
                row = {"set": name, "order": order, "seed": seed, "pictures": len(truth),
                       "every_label_test": round(reference, 4), "pages": pages}
                with open(results, "a") as handle:
                    handle.write(json.dumps(row) + "\n")
                last = pages[-1]
                print(f"  seed {seed} {order:6}: {last['labels']} labels, proposals "
                      f"{last['proposals_right']}, test {last['test_accuracy']}", flush=True)


# -- the tables in docs/benchmarks.md ----------------------------------------------------------
def labels_to_reach(pages: list[dict], target: float) -> int | None:
    """The labels of the first page whose test accuracy reaches `target` (None: never)."""
    return next((p["labels"] for p in pages if p["test_accuracy"] >= target), None)


def at_share(pages: list[dict], share: float) -> dict:
    """The first page with at least `share` of the pictures labelled."""
    return next((p for p in pages if p["share"] >= share), pages[-1])


def summarise(results: Path) -> str:
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    sets = list(dict.fromkeys(r["set"] for r in rows))
    lines = ["| set | pictures | every label: test | goal (minus 1 point) | labels to reach it "
             "(each seed): app / random | first page with 10% labelled: labels | proposals "
             "right there: app / random | app's estimate there |", "|---|---|---|---|---|---|---|---|"]
    for name in sets:
        mine = [r for r in rows if r["set"] == name]
        reference = mine[0]["every_label_test"]
        target = reference - TARGET_GAP
        reach, tenth, estimate = {}, {}, []
        for order in ("app", "random"):
            runs = [r["pages"] for r in mine if r["order"] == order]
            counts = [labels_to_reach(p, target) for p in runs]
            reach[order] = " ".join(str(c) if c is not None else f">{p[-1]['labels']}"
                                    for c, p in zip(counts, runs, strict=True))
            tenth[order] = np.mean([at_share(p, 0.1)["proposals_right"] for p in runs])
            if order == "app":
                estimate = [at_share(p, 0.1)["estimated"] for p in runs]
        shown = np.mean([e for e in estimate if e is not None]) if any(
            e is not None for e in estimate) else float("nan")
        tenth_labels = at_share(mine[0]["pages"], 0.1)["labels"]
        lines.append(f"| {name} | {mine[0]['pictures']} | {reference:.3f} | {target:.3f} | "
                     f"{reach['app']} / {reach['random']} | {tenth_labels} | "
                     f"{tenth['app']:.3f} / "
                     f"{tenth['random']:.3f} | {shown:.3f} |")
    lines += ["", "Per page (mean over seeds): labels, proposals right on the unlabelled "
              "pictures and test accuracy, app / random.", ""]
    for name in sets:
        mine = [r for r in rows if r["set"] == name]
        by_order = {o: [r["pages"] for r in mine if r["order"] == o] for o in ("app", "random")}
        depth = min(len(p) for runs in by_order.values() for p in runs)
        step = -(-depth // 16)  # at most about 16 rows a set
        lines += [f"**{name}**", "", "| labels | proposals right: app / random | test accuracy: "
                  "app / random | app's estimate |", "|---|---|---|---|"]
        for page in sorted({*range(0, depth, step), depth - 1}):
            mean = {o: {k: np.mean([p[page][k] for p in runs if p[page][k] is not None])
                        for k in ("proposals_right", "test_accuracy", "estimated")}
                    for o, runs in by_order.items()}
            labels = by_order["app"][0][page]["labels"]
            lines.append(f"| {labels} | {mean['app']['proposals_right']:.3f} / "
                         f"{mean['random']['proposals_right']:.3f} | "
                         f"{mean['app']['test_accuracy']:.3f} / "
                         f"{mean['random']['test_accuracy']:.3f} | "
                         f"{mean['app']['estimated']:.3f} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
