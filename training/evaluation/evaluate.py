"""Detection quality on labelled pictures: the accuracy figures the tutorial never showed.

Every model is measured one way (:mod:`training.evaluation.validator`): its boxes on every picture
matched once to the labelled faces. A single-face model gives one box per picture: a picture counts
as a correct detection (true positive) when it has a face, the score is above the threshold and the
box overlaps the labelled one by at least ``iou_threshold`` (IoU); a confident box in the wrong
place is both a false positive and a false negative, as in the usual object-detection convention.

A multi-face model (and the classic finder asked for every face) is measured over every labelled
face: AP50 (average precision at IoU 0.5, as PASCAL VOC / WIDER FACE compute it, from every box it
gives), and precision, recall and F1 over the faces at its score threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

from training.data.dataset import Sample
from training.evaluation.validator import measure, predict_finder, predict_model
from training.inference.detector import Detector


def evaluate_model(
    detector: Detector,
    samples: Sequence[Sample],
    *,
    threshold: float | None = None,
    iou_threshold: float = 0.5,
) -> dict:
    """Run ``detector`` on every sample's picture and measure how well it finds the labelled faces.

    Returns a JSON-serialisable dict: ``images``, ``faces``, ``no_faces``, ``detected`` (score above
    the threshold), ``true_positives``, ``false_positives``, ``false_negatives``, ``true_negatives``,
    ``precision``, ``recall``, ``f1``, ``class_accuracy`` (face / no face right, ignoring the box),
    ``mean_iou`` (over the pictures with a face, of the predicted box whatever its score),
    ``false_alarms`` (pictures without a face where one was reported), ``ms_per_picture``,
    ``threshold`` (the detector's own, stored with the model, unless given) and ``iou_threshold``.
    Ratios with nothing to count are 0.0.

    A multi-face model (``detector.multi_face``) is measured over every face: it adds ``ap50`` (``ap``
    at another IoU threshold), ``face_pictures`` and ``multi_face``, ``faces`` counts every labelled
    face and ``mean_iou`` is of the faces found (:class:`training.evaluation.validator.Result`).

    Raises:
        ValueError: no samples.
        training.data.dataset.DataError: a picture cannot be read.
    """
    threshold = detector.threshold if threshold is None else threshold
    return measure(predict_model(detector, samples), threshold, iou_threshold).as_dict()


def evaluate_finder(
    finder: object,
    samples: Sequence[Sample],
    *,
    threshold: float = 0.5,
    iou_threshold: float = 0.5,
    every_face: bool = False,
) -> dict:
    """:func:`evaluate_model` for a finder whose ``detect(frame)`` gives a Detection or None (no face):
    the classic finder, a pretrained detector. Same figures, so they compare side by side.

    ``every_face``: measure every face its ``detect_all(frame)`` finds, as a multi-face model is
    (AP50 and F1 over faces).
    """
    return measure(predict_finder(finder, samples, every_face), threshold, iou_threshold).as_dict()


def format_table(metrics: dict) -> str:
    """A short human-readable table of :func:`evaluate_model`'s result (every face: AP and counts over faces)."""
    iou = metrics["iou_threshold"]
    every_face = bool(metrics.get("multi_face"))
    if every_face:
        pictures = (f"{metrics['images']}  ({metrics['faces']} faces in {metrics['face_pictures']} pictures, "
                    f"{metrics['no_faces']} without a face)")
    else:
        pictures = f"{metrics['images']}  ({metrics['faces']} with a face, {metrics['no_faces']} without)"
    rows = [("pictures", pictures)]
    if every_face:
        rows.append((f"AP{round(iou * 100)}" if iou * 100 == round(iou * 100) else f"AP@{iou:g}",
                     f"{metrics[ap_key(metrics)]:.3f}  (every face, every box: PASCAL VOC / WIDER FACE)"))
    else:
        rows.append(("class accuracy", f"{metrics['class_accuracy']:.3f}  (face / no face right)"))
    rows += [
        ("precision", f"{metrics['precision']:.3f}" + ("  (boxes on a face)" if every_face else "")),
        ("recall", f"{metrics['recall']:.3f}" + ("  (faces found)" if every_face else "")),
        ("F1", f"{metrics['f1']:.3f}"),
        ("mean IoU", f"{metrics['mean_iou']:.3f}  "
                     + ("(of the faces found)" if every_face else "(pictures with a face, whatever the score)")),
    ]
    if every_face:
        rows += [("found / false / missed",
                  f"{metrics['true_positives']} / {metrics['false_positives']} / {metrics['false_negatives']}"),
                 ("false alarms", f"{metrics['false_alarms']} of {metrics['no_faces']} pictures without a face"),
                 ("rule", f"a face when score > {metrics['threshold']:.3g}; box right when IoU >= {iou:g}, "
                          "one box a face")]
    else:
        rows += [("TP / FP / FN / TN", f"{metrics['true_positives']} / {metrics['false_positives']} / "
                                       f"{metrics['false_negatives']} / {metrics['true_negatives']}"),
                 ("rule", f"face when score > {metrics['threshold']:.3g}; box right when IoU >= {iou:g}")]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def ap_key(metrics: dict) -> str:
    """The key of a multi-face result's AP: ``ap50`` at IoU 0.5, ``ap`` at any other."""
    return "ap50" if "ap50" in metrics else "ap"


def verdict(model: dict, classic: dict | None, real: dict | None = None, real_classic: dict | None = None,
            pretrained_start: bool = False) -> str:
    """Where a freshly trained model stands, in words: its test figures beside the classic finder's
    on the same pictures, and what usually helps when it is behind. A multi-face model is compared by AP50,
    a single-face one by F1.

    ``real`` / ``real_classic``: both on real photographs no training set uses (training.evaluation.realphotos). A
    model is only called better than the classic finder when it is on those too: the test split shows
    the training pictures' look, and a model can learn that look instead of faces. ``pretrained_start``:
    the model started from the pretrained face detector (the advice then is about the pictures)."""
    every_face = bool(model.get("multi_face"))
    key = ap_key(model) if every_face else "f1"

    def figures(m: dict) -> str:
        return f"AP50 {m[key]:.2f}, F1 {m['f1']:.2f}" if every_face else f"F1 {m['f1']:.2f}, mean IoU {m['mean_iou']:.2f}"

    line = (f"Your model: {figures(model)} over {model['faces']} faces in {model['images']} test pictures"
            if every_face else f"Your model: {figures(model)} on {model['images']} test pictures")
    if not classic or key not in classic:
        return line + "." + _real_photos_verdict(real, real_classic)
    line += f"; classic finder: {figures(classic)}."
    if model[key] >= classic[key]:
        return line + _better_or_only_on_test(real, real_classic, pretrained_start)
    if every_face:
        more_faces, few_no_faces = ("more labelled faces (several people, moving, in changing light)",
                                    model["no_faces"] < model["images"] / 5)
    else:
        more_faces, few_no_faces = ("more pictures of your face (move, turn, change the light)",
                                    model["no_faces"] < model["faces"] / 2)
    return line + _advice(model, more_faces, few_no_faces) + _real_photos_verdict(real, real_classic)


def _real_photos_verdict(real: dict | None, real_classic: dict | None) -> str:
    """The sentence on real photographs: AP50 over every face, beside the classic finder's."""
    if not real or "ap50" not in real:
        return ""
    text = (f" On real photographs no one trained on ({real['faces']} faces in {real['frames']} frames): "
            f"AP50 {real['ap50']:.2f}")
    return text + (f" (classic finder {real_classic['ap50']:.2f})." if real_classic else ".")


def _better_or_only_on_test(real: dict | None, real_classic: dict | None, pretrained_start: bool = False) -> str:
    """"Better than the classic finder", unless real photographs say otherwise."""
    if real and real_classic and "ap50" in real and real["ap50"] < real_classic["ap50"]:
        helps = ("add pictures from your own webcam (your room, near and far, several people) and fewer pasted "
                 "or look-alike ones" if pretrained_start else
                 "train from the pretrained face detector (backbone blazeface) and add pictures from your own webcam")
        return (" It does better than the classic finder on your test pictures, but not on real photographs"
                + _real_photos_verdict(real, real_classic).replace(" On real photographs", "") +
                f" It has learned the look of your training pictures more than faces: {helps}.")
    return " Your model does better than the classic finder." + _real_photos_verdict(real, real_classic)


def _advice(model: dict, more_faces: str, few_no_faces: bool) -> str:
    """What usually helps a model that is behind the classic finder."""
    advice = []
    if model["faces"] < 300:
        advice.append(more_faces)
    if few_no_faces or model.get("false_alarms", 0):
        advice.append("more pictures without a face")
    advice.append("more epochs")
    return " Your model is worse than the classic finder; what usually helps: " + ", ".join(advice) + "."
