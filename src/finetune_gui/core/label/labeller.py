"""The labelling engine in one object: a folder's pictures, their features and the session.

The window, `finetune-gui label` and the benchmark all go through it: `refresh` solves the head
again on the user's labels and says what to ask next (about a second, on cached features),
`answer_page` records a page of answers and saves the session, `accept_above` takes the
proposals the user trusts, `write_output` copies the result out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finetune_gui.core.events import CancelToken, ProgressCallback, StageStarted, ignore_progress
from finetune_gui.core.label.asking import asking_order, unit_rows
from finetune_gui.core.label.features import FeatureSource, PictureFeatures, picture_features
from finetune_gui.core.label.output import OutputSummary, write_output
from finetune_gui.core.label.pictures import FolderPictures, check_folder
from finetune_gui.core.label.pixel_view import grey_levels, spread_like
from finetune_gui.core.label.proposals import Proposals, propose
from finetune_gui.core.label.session import MODEL, Decision, LabelSession, session_file

PAGE_SIZE = 24


@dataclass
class LabelView:
    """What to show after a page: the proposals and the rows to ask now (the counts are the
    session's, which changes with every choice: `Labeller.undecided`, `session.counts`)."""

    proposals: Proposals
    ask: list[int]

    @property
    def estimate_text(self) -> str:
        return self.proposals.estimate_text()


def prepare(
    folder: Path | str,
    source: FeatureSource,
    *,
    subfolders_are_classes: bool | None = None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> tuple[FolderPictures, PictureFeatures]:
    """Check the folder and compute (or reuse) every distinct picture's features: the slow
    part, once per folder (the window runs it in a child process)."""
    source.check()  # a missing run or a bad backbone is refused before the folder is read
    pictures = check_folder(folder, subfolders_are_classes=subfolders_are_classes,
                            progress=progress, cancel=cancel)
    progress(StageStarted("features", len(pictures.pictures),
                          f"Looking at {len(pictures.pictures)} pictures with "
                          f"{source.describe()}"))
    return pictures, picture_features(source, pictures.pictures, progress=progress,
                                      cancel=cancel)


class Labeller:
    """Proposals, the asking order and decisions for one folder's pictures."""

    def __init__(self, pictures: FolderPictures, features: PictureFeatures,
                 session: LabelSession) -> None:
        self.pictures = pictures
        self.features = features
        self.session = session
        self.names = [pictures.relative(p) for p in pictures.pictures]
        self.row_of = {name: row for row, name in enumerate(self.names)}
        self.unit = unit_rows(features.features)
        # The pictures' grey levels, a second view the proposals may read beside the features
        # (core/label/pixel_view.py); None without the check's fingerprints.
        self.grey: np.ndarray | None = None
        fingerprints = [pictures.fingerprints.get(p) for p in pictures.pictures]
        if any(f is not None for f in fingerprints) and len(features.features):
            self.grey = spread_like(grey_levels(fingerprints), features.features)
        self.view: LabelView | None = None

    @classmethod
    def start(cls, pictures: FolderPictures, features: PictureFeatures, source: FeatureSource,
              sessions_root: Path | None = None) -> Labeller:
        """Continue the folder's saved session, or start one from its class folders' labels
        (and a run's classes); `sessions_root` None keeps nothing on disk."""
        path = None if sessions_root is None else session_file(pictures.root, sessions_root)
        if path is not None and path.is_file():
            session = LabelSession.load(path)
            session.source = source
        else:
            session = LabelSession(pictures.root, source, path=path,
                                   subfolders_are_classes=pictures.subfolders_are_classes)
            for name in features.run_classes:
                session.add_class(name)
            for picture, label in sorted(pictures.folder_labels.items()):
                session.set_label(pictures.relative(picture), label)
            session.save()
        return cls(pictures, features, session)

    # -- what to show -------------------------------------------------------------------------
    def labelled_rows(self) -> dict[int, str]:
        return {self.row_of[p]: label for p, label in self.session.user_labels().items()
                if p in self.row_of}

    def decided(self) -> np.ndarray:
        mask = np.zeros(len(self.names), dtype=bool)
        rows = [self.row_of[p] for p in self.session.decisions if p in self.row_of]
        mask[rows] = True
        return mask

    def undecided(self) -> int:
        """Pictures without a decision yet (copies of one picture counted once)."""
        return int((~self.decided()).sum())

    def refresh(self, page_size: int = PAGE_SIZE) -> LabelView:
        """Solve the head again on the user's labels; the proposals and the next page."""
        proposals = propose(self.features.features, self.labelled_rows(), self.session.classes,
                            run_classes=self.features.run_classes,
                            run_probabilities=self.features.run_probabilities,
                            pixels=self.grey)
        decided = self.decided()
        # The network's view and answers choose what to ask (`Proposals.asking_probabilities`).
        ask = asking_order(self.features.features,
                           proposals.asking_probabilities() if proposals.available else None,
                           decided, page_size, unit=self.unit)
        self.view = LabelView(proposals, ask)
        return self.view

    # -- decisions ----------------------------------------------------------------------------
    def answer_page(self, answers: dict[int, str | None], *, page: bool = True) -> None:
        """A page's answers (row -> class, None for "none of these"); saved at once. `page`
        False: choices kept on the way to something else (not counted as a page)."""
        for row, label in answers.items():
            if label is None:
                self.session.leave_out(self.names[row])
            else:
                self.session.set_label(self.names[row], label)
        self.session.pages += page
        self.session.save()

    def accept_above(self, threshold: float, proposals: Proposals | None = None) -> int:
        """Take every undecided proposal at or above `threshold` as the model's decision;
        returns how many (saved at once)."""
        proposals = proposals or (self.view.proposals if self.view else self.refresh().proposals)
        if not proposals.available:
            return 0
        top, index = proposals.top(), proposals.label_index()
        decided = self.decided()
        taken = 0
        for row in np.flatnonzero(~decided & (top >= threshold)):
            self.session.set_label(self.names[row], proposals.classes[int(index[row])],
                                   by=MODEL, probability=float(top[row]))
            taken += 1
        self.session.save()
        return taken

    def decisions_by_path(self) -> dict[Path, Decision]:
        return {self.pictures.root / p: d for p, d in self.session.decisions.items()
                if p in self.row_of}

    def write_output(self, out: Path | str, *, progress: ProgressCallback = ignore_progress,
                     cancel: CancelToken | None = None) -> OutputSummary:
        """Copy the decided pictures into `out`/<class>/ with labels.csv."""
        return write_output(self.pictures, self.decisions_by_path(), out, progress=progress,
                            cancel=cancel)


def open_labeller(folder: Path | str, source: FeatureSource, *,
                  sessions_root: Path | None = None, subfolders_are_classes: bool | None = None,
                  progress: ProgressCallback = ignore_progress,
                  cancel: CancelToken | None = None) -> Labeller:
    """`prepare` and `Labeller.start` in one call (the command line and the benchmark)."""
    pictures, features = prepare(folder, source, subfolders_are_classes=subfolders_are_classes,
                                 progress=progress, cancel=cancel)
    return Labeller.start(pictures, features, source, sessions_root)
