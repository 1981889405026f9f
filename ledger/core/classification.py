"""Codes the chain stores as small integers: data classification, sharing tier, dataset status.

The classification follows the three-level taxonomy of medical scientific data in the Chinese policy
literature (category / source or type / dataset). The chain stores only the second level as a
``uint16``: the high byte is the category, the low byte the kind within it (0x0101 = clinical research
data sourced from research). The third level is the dataset itself. Labels are given in English and
Chinese because the metadata is read by both audiences.

Tier and status values must equal the Solidity enums' order in ``IDatasetRegistry`` (the chain
returns the integer, the library names it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Self

from ledger.core.errors import InvalidInput


@dataclass(frozen=True)
class Label:
    en: str
    zh: str


class Category(IntEnum):
    """First level of the taxonomy (high byte of a classification code)."""

    CLINICAL = 0x01
    BASIC_RESEARCH = 0x02
    PUBLIC_HEALTH = 0x03
    PHARMACEUTICAL = 0x04

    @property
    def label(self) -> Label:
        return _CATEGORY_LABELS[self]


_CATEGORY_LABELS: dict[Category, Label] = {
    Category.CLINICAL: Label("Clinical research data", "临床研究数据"),
    Category.BASIC_RESEARCH: Label("Basic medical research data", "基础医学研究数据"),
    Category.PUBLIC_HEALTH: Label("Public health data", "公共卫生数据"),
    Category.PHARMACEUTICAL: Label("Pharmaceutical research data", "药学研究数据"),
}


class Classification(IntEnum):
    """Second level of the taxonomy, as stored on chain (``uint16``)."""

    CLINICAL_RESEARCH = 0x0101
    CLINICAL_ROUTINE_CARE = 0x0102
    BASIC_MOLECULAR = 0x0201
    BASIC_CELLULAR = 0x0202
    BASIC_PATHOLOGY = 0x0203
    PUBLIC_HEALTH_SURVEILLANCE = 0x0301
    PUBLIC_HEALTH_SURVEY = 0x0302
    PUBLIC_HEALTH_ENVIRONMENTAL = 0x0303
    PHARMA_DEVELOPMENT = 0x0401
    PHARMA_POST_MARKET = 0x0402

    @property
    def category(self) -> Category:
        return Category(self.value >> 8)

    @property
    def label(self) -> Label:
        return _LABELS[self]

    @property
    def hex(self) -> str:
        return f"0x{self.value:04x}"

    @classmethod
    def parse(cls, value: int | str | Classification) -> Classification:
        """From a code (258, "0x0102", "258") or a member name in any case ("clinical-routine-care",
        "CLINICAL_ROUTINE_CARE"), so CLI and API input map to one member."""
        if isinstance(value, Classification):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError as exc:
                raise InvalidInput(f"unknown classification code 0x{value:04x}", hint=_choices()) from exc
        if isinstance(value, str):
            text = value.strip()
            try:
                return cls.parse(int(text, 0))
            except ValueError:
                pass
            name = text.upper().replace("-", "_").replace(" ", "_")
            if name in cls.__members__:
                return cls[name]
            raise InvalidInput(f"unknown classification {value!r}", hint=_choices())
        raise InvalidInput(f"unknown classification {value!r}", hint=_choices())


_LABELS: dict[Classification, Label] = {
    Classification.CLINICAL_RESEARCH: Label(
        "Clinical research data sourced from research (trials, cohorts)", "科研来源的临床研究数据"
    ),
    Classification.CLINICAL_ROUTINE_CARE: Label(
        "Clinical data sourced from routine care (EHR, medical records)", "诊疗来源的临床数据"
    ),
    Classification.BASIC_MOLECULAR: Label("Basic research: molecular (omics)", "基础研究：分子水平数据"),
    Classification.BASIC_CELLULAR: Label("Basic research: cellular", "基础研究：细胞水平数据"),
    Classification.BASIC_PATHOLOGY: Label("Basic research: pathology", "基础研究：病理数据"),
    Classification.PUBLIC_HEALTH_SURVEILLANCE: Label("Public health: surveillance", "公共卫生：监测数据"),
    Classification.PUBLIC_HEALTH_SURVEY: Label("Public health: surveys", "公共卫生：调查数据"),
    Classification.PUBLIC_HEALTH_ENVIRONMENTAL: Label("Public health: environmental", "公共卫生：环境健康数据"),
    Classification.PHARMA_DEVELOPMENT: Label("Pharmaceutical: drug development", "药学：药物研发数据"),
    Classification.PHARMA_POST_MARKET: Label("Pharmaceutical: post-market", "药学：上市后研究数据"),
}


def _choices() -> str:
    return "one of " + ", ".join(f"{c.hex} {c.name.lower().replace('_', '-')}" for c in Classification)


class _NamedIntEnum(IntEnum):
    """An enum the CLI and API can parse from its number or its name."""

    @classmethod
    def parse(cls, value: int | str) -> Self:
        if isinstance(value, cls):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError as exc:
                raise InvalidInput(f"unknown {cls.__name__.lower()} {value}", hint=cls._choices()) from exc
        if isinstance(value, str):
            text = value.strip()
            if text.isdigit():
                return cls.parse(int(text))
            name = text.upper().replace("-", "_")
            if name in cls.__members__:
                return cls[name]
        raise InvalidInput(f"unknown {cls.__name__.lower()} {value!r}", hint=cls._choices())

    @classmethod
    def _choices(cls) -> str:
        return "one of " + ", ".join(f"{m.value}={m.name.lower()}" for m in cls)


class Tier(_NamedIntEnum):
    """Sharing tier (graded sharing); order = ``IDatasetRegistry.Tier``."""

    OPEN = 0
    REGISTERED = 1
    CONTROLLED = 2
    CLOSED = 3

    @property
    def label(self) -> Label:
        return _TIER_LABELS[self]


_TIER_LABELS: dict[Tier, Label] = {
    Tier.OPEN: Label("Open: anyone may use", "开放共享"),
    Tier.REGISTERED: Label("Registered: any registered user", "注册共享"),
    Tier.CONTROLLED: Label("Controlled: needs an approved access request", "受控共享"),
    Tier.CLOSED: Label("Closed: not shared", "不共享"),
}


class DatasetStatus(_NamedIntEnum):
    """Lifecycle of a dataset record; order = ``IDatasetRegistry.Status`` (NONE = not registered)."""

    NONE = 0
    ACTIVE = 1
    DEPRECATED = 2
    SUSPENDED = 3
    RETRACTED = 4

    @property
    def label(self) -> Label:
        return _STATUS_LABELS[self]


_STATUS_LABELS: dict[DatasetStatus, Label] = {
    DatasetStatus.NONE: Label("Not registered", "未登记"),
    DatasetStatus.ACTIVE: Label("Active", "有效"),
    DatasetStatus.DEPRECATED: Label("Deprecated (superseded by a newer version)", "已被新版本取代"),
    DatasetStatus.SUSPENDED: Label("Suspended by an auditor", "已被监管暂停"),
    DatasetStatus.RETRACTED: Label("Retracted by the holder", "已被持有者撤回"),
}
