"""The translation protocols: paired (Pix2Pix), outputs for the test inputs scored against their targets;
unpaired (CycleGAN), each direction scored on what it should change and what it should keep.

Paired:

test      L1, MSE, PSNR, SSIM of the outputs against the true targets ([0, 1] pixels)
baseline  the same for the task's naive answer (the mean image, bicubic upsampling, the mean-filled hole)
samples   domain FID/KID/precision/recall of the outputs against the real test images, and the classes
          they cover (the sample protocol: are the outputs plausible images of the domain?)
semantic  the domain classifier's accuracy on the outputs against the true labels, next to its accuracy
          on the real targets (the ceiling) and on the baseline: does the output keep what the input was?
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from aegan.data.tasks import naive_baseline, sobel_edges, task
from aegan.metrics.evaluate import EvaluationInputs, class_logits, feature_scores, generated_metrics, image_features
from aegan.metrics.reconstruction import mean_quality
from aegan.models.inference import batched


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean())


def paired_metrics(
    module: torch.nn.Module,
    test: dict[str, torch.Tensor],
    train_images: torch.Tensor,
    data: DictConfig,
    inputs: EvaluationInputs,
    evaluation: DictConfig,
) -> dict[str, Any]:
    batch_size = int(evaluation.batch_size)
    outputs = batched(module.translate, test["inputs"], module, batch_size)
    baseline = naive_baseline(data, train_images)(test["inputs"])
    targets = test["images"].float()
    metrics: dict[str, Any] = {
        "test": {**mean_quality([(outputs, targets)]), "n": len(targets)},
        "baseline": {**mean_quality([(baseline, targets)]), "name": task(data).baseline_name},
    }
    n_real = len(next(iter(inputs.real_features.values())))
    features = image_features(outputs, inputs, evaluation, "translations")  # once, for FID and the labels
    first = {name: f[:n_real] for name, f in features.items()}
    metrics.update(generated_metrics(outputs[:n_real], inputs, evaluation, "translations", features=first))
    labels = test.get("labels")
    if labels is not None and inputs.classifier.judges_classes:
        logits = {
            "outputs": class_logits(outputs, inputs, evaluation, features),
            "targets": class_logits(targets, inputs, evaluation),
            "baseline": class_logits(baseline, inputs, evaluation),
        }
        metrics["semantic"] = {name: _accuracy(scores, labels) for name, scores in logits.items()}
    return metrics


def cycle_metrics(
    module: torch.nn.Module,
    test: dict[str, torch.Tensor],
    train_images: torch.Tensor,  # unused: a shared signature (PROTOCOLS)
    data: DictConfig,
    inputs: EvaluationInputs,
    evaluation: DictConfig,
) -> dict[str, Any]:
    batch_size = int(evaluation.batch_size)
    class_a, class_b = (int(c) for c in data.domains)
    directions = {
        "a_to_b": (test["inputs"].float(), module.translate, module.translate_back, class_b),
        "b_to_a": (test["images"].float(), module.translate_back, module.translate, class_a),
    }
    metrics: dict[str, Any] = {}
    for name, (source, there, back, target_class) in directions.items():
        outputs = batched(there, source, module, batch_size)
        returned = batched(back, outputs, module, batch_size)
        real = test["images"] if name == "a_to_b" else test["inputs"]
        edges_in, edges_out = (
            sobel_edges(source, float(data.edge_threshold)),
            sobel_edges(outputs, float(data.edge_threshold)),
        )
        target = torch.full((len(source),), target_class)
        features = image_features(outputs, inputs, evaluation, f"{name} outputs")  # once, for FID and the class
        metrics[name] = {
            "success": _accuracy(class_logits(outputs, inputs, evaluation, features), target),
            "baseline_success": _accuracy(class_logits(source, inputs, evaluation), target),
            "cycle_l1": float(((returned - source).abs() / 2).mean()),
            "shape": mean_quality([(edges_out, edges_in)])["ssim"],
            "samples": feature_scores(
                outputs, inputs, evaluation, f"{name} outputs", real=real.float(), features=features
            ),
            "n": len(source),
        }
    metrics["test"] = {"success": (metrics["a_to_b"]["success"] + metrics["b_to_a"]["success"]) / 2}
    metrics["test"]["cycle_l1"] = (metrics["a_to_b"]["cycle_l1"] + metrics["b_to_a"]["cycle_l1"]) / 2
    return metrics


# The protocol for each pairing a translation family declares (models/base.py `pairing`).
PROTOCOLS = {"paired": paired_metrics, "unpaired": cycle_metrics}
