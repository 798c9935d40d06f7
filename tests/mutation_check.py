"""Switch each headline behaviour off in a copy of the source and check that its tests fail.

    python tests/mutation_check.py                 # every switch-off, one after the other
    python tests/mutation_check.py --list          # what each one switches off, and its tests
    python tests/mutation_check.py restore-best    # only the ones named
    python tests/mutation_check.py --unmutated     # first check the guarding tests pass as is
    python tests/mutation_check.py --dry-run       # only apply each patch and show the diff

Each switch-off is a small patch of one function, found by name (or one line, found by pattern)
in a temporary copy of `src/`; a patch that does not apply exactly stops the check with an error,
so a refactor can never make it pass silently. The tests that guard the behaviour then run on
the copy (PYTHONPATH puts it first, for child processes too), and the switch-off is caught when
they fail. Exit status: 0 when every switch-off was caught, 1 when one survived, 2 when a patch
or a test run could not be made. Minutes per switch-off: each trains small real models.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "finetune_gui"
SHARED_BASE: Path | None = None  # set by main: the pretrained stand-in every run shares


class PatchError(Exception):
    """A switch-off could not be applied exactly as written."""


@dataclass(frozen=True)
class ReplaceBody:
    """Replace the whole body of the function `name` ("Class.method" or "function")."""

    name: str
    body: str


@dataclass(frozen=True)
class ReplaceLine:
    """Replace the one line matching `pattern` (a regex over one line) by `replacement` (which
    may use the pattern's groups), inside the function `within` if given, else anywhere in the
    package. It must match exactly once."""

    pattern: str
    replacement: str
    within: str | None = None


@dataclass(frozen=True)
class Mutation:
    name: str
    switches_off: str
    patch: ReplaceBody | ReplaceLine
    tests: tuple[str, ...]


T = "tests/core/test_training.py::"
CRASH = "tests/core/test_crash_mid_write.py::"
UNSURE = "tests/core/test_unsure_share.py::"
MUTATIONS = [
    Mutation(
        "restore-best",
        "restoring the best weights after early stopping and on cancel",
        ReplaceBody("EpochLedger.restore_best", "return None"),
        (T + "test_early_stopping_ends_a_phase_that_stops_improving",
         T + "test_cancel_stops_within_one_batch_and_keeps_the_best_weights"),
    ),
    Mutation(
        "batchnorm-recalibration",
        "recomputing BatchNorm statistics when training from scratch (--weights none)",
        ReplaceBody("recalibrate_batchnorm", "return None"),
        (T + "test_weights_none_trains_from_scratch_to_well_above_chance",),
    ),
    Mutation(
        "class-weights",
        "class weights: the log line still says they are on, the loss gets all ones",
        ReplaceLine(r"^(\s*)return per_class\[labels\]\.astype\(\"float32\"\)\s*$",
                    r'\1return np.ones(len(labels), dtype="float32")'),
        (T + "test_imbalanced_classes_turn_class_weights_on",),
    ),
    Mutation(
        "class-weights-always",
        "the 3x rule: class weights on even for classes of similar size",
        ReplaceLine(r"^(\s*)use = mode == \"on\" or .*$", r"\1use = True"),
        (T + "test_classes_within_3x_of_each_other_train_unweighted",),
    ),
    Mutation(
        "out-of-memory-halving",
        "halving the batch after out-of-memory: the message says it, the batch stays",
        ReplaceLine(r"^(\s*)ledger\.batch_size = (.+)$", r"\1_ = \2", within="PhaseTrainer._fit_phase"),
        (T + "test_out_of_memory_retries_with_half_the_batch_and_says_so",),
    ),
    Mutation(
        "memory-budget",
        "the memory budget: every large array stays in RAM, nothing spills to disk",
        ReplaceBody("allocate", "return np.zeros(shape, dtype)"),
        ("tests/core/test_feature_cache.py::"
         "test_training_with_a_tiny_memory_budget_spills_to_disk_and_still_reaches_high_accuracy",),
    ),
    Mutation(
        "resume-weights",
        "loading the checkpoint's weights when a run resumes (epochs still continue)",
        ReplaceBody("RunCheckpoint.load_last", "return None"),
        ("tests/e2e/test_resume.py::test_a_killed_run_resumes_from_its_last_epoch",),
    ),
    Mutation(
        "duplicate-group-majority",
        "a cross-class duplicate group dealt with the class of its last copy, not its majority",
        ReplaceLine(r"^(\s*)label = Counter\(item\[1\] for item in bundle\)\.most_common\(1\)\[0\]\[0\]$",
                    r"\1label = bundle[-1][1]"),
        ("tests/core/test_split_groups.py",),
    ),
    Mutation(
        "atomic-write-text",
        "temp-then-rename for text files (run.json, projects, reports): written in place",
        ReplaceBody("atomic_write_text", 'Path(target).write_text(text, encoding="utf-8")'),
        (CRASH + "test_a_run_file_cut_halfway_keeps_the_old_run_json",
         CRASH + "test_a_project_cut_halfway_keeps_the_old_project",
         CRASH + "test_a_report_cut_halfway_by_a_crash_keeps_the_old_report"),
    ),
    Mutation(
        "atomic-write-with",
        "temp-then-rename for files a writer fills (model.keras, checkpoints): written in place",
        ReplaceBody("atomic_write_with", "writer(Path(target))"),
        (CRASH + "test_a_model_cut_halfway_keeps_the_old_model_keras",),
    ),
    Mutation(
        "sort-into-class",
        "sort: every image copied into the next class's folder (the CSV still says the right one)",
        ReplaceLine(r"^(\s*)name = NOT_SURE if p\.unsure else p\.label$",
                    r"\1name = NOT_SURE if p.unsure else "
                    r"run.classes[(run.classes.index(p.label) + 1) % len(run.classes)]"),
        ("tests/core/test_sort_into_classes.py",),
    ),
    Mutation(
        "head-refit-applied",
        "the head refit: recorded in run.json, never put into the saved model",
        ReplaceLine(r"^(\s*)set_output_layer\(classifier, search\.head\)$", r"\1_ = search.head",
                    within="refit_on_train_and_val"),
        ("tests/core/test_head_refit_saved.py",),
    ),
    Mutation(
        "int8-calibration",
        "int8 export calibrated on pixels scaled to 0-1 (the model takes 0-255): garbage answers",
        ReplaceLine(r"^(\s*)yield \[image\[None\]\.astype\(np\.float32\)\]$",
                    r"\1yield [(image[None] / 255.0).astype(np.float32)]", within="tflite_bytes"),
        ("tests/core/test_export_int8.py",),
    ),
    Mutation(
        "web-page-offline",
        "the web page's \"no internet\": it also reports to a server (a fetch to https://)",
        ReplaceLine(r'^(\s*)"PIXELS": pixels,$',
                    r"""\1"PIXELS": pixels + '\\nfetch("https://example.com/used").catch(() => 0);',""",
                    within="web_page"),
        ("tests/core/test_export_web_offline.py",),
    ),
    Mutation(
        "unsure-val-only",
        '"not sure" cut-offs calibrated on the validation images alone, not train + val',
        ReplaceLine(r"^(\s*)calibration = \{k: np\.concatenate\(\[val_scores\[k\], "
                    r"train_scores\[k\]\]\) for k in val_scores\}$",
                    r"\1calibration = dict(val_scores)", within="calibrate"),
        (UNSURE + "test_validation_picked_by_hand_still_gives_about_five_percent",),
    ),
    Mutation(
        "unsure-refit-learned",
        '"not sure": after the refit, the validation answers taken as unseen (learned = train)',
        ReplaceLine(r"^(\s*)learned = learned_parts\(run\.facts\)$", r'\1learned = ("train",)'),
        (UNSURE + "test_half_the_images_for_validation_still_gives_about_five_percent",),
    ),
    Mutation(
        "unsure-held-out-call",
        '"not sure" calibrated on the kept model\'s own answers about the images it learned',
        ReplaceLine(r"^(\s*)found = replace\(found, probabilities=unseen_probabilities\($",
                    r"\1found = replace(found, probabilities=found.probabilities) if True else "
                    r"replace(found, probabilities=unseen_probabilities("),
        (UNSURE + "test_validation_picked_by_hand_still_gives_about_five_percent",
         UNSURE + "test_half_the_images_for_validation_still_gives_about_five_percent"),
    ),
    Mutation(
        "duplicate-block-difference",
        "the duplicate check's block-difference test",
        ReplaceLine(r"^(\s*)& \(mean <= MEAN_DIFFERENCE\) & \(worst_block <= BLOCK_DIFFERENCE\)$",
                    r"\1& (mean <= MEAN_DIFFERENCE)", within="PixelCheck.same_picture"),
        ("tests/core/test_duplicates.py::"
         "test_the_same_scene_with_a_spot_of_light_in_one_place_is_another_picture",),
    ),
    Mutation(
        "duplicate-flat-brightness",
        "nearly blank pictures compared without their brightness",
        ReplaceLine(r"^(\s*)verdicts\[k\] = (flat_a\[k\] and flat_b\[k\] and rms <= "
                    r"FLAT_DIFFERENCE) and shift\[0\] <= MEAN_DIFFERENCE$", r"\1verdicts[k] = \2",
                    within="PixelCheck.same_picture"),
        ("tests/core/test_duplicates.py::"
         "test_flat_pictures_of_one_hue_but_far_apart_in_brightness_are_different_pictures",),
    ),
    Mutation(
        "class-name-refusal",
        "class folder names labels.txt cannot keep let through to training",
        ReplaceBody("names_refusal", "return None"),
        ("tests/e2e/test_class_names.py::test_a_name_the_files_cannot_keep_is_refused_by_the_scan",),
    ),
    Mutation(
        "ensemble-no-test-any-seed",
        "runs without test images refused unless their splits match",
        ReplaceLine(r"^(\s*)tested = any\(split\.test for split in splits\)$", r"\1tested = True",
                    within="check_combinable"),
        ("tests/core/test_ensemble.py::test_runs_without_test_images_combine_whatever_their_seeds",),
    ),
    Mutation(
        "calibration",
        "the temperature: recorded in run.json, never folded into the saved model",
        ReplaceBody("fold_into_output_layer", "return None"),
        ("tests/core/test_calibration.py::"
         "test_the_saved_model_says_the_calibrated_probabilities_with_the_same_answers",),
    ),
    Mutation(
        "suspects-judge-calibration",
        "the suspect judge's k-fold answers on training images left uncalibrated (over-sure)",
        ReplaceLine(r"^(\s*)held_out = with_temperature\(held_out, fit_temperature\(held_out, "
                    r"labels\[learned\]\)\)$", r"\1pass", within="score_run_images"),
        ("tests/core/test_suspects_review.py::"
         "test_the_judges_answers_on_training_images_are_calibrated",),
    ),
    Mutation(
        "finetune-stops-when-losing",
        "phase 2 stopped at the first epoch clearly worse than the head: it runs to its patience",
        ReplaceBody("finetune_losing", "return ''"),
        ("tests/core/test_finetune_decision.py",),
    ),
    Mutation(
        "head-sample-cap",
        "the head search's capped sample: the solver copies every training row into RAM",
        ReplaceLine(r"^(\s*)rows = capped_sample\(labels, sample_cap\(features\), seed\)\s*$",
                    r"\1rows = None", within="fitting_sample"),
        ("tests/core/test_memory_bound.py::"
         "test_the_head_search_fits_a_sample_and_scores_every_row_a_chunk_at_a_time",),
    ),
    Mutation(
        "head-search-stop",
        "the head search's stop past its peak: every strength of the grid is solved",
        ReplaceLine(r"^(\s*)if patience is not None and since_best >= patience:\s*$",
                    r"\1if False:", within="search_softmax_head"),
        ("tests/core/test_head_solver.py::"
         "test_the_search_stops_after_two_strengths_that_do_not_beat_the_best",),
    ),
    Mutation(
        "shared-held-out",
        "the calibration's k-fold answers taken by the \"not sure\" rule: it solves the same "
        "folds again",
        ReplaceLine(r"^(\s*)if kept is not None and np.isfinite\(kept\).all\(\):\s*$",
                    r"\1if False:", within="unseen_probabilities"),
        ("tests/core/test_unsure.py::"
         "test_the_rule_takes_the_k_fold_answers_the_temperature_was_fitted_on",),
    ),
    Mutation(
        "head-solver-cores",
        "the head solver's blocks shared among the cores: every block is solved in one thread",
        ReplaceLine(r"^(\s*)workers = min\(blocks, usable_cores\(\)\)\s*$", r"\1workers = 1",
                    within="block_workers"),
        ("tests/core/test_head_solver.py::"
         "test_the_blocks_solved_on_several_cores_give_the_single_cores_head_to_the_last_bit",),
    ),
    Mutation(
        "head-principal-axes",
        "the head search's strengths solved along the features' principal axes: on the "
        "features as they are",
        ReplaceLine(r"^(\s*)if n == 0 or axes\*\*2 > PRINCIPAL_EVALUATIONS \* n \* classes:\s*$",
                    r"\1if True:", within="RowSpace.principal"),
        ("tests/core/test_row_space.py::"
         "test_the_search_along_the_principal_axes_and_its_path_solves_the_same_heads_in_fewer_steps",),
    ),
    Mutation(
        "head-path-start",
        "each strength of the head search started on the line through the last two optima: at "
        "the last one",
        ReplaceLine(r"^(\s*)if len\(path\) < 2:\s*$", r"\1if True:", within="_next_on_path"),
        ("tests/core/test_row_space.py::"
         "test_the_search_along_the_principal_axes_and_its_path_solves_the_same_heads_in_fewer_steps",),
    ),
    Mutation(
        "onnx-later-pass",
        "the later frozen passes take the session the first one checked: each traces and runs "
        "TensorFlow's step again and checks the session anew",
        ReplaceLine(r"^(\s*)done, faster = 0, checked_runner\(classifier.base, cut\)\s*$",
                    r"\1done, faster = 0, None", within="extract_features"),
        ("tests/core/test_onnx_pass.py::"
         "test_a_later_pass_takes_the_checked_session_from_its_first_batch",),
    ),
    Mutation(
        "frozen-part-shared",
        "a run's frozen passes share one traced step: each pass builds and traces its own",
        ReplaceLine(r"^(\s*)if key not in parts:\s*$", r"\1if True:", within="frozen_part"),
        ("tests/core/test_run_fixed_costs.py::test_a_runs_passes_share_one_trace_of_the_frozen_part",),
    ),
    Mutation(
        "test-look-from-frozen-pass",
        "a small run's test images taken by its frozen pass in TensorFlow: the test look traces "
        "the whole network",
        ReplaceLine(r"^(\s*)return tensorflow_seconds is not None and .*$", r"\1return False",
                    within="takes_test_images"),
        ("tests/core/test_run_fixed_costs.py::"
         "test_a_small_runs_test_look_comes_from_its_frozen_pass",),
    ),
    Mutation(
        "compile-without-symbolic-run",
        "fine-tuning compiled from its model's known output: a symbolic run of the model",
        ReplaceBody("_build_from_output_spec", "return False"),
        ("tests/core/test_run_fixed_costs.py::"
         "test_compiling_a_built_model_does_not_run_it_and_trains_as_before",),
    ),
    Mutation(
        "finetune-prepared",
        "fine-tuning's step traced on a second thread while phase 1 runs: traced by fit",
        ReplaceBody("PhaseTrainer._prepare_finetune", "return None"),
        ("tests/core/test_finetune_decision.py::"
         "test_fine_tuning_starts_at_its_first_step_on_a_step_traced_while_phase_1_ran",),
    ),
    Mutation(
        "finetune-prep-flags-back",
        "a preparation phase 2 did not take puts the trainable flags back: they stay",
        ReplaceLine(r"^(\s*)if self._taken:\s*$", r"\1if True:",
                    within="FinetunePreparation.discard"),
        ("tests/core/test_finetune_decision.py::"
         "test_a_phase_2_that_does_not_run_leaves_the_network_as_phase_1_left_it",),
    ),
    Mutation(
        "finetune-prep-memory",
        "fine-tuning not prepared during phase 1 where the features are on disk: prepared",
        ReplaceLine(r"^(\s*)or is_on_disk\(stored.train.pooled\)\s*$", r"\1or False",
                    within="PhaseTrainer._prepare_finetune"),
        ("tests/core/test_finetune_decision.py::"
         "test_fine_tuning_is_not_prepared_where_the_features_outgrew_the_memory_budget",),
    ),
    Mutation(
        "later-passes-from-cache",
        "a run on cached features takes the test images' and pseudo-outliers' entries: it "
        "runs the whole network for them",
        ReplaceLine(r"^(\s*)if cached or takes_test_images\((.*)$", r"\1if takes_test_images(\2",
                    within="store_activations"),
        ("tests/core/test_feature_cache.py::"
         "test_a_second_head_reuses_the_extraction_and_a_new_cut_does_not",),
    ),
    Mutation(
        "duplicate-candidate-cap",
        "the cap on each image's duplicate candidates within the close distance: a folder of "
        "look-alikes proposes pairs with the square of its images",
        ReplaceBody("_within_close", "return rms <= close"),
        ("tests/core/test_duplicates.py::"
         "test_a_folder_of_look_alikes_proposes_pairs_in_proportion_to_its_images",),
    ),
    Mutation(
        "finetune-nothing-to-learn",
        "phase 2 skipped when the head already fits every training image it would train on: "
        "it runs and is thrown away",
        ReplaceBody("finetune_nothing_to_learn", "return ''"),
        ("tests/core/test_selection.py::"
         "test_fine_tuning_on_the_images_the_head_already_fits_has_nothing_to_learn",
         "tests/core/test_finetune_decision.py::"
         "test_fine_tuning_is_skipped_when_the_head_has_nothing_left_to_learn_from_its_images"),
    ),
    Mutation(
        "finetune-stalled",
        "phase 2 on the head's own images stopped after a first epoch no better than the head "
        "by either measure: it waits out early stopping's patience and is thrown away",
        ReplaceBody("finetune_stalled", "return ''"),
        ("tests/core/test_finetune_decision.py::"
         "test_a_first_epoch_no_better_than_the_head_by_either_measure_has_stalled",
         "tests/core/test_finetune_decision.py::"
         "test_fine_tuning_whose_first_epoch_is_no_better_than_the_head_stops_there"),
    ),
    Mutation(
        "finetune-stalled-in-runs",
        "the stalled-first-epoch rule not asked in a run: phase 2 goes on after it",
        ReplaceLine(r"^(\s*)stop_when_stalled=asks_if_stalled\(self\.settings\),$",
                    r"\1stop_when_stalled=False,", within="PhaseTrainer._fit_phase"),
        ("tests/core/test_finetune_decision.py::"
         "test_fine_tuning_whose_first_epoch_is_no_better_than_the_head_stops_there",),
    ),
    Mutation(
        "finetune-fits-closer",
        "phase 2 skipped when the head's search kept a penalty over weaker ones that fit the "
        "same images more closely: it runs and is thrown away (a tenth of an MNIST run)",
        ReplaceBody("finetune_fits_closer", "return ''"),
        ("tests/core/test_selection.py::"
         "test_fine_tuning_is_skipped_where_the_heads_search_found_closer_fits_do_not_pay",
         "tests/core/test_finetune_decision.py::"
         "test_fine_tuning_is_skipped_when_the_heads_search_found_closer_fits_do_not_pay"),
    ),
    Mutation(
        "finetune-fits-closer-reads-the-run",
        "the phase-2 decision not given the run's head search: the rule never fires in a run",
        ReplaceLine(r"^(\s*)self\.facts\.record\.head_l2_tried\)\)$", r"\1None))",
                    within="PhaseTrainer._finetune_cannot_win"),
        ("tests/core/test_finetune_decision.py::"
         "test_fine_tuning_is_skipped_when_the_heads_search_found_closer_fits_do_not_pay",),
    ),
    Mutation(
        "finetune-prep-only-when-sure",
        "fine-tuning prepared during phase 1 only when it is sure to run: prepared in every "
        "run, and thrown away where phase 2 is skipped",
        ReplaceLine(r"^(\s*)if \(not finetune or not solved or self.settings.finetune_when != "
                    r"\"always\"\s*$", r"\1if (not finetune or not solved",
                    within="PhaseTrainer._prepare_finetune"),
        ("tests/core/test_finetune_decision.py::"
         "test_a_phase_2_that_may_be_skipped_is_not_prepared_and_leaves_no_layer_trainable",),
    ),
    Mutation(
        "finetune-skip-cannot-win",
        "phase 2 skipped when the head's validation mistakes leave it nothing to win: it runs "
        "and is thrown away",
        ReplaceBody("finetune_cannot_win", "return ''"),
        ("tests/core/test_selection.py::"
         "test_fine_tuning_is_skipped_when_the_heads_mistakes_are_within_the_margin_it_must_win_by",
         "tests/core/test_quality_selection.py::"
         "test_a_head_that_gets_every_validation_image_right_skips_fine_tuning_and_says_so"),
    ),
    Mutation(
        "finetune-first-look",
        "the look at a long first epoch of fine-tuning part of the way: a phase 2 already "
        "clearly losing runs its whole first epoch",
        ReplaceLine(r"^(\s*)if \(stop_when_losing and phase == \"finetune\" and val_data .*$",
                    r"\1if (False and val_data is not None", within="EpochLedger.callbacks"),
        ("tests/core/test_finetune_decision.py::"
         "test_fine_tuning_clearly_losing_at_its_first_look_stops_there_and_keeps_the_head",),
    ),
    Mutation(
        "frozen-runtime-check",
        "the check of ONNX Runtime's frozen pass against TensorFlow on a batch: a runtime whose "
        "output differs fills the feature store",
        ReplaceLine(r"^(\s*)if not same_output\(found, tensorflow_outputs\):\s*$", r"\1if False:",
                    within="frozen_part_runner"),
        ("tests/core/test_onnx_pass.py::"
         "test_a_runtime_that_fails_or_differs_leaves_the_pass_to_tensorflow",),
    ),
    Mutation(
        "asking-order-random",
        "the labelling view's asking order (undecided pictures spread over the features) "
        "switched to random order",
        ReplaceBody("asking_order", """
            open_rows = np.flatnonzero(~np.asarray(decided, dtype=bool))
            return [int(r) for r in np.random.default_rng(len(open_rows)).permutation(open_rows)[:n]]
        """),
        ("tests/core/test_label_asking.py::test_asking_order_beats_random_order_on_digits",),
    ),
    Mutation(
        "label-grey-levels",
        "the labelling proposals never read the pictures' grey levels beside the features",
        ReplaceBody("_pixel_weight", "return None, None"),
        ("tests/core/test_label_pixel_view.py::"
         "test_grey_levels_help_where_the_network_barely_sees_the_classes",
         "tests/core/test_label_pixel_view.py::"
         "test_the_labeller_reads_the_grey_levels_of_the_checked_folder"),
    ),
    Mutation(
        "duplicates-one-core",
        "the duplicate check's batches of pairs checked one after another on one core",
        ReplaceBody("PixelCheck._each_batch", "return [check(batch) for batch in batches]"),
        ("tests/core/test_duplicates.py::"
         "test_batches_of_pairs_checked_a_core_each_give_the_groups_of_one_core",),
    ),
    Mutation(
        "kept-pixels",
        "decoding each image once: the run reads every file again after its scan",
        ReplaceBody("KeptPixels.take", "return None"),
        ("tests/core/test_kept_pixels.py::"
         "test_a_run_on_a_folder_decodes_no_image_after_its_scan",),
    ),
    Mutation(
        "report-map-suspects",
        "the report's map without its suspect crosses (the list and the map disagree again)",
        ReplaceLine(r"^(\s*)crossed = np\.array\(\[path in listed for path in scored\.paths\], "
                    r"dtype=bool\)$",
                    r"\1crossed = np.zeros(len(scored.paths), dtype=bool)",
                    within="_suspects_and_map"),
        ("tests/core/test_report.py::test_the_map_crosses_the_suspects_listed_above_it",),
    ),
    Mutation(
        "auto-trials-as-given",
        "--auto leaves out trials that could only end as the settings as given: it runs them",
        ReplaceBody("ends_as_given", "return ''"),
        ("tests/core/test_quality_selection.py::"
         "test_auto_does_not_run_a_trial_that_could_only_end_as_the_settings_as_given",),
    ),
    Mutation(
        "phase-2-taps-spread",
        "phase 2's model puts the pooled features together from the block taps in the base's "
        "order: the stored taps after the computed ones",
        ReplaceLine(r"^(\s*)pieces\.append\(below\)$",
                    r"\1taps = [*taps, below]", within="_pooled"),
        ("tests/core/test_features.py::"
         "test_phase_2s_model_on_stored_activations_answers_as_the_whole_network_does",),
    ),
    Mutation(
        "export-replaces-silently",
        "an export into a folder holding an earlier one replaces it without being told to",
        ReplaceLine(r"^(\s*)if earlier is not None and not replace:$", r"\1if False:",
                    within="export_model"),
        ("tests/core/test_export.py::"
         "test_exporting_again_replaces_the_previous_export_only_when_told",),
    ),
    Mutation(
        "near-ties-through-the-whole-model",
        "the test look's answers near a tie taken again through a trace of the whole network, "
        "not the frozen part's step the run traced already",
        ReplaceLine(r"^(\s*)if part is None:$", r"\1if True:", within="answers_in_tensorflow"),
        ("tests/core/test_run_fixed_costs.py::test_answers_near_a_tie_come_from_the_traced_"
         "frozen_part_as_the_saved_model_gives_them",),
    ),
    Mutation(
        "another-format-asks-to-replace",
        "another format of the same run treated as an earlier export to replace",
        ReplaceLine(r"^(\s*)if not model_replaced and run is not None and other_formats\(.*$",
                    r"\1if False:", within="earlier_export"),
        ("tests/core/test_export.py::test_another_format_of_the_same_run_joins_the_folder_and_"
         "the_card_describes_both",),
    ),
    Mutation(
        "plain-head-left-at-its-first-look",
        "a kept plain head left where its first look stopped, not solved to its optimum",
        ReplaceLine(r"^(\s*)params, plain_row = fit\(plain, plain_strength, start=looked, .*$",
                    r"\1params = looked", within="search_softmax_head"),
        ("tests/core/test_head_solver.py::test_the_plain_head_is_finished_to_its_optimum_only_"
         "when_it_may_be_kept",),
    ),
    Mutation(
        "plain-head-without-a-first-look",
        "the plain head solved to the end before the standardised strengths are even tried",
        ReplaceLine(r"^(PLAIN_LOOK_GTOL = ).*$", r"\g<1>1e-7"),
        ("tests/core/test_head_solver.py::test_the_plain_head_is_finished_to_its_optimum_only_"
         "when_it_may_be_kept",),
    ),
]


# -- patching ---------------------------------------------------------------------------------
def _functions(tree: ast.Module):
    """(qualified name, node) of every function and method, "Class.method" for methods."""
    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield prefix + child.name, child
                yield from walk(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")
    yield from walk(tree, "")


def _find_function(package: Path, name: str) -> tuple[Path, ast.FunctionDef]:
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [(path, node) for qualified, node in _functions(tree) if qualified == name]
    if len(found) != 1:
        where = ", ".join(str(p.relative_to(package.parent)) for p, _ in found) or "nowhere"
        raise PatchError(f"function {name} must be defined exactly once; found: {where}")
    return found[0]


def _replace_body(package: Path, patch: ReplaceBody) -> Path:
    path, node = _find_function(package, patch.name)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    first = node.body[0].lineno - 1
    indent = re.match(r"\s*", lines[first]).group(0)
    body = textwrap.indent(textwrap.dedent(patch.body).strip() + "\n", indent)
    lines[first:node.end_lineno] = [f"{indent}# mutation_check: body replaced\n", body]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _replace_line(package: Path, patch: ReplaceLine) -> Path:
    pattern = re.compile(patch.pattern)
    if patch.within:
        path, node = _find_function(package, patch.within)
        candidates = [(path, range(node.lineno - 1, node.end_lineno))]
    else:
        candidates = [
            (path, range(len(path.read_text(encoding="utf-8").splitlines())))
            for path in sorted(package.rglob("*.py"))
        ]
    hits = []
    for path, span in candidates:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        hits += [(path, i) for i in span if pattern.match(lines[i].rstrip("\n"))]
    if len(hits) != 1:
        where = ", ".join(f"{p.relative_to(package.parent)}:{i + 1}" for p, i in hits) or "nowhere"
        raise PatchError(f"/{patch.pattern}/ must match exactly one line; matched: {where}")
    path, i = hits[0]
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[i] = pattern.sub(patch.replacement, lines[i].rstrip("\n")) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def apply(mutation: Mutation, src: Path) -> Path:
    """Patch the copy of the source in `src`; return the file changed (checked to compile)."""
    package = src / PACKAGE
    if isinstance(mutation.patch, ReplaceBody):
        path = _replace_body(package, mutation.patch)
    else:
        path = _replace_line(package, mutation.patch)
    compile(path.read_text(encoding="utf-8"), str(path), "exec")
    return path


# -- running ----------------------------------------------------------------------------------
def _environment(src: Path | None) -> dict[str, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    # The copy of src/ has no resources/ or web/ beside it: the checkout's are used (the web
    # page's template and its pinned runtime).
    env.setdefault("FINETUNE_GUI_RESOURCES", str(ROOT / "resources"))
    runtime = ROOT / "web" / "node_modules" / "onnxruntime-web" / "dist"
    if runtime.is_dir():
        env.setdefault("FINETUNE_GUI_WEB_RUNTIME", str(runtime))
    first = [str(src)] if src is not None else [str(ROOT / "src")]
    env["PYTHONPATH"] = os.pathsep.join([*first, *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def _imports_from(env: dict[str, str]) -> Path:
    out = subprocess.run(
        [sys.executable, "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return Path(out.stdout.strip()).resolve()


def run_tests(tests: tuple[str, ...], src: Path | None) -> tuple[int, str, float]:
    """pytest on `tests` with the package imported from `src` (the repository's when None)."""
    env = _environment(src)
    if SHARED_BASE:
        env["FINETUNE_GUI_TEST_PRETRAINED_BASE"] = str(SHARED_BASE)
    expected = (src or ROOT / "src").resolve()
    if not _imports_from(env).is_relative_to(expected):
        raise PatchError(f"{PACKAGE} would not be imported from {expected}")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-rfEs", "-p", "no:cacheprovider", *tests],
        env=env, cwd=ROOT, capture_output=True, text=True,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


PRETRAIN = """
import sys
from pathlib import Path
from finetune_gui.demo import make_shapes_dataset
from tests.training_checks import make_pretrained_base
folder = Path(sys.argv[1])
shapes = make_shapes_dataset(folder / "shapes", per_class=40, size=48, seed=1)
make_pretrained_base(shapes, folder)
"""


def make_shared_pretrained_base(folder: Path) -> Path:
    """The tests' stand-in for ImageNet weights, trained once from the source as it is, so each
    switch-off is caught by the tests that guard it rather than by a damaged fixture."""
    env = _environment(None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["FINETUNE_GUI_CACHE_DIR"] = str(folder / "cache")
    subprocess.run([sys.executable, "-c", PRETRAIN, str(folder)], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    return folder / "mobilenetv2_shapes_48.weights.h5"


def _first_failure(output: str) -> str:
    """The failed test and the first line of what it asserted."""
    lines = output.splitlines()
    test = next((line for line in lines if line.startswith(("FAILED", "ERROR"))), "(no FAILED line)")
    said = next((line[1:].strip() for line in lines if line.startswith("E ")), "")
    return f"{test}\n    {said[:200]}" if said else test


def check(mutation: Mutation, unmutated: bool) -> str:
    """'caught', 'survived' or 'error', printing why."""
    if unmutated:
        code, output, took = run_tests(mutation.tests, None)
        if code != 0:
            print(f"  error: its tests fail without the switch-off ({took:.0f} s)\n"
                  f"{textwrap.indent(output[-3000:], '    ')}")
            return "error"
        print(f"  unmutated: tests pass ({took:.0f} s)")
    with tempfile.TemporaryDirectory(prefix="mutation-check-") as scratch:
        src = Path(scratch) / "src"
        shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        changed = apply(mutation, src)
        print(f"  patched {changed.relative_to(src)}")
        code, output, took = run_tests(mutation.tests, src)
    if code == 1:
        print(f"  caught in {took:.0f} s: {_first_failure(output)}")
        return "caught"
    if code == 0 and re.search(r"\d+ skipped", output):
        skips = [line for line in output.splitlines() if line.startswith("SKIPPED")]
        print(f"  error: its tests were skipped, so they could not catch it ({took:.0f} s)\n"
              + textwrap.indent("\n".join(skips) or output[-1000:], "    "))
        return "error"
    if code == 0:
        print(f"  SURVIVED: {len(mutation.tests)} test(s) passed with it switched off ({took:.0f} s)")
        return "survived"
    print(f"  error: pytest exit code {code} ({took:.0f} s)\n{textwrap.indent(output[-3000:], '    ')}")
    return "error"


def dry_run(chosen: list[Mutation]) -> int:
    """Apply each patch to a fresh copy and print the unified diff; 2 if one does not apply."""
    import difflib

    failed = 0
    for mutation in chosen:
        with tempfile.TemporaryDirectory(prefix="mutation-check-") as scratch:
            src = Path(scratch) / "src"
            shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
            try:
                changed = apply(mutation, src)
            except PatchError as exc:
                print(f"{mutation.name}: does not apply: {exc}")
                failed += 1
                continue
            relative = changed.relative_to(src)
            before = (ROOT / "src" / relative).read_text(encoding="utf-8").splitlines()
            after = changed.read_text(encoding="utf-8").splitlines()
            print(f"{mutation.name}:")
            print("\n".join(difflib.unified_diff(before, after, str(relative), str(relative),
                                                 n=1, lineterm="")))
    return 2 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="only these switch-offs (default: all)")
    parser.add_argument("--list", action="store_true", help="list the switch-offs and exit")
    parser.add_argument("--dry-run", action="store_true",
                        help="apply each patch to a copy and print the change; run no tests")
    parser.add_argument("--unmutated", action="store_true",
                        help="first run each switch-off's tests on the source as it is")
    args = parser.parse_args(argv)
    by_name = {m.name: m for m in MUTATIONS}
    unknown = [n for n in args.names if n not in by_name]
    if unknown:
        parser.error(f"unknown switch-off(s) {unknown}; choose from {sorted(by_name)}")
    chosen = [by_name[n] for n in args.names] or MUTATIONS
    if args.list:
        for m in chosen:
            print(f"{m.name}: {m.switches_off}\n    " + "\n    ".join(m.tests))
        return 0
    if args.dry_run:
        return dry_run(chosen)
    global SHARED_BASE
    base_folder = Path(tempfile.mkdtemp(prefix="mutation-check-base-"))
    try:
        started = time.monotonic()
        SHARED_BASE = make_shared_pretrained_base(base_folder)
        print(f"pretrained stand-in made from the source as it is ({time.monotonic() - started:.0f} s)")
        return _check_all(chosen, args.unmutated)
    finally:
        shutil.rmtree(base_folder, ignore_errors=True)


def _check_all(chosen: list[Mutation], unmutated: bool) -> int:
    outcomes = {}
    for mutation in chosen:
        print(f"{mutation.name}: {mutation.switches_off}", flush=True)
        try:
            outcomes[mutation.name] = check(mutation, unmutated)
        except PatchError as exc:
            print(f"  error: the switch-off no longer applies: {exc}")
            outcomes[mutation.name] = "error"
        sys.stdout.flush()
    caught = sum(o == "caught" for o in outcomes.values())
    print(f"\n{caught} of {len(outcomes)} switch-offs caught.")
    for name, outcome in outcomes.items():
        if outcome != "caught":
            print(f"  {name}: {outcome}")
    if any(o == "error" for o in outcomes.values()):
        return 2
    return 0 if caught == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
