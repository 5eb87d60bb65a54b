"""AP50 as PASCAL VOC / WIDER FACE compute it (training.evaluation.metrics.average_precision), checked on cases
worked out by hand and against an independent translation of the VOC evaluation code."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation.metrics import FaceMatches, average_precision

A = (0.0, 0.0, 10.0, 10.0)
B = (20.0, 20.0, 30.0, 30.0)
C = (40.0, 0.0, 50.0, 10.0)
FAR = (100.0, 100.0, 110.0, 110.0)
NEAR_A = (0.0, 0.0, 10.0, 8.0)  # IoU 0.8 with A
HALF_A = (5.0, 0.0, 15.0, 10.0)  # IoU 1/3 with A: not a hit at 0.5


def test_perfect_detections_give_one():
    assert average_precision([[(0.9, A), (0.8, B)], [(0.7, C)]], [[A, B], [C]]) == pytest.approx(1.0)


def test_one_face_missed_caps_recall():
    # Two of three faces found, no false box: precision 1 up to recall 2/3, then nothing.
    assert average_precision([[(0.9, A), (0.8, B)], []], [[A, B], [C]]) == pytest.approx(2 / 3)


def test_a_second_box_on_a_found_face_is_a_false_positive():
    # Sorted: 0.9 A (tp), 0.8 NEAR_A (duplicate: fp), 0.7 B (tp). Precision at recall 1/2 is 1, at
    # recall 1 it is 2/3: AP = 1/2 * 1 + 1/2 * 2/3.
    detections = [[(0.9, A), (0.8, NEAR_A), (0.7, B)]]
    assert average_precision(detections, [[A, B]]) == pytest.approx(0.5 + 1 / 3)
    matches = FaceMatches(detections, [[A, B]])
    assert matches.true_positive.tolist() == [True, False, True]


def test_a_duplicate_above_the_right_box_and_a_false_box_first():
    # 0.95 FAR (fp), 0.9 A (tp), 0.8 B (tp): precisions 0, 1/2, 2/3 at recalls 0, 1/2, 1; made monotone
    # from the right they are 2/3 throughout: AP = 2/3.
    assert average_precision([[(0.95, FAR), (0.9, A), (0.8, B)]], [[A, B]]) == pytest.approx(2 / 3)


def test_a_box_that_overlaps_too_little_is_not_a_hit():
    assert average_precision([[(0.9, HALF_A)]], [[A]]) == 0.0
    assert average_precision([[(0.9, HALF_A)]], [[A]], iou_threshold=0.3) == pytest.approx(1.0)


def test_boxes_count_only_in_their_own_picture():
    # The box is right for picture 1's face, but it was found in picture 0.
    assert average_precision([[(0.9, A)], []], [[], [A]]) == 0.0


def test_equal_scores_make_one_step_whatever_their_order():
    # One face, a right box and a false box with the same score: at that threshold precision 1/2,
    # recall 1, so AP is 1/2 in both orders (a per-box curve would give 1 or 1/2 by order).
    first = average_precision([[(0.5, A), (0.5, FAR)]], [[A]])
    second = average_precision([[(0.5, FAR), (0.5, A)]], [[A]])
    assert first == second == pytest.approx(0.5)


def test_no_faces_and_no_detections():
    assert average_precision([[(0.9, A)]], [[]]) == 0.0  # nothing to find
    assert average_precision([[]], [[]]) == 0.0
    assert average_precision([[], []], [[A], [B]]) == 0.0  # nothing found
    with pytest.raises(ValueError, match="2 pictures"):
        average_precision([[], []], [[A]])


def test_the_threshold_figures_and_the_best_f1_threshold():
    matches = FaceMatches([[(0.9, A), (0.6, FAR), (0.4, B)], [(0.3, C)]], [[A, B], [C]])
    assert matches.counts(0.5) == {"true_positives": 1, "false_positives": 1, "false_negatives": 2, "detected": 2,
                                   "precision": 0.5, "recall": pytest.approx(1 / 3), "f1": pytest.approx(0.4)}
    threshold, f1 = matches.best_threshold()
    # Everything above 0.3 kept: 3 hits, 1 false: P 3/4, R 1 -> F1 6/7, the best; midpoint of 0 and 0.3.
    assert f1 == pytest.approx(6 / 7)
    assert threshold == pytest.approx(0.15)


# ---------------------------------------------------------------------------------------------- VOC


def _voc_ap(detections, truths, ovthresh=0.5):
    """voc_eval.py (py-faster-rcnn) translated: a loop per detection, its own IoU, VOC's 2010+ AP.
    As the brief asks, a detection goes to the unmatched face it overlaps most."""
    image_ids, confidence, bb = [], [], []
    for i, found in enumerate(detections):
        for score, box in found:
            image_ids.append(i)
            confidence.append(score)
            bb.append(box)
    npos = sum(len(t) for t in truths)
    used = [[False] * len(t) for t in truths]
    sorted_ind = np.argsort(-np.array(confidence), kind="stable")
    nd = len(sorted_ind)
    tp, fp = np.zeros(nd), np.zeros(nd)
    for d in range(nd):
        k = sorted_ind[d]
        box = bb[k]
        ovmax, jmax = -np.inf, -1
        for j, g in enumerate(truths[image_ids[k]]):
            if used[image_ids[k]][j]:
                continue
            iw = max(min(box[2], g[2]) - max(box[0], g[0]), 0.0)
            ih = max(min(box[3], g[3]) - max(box[1], g[1]), 0.0)
            inter = iw * ih
            uni = (box[2] - box[0]) * (box[3] - box[1]) + (g[2] - g[0]) * (g[3] - g[1]) - inter
            if inter / uni > ovmax:
                ovmax, jmax = inter / uni, j
        if ovmax >= ovthresh:
            tp[d] = 1.0
            used[image_ids[k]][jmax] = True
        else:
            fp[d] = 1.0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def test_matches_the_voc_code_on_random_crowded_pictures():
    rng = np.random.default_rng(7)
    for _ in range(40):
        detections, truths = [], []
        for _ in range(int(rng.integers(1, 6))):
            faces = []
            for _ in range(int(rng.integers(0, 5))):
                x, y = rng.uniform(0, 80, 2)
                w, h = rng.uniform(8, 30, 2)
                faces.append((x, y, x + w, y + h))
            found = []
            for face in faces:  # boxes near the faces (some off, some twice) and some anywhere
                for _ in range(int(rng.integers(0, 3))):
                    jitter = rng.normal(0, 3, 4)
                    found.append((float(rng.uniform()), tuple(np.array(face) + jitter)))
            for _ in range(int(rng.integers(0, 3))):
                x, y = rng.uniform(0, 80, 2)
                found.append((float(rng.uniform()), (x, y, x + 15, y + 15)))
            detections.append(found)
            truths.append(faces)
        if not sum(len(t) for t in truths):
            continue
        assert average_precision(detections, truths) == pytest.approx(_voc_ap(detections, truths), abs=1e-12)


def test_one_iou_for_arrays_row_by_row_or_every_pair():
    """training.core.boxes.box_iou is the one array IoU: row by row, every pair by broadcasting (iou_matrix), corners
    in any order, 0 for empty boxes; the matching, NMS and the live tracks all use it."""
    from training.core.boxes import box_iou, iou_matrix
    from training.evaluation import metrics

    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0], [10, 10, 0, 0]], float)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    assert box_iou(a, b) == pytest.approx([50 / 150, 0.0, 1.0])  # the third: corners given the other way round
    matrix = iou_matrix(a, b)
    assert matrix.shape == (3, 3) and np.diag(matrix) == pytest.approx(box_iou(a, b))
    assert matrix[0] == pytest.approx([50 / 150, 1.0, 1.0])
    assert box_iou(a[0], b[:2]) == pytest.approx([50 / 150, 1.0])  # one box against several
    assert metrics.box_iou is box_iou
