"""Tests for recsys_kit.datasets and the MiniShop generator (committed data, schemas, fixtures)."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_kit import constants as C
from recsys_kit import datasets as D
from recsys_kit import paths

MINISHOP = paths.minishop_dir()
FIXTURES = paths.data_dir() / "fixtures"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
HAS_FASHION_MNIST = (FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file()
NO_FM_REASON = "Fashion-MNIST missing: apt-get install dataset-fashion-mnist"


def _import_generator():
    """Import datasets/minishop_generator.py (a script folder, not a package)."""
    spec = importlib.util.spec_from_file_location(
        "minishop_generator", paths.data_dir() / "minishop_generator.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("minishop_generator", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def gen():
    return _import_generator()


@pytest.fixture(scope="session")
def catalog() -> pd.DataFrame:
    return D.load_catalog()


@pytest.fixture(scope="session")
def queries() -> pd.DataFrame:
    return D.load_queries()


@pytest.fixture(scope="session")
def qrels() -> pd.DataFrame:
    return D.load_qrels()


@pytest.fixture(scope="session")
def interactions() -> pd.DataFrame:
    return D.load_interactions()


@pytest.fixture(scope="session")
def users() -> pd.DataFrame:
    return D.load_users()


@pytest.fixture(scope="session")
def images() -> np.ndarray:
    return D.load_images()


# --- committed MiniShop data -------------------------------------------------------------------
def test_loaders_return_documented_columns_and_dtypes(catalog, queries, qrels, users, interactions):
    for name, df in [
        ("catalog", catalog),
        ("queries", queries),
        ("qrels", qrels),
        ("users", users),
        ("interactions", interactions),
    ]:
        assert list(df.columns) == D.SCHEMAS[name].names, name
    assert catalog[C.COL_LAUNCH_DATE].dtype == "datetime64[ns]"
    assert interactions[C.COL_TIMESTAMP].dtype == "datetime64[ns]"
    assert users[C.COL_SIGNUP_DATE].dtype == "datetime64[ns]"
    for df, col in [
        (catalog, C.COL_REVIEW_COUNT),
        (catalog, C.COL_IMAGE_INDEX),
        (qrels, C.COL_GRADE),
        (interactions, C.COL_POSITION),
    ]:
        assert df[col].dtype == np.int64, col
    assert catalog[C.COL_PRICE].dtype == np.float64
    assert interactions[C.COL_RATING].dtype == np.float64
    assert pd.api.types.is_string_dtype(catalog[C.COL_PRODUCT_ID])
    assert catalog[C.COL_PRODUCT_ID].iloc[0] == "P00001"


def test_catalog_content(catalog):
    assert 4500 <= len(catalog) <= 5500
    assert set(catalog[C.COL_DEPARTMENT]) == set(C.DEPARTMENTS)
    assert catalog[C.COL_PRODUCT_ID].is_monotonic_increasing
    for col in (*C.ATTRIBUTE_COLUMNS, C.COL_BRAND, C.COL_TITLE_ZH, C.COL_DESCRIPTION_EN):
        assert (catalog[col].str.strip() != "").all(), col
    assert catalog[C.COL_RATING].between(1, 5).all()
    assert catalog[C.COL_LAUNCH_DATE].between("2023-01-01", "2026-06-30").all()
    beauty = catalog[catalog[C.COL_DEPARTMENT] == "beauty"]
    assert {"lipstick", "foundation", "moisturizer", "serum", "perfume"} <= set(beauty["category"])
    assert catalog[C.COL_BRAND].nunique() >= 20
    assert catalog[C.COL_TITLE_EN].nunique() > 0.5 * len(catalog)  # real variety


def test_images_align_with_catalog(catalog, images):
    idx = catalog[C.COL_IMAGE_INDEX]
    has = idx >= 0
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
    assert sorted(idx[has]) == list(range(len(images)))  # every row used exactly once
    with_images = set(catalog.loc[has, C.COL_DEPARTMENT])
    assert with_images == set(C.DEPARTMENTS_WITH_IMAGES)
    assert set(catalog.loc[~has, C.COL_DEPARTMENT]) == set(C.DEPARTMENTS_WITHOUT_IMAGES)


@pytest.mark.skipif(not HAS_FASHION_MNIST, reason=NO_FM_REASON)
def test_image_classes_match_categories(gen, catalog, images):
    from minishop_taxonomy import CATEGORIES

    fm_images, fm_labels = gen.load_fashion_mnist()
    labels_of: dict[bytes, set[int]] = {}
    for img, lab in zip(fm_images.reshape(len(fm_images), -1), fm_labels):
        labels_of.setdefault(img.tobytes(), set()).add(int(lab))
    has = catalog[catalog[C.COL_IMAGE_INDEX] >= 0]
    for cat, idx in zip(has[C.COL_CATEGORY], has[C.COL_IMAGE_INDEX]):
        found = labels_of.get(images[idx].tobytes(), set())
        assert CATEGORIES[cat].fmnist_class in found, (cat, idx)


def test_queries_cover_kinds_and_languages(queries):
    assert len(queries) >= 300
    grid = queries.groupby([C.COL_QUERY_KIND, C.COL_LANGUAGE]).size()
    for kind in C.QUERY_KINDS:
        for lang in C.LANGUAGES:
            assert grid.get((kind, lang), 0) >= 10, (kind, lang)
    assert queries[C.COL_QUERY].is_unique


def test_every_query_has_an_exact_product(queries, qrels, catalog):
    exact = qrels[qrels[C.COL_LABEL] == "E"]
    assert set(exact[C.COL_QUERY_ID]) == set(queries[C.COL_QUERY_ID])
    assert (qrels[C.COL_GRADE] == qrels[C.COL_LABEL].map(C.ESCI_GRADES)).all()
    assert set(qrels[C.COL_LABEL]) == set(C.ESCI_LABELS)
    assert set(qrels[C.COL_PRODUCT_ID]) <= set(catalog[C.COL_PRODUCT_ID])


@pytest.mark.parametrize("text", ["美妆推荐", "beauty recommendations"])
def test_beauty_recommendation_queries(text, queries, qrels, catalog):
    row = queries[queries[C.COL_QUERY] == text]
    assert len(row) == 1 and row[C.COL_QUERY_KIND].iloc[0] == "vague"
    judged = qrels[qrels[C.COL_QUERY_ID] == row[C.COL_QUERY_ID].iloc[0]]
    dept = catalog.set_index(C.COL_PRODUCT_ID)[C.COL_DEPARTMENT]
    relevant = judged[judged[C.COL_LABEL].isin(["E", "S"])][C.COL_PRODUCT_ID]
    assert len(relevant) >= 100
    assert (dept[relevant] == "beauty").all()


def test_synonym_queries_share_no_token_with_exact_titles(queries, qrels, catalog):
    titles = catalog.set_index(C.COL_PRODUCT_ID)
    syn = queries[queries[C.COL_QUERY_KIND] == "synonym"]
    exact = qrels[qrels[C.COL_LABEL] == "E"]
    for qid, text in zip(syn[C.COL_QUERY_ID], syn[C.COL_QUERY]):
        q_tok = D.text_tokens(text)
        assert q_tok, text
        for pid in exact.loc[exact[C.COL_QUERY_ID] == qid, C.COL_PRODUCT_ID]:
            t_tok = D.text_tokens(titles.at[pid, C.COL_TITLE_EN])
            t_tok |= D.text_tokens(titles.at[pid, C.COL_TITLE_ZH])
            assert not q_tok & t_tok, (text, pid, q_tok & t_tok)


def test_text_tokens_uses_cjk_bigrams():
    assert D.text_tokens("手提包") == {"手提", "提包"}
    assert not D.text_tokens("手提包") & D.text_tokens("Tessuto 包袋")
    assert D.text_tokens("Trainers, RED") == {"trainers", "red"}


def test_users_and_interactions(users, interactions, catalog):
    assert 900 <= len(users) <= 1100
    assert users[C.COL_USER_ID].is_unique
    assert 80_000 <= len(interactions) <= 200_000
    assert set(interactions[C.COL_EVENT]) == set(C.EVENTS)
    assert set(interactions[C.COL_USER_ID]) <= set(users[C.COL_USER_ID])
    is_rating = interactions[C.COL_EVENT] == "rating"
    assert interactions.loc[is_rating, C.COL_RATING].between(1, 5).all()
    assert interactions.loc[~is_rating, C.COL_RATING].isna().all()
    assert interactions[C.COL_POSITION].min() == 0
    train, test = D.train_test_split(interactions)
    assert len(train) + len(test) == len(interactions)
    assert train[C.COL_TIMESTAMP].max() < test[C.COL_TIMESTAMP].min()
    assert 0.15 <= len(test) / len(interactions) <= 0.25
    # position bias: top slots get clicked more often than the bottom ones
    views = interactions[interactions[C.COL_EVENT] == "view"]
    clicks = interactions[interactions[C.COL_EVENT] == "click"]
    ctr = clicks[C.COL_POSITION].value_counts() / views[C.COL_POSITION].value_counts()
    assert ctr[1] > ctr[6]
    # no interaction with a product before its launch
    launch = catalog.set_index(C.COL_PRODUCT_ID)[C.COL_LAUNCH_DATE]
    assert (interactions[C.COL_TIMESTAMP].to_numpy() >= launch[interactions[C.COL_PRODUCT_ID]]
            .to_numpy()).all()  # fmt: skip


def test_helpers(catalog, qrels):
    qd = D.qrels_dict(qrels)
    assert set(qd) == set(qrels[C.COL_QUERY_ID])
    assert all(isinstance(g, int) for g in next(iter(qd.values())).values())
    en, zh, both = (D.product_text(catalog.head(3), lang) for lang in ("en", "zh", "both"))
    assert len(en) == 3 and en[0].startswith(catalog[C.COL_TITLE_EN].iloc[0])
    assert zh[0].startswith(catalog[C.COL_TITLE_ZH].iloc[0])
    assert both[0] == en[0] + " " + zh[0]
    with pytest.raises(ValueError, match="lang"):
        D.product_text(catalog.head(1), "fr")


def test_loading_does_not_touch_files():
    def digest() -> dict[str, str]:
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(MINISHOP.iterdir())
        }

    before = digest()
    D.load_catalog(), D.load_qrels(), D.load_images()
    assert digest() == before


# --- malformed input ---------------------------------------------------------------------------
def _copy(tmp_path: Path, name: str) -> Path:
    dst = tmp_path / name
    shutil.copy(MINISHOP / name, dst)
    return dst


def _edit_csv(path: Path, edit) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    edit(df).to_csv(path, index=False, lineterminator="\n")


def test_missing_file_names_file_and_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"catalog\.csv.*minishop_generator\.py"):
        D.load_catalog(tmp_path / "catalog.csv")
    with pytest.raises(FileNotFoundError, match=r"images\.npy"):
        D.load_images(tmp_path / "images.npy")


def test_empty_data_dir_override_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    for loader in (D.load_catalog, D.load_queries, D.load_images):
        with pytest.raises(FileNotFoundError, match=r"RECSYS_DATA_DIR is set to .*unset it"):
            loader()
    # a path given explicitly is not the variable's fault
    with pytest.raises(FileNotFoundError) as err:
        D.load_catalog(tmp_path.parent / "elsewhere" / "catalog.csv")
    assert "RECSYS_DATA_DIR" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "loader", "edit", "column", "expect"),
    [
        ("catalog.csv", D.load_catalog, lambda d: d.drop(columns=["color"]), "color", "missing"),
        ("queries.csv", D.load_queries, lambda d: d.assign(kind="fuzzy"), "kind", "exact"),
        ("users.csv", D.load_users, lambda d: pd.concat([d, d.head(1)]), "user_id", "duplicate"),
        (
            "catalog.csv",
            D.load_catalog,
            lambda d: d.assign(launch_date=d["launch_date"].where(d.index != 7, "2024-13-45")),
            "launch_date",
            "2024-13-45",
        ),
        (
            "qrels.csv",
            D.load_qrels,
            lambda d: d.assign(esci_label=d["esci_label"].where(d.index != 3, "X")),
            "esci_label",
            "'X'",
        ),
        (
            "interactions.csv",
            D.load_interactions,
            lambda d: d.assign(position=d["position"].where(d.index != 2, "first")),
            "position",
            "first",
        ),
    ],
)
def test_schema_rejects_malformed_file(tmp_path, name, loader, edit, column, expect):
    path = _copy(tmp_path, name)
    _edit_csv(path, edit)
    with pytest.raises(D.SchemaError) as err:
        loader(path)
    msg = str(err.value)
    assert name in msg and column in msg and "Fix:" in msg and expect in msg, msg


def test_schema_rejects_image_index_out_of_range(tmp_path):
    path = _copy(tmp_path, "catalog.csv")
    np.save(tmp_path / "images.npy", np.zeros((10, 28, 28), np.uint8))
    with pytest.raises(D.SchemaError, match=r"catalog\.csv.*image_index.*out of range.*Fix:"):
        D.load_catalog(path)


def test_schema_rejects_unknown_foreign_key(tmp_path):
    path = _copy(tmp_path, "qrels.csv")
    _copy(tmp_path, "queries.csv")
    _edit_csv(path, lambda d: d.assign(query_id=d["query_id"].where(d.index != 0, "Q9999")))
    with pytest.raises(D.SchemaError, match=r"qrels\.csv.*query_id.*queries\.csv.*Q9999"):
        D.load_qrels(path)


def test_images_with_wrong_shape_are_rejected(tmp_path):
    np.save(tmp_path / "images.npy", np.zeros((3, 32, 32), np.float32))
    with pytest.raises(D.SchemaError, match=r"images\.npy.*uint8.*Fix:"):
        D.load_images(tmp_path / "images.npy")


# --- generator ---------------------------------------------------------------------------------
def test_generator_explains_missing_fashion_mnist(gen, tmp_path):
    with pytest.raises(SystemExit, match="apt-get install dataset-fashion-mnist"):
        gen.load_fashion_mnist(tmp_path)


@pytest.mark.skipif(not HAS_FASHION_MNIST, reason=NO_FM_REASON)
def test_generator_rebuilds_committed_files_byte_for_byte(gen, tmp_path):
    gen.generate(tmp_path)
    for name in gen.OUTPUT_FILES:
        assert (tmp_path / name).read_bytes() == (MINISHOP / name).read_bytes(), name


@pytest.mark.slow
def test_generator_rebuilds_derived_files_from_the_committed_catalog(gen, tmp_path):
    """Queries, qrels, intents, users, shoppers, the log and the FAQ questions depend on the
    catalog, not on the pictures: rebuild them from the committed catalog.csv (no Fashion-MNIST
    needed)."""
    catalog = pd.read_csv(MINISHOP / "catalog.csv", dtype=str, keep_default_na=False)
    queries, qrels, intents = gen.build_queries(catalog)
    users, shoppers = gen.build_users()
    frames = {
        "queries.csv": queries,
        "qrels.csv": qrels,
        "intents.csv": intents,
        "users.csv": users,
        "shoppers.csv": gen.build_shoppers(users, shoppers),
        "interactions.csv": gen.simulate_interactions(catalog, users, shoppers),
        "faq_questions.csv": gen.build_faq_questions(catalog),
    }
    assert set(frames) | {"catalog.csv", "images.npy"} == set(gen.OUTPUT_FILES)
    for name, frame in frames.items():
        gen._write_csv(frame, tmp_path / name)
        assert (tmp_path / name).read_bytes() == (MINISHOP / name).read_bytes(), name


def test_committed_data_is_small():
    total = sum(p.stat().st_size for p in MINISHOP.iterdir())
    assert total < 25e6


# --- real catalogs -----------------------------------------------------------------------------
def test_load_wands_fixture():
    wands = D.load_wands(FIXTURES / "wands")
    assert {C.COL_PRODUCT_ID, C.COL_TITLE_EN, C.COL_CATEGORY} <= set(wands.catalog.columns)
    assert wands.catalog[C.COL_DEPARTMENT].iloc[0] == "Furniture"
    assert wands.catalog[C.COL_RATING].isna().sum() == 1  # empty cells become NaN
    assert set(wands.qrels[C.COL_GRADE]) == {0, 1, 2}
    assert dict(zip(wands.qrels["label"], wands.qrels[C.COL_GRADE])) == D.WANDS_GRADES
    assert len(D.product_text(wands.catalog)) == len(wands.catalog)


def _wands_copy(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "wands", tmp_path / "wands")
    return tmp_path / "wands"


def test_wands_errors(tmp_path):
    folder = _wands_copy(tmp_path)
    (folder / "query.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"query\.csv.*github\.com/wayfair/WANDS"):
        D.load_wands(folder)
    folder = _wands_copy(tmp_path / "b")
    label = folder / "label.csv"
    label.write_text(label.read_text().replace("Partial", "Maybe", 1))
    with pytest.raises(D.SchemaError, match=r"label\.csv.*'label'.*Maybe.*Exact"):
        D.load_wands(folder)
    folder = _wands_copy(tmp_path / "c")
    prod = folder / "product.csv"
    prod.write_text(prod.read_text().replace("product_name", "name", 1))
    with pytest.raises(D.SchemaError, match=r"product\.csv.*missing column.*product_name"):
        D.load_wands(folder)


def test_load_esci_fixture():
    pytest.importorskip("pyarrow")
    us = D.load_esci(FIXTURES / "esci", locale="us")
    assert set(us.queries[C.COL_LANGUAGE]) == {"en"}
    assert "0" not in set(us.queries[C.COL_QUERY_ID])  # query 0 is not in the small version
    assert set(us.qrels[C.COL_LABEL]) == set(C.ESCI_LABELS)
    assert (us.qrels[C.COL_GRADE] == us.qrels[C.COL_LABEL].map(C.ESCI_GRADES)).all()
    assert set(us.qrels[C.COL_PRODUCT_ID]) <= set(us.catalog[C.COL_PRODUCT_ID])
    everything = D.load_esci(FIXTURES / "esci", locale=None, small_version=False)
    assert set(everything.queries[C.COL_LANGUAGE]) == {"en", "es", "ja"}
    with pytest.raises(ValueError, match="locale"):
        D.load_esci(FIXTURES / "esci", locale="fr")


def test_esci_errors(tmp_path):
    pytest.importorskip("pyarrow")
    with pytest.raises(FileNotFoundError, match=r"shopping_queries_dataset_examples\.parquet"):
        D.load_esci(tmp_path)
    shutil.copytree(FIXTURES / "esci", tmp_path / "bad")
    ex_file = tmp_path / "bad" / D.ESCI_FILES[0]
    ex = pd.read_parquet(ex_file)
    ex.assign(esci_label=ex["esci_label"].where(ex.index != 1, "Z")).to_parquet(ex_file)
    with pytest.raises(D.SchemaError, match=r"examples\.parquet.*esci_label.*'Z'.*Fix:"):
        D.load_esci(tmp_path / "bad")
    ex.drop(columns=["split"]).to_parquet(ex_file)
    with pytest.raises(D.SchemaError, match=r"missing column.*split"):
        D.load_esci(tmp_path / "bad")
