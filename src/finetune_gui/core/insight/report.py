"""One self-contained HTML file about a run, to keep or send: `write_report(run, out_html)`.

It holds the dataset summary and its problems, the settings, the training curves (inline SVG),
the per-class table, the confusion matrix, the misclassified and the suspect images with their
Grad-CAM heatmaps, and a map of the images. Pictures are embedded as base64 PNG, so the file
needs nothing beside it and loads nothing from the network.
"""

from __future__ import annotations

import time
from html import escape
from itertools import pairwise
from pathlib import Path

import numpy as np

from finetune_gui import __version__
from finetune_gui.core.errors import UserError
from finetune_gui.core.events import (
    CancelToken,
    ProgressCallback,
    StageProgress,
    StageStarted,
    check_cancel,
    ignore_progress,
)
from finetune_gui.core.files import atomic_write_text
from finetune_gui.core.insight.report_pictures import picture_cards
from finetune_gui.core.insight.report_svg import PALETTE, Series, line_chart, scatter_chart
from finetune_gui.core.run.compare import flat_settings

MAX_PICTURES = 12  # misclassified and suspect images shown, each
MAX_LISTED = 40  # problem files and duplicate groups listed before "and N more"
MAX_MAP_POINTS = 3000

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
.note { color: #555; } .warn { color: #a33; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid #ddd; padding: 6px; width: 300px; font-size: .85em; }
.card img { width: 144px; height: 144px; object-fit: contain; image-rendering: auto; }
.path { word-break: break-all; color: #555; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
"""


def write_report(
    run,
    out_html: Path | str,
    *,
    scan=None,
    model=None,
    data_root: Path | str | None = None,
    max_pictures: int = MAX_PICTURES,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> Path:
    """Write the report of `run` (a `RunFolder` or its path) to `out_html`, atomically.

    `scan`: the folder's `DatasetScan` if the caller has one; otherwise the folder is scanned
    again (read only), and a folder that has gone is noted in the report instead.
    Each stage after reading the images is a progress event too (the model's pass, the heat
    maps one by one, the suspects, the map, writing), so a long report never looks stuck.
    """
    from finetune_gui.core.files import require_writable
    from finetune_gui.core.run.folder import RunFolder

    run = run if isinstance(run, RunFolder) else RunFolder.open(run)
    out_html = Path(out_html).expanduser()
    require_writable(out_html)  # before the minute the report takes, not after
    model = model or run.load_model()
    sections = [_header(run)]
    sections.append(_dataset_section(run, scan, data_root, progress, cancel))
    sections.append(_settings_section(run))
    sections.append(_curves_section(run))
    report = run.report
    sections.append(_metrics_section(report))
    sections.append(_confusion_section(report))
    progress(StageStarted("not-sure", 0, 'Describing when the model says "not sure"'))
    sections.append(_unsure_section(run, model, data_root))
    check_cancel(cancel)
    sections.append(_misclassified_section(run, model, report, max_pictures, progress, cancel))
    check_cancel(cancel)
    sections.extend(_suspects_and_map(run, model, data_root, max_pictures, progress, cancel))
    check_cancel(cancel)
    progress(StageStarted("write", 0, "Writing the page"))
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Run report: {escape(run.path.name)}</title><style>{CSS}</style></head><body>"
        + "\n".join(sections)
        + f'<p class="note">Written by finetune-gui {escape(__version__)} on '
        f"{time.strftime('%Y-%m-%d %H:%M')}.</p></body></html>\n"
    )
    atomic_write_text(out_html, page)
    return out_html


# -- sections ---------------------------------------------------------------------------------
def _header(run) -> str:
    facts = run.facts
    rows = [
        ("Run folder", str(run.path)),
        ("Status", run.status),
        ("Result", facts.message),
        ("Images from", facts.data or ""),
        ("Last updated", facts.updated or ""),
        ("Classes", ", ".join(run.classes)),
        ("Made with", f"TensorFlow {facts.tensorflow or '?'}, Keras {facts.keras or '?'}"),
    ]
    return f"<h1>Run report: {escape(run.path.name)}</h1>" + _key_value_table(rows)


def _dataset_section(run, scan, data_root, progress, cancel) -> str:
    from finetune_gui.core.data.scan import scan_folder

    parts = ["<h2>Dataset</h2>"]
    try:
        split = run.split(data_root)
    except UserError as exc:
        return parts[0] + f'<p class="warn">{escape(str(exc))}</p>'
    counts = split.counts()
    parts.append(
        f"<p>{sum(counts.values()):,} images used: {counts['train']:,} to train, "
        f"{counts['val']:,} to validate, {counts['test']:,} to test. Folder: {escape(str(split.root))}</p>"
    )
    if scan is None:
        try:
            scan = scan_folder(split.root, progress=progress, cancel=cancel)
        except UserError as exc:
            parts.append(f'<p class="warn">The folder could not be checked again: {escape(str(exc))}</p>')
            return "".join(parts)
    rows = "".join(
        f"<tr><td>{escape(s.name)}</td><td>{s.count}</td>"
        f"<td>{s.min_size[0]}x{s.min_size[1]}</td><td>{s.max_size[0]}x{s.max_size[1]}</td></tr>"
        for s in scan.summaries
    )
    parts.append(
        "<table><tr><th>class</th><th>images</th><th>smallest</th><th>largest</th></tr>"
        f"{rows}</table>"
    )
    if scan.warnings:
        parts.append("<h3>Problems found</h3><ul>")
        parts.extend(f'<li class="warn">{escape(w)}</li>' for w in scan.warnings)
        parts.append("</ul>")
    if scan.problems:
        parts.append("<h3>Files skipped</h3>" + _listing(
            [f"{escape(str(p.path))}: {escape(p.reason)}" for p in scan.problems]
        ))
    if scan.duplicate_groups:
        lines = []
        for group in scan.duplicate_groups:
            flags = [name for name, on in (("conflict", group.conflict), ("leak", group.leak)) if on]
            members = ", ".join(
                f"{escape(str(p))} ({escape('/'.join(x for x in (split_name, label) if x))})"
                for p, label, split_name in zip(group.paths, group.labels, group.splits, strict=True)
            )
            lines.append(f"<b>{group.kind}{' ' + ', '.join(flags) if flags else ''}</b>: {members}")
        parts.append("<h3>Duplicate images</h3>" + _listing(lines))
    return "".join(parts)


def _settings_section(run) -> str:
    rows = [(name, _plain(value)) for name, value in flat_settings(run.settings.to_dict()).items()]
    return "<h2>Settings</h2>" + _key_value_table(rows)


def _curves_section(run) -> str:
    history = run.history
    if not history:
        return "<h2>Training curves</h2><p class=\"note\">No epochs were recorded.</p>"
    markers = []
    best = run.facts.best_epoch
    if best is not None:
        markers.append((float(best), f"best (epoch {best})"))
    for before, after in pairwise(history):
        if after["phase"] != before["phase"]:
            markers.append((after["epoch"] - 0.5, after["phase"]))

    def series(key, name, colour, dashed=False):
        return Series(name, [(row["epoch"], row.get(key)) for row in history], colour, dashed)

    loss = line_chart(
        [series("loss", "training", PALETTE[0]), series("val_loss", "validation", PALETTE[1], True)],
        title="Loss", y_label="loss", markers=markers,
    )
    accuracy = line_chart(
        [series("accuracy", "training", PALETTE[0]),
         series("val_accuracy", "validation", PALETTE[1], True)],
        title="Accuracy", y_label="accuracy", markers=markers,
    )
    return f'<h2>Training curves</h2><div class="charts">{loss}{accuracy}</div>'


def _metrics_section(report) -> str:
    if report is None:
        return '<h2>Test results</h2><p class="note">The run has no test results.</p>'
    rows = []
    for m in report.per_class:
        auc = report.roc_auc.get(m.name)
        rows.append(
            f"<tr><td>{escape(m.name)}</td><td>{m.precision:.3f}</td><td>{m.recall:.3f}"
            f"{_interval_cell(m.recall_interval)}</td>"
            f"<td>{m.f1:.3f}</td><td>{m.support}</td><td>{'-' if auc is None else f'{auc:.3f}'}</td></tr>"
        )
    for label, avg in (("macro average", report.macro_avg), ("weighted average", report.weighted_avg)):
        rows.append(
            f"<tr><td>{label}</td><td>{avg['precision']:.3f}</td><td>{avg['recall']:.3f}</td>"
            f"<td>{avg['f1']:.3f}</td><td>{report.count}</td><td></td></tr>"
        )
    interval = report.accuracy_interval
    note = f'<p class="note">{escape(report.rough_note)}</p>' if report.rough_note else ""
    return (
        f"<h2>Test results</h2><p>Accuracy <b>{report.accuracy:.1%}</b>"
        + (f" (95% interval {interval[0]:.1%}-{interval[1]:.1%})" if interval else "")
        + f" on {report.count} held-out images.</p>{note}<table id=\"per-class\"><tr><th>class</th><th>precision</th>"
        f"<th>recall</th><th>f1</th><th>support</th><th>roc-auc</th></tr>{''.join(rows)}</table>"
    )


def _interval_cell(interval) -> str:
    """' (0.61-0.93)': the Wilson 95% interval after a recall ('' for an old metrics.json)."""
    return f" ({interval[0]:.2f}-{interval[1]:.2f})" if interval else ""


def _confusion_section(report) -> str:
    if report is None or not report.confusion:
        return ""
    header = "".join(f"<th>{escape(name)}</th>" for name in report.classes)
    rows = []
    for i, (name, row) in enumerate(zip(report.classes, report.confusion, strict=True)):
        total = max(1, sum(row))
        cells = []
        for j, value in enumerate(row):
            strength = value / total
            rgb = (60, 170, 90) if i == j else (220, 70, 60)
            colour = f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{0.1 + 0.6 * strength if value else 0:.2f})"
            cells.append(f'<td style="background:{colour}">{value}</td>')
        rows.append(f"<tr><th>{escape(name)}</th>{''.join(cells)}</tr>")
    return (
        "<h2>Confusion matrix</h2><p class=\"note\">Rows: the true class; columns: the "
        f"predicted class.</p><table id=\"confusion\"><tr><th></th>{header}</tr>{''.join(rows)}</table>"
    )


def _misclassified_section(run, model, report, max_pictures: int, progress, cancel) -> str:
    title = "<h2>Misclassified test images</h2>"
    if report is None or not report.misclassified:
        return title + '<p class="note">None: every test image was classified correctly.</p>'
    index = {name: i for i, name in enumerate(run.classes)}
    wrong = report.misclassified[:max_pictures]
    entries = [
        (Path(m.path), index[m.predicted_label],
         f"labelled <b>{escape(m.true_label)}</b>, predicted <b>{escape(m.predicted_label)}</b> "
         f"({m.confidence:.0%}); heatmap: what points to {escape(m.predicted_label)}")
        for m in wrong
    ]
    more = len(report.misclassified) - len(wrong)
    tail = f'<p class="note">and {more} more.</p>' if more > 0 else ""
    cards = picture_cards(model, run, entries, what="misclassified test images",
                          progress=progress, cancel=cancel)
    return title + cards + tail


def _suspects_and_map(run, model, data_root, max_pictures, progress, cancel) -> list[str]:
    from finetune_gui.core.insight.embedding import far_from_class, project
    from finetune_gui.core.insight.suspects import (
        features_saw_labels,
        rank_suspects,
        score_run_images,
    )

    title = "<h2>Suspect labels</h2>"
    try:
        scored = score_run_images(
            run, model=model, data_root=data_root, progress=_model_after_reading(progress),
            cancel=cancel,
        )
    except UserError as exc:
        return [title + f'<p class="warn">Could not be computed: {escape(str(exc))}</p>']
    check_cancel(cancel)
    progress(StageStarted("rank", 0, "Finding suspect labels"))
    suspects = rank_suspects(scored)
    caveat = (
        " The backbone itself learned from these labels, so mistakes among the training images"
        " are harder to spot and some may be missing here."
        if features_saw_labels(run.settings, run.facts)
        else ""
    )
    intro = (
        '<p class="note">Images whose label the model contradicts, judged on predictions for '
        "images it did not train on (confident learning). Check them; the folder is not "
        f"changed.{caveat}</p>"
    )
    if suspects:
        index = {name: i for i, name in enumerate(scored.classes)}
        entries = [
            (s.path, index[s.suggested_label],
             f"labelled <b>{escape(s.given_label)}</b>, looks like <b>"
             f"{escape(s.suggested_label)}</b> ({s.confidence:.0%}, {escape(s.split)})")
            for s in suspects[:max_pictures]
        ]
        body = picture_cards(model, run, entries, what="suspect images", progress=progress,
                             cancel=cancel)
        more = len(suspects) - len(entries)
        if more > 0:
            body += f'<p class="note">and {more} more.</p>'
    else:
        body = '<p class="note">None found.</p>'
    check_cancel(cancel)
    progress(StageStarted("map", 0, "Drawing the map of the images"))
    given = [scored.classes[k] for k in scored.labels]
    points, variance = project(scored.features)
    outliers = far_from_class(scored.features, given)
    # The crosses are the list above, the window's map's rule (core/insight/embedding.py).
    listed = {s.path for s in suspects}
    crossed = np.array([path in listed for path in scored.paths], dtype=bool)
    if len(points) > MAX_MAP_POINTS:  # an SVG dot per image would make a huge file
        keep = np.sort(np.random.default_rng(0).choice(len(points), MAX_MAP_POINTS, replace=False))
        keep = np.union1d(keep, np.flatnonzero(crossed))  # every suspect stays on the map
        points, outliers, given = points[keep], outliers[keep], [given[i] for i in keep]
        crossed = crossed[keep]
    share = " and ".join(f"{v:.0%}" for v in variance)
    chart = scatter_chart(points, given, scored.classes, title="Images as the model sees them",
                          marked=outliers, crossed=crossed)
    image_map = (
        f"<h2>Map of the images</h2><p class=\"note\">Pooled features of {len(points)} images "
        f"{'(a sample, with every suspect label) ' if len(scored.paths) > MAX_MAP_POINTS else ''}"
        f"projected by PCA (the axes hold {share or 'all'} of the variance); crossed: "
        f"{int(crossed.sum())} suspect labels (the list above); ringed: "
        f"{int(outliers.sum())} far from the rest of their class.</p>{chart}"
    )
    return [title + intro + body, image_map]


def _model_after_reading(progress: ProgressCallback) -> ProgressCallback:
    """`progress`, and when the images have been read for the suspects, a stage saying what
    follows until they are scored: the model's pass over them and the held-out judge."""

    def relay(event) -> None:
        progress(event)
        if isinstance(event, StageProgress) and event.stage == "suspects" and (
                event.done == event.total):
            progress(StageStarted(
                "judge", 0, f"Running the model on the {event.total} images and judging each "
                "label on images it did not learn from"))

    return relay


# -- helpers ----------------------------------------------------------------------------------
def _unsure_section(run, model, data_root) -> str:
    """The run's "not sure" rule in words, with the shares it was chosen on."""
    from finetune_gui.core.run.unsure import unsure_rule
    from finetune_gui.core.run.unsure_card import card_text

    rule = unsure_rule(run, model=model, data_root=data_root)
    text = card_text(rule, "keras")
    if rule is not None:
        chosen = rule.measured.get("candidates", {}).get("+".join(rule.signals), {})
        text += (
            f" Chosen because: {rule.measured.get('chosen_because', '')}; on the training "
            f"images it says not sure for {chosen.get('training_unsure', 0):.1%}."
        )
    return f"<h2>Not sure</h2><p>{escape(text)}</p>"


def _key_value_table(rows) -> str:
    body = "".join(
        f'<tr><th>{escape(str(k))}</th><td class="text">{escape(str(v))}</td></tr>' for k, v in rows
    )
    return f"<table>{body}</table>"


def _listing(lines: list[str]) -> str:
    shown = "".join(f"<li>{line}</li>" for line in lines[:MAX_LISTED])
    more = len(lines) - MAX_LISTED
    return f"<ul>{shown}</ul>" + (f'<p class="note">and {more} more.</p>' if more > 0 else "")


def _plain(value) -> str:
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return "-" if value is None else str(value)
