"""Heat-maps for `--explain`: where in a face crop the model's p_fake comes from.

Grad-CAM on the last convolutional layer where the model can be rebuilt in Keras (a SavedModel
from tf_keras, with keras_metadata.pb: the bundled model), occlusion sensitivity for any other
SavedModel, so every model gets a map. Both return one map per crop, in [0, 1], crop-sized.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import cv2
import numpy as np

from detector.scan.model import Model
from detector.runtime import tf

log = logging.getLogger("detector")

OCCLUSION_PATCH = 0.25  # the grey square slid over the crop, as a share of its side
OCCLUSION_STRIDE = 0.125
OCCLUSION_FILL = 127
CONV_LAYERS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")

HeatMapper = Callable[[np.ndarray], np.ndarray]  # N×S×S×3 uint8 crops → N×S×S maps in [0, 1]


class Explainer:
    """Heat-maps for one loaded model; the Keras rebuild is tried once, on first use."""

    def __init__(self, model: Model):
        self.model = model
        self._mapper: HeatMapper | None = None
        self.method = ""

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        if self._mapper is None:
            grad_cam = _grad_cam(self.model)
            self.method, self._mapper = ("grad-cam", grad_cam) if grad_cam else ("occlusion", self._occlusion)
        if len(crops) == 0:
            return np.zeros((0, *crops.shape[1:3]), np.float32)
        return self._mapper(crops)

    def _occlusion(self, crops: np.ndarray) -> np.ndarray:
        """How much p_fake drops where a grey square hides that part of the crop (Zeiler & Fergus)."""
        size = crops.shape[1]
        patch, stride = max(1, round(size * OCCLUSION_PATCH)), max(1, round(size * OCCLUSION_STRIDE))
        starts = list(range(0, size - patch + 1, stride))
        maps = np.zeros(crops.shape[:3], np.float32)
        for n, crop in enumerate(crops):
            hidden = np.repeat(crop[None], len(starts) ** 2, axis=0)
            boxes = [(y, x) for y in starts for x in starts]
            for k, (y, x) in enumerate(boxes):
                hidden[k, y:y + patch, x:x + patch] = OCCLUSION_FILL
            base = self.model.predict(crop[None])[0]
            drops = np.maximum(base - self.model.predict(hidden, batch_size=32), 0.0)
            counts = np.zeros(crop.shape[:2], np.float32)
            for (y, x), drop in zip(boxes, drops):
                maps[n, y:y + patch, x:x + patch] += drop
                counts[y:y + patch, x:x + patch] += 1
            maps[n] /= np.maximum(counts, 1)
        return _normalise(maps)


def _grad_cam(model: Model) -> HeatMapper | None:
    """Grad-CAM through the Keras model behind the SavedModel, or None where it cannot be rebuilt."""
    if not (model.path / "keras_metadata.pb").is_file():
        return None
    try:
        import tf_keras as keras

        network = keras.models.load_model(str(model.path), compile=False)
        forward = _conv_and_output(network)
    except Exception as exc:  # any model keras cannot rebuild still gets occlusion maps
        log.debug("Grad-CAM unavailable for %s (%s: %s); using occlusion", model.path, type(exc).__name__, exc)
        return None
    if forward is None:
        return None
    probe = model.to_input(np.random.default_rng(0).integers(0, 256, (2, model.input_size, model.input_size, 3),
                                                             np.uint8))
    try:
        agrees = np.allclose(forward(tf.constant(probe))[1], network(probe, training=False), atol=1e-4)
    except Exception as exc:  # a graph the walk cannot replay: occlusion, never a failed scan
        log.debug("Grad-CAM: %s cannot be replayed around its last convolution (%s); using occlusion", model.path, exc)
        return None
    if not agrees:
        log.debug("Grad-CAM: %s is not replayed exactly around its last convolution; using occlusion", model.path)
        return None

    def grad_cam(crops: np.ndarray) -> np.ndarray:
        batch = tf.constant(model.to_input(crops))
        with tf.GradientTape() as tape:
            conv, out = forward(batch)
            score = _fake_column(model, out)
        weights = tf.reduce_mean(tape.gradient(score, conv), axis=(1, 2), keepdims=True)
        cams = tf.nn.relu(tf.reduce_sum(weights * conv, axis=-1)).numpy()
        size = crops.shape[1]
        return _normalise(np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_LINEAR) for c in cams]))

    return grad_cam


def _conv_and_output(network) -> Callable | None:
    """A function image batch → (last conv layer's output, model output), looking one level into a
    nested backbone model, whose outer graph is replayed around it; the caller checks it agrees."""
    def last_conv(layers):
        return next((layer for layer in reversed(layers) if type(layer).__name__ in CONV_LAYERS), None)

    import tf_keras as keras

    conv = last_conv(network.layers)
    if conv is not None:
        inner = keras.Model(network.inputs, [conv.output, network.output])
        return lambda batch: inner(batch, training=False)
    nested = [layer for layer in network.layers if isinstance(layer, keras.Model) and last_conv(layer.layers)]
    if not nested or any(len(layer.inbound_nodes) != 1 for layer in network.layers):
        return None  # no backbone to look into, or a layer called twice: not a graph walked once
    backbone = nested[-1]
    inner = keras.Model(backbone.inputs, [last_conv(backbone.layers).output, backbone.output])

    def forward(batch):
        """The outer graph layer by layer (network.layers is in topological order), so heads that
        branch and merge again (the bundled model's two) are applied as the network applies them."""
        values, conv_out = {}, None
        for layer in network.layers:
            if isinstance(layer, keras.layers.InputLayer):
                values[layer.name] = batch
                continue
            parents = layer.inbound_nodes[0].inbound_layers
            args = [values[parent.name] for parent in (parents if isinstance(parents, list) else [parents])]
            x = args[0] if len(args) == 1 else args
            if layer is backbone:
                conv_out, values[layer.name] = inner(x, training=False)
            else:
                values[layer.name] = layer(x, training=False)
        return conv_out, values[network.output_names[0]]

    return forward


def _fake_column(model: Model, out):
    out = tf.reshape(out, (tf.shape(out)[0], -1))
    return out[:, 0] if model.contract.output == "sigmoid" else out[:, model.contract.fake_index]


def _normalise(maps: np.ndarray) -> np.ndarray:
    """Each map scaled to peak at 1 (an all-zero map stays zero)."""
    peaks = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
    return (maps / np.where(peaks > 0, peaks, 1)).astype(np.float32)


def overlay(crop: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The crop with its heat-map blended over it in the JET colours (RGB uint8)."""
    colours = cv2.cvtColor(cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(crop, 1 - alpha, colours, alpha, 0)
