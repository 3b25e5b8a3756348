"""The shape of a convolutional network: which layer starts a stage, where residual
blocks skip, and the image side at every layer. Pure arithmetic, shared by the config's
validation (a stage count the depth cannot hold, a kernel bigger than the image) and
the engine (gradtui.engine.cnn), so the two cannot disagree.

Layers pair into blocks from the top: with an odd depth, layer 0 is a stem and layers
1..depth-1 form (depth-1)/2 pairs; with an even depth every layer is in a pair. Pair p
of P belongs to stage floor(p * stages / P); the first layer of a stage's first pair
has stride 2 (the others stride 1), so the plain and residual nets of one config have
the same convolutions and a residual switch carries every weight over. With
``residual``, the second layer of each pair adds the pair's input: as it is (identity)
when channels and side match, else through a 1x1 projection of the same stride.
"""

from __future__ import annotations

from dataclasses import dataclass

KERNEL = 3
IMAGE_SIDES = {"digits": 8}
IMAGE_CHANNELS = 1


@dataclass(frozen=True)
class ConvLayer:
    """One 3x3 convolution: channels and square sides in and out, stride, and its skip."""

    c_in: int
    c_out: int
    side_in: int
    side_out: int
    stride: int
    skip: str  # "none", "identity" or "projection"
    source: int  # the layer whose output the skip adds (-1: the image); -1 when no skip


def image_side(cfg) -> int:
    """The side of the config's square input images."""
    return IMAGE_SIDES.get(cfg.data.task, cfg.data.image_size)


def stride_two(side: int) -> int:
    """A same-padded 3x3 (or 1x1) convolution of stride 2 maps side n to ceil(n / 2)."""
    return (side - 1) // 2 + 1


def stage_starts(depth: int, stages: int) -> list[int]:
    """Indices of the layers that open stages 1..stages-1 (stride 2)."""
    stem, pairs = depth % 2, depth // 2
    starts, previous = [], 0
    for p in range(pairs):
        stage = p * stages // pairs
        if stage != previous:
            starts.append(stem + 2 * p)
            previous = stage
    return starts


def plan(depth: int, width: int, stages: int, residual: bool, side: int, channels: int = IMAGE_CHANNELS) -> list[ConvLayer]:
    """Every convolution of the network, input to output (assumes :func:`problem` found none)."""
    strided = set(stage_starts(depth, stages))
    layers, c, s = [], channels, side
    for l in range(depth):
        stride = 2 if l in strided else 1
        s_out = stride_two(s) if stride == 2 else s
        layers.append(ConvLayer(c, width, s, s_out, stride, "none", -1))
        c, s = width, s_out
    if residual:
        for l in range(depth % 2 + 1, depth, 2):
            first = layers[l - 1]
            same = first.c_in == width and first.stride == 1
            layers[l] = ConvLayer(width, width, layers[l].side_in, layers[l].side_out, 1,
                                  "identity" if same else "projection", l - 2)
    return layers


def problem(depth: int, stages: int, side: int) -> str | None:
    """Why a network of this depth and stage count cannot work on side x side images, or None."""
    pairs = depth // 2
    if stages > 1 and stages > pairs:
        return (f"model.stages = {stages} needs model.depth >= {2 * stages}: each stage starts at a pair "
                f"of layers (a residual block), and depth {depth} holds {pairs}; "
                f"allowed for this depth: 1 to {max(pairs, 1)}")
    final = side
    for _ in range(stages - 1):
        final = stride_two(final)
    if final < KERNEL:
        return (f"the {side}x{side} images shrink to {final}x{final} after {stages - 1} stride-2 step(s), "
                f"smaller than the {KERNEL}x{KERNEL} kernel: use model.stages <= {max_stages(side)}")
    return None


def max_stages(side: int) -> int:
    """The most stages whose last still sees at least a kernel-sized image."""
    stages = 1
    while stride_two(side) >= KERNEL:
        side = stride_two(side)
        stages += 1
    return stages


def hidden_fan_in(model) -> int:
    """Fan-in of a hidden-to-hidden weight: width for an MLP or RNN, 3*3*width for a convolution."""
    return KERNEL * KERNEL * model.width if model.kind == "cnn" else model.width
