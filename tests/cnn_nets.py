"""Small CNN experiments shared by the CNN tests: a few channels, few pixels, float64."""

from __future__ import annotations

import gradtui

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "linear")
ARCHITECTURES = {"plain": {}, "batchnorm": {"model.batchnorm": True}, "residual": {"model.residual": True},
                 "batchnorm+residual": {"model.batchnorm": True, "model.residual": True}}
# digits: depth 4 in 2 stages (blocks 0-1 projecting the image's 1 channel, 2-3 projecting the
# stride-2 step); shapes: depth 5 (a stem, then an identity block and a stride-2 projected block).
TASKS = {"digits": {"data.task": "digits", "model.depth": 4, "data.samples": 200},
         "shapes": {"data.task": "shapes", "model.depth": 5, "data.image_size": 6, "data.samples": 60}}


def cnn_config(activation="tanh", arch="plain", task="digits", **extra):
    overrides = {
        "model.kind": "cnn", "model.width": 3, "model.stages": 2, "model.activation": activation,
        "model.init": "xavier_normal", "model.init_gain": 1.5, "model.bias_std": 0.3,
        "train.dtype": "float64", "train.batch_size": 4,
        **ARCHITECTURES[arch], **TASKS[task], **extra,
    }
    return gradtui.load_config("vanishing-sigmoid").with_overrides(overrides)


def cnn_experiment(activation="tanh", arch="plain", task="digits", **extra):
    return gradtui.Experiment(cnn_config(activation, arch, task, **extra))
