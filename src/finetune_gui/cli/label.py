"""`label suggest|groups|sort`: labelling a folder with the model's help, from a terminal.

The same engine as the window's labelling view (core/label): `suggest` proposes a class for
every picture not in LABELS.csv and says which to label next, `groups` proposes groups of
similar pictures to name, `sort` copies the labelled pictures (and the proposals the user
trusts) into OUT/<class>/ with OUT/labels.csv. Every input is checked before the first file is
written or the network is loaded: a refusal is one sentence and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path

from finetune_gui.cli.terminal import EXIT_OK, TerminalProgress
from finetune_gui.core.words import counted


def add_parsers(commands) -> None:
    """Add the `label` command and its `suggest`, `groups` and `sort`."""
    label = commands.add_parser(
        "label", help="label a folder of unsorted pictures with the model's help "
        "(suggest, groups, sort)")
    steps = label.add_subparsers(dest="label_command", metavar="STEP", required=True)
    suggest = steps.add_parser(
        "suggest", help="propose a class for every unlabelled picture and say which to label "
        "next")
    suggest.add_argument("folder", type=Path)
    suggest.add_argument("--labels", type=Path, required=True, metavar="LABELS.csv",
                         help="path,label rows (paths relative to FOLDER or absolute)")
    _model_options(suggest)
    suggest.add_argument("--ask", type=int, default=24, metavar="N",
                         help="how many pictures to ask about next (default 24)")
    output = suggest.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true",
                        help="print proposals, ask and estimated_accuracy as JSON")
    output.add_argument("--csv", type=Path, default=None, metavar="FILE",
                        help="write one row per proposal: path, label, probability, unsure")

    groups = steps.add_parser("groups", help="propose K groups of similar pictures to name")
    groups.add_argument("folder", type=Path)
    groups.add_argument("--k", type=int, required=True, help="how many groups")
    _model_options(groups)
    groups.add_argument("--json", action="store_true")

    sort = steps.add_parser(
        "sort", help="copy the labelled pictures into OUT/<class>/ with OUT/labels.csv (the "
        "folder is never changed)")
    sort.add_argument("folder", type=Path)
    sort.add_argument("--labels", type=Path, required=True, metavar="LABELS.csv")
    sort.add_argument("--into", type=Path, required=True, metavar="OUT")
    sort.add_argument("--accept-above", type=float, default=None, metavar="P",
                      help="also copy the model's proposals at or above this probability "
                      "(0-1), marked as the model's in labels.csv")
    _model_options(sort)


def _model_options(parser) -> None:
    model = parser.add_argument_group("where the features come from")
    model.add_argument("--from", dest="run", type=Path, default=None, metavar="RUN",
                       help="a run folder: its model's features, classes and proposals")
    model.add_argument("--backbone", default=None, help="default: mobilenetv2")
    model.add_argument("--weights", default=None, help="imagenet (default), none, or a file")
    model.add_argument("--image-size", type=int, default=None, metavar="S")


def _source(args):
    from finetune_gui.core.errors import UserError
    from finetune_gui.core.label.features import FeatureSource

    if args.run is not None:
        if args.backbone or args.weights or args.image_size:
            raise UserError("Give either --from RUN or --backbone/--weights/--image-size, not "
                            "both: a run brings its own network.")
        source = FeatureSource(run=str(args.run))
    else:
        source = FeatureSource(backbone=args.backbone or "mobilenetv2",
                               weights=args.weights or "imagenet", image_size=args.image_size)
    source.check()
    return source


def _rows(args):
    """The folder (absolute) and LABELS.csv's rows, checked without reading a picture, so a
    bad file is refused before anything is shown."""
    from finetune_gui.core.label.labels_csv import read_rows
    from finetune_gui.core.label.pictures import check_root

    root = args.folder.expanduser().absolute()
    check_root(root)
    return root, read_rows(args.labels, root)


def _decisions(root, rows, args, progress):
    """The folder's pictures and the rows' decisions on them."""
    from finetune_gui.core.label.labels_csv import resolve
    from finetune_gui.core.label.pictures import check_folder

    pictures = check_folder(root, subfolders_are_classes=False, progress=progress)
    return pictures, resolve(rows, pictures, args.labels.name)


def _labeller(pictures, decisions, source, progress):
    """A session made of the CSV's decisions (kept nowhere), with every picture's features."""
    from finetune_gui.core.label.features import picture_features
    from finetune_gui.core.label.labeller import Labeller
    from finetune_gui.core.label.session import LabelSession
    from finetune_gui.quiet import import_tensorflow_quietly

    session = LabelSession(pictures.root, source)
    for picture, decision in sorted(decisions.items()):
        session.add_class(decision.label)
        session.decisions[pictures.relative(picture)] = decision
    import_tensorflow_quietly()
    features = picture_features(source, pictures.pictures, progress=progress)
    for name in features.run_classes:
        session.add_class(name)
    return Labeller(pictures, features, session)


def _needs_two_classes(rows, source) -> None:
    from finetune_gui.core.errors import UserError
    from finetune_gui.core.label.session import USER

    taught = {row.label for row in rows if row.by == USER}
    if len(taught) < 2 and source.run is None:
        raise UserError(f"Proposals need your labels for at least 2 classes ("
                        f"{len(taught)} given); label more pictures, or start from a run with "
                        f"--from RUN.")


def cmd_suggest(args) -> int:
    from finetune_gui.core.errors import UserError

    if args.ask < 0:
        raise UserError("--ask must be 0 or more.")
    if args.csv is not None:
        from finetune_gui.core.files import require_writable

        require_writable(args.csv)
    progress = TerminalProgress(enabled=not args.json)
    source = _source(args)
    root, rows = _rows(args)
    _needs_two_classes(rows, source)
    pictures, decisions = _decisions(root, rows, args, progress)
    labeller = _labeller(pictures, decisions, source, progress)
    view = labeller.refresh(page_size=args.ask)
    rows = _proposal_rows(labeller, view)
    ask = [labeller.names[row] for row in view.ask]
    if args.json:
        print(json.dumps({"proposals": rows, "ask": ask,
                          "estimated_accuracy": view.proposals.estimated_accuracy},
                         indent=2, ensure_ascii=False))
        return EXIT_OK
    if args.csv is not None:
        from finetune_gui.core.files import atomic_write_text

        atomic_write_text(args.csv, _proposals_csv(rows))
        print(f"wrote {args.csv}: {len(rows)} proposals")
    else:
        for row in rows:
            print(f"{row['probability']:6.1%}  {row['label']:<16} "
                  f"{'not sure  ' if row['unsure'] else '          '}{row['path']}")
    print(f"Label next ({len(ask)}):" if ask else "Nothing left to ask.")
    for name in ask:
        print(f"  {name}")
    print(view.estimate_text)
    return EXIT_OK


def _proposal_rows(labeller, view) -> list[dict]:
    """Every undecided file (copies too) with its picture's proposal, in path order."""
    proposals = view.proposals
    unsure = proposals.unsure()
    decided = labeller.decided()
    rows = []
    for row in sorted(range(len(labeller.names)), key=labeller.names.__getitem__):
        if decided[row]:
            continue
        picture = labeller.pictures.pictures[row]
        for path in (picture, *labeller.pictures.copies_of(picture)):
            rows.append({"path": labeller.pictures.relative(path),
                         "label": proposals.label(row),
                         "probability": round(float(proposals.probability(row)), 6),
                         "unsure": bool(unsure[row])})
    return rows


