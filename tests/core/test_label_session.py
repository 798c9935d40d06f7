"""A labelling session end to end in the core, without TensorFlow (features: the pictures'
colours): a partly sorted folder starts from its labels, a page of answers (a correction, a
new class, "none of these") is saved at once and reopening continues, proposals and their
estimate follow the labels, "accept the rest above P" marks the model's decisions, and the
output copies a picture's copies with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import folder_fingerprint
from tests.core.label_folders import colour_features, make_heap

from finetune_gui.core.errors import UserError
from finetune_gui.core.label.features import FeatureSource, PictureFeatures
from finetune_gui.core.label.labeller import Labeller
from finetune_gui.core.label.labels_csv import read_labels
from finetune_gui.core.label.output import LABELS_FILE
from finetune_gui.core.label.pictures import check_folder
from finetune_gui.core.label.session import MODEL, USER, LabelSession, session_file

SOURCE = FeatureSource(backbone="mobilenetv3small", weights="none", image_size=32)


@pytest.fixture
def heap(tmp_path) -> tuple[Path, dict]:
    root = tmp_path / "heap"
    return root, make_heap(root, per_class=14)


def _labeller(root: Path, sessions: Path) -> Labeller:
    pictures = check_folder(root)
    features = PictureFeatures(colour_features(pictures.pictures), [], None)
    return Labeller.start(pictures, features, SOURCE, sessions)


def test_a_session_is_saved_after_every_page_and_reopening_continues(heap, tmp_path):
    root, facts = heap
    before = folder_fingerprint(root)
    sessions = tmp_path / "sessions"
    labeller = _labeller(root, sessions)
    truth = facts["truth"]
    saved = session_file(root, sessions)
    # The partly sorted folder's labels are there from the start, saved.
    assert labeller.session.classes == ["circles"]
    assert set(labeller.session.user_labels().values()) == {"circles"}
    assert LabelSession.load(saved).decisions == labeller.session.decisions
    view = labeller.refresh()
    assert not view.proposals.available  # one class: nothing to propose between
    assert len(view.ask) == 24 and len(set(view.ask)) == 24
    answers = {row: truth[labeller.names[row]] for row in view.ask[:20]}
    corrected = view.ask[0]
    answers[corrected] = "oops"  # a slip...
    labeller.session.add_class("oops")
    answers[view.ask[20]] = None  # "none of these"
    labeller.answer_page(answers)
    labeller.session.set_label(labeller.names[corrected], truth[labeller.names[corrected]])
    labeller.session.add_class("hexagons")  # a new class, no picture yet
    labeller.answer_page({})
    on_disk = json.loads(saved.read_text())
    assert on_disk["pages"] == 2
    reopened = _labeller(root, sessions)
    assert reopened.session.decisions == labeller.session.decisions
    assert reopened.session.pages == 2
    assert "hexagons" in reopened.session.classes
    assert reopened.session.decisions[labeller.names[view.ask[20]]].label is None
    assert reopened.session.decisions[labeller.names[corrected]].label == truth[
        labeller.names[corrected]]
    # Decided pictures are not asked again; proposals now come from the labels.
    view = reopened.refresh()
    decided = {reopened.row_of[p] for p in reopened.session.decisions}
    assert not decided & set(view.ask)
    assert view.proposals.available and view.proposals.source == "labels"
    assert folder_fingerprint(root) == before


def test_proposals_estimate_and_accept_above(heap, tmp_path):
    root, facts = heap
    truth = facts["truth"]
    labeller = _labeller(root, None)
    for name in ("squares", "triangles"):
        for picture in [p for p in labeller.names if truth[p] == name][:3]:
            labeller.session.set_label(picture, name)
    view = labeller.refresh()
    proposals = view.proposals
    rest = [row for row, name in enumerate(labeller.names)
            if name not in labeller.session.decisions]
    right = np.mean([proposals.label(row) == truth[labeller.names[row]] for row in rest])
    assert right >= 0.9
    assert proposals.estimated_accuracy is not None
    assert abs(proposals.estimated_accuracy - right) <= 0.2
    assert "of the proposals are right" in view.estimate_text
    users = labeller.session.user_labels()
    taken = labeller.accept_above(0.9)
    assert taken == int(np.sum(proposals.top()[rest] >= 0.9)) > 0
    assert labeller.session.user_labels() == users  # the user's labels stay the user's
    accepted = [d for d in labeller.session.decisions.values() if d.by == MODEL]
    assert len(accepted) == taken and all(d.probability >= 0.9 for d in accepted)
    # The model's answers never teach the head: proposals are unchanged by accepting them.
    again = labeller.refresh().proposals
    np.testing.assert_allclose(again.probabilities, proposals.probabilities, atol=1e-5)


def test_output_of_a_session_copies_the_copies_and_reads_back(heap, tmp_path):
    root, facts = heap
    truth = facts["truth"]
    labeller = _labeller(root, tmp_path / "sessions")
    for name in labeller.names:
        labeller.session.set_label(name, truth[name])
    out = tmp_path / "out"
    summary = labeller.write_output(out)
    assert summary.total == len(truth)  # every usable file, copies included
    for picture, copy in facts["copies"].items():
        assert (out / truth[picture] / Path(copy).name).is_file()
    decisions = read_labels(out / LABELS_FILE, labeller.pictures)
    assert {labeller.pictures.relative(p): d.label for p, d in decisions.items()} == {
        n: truth[n] for n in labeller.names}
    assert all(d.by == USER for d in decisions.values())


def test_class_names_that_cannot_be_folders_are_refused(tmp_path):
    session = LabelSession(tmp_path, SOURCE)
    for bad in ("a/b", "..", "", " cats", "two\nlines"):
        with pytest.raises(UserError):
            session.add_class(bad)
    assert session.add_class("chats noirs; 2") == "chats noirs; 2"
