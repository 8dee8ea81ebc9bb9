"""Tests of recsys_kit.fusion: early/late fusion, contrastive projector, CLIP path, reports."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from recsys_kit import constants as C
from recsys_kit import fusion as F


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# early fusion
# --------------------------------------------------------------------------------------------
def test_early_fusion_missing_images_are_explicit_and_finite() -> None:
    rng = np.random.default_rng(0)
    text, image = _unit(rng.normal(size=(4, 5))), _unit(rng.normal(size=(4, 3)))
    image[2] = np.nan  # no picture: whatever is stored there must be ignored
    has = np.array([True, True, False, True])
    fused = F.early_fusion(text, image, has, weights=(1.0, 3.0))
    assert fused.shape == (4, 8) and fused.dtype == np.float32
    assert np.isfinite(fused).all()
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-6)
    assert (fused[2, 5:] == 0).all()  # zero image block
    np.testing.assert_allclose(fused[2, :5], text[2], atol=1e-6)  # text alone, renormalised
    # both pictured: cos = (w_t cos_t + w_i cos_i) / (w_t + w_i)
    expected = (1 * text[0] @ text[1] + 3 * image[0] @ image[1]) / 4
    assert fused[0] @ fused[1] == pytest.approx(expected, abs=1e-6)


def test_early_fusion_bad_input() -> None:
    t, i = np.ones((2, 3)), np.ones((2, 4))
    with pytest.raises(TypeError, match="boolean"):
        F.early_fusion(t, i, np.array([1, 0]))
    with pytest.raises(ValueError, match="NaN"):
        F.early_fusion(t, np.full((2, 4), np.nan), np.array([True, False]))
    with pytest.raises(ValueError, match="weights"):
        F.early_fusion(t, i, np.array([True, True]), weights=(0.0, 0.0))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        F.early_fusion(t, i, np.array([True]))


# --------------------------------------------------------------------------------------------
# late fusion
# --------------------------------------------------------------------------------------------
def test_late_fusion_policies_for_missing_images() -> None:
    text = np.array([[0.8, 0.6, 0.6], [0.1, 0.2, 0.3]])
    image = np.array([[0.2, 0.4, np.nan], [0.5, 0.9, np.nan]])
    has = np.array([True, True, False])
    only = F.late_fusion(text, image, has, w_image=0.5, missing="text_only")
    np.testing.assert_allclose(only, [[0.5, 0.5, 0.6], [0.3, 0.55, 0.3]])
    zero = F.late_fusion(text, image, has, w_image=0.5, missing="zero")
    np.testing.assert_allclose(zero[:, 2], [0.3, 0.15])
    mean = F.late_fusion(text, image, has, w_image=0.5, missing="mean")
    np.testing.assert_allclose(mean[:, 2], [0.5 * 0.6 + 0.5 * 0.3, 0.5 * 0.3 + 0.5 * 0.7])
    for out in (only, zero, mean):
        assert np.isfinite(out).all()
    # w_image = 0 is text search whatever the policy
    np.testing.assert_allclose(F.late_fusion(text, image, has, 0.0, "zero"), text)


def test_late_fusion_bad_input() -> None:
    has = np.array([True, False])
    with pytest.raises(ValueError, match="missing must be"):
        F.late_fusion(np.zeros(2), np.zeros(2), has, missing="drop")
    with pytest.raises(ValueError, match="has_image=True"):
        F.late_fusion(np.zeros(2), np.array([np.nan, 0.0]), has)
    with pytest.raises(ValueError, match="same shape"):
        F.late_fusion(np.zeros(2), np.zeros(3), has)
    with pytest.raises(ValueError, match="w_image"):
        F.late_fusion(np.zeros(2), np.zeros(2), has, w_image=2.0)


# --------------------------------------------------------------------------------------------
# contrastive projector
# --------------------------------------------------------------------------------------------
def _paired_data(n: int = 1200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Text and image vectors that share a latent code through different maps and noise."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 12))
    text = z @ rng.normal(size=(12, 48)) + 0.5 * rng.normal(size=(n, 48))
    image = np.tanh(z @ rng.normal(size=(12, 64))) + 0.3 * rng.normal(size=(n, 64))
    return _unit(text), _unit(image)


def test_info_nce_prefers_matching_pairs() -> None:
    x = torch.nn.functional.normalize(
        torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    )
    matched = F.info_nce_loss(x, x, 10.0)
    shuffled = F.info_nce_loss(x, x.roll(1, dims=0), 10.0)
    assert float(matched) < float(shuffled)
    assert float(F.info_nce_loss(torch.eye(4), torch.eye(4), 100.0)) < 1e-6


def test_projector_beats_random_projection_on_held_out_pairs() -> None:
    text, image = _paired_data()
    tr, te = slice(0, 1000), slice(1000, 1200)
    untrained = F.ContrastiveProjector(48, 64, dim=32, seed=1)
    base = F.paired_recall_at_k(
        untrained.project_text(text[te]), untrained.project_image(image[te]), k=5
    )
    proj = F.ContrastiveProjector(48, 64, dim=32, seed=1).fit(
        text[tr], image[tr], epochs=25, batch_size=128, lr=3e-3, seed=0, device="cpu"
    )
    t, i = proj.project_text(text[te]), proj.project_image(image[te])
    trained = F.paired_recall_at_k(t, i, k=5)
    assert trained > 0.5 and trained > 3 * base, (trained, base)
    assert proj.history[-1] < proj.history[0]
    assert t.dtype == np.float32 and np.allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    assert proj.temperature != pytest.approx(0.07)  # learnable by default
    # deterministic given the seeds
    again = F.ContrastiveProjector(48, 64, dim=32, seed=1).fit(
        text[tr], image[tr], epochs=25, batch_size=128, lr=3e-3, seed=0, device="cpu"
    )
    np.testing.assert_array_equal(again.project_text(text[te]), t)


def test_projector_fixed_temperature_and_errors() -> None:
    text, image = _paired_data(n=64)
    proj = F.ContrastiveProjector(48, 64, dim=8, temperature=0.1, learn_temperature=False)
    proj.fit(text, image, epochs=2, batch_size=32, device="cpu")
    assert proj.temperature == pytest.approx(0.1)
    with pytest.raises(ValueError, match=r"\(n, 64\)"):
        proj.project_image(np.ones((2, 10)))
    with pytest.raises(ValueError, match="pairs"):
        proj.fit(text, image[:10], epochs=1, device="cpu")
    bad = image.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        proj.fit(text, bad, epochs=1, device="cpu")


class _FakeText:
    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def encode(self, texts, kind="passage"):
        return np.stack([self.table[t] for t in texts])


class _FakeImage:
    def encode(self, images):
        return np.asarray(images, dtype=np.float32).reshape(len(images), -1)


def test_projected_encoder_is_a_cross_modal_encoder_and_searches() -> None:
    text, image = _paired_data(n=600, seed=3)
    proj = F.ContrastiveProjector(48, 64, dim=16).fit(
        text, image, epochs=30, batch_size=100, lr=3e-3, device="cpu"
    )
    enc = F.ProjectedEncoder(proj, _FakeText({"query": text[7]}), _FakeImage())
    assert isinstance(enc, F.CrossModalEncoder)
    image_vecs = enc.encode_image(image.reshape(600, 8, 8))
    scores, idx = F.search_images(enc, "query", image_vecs, k=10)
    assert 7 in idx.tolist() and scores[0] >= scores[-1]
    with pytest.raises(TypeError, match="encode_text"):
        F.search_images(object(), "query", image_vecs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# CLIP hub path
# --------------------------------------------------------------------------------------------
def test_clip_offline_error_names_the_fix() -> None:
    with pytest.raises(OSError, match="ProjectedEncoder") as info:
        F.ClipEncoder("recsys-course/no-such-clip-model", local_files_only=True)
    assert "internet" in str(info.value)


@pytest.mark.skipif(
    os.environ.get("RECSYS_NETWORK_TESTS") != "1",
    reason="needs the network (set RECSYS_NETWORK_TESTS=1 to download a CLIP)",
)
def test_clip_encoder_contract_online() -> None:
    clip = F.ClipEncoder()
    assert isinstance(clip, F.CrossModalEncoder)
    t = clip.encode_text(["black ankle boots", "red dress"])
    i = clip.encode_image(np.zeros((3, 28, 28), dtype=np.uint8))
    assert t.shape == (2, clip.dim) and i.shape == (3, clip.dim)
    assert t.dtype == np.float32 and np.allclose(np.linalg.norm(i, axis=1), 1.0, atol=1e-5)


# --------------------------------------------------------------------------------------------
# reports and plots
# --------------------------------------------------------------------------------------------
def test_missing_modality_report_separates_subsets() -> None:
    catalog = pd.DataFrame(
        {C.COL_PRODUCT_ID: ["a", "b", "c", "d"], C.COL_IMAGE_INDEX: [0, 1, -1, -1]}
    )
    queries = pd.DataFrame({C.COL_QUERY_ID: ["q1", "q2"], C.COL_QUERY_KIND: ["exact", "vague"]})
    qrels = {"q1": {"a": 3, "c": 3}, "q2": {"d": 2}}
    # the "fused" run puts pictured products first: it wins on with_image, loses without
    runs = {
        "text": {"q1": {"c": 0.9, "b": 0.8, "a": 0.7}, "q2": {"d": 0.9, "a": 0.1}},
        "fused": {"q1": {"a": 0.9, "b": 0.8, "c": 0.1}, "q2": {"a": 0.9, "b": 0.8, "d": 0.1}},
    }
    rep = F.missing_modality_report(qrels, runs, queries, catalog, k=1)
    assert set(rep["subset"]) == {"all", "with_image", "without_image"}
    cell = rep.set_index(["run", "subset", "kind"])
    assert cell.loc[("fused", "with_image", "all"), "ndcg@1"] == 1.0
    assert cell.loc[("text", "with_image", "all"), "ndcg@1"] == 0.0
    assert cell.loc[("text", "without_image", "all"), "ndcg@1"] == 1.0
    assert cell.loc[("fused", "without_image", "all"), "ndcg@1"] == 0.0
    assert cell.loc[("text", "with_image", "all"), "n_queries"] == 1  # q2 has no pictured rel
    assert cell.loc[("text", "without_image", "vague"), "recall@1"] == 1.0
    with pytest.raises(KeyError, match="image_index"):
        F.missing_modality_report(qrels, runs, queries, catalog.drop(columns=[C.COL_IMAGE_INDEX]))
    # only the listed queries count: q2 alone
    only_q2 = F.missing_modality_report(qrels, runs, queries.iloc[[1]], catalog, k=1)
    assert set(only_q2["kind"]) == {"all", "vague"}
    assert (only_q2["n_queries"] == 1).all()


def test_product_images_and_mask() -> None:
    images = np.arange(3 * 4, dtype=np.uint8).reshape(3, 2, 2)
    catalog = pd.DataFrame({C.COL_IMAGE_INDEX: [2, -1, 0]})
    imgs, mask = F.product_images(catalog, images)
    assert mask.tolist() == [True, False, True]
    np.testing.assert_array_equal(imgs[0], images[2])
    assert (imgs[1] == 0).all()
    with pytest.raises(ValueError, match="beyond"):
        F.product_images(pd.DataFrame({C.COL_IMAGE_INDEX: [5]}), images)


def test_gallery_plot_returns_a_figure() -> None:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, size=(7, 28, 28), dtype=np.uint8)
    fig = F.gallery_plot(imgs, scores=np.linspace(1, 0, 7), titles=list("abcdefg"), ncols=3,
                         query="black ankle boots")  # fmt: skip
    assert isinstance(fig, Figure) and len(fig.axes) == 7
    assert fig.axes[0].get_title() == "a\n1.000"
    assert fig._suptitle.get_text() == "black ankle boots"
    with pytest.raises(ValueError, match="scores"):
        F.gallery_plot(imgs, scores=[1.0])
