"""The provider's self-service rules (``rules.yml`` in the catalog directory), with the documented
defaults of DATA_FORMAT.md for every key left out.

The file is optional. A present file is strict like the CSV files: an unknown key, a wrong type or
an impossible value is refused with file, line and problem, so a typo ("max_dept_rub") never
silently falls back to a default that would hand out credit the provider did not mean to give.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import yaml

from bot.catalog.csv_rows import CatalogError
from bot.catalog.models import AccountStatus

RULES_FILE = "rules.yml"


@dataclass(frozen=True, slots=True)
class PromisedPaymentRules:
    max_debt_rub: Decimal = Decimal(1500)
    days: int = 5
    cooldown_days: int = 30
    fee_rub: Decimal = Decimal(0)
    statuses: tuple[AccountStatus, ...] = ("active", "blocked")


@dataclass(frozen=True, slots=True)
class SuspensionRules:
    min_days: int = 7
    max_days: int = 90
    fee_per_day_rub: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class TariffChangeRules:
    effective: Literal["next_charge", "now"] = "next_charge"


@dataclass(frozen=True, slots=True)
class PaymentRules:
    link: str = ""  # may contain {contract}
    autopay_link: str = ""


@dataclass(frozen=True, slots=True)
class RequisitesRules:
    name: str = ""
    inn: str = ""
    kpp: str = ""
    bank: str = ""
    bic: str = ""
    correspondent_account: str = ""
    settlement_account: str = ""


@dataclass(frozen=True, slots=True)
class Rules:
    billing_day: int = 1
    unblock_at_balance_rub: Decimal = Decimal(0)
    promised_payment: PromisedPaymentRules = field(default_factory=PromisedPaymentRules)
    suspension: SuspensionRules = field(default_factory=SuspensionRules)
    tariff_change: TariffChangeRules = field(default_factory=TariffChangeRules)
    payment: PaymentRules = field(default_factory=PaymentRules)
    requisites: RequisitesRules = field(default_factory=RequisitesRules)
    # The provider's personal-data policy (152-FZ), linked from the consent question before a
    # name or phone is stored. Here rather than in the environment: like the payment link and
    # the requisites, it is the provider's own published document and travels with its catalog,
    # not with a deployment. "" = the question names no link.
    privacy_policy_url: str = ""

    def payment_link(self, contract: str) -> str:
        return self.payment.link.replace("{contract}", contract)


class _Loader(yaml.SafeLoader):
    """Keeps the line of every value, so an error can point at it."""


def _construct_with_line(loader: _Loader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in out:
                raise CatalogError(
                    Path(str(loader.name)), key_node.start_mark.line + 1, f"key {key!r} given twice"
                )
            out[key] = (_construct_with_line(loader, value_node), value_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [(_construct_with_line(loader, n), n.start_mark.line + 1) for n in node.value]
    return loader.construct_object(node, deep=True)


def _int(path: Path, line: int, key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CatalogError(path, line, f"{key}: {value!r} is not a whole number {low}..{high}")
    return value


def _money(path: Path, line: int, key: str, value: Any, *, signed: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise CatalogError(path, line, f"{key}: {value!r} is not an amount in rubles")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise CatalogError(path, line, f"{key}: {value!r} is not an amount in rubles") from None
    if not amount.is_finite() or (amount < 0 and not signed):
        raise CatalogError(path, line, f"{key}: {value!r} must be a non-negative amount")
    return amount


def _text(path: Path, line: int, key: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int):
        raise CatalogError(path, line, f"{key}: {value!r} must be text")
    return str(value)


def _url(path: Path, line: int, key: str, value: Any) -> str:
    """An http(s) address or nothing: a customer is sent there, so a typo is refused here."""
    text = _text(path, line, key, value).strip()
    if text and (not text.startswith(("https://", "http://")) or any(c.isspace() for c in text)):
        raise CatalogError(path, line, f"{key}: {text!r} is not an http(s) address")
    return text


_Values = Mapping[str, tuple[Any, int]]


def _section(path: Path, name: str, raw: tuple[Any, int] | None) -> _Values:
    if raw is None:
        return {}
    value, line = raw
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CatalogError(path, line, f"{name}: expected a mapping of settings")
    known = {f.name for f in fields(_SECTIONS[name])}
    for key, (_, key_line) in value.items():
        if key not in known:
            raise CatalogError(
                path, key_line, f"{name}: unknown key {key!r} (known: {', '.join(sorted(known))})"
            )
    return value


def _promised(path: Path, raw: _Values) -> PromisedPaymentRules:
    out = PromisedPaymentRules()
    for key, (value, line) in raw.items():
        where = f"promised_payment.{key}"
        if key == "max_debt_rub":
            out = replace(out, max_debt_rub=_money(path, line, where, value))
        elif key == "fee_rub":
            out = replace(out, fee_rub=_money(path, line, where, value))
        elif key == "days":
            out = replace(out, days=_int(path, line, where, value, 1, 365))
        elif key == "cooldown_days":
            out = replace(out, cooldown_days=_int(path, line, where, value, 0, 365))
        elif key == "statuses":
            if not isinstance(value, list):
                raise CatalogError(path, line, f"{where}: expected a list of account statuses")
            statuses: list[AccountStatus] = []
            for item, item_line in value:
                if item not in ("active", "blocked", "suspended"):
                    raise CatalogError(
                        path, item_line, f"{where}: {item!r} is not active, blocked or suspended"
                    )
                statuses.append(item)
            out = replace(out, statuses=tuple(statuses))
    return out


def _suspension(path: Path, raw: _Values) -> SuspensionRules:
    out = SuspensionRules()
    for key, (value, line) in raw.items():
        where = f"suspension.{key}"
        if key == "fee_per_day_rub":
            out = replace(out, fee_per_day_rub=_money(path, line, where, value))
        elif key == "min_days":
            out = replace(out, min_days=_int(path, line, where, value, 1, 366))
        else:
            out = replace(out, max_days=_int(path, line, where, value, 1, 366))
    if out.min_days > out.max_days:
        line = raw.get("min_days", raw.get("max_days", (None, 0)))[1]
        raise CatalogError(path, line, "suspension: min_days is larger than max_days")
    return out


def _tariff_change(path: Path, raw: _Values) -> TariffChangeRules:
    value, line = raw.get("effective", ("next_charge", 0))
    if value not in ("next_charge", "now"):
        raise CatalogError(
            path, line, f"tariff_change.effective: {value!r} is not next_charge or now"
        )
    return TariffChangeRules(effective=value)


def _texts(path: Path, name: str, raw: _Values, cls: type[Any]) -> Any:
    return cls(**{k: _text(path, line, f"{name}.{k}", v) for k, (v, line) in raw.items()})


_SECTIONS: Mapping[str, type[Any]] = {
    "promised_payment": PromisedPaymentRules,
    "suspension": SuspensionRules,
    "tariff_change": TariffChangeRules,
    "payment": PaymentRules,
    "requisites": RequisitesRules,
}


def load_rules(directory: Path) -> Rules:
    """``rules.yml`` of a catalog directory, or the defaults when there is none."""
    path = directory / RULES_FILE
    if not path.is_file():
        return Rules()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CatalogError(path, 0, "not UTF-8; save the file as UTF-8") from None
    loader = _Loader(text)
    loader.name = str(path)
    try:
        node = loader.get_single_node()
        data = _construct_with_line(loader, node) if node is not None else {}
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise CatalogError(path, line, f"not valid YAML: {exc.problem}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise CatalogError(path, 1, "expected a mapping of settings at the top")
    known = {"billing_day", "unblock_at_balance_rub", "privacy_policy_url", *_SECTIONS}
    for key, (_, line) in data.items():
        if key not in known:
            raise CatalogError(
                path, line, f"unknown key {key!r} (known: {', '.join(sorted(known))})"
            )
    rules = Rules()
    if "billing_day" in data:
        value, line = data["billing_day"]
        # Up to 28: every month has the day, so a charge date never slides.
        rules = replace(rules, billing_day=_int(path, line, "billing_day", value, 1, 28))
    if "unblock_at_balance_rub" in data:
        value, line = data["unblock_at_balance_rub"]
        rules = replace(
            rules,
            unblock_at_balance_rub=_money(path, line, "unblock_at_balance_rub", value, signed=True),
        )
    if "privacy_policy_url" in data:
        value, line = data["privacy_policy_url"]
        rules = replace(rules, privacy_policy_url=_url(path, line, "privacy_policy_url", value))
    return replace(
        rules,
        promised_payment=_promised(
            path, _section(path, "promised_payment", data.get("promised_payment"))
        ),
        suspension=_suspension(path, _section(path, "suspension", data.get("suspension"))),
        tariff_change=_tariff_change(
            path, _section(path, "tariff_change", data.get("tariff_change"))
        ),
        payment=_texts(
            path, "payment", _section(path, "payment", data.get("payment")), PaymentRules
        ),
        requisites=_texts(
            path,
            "requisites",
            _section(path, "requisites", data.get("requisites")),
            RequisitesRules,
        ),
    )
