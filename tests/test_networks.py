"""The detector networks: EfficientNet-Lite0 with converted ImageNet weights, EfficientNetV2-B0,
and the contract both keep (RGB in [0, 1] named "image", 2-way softmax, index 1 = fake)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage

from detector.runtime import keras
from detector.training import networks


def centre_224(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    side = min(h, w)
    square = image[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    return cv2.resize(square, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def imagenet_lite0():
    model = networks.efficientnet_lite0(include_top=True)
    return networks.load_lite0_imagenet(model)


@pytest.mark.parametrize("name, classes", [
    ("chelsea", {281, 282, 283, 284, 285}),  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    ("coffee", {504, 967, 968}),  # coffee mug, espresso, cup
])
def test_converted_lite0_classifies_imagenet_images(imagenet_lite0, name, classes):
    """The conversion is right only if the network still recognises what ImageNet taught it."""
    logits = imagenet_lite0(centre_224(getattr(skimage.data, name)())[None], training=False).numpy()[0]
    assert int(np.argmax(logits)) in classes


def test_lite0_is_the_published_size(imagenet_lite0):
    """4.65 M weights plus batch-norm statistics; no squeeze-and-excitation, ReLU6 throughout."""
    assert 4.6e6 < networks.parameter_count(imagenet_lite0) < 4.8e6
    assert not any("se" in layer.name.split("_") for layer in imagenet_lite0.layers)
    relus = [layer for layer in imagenet_lite0.layers if isinstance(layer, keras.layers.ReLU)]
    assert relus and all(float(layer.max_value) == 6.0 for layer in relus)


def test_weights_are_loaded_as_tensors_only(monkeypatch):
    """torch.load must not unpickle arbitrary objects from the weights file."""
    import torch

    seen = {}
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    networks.load_lite0_imagenet(networks.efficientnet_lite0(64))
    assert seen.get("weights_only") is True


@pytest.mark.parametrize("arch", networks.ARCHITECTURES)
def test_detector_keeps_the_original_contract(arch):
    model = networks.build_detector(arch, input_size=64)
    assert model.input_shape == (None, 64, 64, 3) and model.input_names == ["image"]
    p = model(np.random.default_rng(0).random((3, 64, 64, 3), dtype=np.float32), training=False).numpy()
    assert p.shape == (3, 2) and np.allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_imagenet_lite0_detector_starts_from_the_imagenet_backbone(imagenet_lite0):
    model = networks.build_detector("efficientnet-lite0", imagenet=True)
    backbone = model.get_layer("backbone")
    for name in ("stem_conv", "block7_dw_bn", "head_conv"):
        for a, b in zip(backbone.get_layer(name).get_weights(), imagenet_lite0.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_efficientnetv2_imagenet_offline_says_how_to_get_the_weights(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("URL fetch failure: no route to host")

    monkeypatch.setattr(keras.applications, "EfficientNetV2B0", offline)
    with pytest.raises(RuntimeError, match=r"efficientnetv2-b0_notop\.h5.*--arch efficientnet-lite0"):
        networks.build_detector("efficientnetv2-b0", input_size=64, imagenet=True)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="efficientnet-lite0"):
        networks.build_detector("resnet50")