def _proposals_csv(rows: list[dict]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["path", "label", "probability", "unsure"])
    for row in rows:
        writer.writerow([row["path"], row["label"], f"{row['probability']:.6f}",
                         "yes" if row["unsure"] else "no"])
    return out.getvalue()


def cmd_groups(args) -> int:
    from finetune_gui.core.label.groups import MAX_GROUPS, propose_groups
    from finetune_gui.core.label.pictures import check_folder

    if not 2 <= args.k <= MAX_GROUPS:
        from finetune_gui.core.errors import UserError

        raise UserError(f"--k must be from 2 to {MAX_GROUPS}; got {args.k}.")
    progress = TerminalProgress(enabled=not args.json)
    source = _source(args)
    root = args.folder.expanduser().absolute()
    pictures = check_folder(root, subfolders_are_classes=False, progress=progress)
    labeller = _labeller(pictures, {}, source, progress)
    found = propose_groups(labeller.features.features, args.k)
    listed = [{"group": g.number, "size": g.size,
               "members": [labeller.names[row] for row in g.members]} for g in found]
    if args.json:
        print(json.dumps(listed, indent=2, ensure_ascii=False))
        return EXIT_OK
    for group in listed:
        print(f"group {group['group']} ({group['size']} pictures, nearest the centre first):")
        for name in group["members"]:
            print(f"  {name}")
    return EXIT_OK


def cmd_sort(args) -> int:
    from finetune_gui.core.errors import UserError
    from finetune_gui.core.label.output import check_output_folder, write_output

    if args.accept_above is not None and not 0.0 < args.accept_above <= 1.0:
        raise UserError(f"--accept-above is a probability from 0 to 1 (e.g. 0.95); got "
                        f"{args.accept_above:g}.")
    progress = TerminalProgress()
    source = _source(args) if args.accept_above is not None else None
    root, rows = _rows(args)
    out = args.into.expanduser().absolute()
    check_output_folder(root, out)
    if source is not None:
        _needs_two_classes(rows, source)
    pictures, decisions = _decisions(root, rows, args, progress)
    if source is None:
        summary = write_output(pictures, decisions, out, progress=progress)
    else:
        labeller = _labeller(pictures, decisions, source, progress)
        taken = labeller.accept_above(args.accept_above, labeller.refresh(page_size=0).proposals)
        print(f"{counted(taken, 'proposal')} at or above {args.accept_above:.0%} accepted.")
        summary = labeller.write_output(out, progress=progress)
    print(summary.text())
    return EXIT_OK


def cmd_label(args) -> int:
    steps = {"suggest": cmd_suggest, "groups": cmd_groups, "sort": cmd_sort}
    return steps[args.label_command](args)


COMMANDS = {"label": cmd_label}
