"""The embedded billing: a ledger seeded from the catalog's CSV files, kept in SQLite or, with
several gateway processes, in the shared Redis (``bot.billing.redis_ledger``: one ledger for
all of them). ``LedgerBilling`` decides what operations do; ``LedgerStorage`` keeps the result.

Each catalog directory gets its own SQLite ledger file (``var/billing-<hash of the
path>.sqlite3``), so ``--data`` with another catalog starts from that catalog's accounts. The
CSV files are the starting point; after that the ledger is the truth (a promised payment or a
pause survives a restart). A contract whose CSV row has changed since it was seeded is seeded
again from the new row: the provider edited it on purpose.

The stand-in does not charge monthly fees by itself; it applies what operations and the passing
of days do (``bot.billing.effects``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from bot.billing.base import Billing, BillingRefused, Operation
from bot.billing.csv_seed import Seed, load_seed
from bot.billing.effects import Applied, Describe, apply_operation, settle
from bot.billing.wire import account_from_json, account_to_json
from bot.catalog.catalog import Catalog
from bot.catalog.models import Account, Transaction
from bot.storage.sqlite_db import SqliteDb

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    contract_number TEXT PRIMARY KEY,
    phone TEXT NOT NULL,
    data TEXT NOT NULL,
    seed_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_by_phone ON accounts (phone);
CREATE TABLE IF NOT EXISTS transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    contract_number TEXT NOT NULL,
    at TEXT NOT NULL,
    amount_rub TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transactions_by_contract ON transactions (contract_number, at);
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY,
    contract_number TEXT NOT NULL,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    by TEXT NOT NULL,
    at TEXT NOT NULL
);
"""

Clock = Callable[[], datetime]
log = logging.getLogger(__name__)


def _insert_transactions(db: sqlite3.Connection, transactions: Iterable[Transaction]) -> None:
    db.executemany(
        "INSERT INTO transactions (contract_number, at, amount_rub, description) "
        "VALUES (?, ?, ?, ?)",
        [(t.contract_number, transaction_at(t), str(t.amount_rub), t.description)
         for t in transactions],
    )  # fmt: skip


def ledger_path(var_dir: Path, data_dir: Path) -> Path:
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return var_dir / f"billing-{digest}.sqlite3"


def _seed_hash(account: Account) -> str:
    return hashlib.sha256(json.dumps(account_to_json(account), sort_keys=True).encode()).hexdigest()


def transaction_at(transaction: Transaction) -> str:
    """How a transaction's time is stored: UTC ISO text, so that ordering the text is ordering
    by time (the seed carries local offsets of four time zones)."""
    return transaction.at.astimezone(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class SeedRow:
    """One account of the catalog as the storage keeps it, with its seeded transactions."""

    contract_number: str
    phone: str
    data: str  # the account as JSON (bot.billing.wire)
    seed_hash: str  # of that JSON: an edited CSV row is seeded again
    transactions: tuple[Transaction, ...]


@dataclass(frozen=True, slots=True)
class Booked:
    """What ``LedgerStorage.apply`` did: the change (``applied``), or nothing because the
    operation id was already applied to this contract (``current``: the account as stored)."""

    applied: Applied | None = None
    current: str | None = None


Change = Callable[[str], Applied]


class LedgerStorage(ABC):
    """Where the embedded ledger keeps accounts, their transactions and the operation ids it
    applied: a SQLite file (``SqliteLedgerStorage``) or the shared Redis
    (``bot.billing.redis_ledger``). Accounts travel as JSON; what an operation does is decided
    by ``LedgerBilling`` (``bot.billing.effects``), the same for both."""

    @abstractmethod
    async def seed(self, rows: Sequence[SeedRow], checksum: str) -> int:
        """Store every row whose ``seed_hash`` differs from the stored one (new or edited in the
        CSV), replacing that account and its transactions; the others keep their changes.
        ``checksum`` names this seed as a whole. Returns how many stored accounts were replaced.
        Safe to run by several processes at once."""

    @abstractmethod
    async def account(self, contract_number: str) -> str | None: ...

    @abstractmethod
    async def accounts(self) -> list[str]:
        """Every account, by contract number."""

    @abstractmethod
    async def by_phone(self, phone: str) -> list[str]:
        """The accounts whose phone is ``phone``, by contract number."""

    @abstractmethod
    async def transactions(self, contract_number: str, limit: int) -> list[Transaction]:
        """Newest first (then the last stored first)."""

    @abstractmethod
    async def apply(
        self, contract_number: str, operation: Operation, at: datetime, change: Change
    ) -> Booked:
        """Atomically: refuse an unknown contract (``unknown_contract``) or an id already used
        for another contract (``bad_request``); answer an id already applied here with the
        account as it is; else store ``change(account JSON)`` (which may refuse: then nothing
        is stored and the id stays unused), its transactions and the id."""

    @abstractmethod
    async def close(self) -> None: ...


class SqliteLedgerStorage(LedgerStorage):
    """The ledger in a SQLite file (``":memory:"``: a throw-away one for tests and the chat)."""

    def __init__(self, path: Path | str) -> None:
        self._db = SqliteDb(Path(path), schema=_SCHEMA, thread_name="billing")

    async def seed(self, rows: Sequence[SeedRow], checksum: str) -> int:
        def q(db: sqlite3.Connection) -> int:
            known = dict(db.execute("SELECT contract_number, seed_hash FROM accounts").fetchall())
            reseeded = 0
            for row in rows:
                if known.get(row.contract_number) == row.seed_hash:
                    continue
                db.execute(
                    "INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?)",
                    (row.contract_number, row.phone, row.data, row.seed_hash),
                )
                db.execute(
                    "DELETE FROM transactions WHERE contract_number = ?", (row.contract_number,)
                )
                _insert_transactions(db, row.transactions)
                if row.contract_number in known:
                    reseeded += 1
            return reseeded

        return await self._db.transaction(q)

    async def account(self, contract_number: str) -> str | None:
        row = await self._db.run(
            lambda db: db.execute(
                "SELECT data FROM accounts WHERE contract_number = ?", (contract_number,)
            ).fetchone()
        )
        return str(row[0]) if row else None

    async def accounts(self) -> list[str]:
        rows = await self._db.run(
            lambda db: db.execute("SELECT data FROM accounts ORDER BY contract_number").fetchall()
        )
        return [str(r[0]) for r in rows]

    async def by_phone(self, phone: str) -> list[str]:
        rows = await self._db.run(
            lambda db: db.execute(
                "SELECT data FROM accounts WHERE phone = ? ORDER BY contract_number", (phone,)
            ).fetchall()
        )
        return [str(r[0]) for r in rows]

    async def transactions(self, contract_number: str, limit: int) -> list[Transaction]:
        rows = await self._db.run(
            lambda db: db.execute(
                "SELECT at, amount_rub, description FROM transactions WHERE contract_number = ? "
                "ORDER BY at DESC, id DESC LIMIT ?",
                (contract_number, limit),
            ).fetchall()
        )
        return [
            Transaction(contract_number, datetime.fromisoformat(at), Decimal(amount), text)
            for at, amount, text in rows
        ]

    async def apply(
        self, contract_number: str, operation: Operation, at: datetime, change: Change
    ) -> Booked:
        def q(db: sqlite3.Connection) -> Booked:
            row = db.execute(
                "SELECT data FROM accounts WHERE contract_number = ?", (contract_number,)
            ).fetchone()
            if row is None:
                raise BillingRefused("unknown_contract", "no such contract")
            done = db.execute(
                "SELECT contract_number FROM operations WHERE id = ?", (operation.id,)
            ).fetchone()
            if done is not None:  # a repeat: the account as it is, nothing done twice
                if done[0] != contract_number:
                    raise BillingRefused("bad_request", "operation id used for another contract")
                return Booked(current=str(row[0]))
            applied = change(str(row[0]))
            db.execute(
                "UPDATE accounts SET data = ?, phone = ? WHERE contract_number = ?",
                (
                    json.dumps(account_to_json(applied.account)),
                    applied.account.phone,
                    contract_number,
                ),
            )
            _insert_transactions(db, applied.transactions)
            db.execute(
                "INSERT INTO operations VALUES (?, ?, ?, ?, ?, ?)",
                (
                    operation.id,
                    contract_number,
                    operation.kind,
                    json.dumps(dict(operation.params), default=str),
                    operation.by,
                    at.isoformat(),
                ),
            )
            return Booked(applied=applied)

        return await self._db.transaction(q)

    async def close(self) -> None:
        await self._db.close()


def seed_rows(seed: Seed) -> tuple[list[SeedRow], str]:
    """The seed as storage rows, and a checksum of it all."""
    rows = [
        SeedRow(
            account.contract_number,
            account.phone,
            json.dumps(account_to_json(account)),
            _seed_hash(account),
            tuple(t for t in seed.transactions if t.contract_number == account.contract_number),
        )
        for account in seed.accounts
    ]
    whole = hashlib.sha256()
    for row in rows:
        whole.update(f"{row.contract_number}:{row.seed_hash}\n".encode())
        for t in row.transactions:
            whole.update(f"{transaction_at(t)}|{t.amount_rub}|{t.description}\n".encode())
    return rows, whole.hexdigest()


class LedgerBilling(Billing):
    def __init__(
        self,
        storage: LedgerStorage,
        *,
        catalog: Catalog,
        seed: Seed,
        describe: Describe,
        clock: Clock | None = None,
    ) -> None:
        self.storage = storage
        self._catalog = catalog
        self._describe = describe
        self._clock = clock or (lambda: datetime.now(UTC))
        self._seed = seed
        self._seeded = False

    async def _ensure_seeded(self) -> None:
        if self._seeded:
            return
        rows, checksum = seed_rows(self._seed)
        reseeded = await self.storage.seed(rows, checksum)
        if reseeded:
            # The provider edited these rows on purpose; their ledger changes are replaced.
            log.warning("%d contract(s) seeded again from a changed accounts.csv", reseeded)
        self._seeded = True

    def _today(self, account: Account) -> date:
        return self._clock().astimezone(self._catalog.timezone(account.city_id)).date()

    def _settled(self, raw: str) -> Account:
        account = account_from_json(json.loads(raw))
        return settle(account, self._today(account), self._catalog)

    @property
    def contracts(self) -> tuple[str, ...]:
        return tuple(a.contract_number for a in self._seed.accounts)

    async def account(self, contract_number: str) -> Account | None:
        await self._ensure_seeded()
        raw = await self.storage.account(contract_number)
        return self._settled(raw) if raw is not None else None

    async def transactions(self, contract_number: str, *, limit: int = 10) -> list[Transaction]:
        await self._ensure_seeded()
        return await self.storage.transactions(contract_number, limit)

    async def accounts_in_city(self, city_id: str) -> list[Account]:
        """Every account of a city, by contract (outage notices: the ledger can answer "who
        lives there", which the Billing interface does not ask of a remote billing)."""
        await self._ensure_seeded()
        # The city is inside the JSON; a full scan is fine for an embedded demo ledger.
        accounts = (self._settled(raw) for raw in await self.storage.accounts())
        return [a for a in accounts if a.city_id == city_id]

    async def find_by_phone(self, phone: str) -> list[Account]:
        await self._ensure_seeded()
        return [self._settled(raw) for raw in await self.storage.by_phone(phone)]

    async def apply(self, contract_number: str, operation: Operation) -> Account:
        await self._ensure_seeded()
        now = operation.at or self._clock()

        def change(raw: str) -> Applied:
            account = self._settled(raw)
            return apply_operation(
                account,
                operation,
                today=self._today(account),
                now=now,
                catalog=self._catalog,
                describe=self._describe,
            )

        booked = await self.storage.apply(contract_number, operation, now, change)
        if booked.applied is not None:
            return booked.applied.account
        assert booked.current is not None
        return self._settled(booked.current)

    async def close(self) -> None:
        await self.storage.close()


def open_ledger(
    data_dir: Path,
    catalog: Catalog,
    *,
    path: Path | str | None = None,
    storage: LedgerStorage | None = None,
    describe: Describe,
    clock: Clock | None = None,
) -> LedgerBilling:
    """Read the CSV seed strictly (file:line errors at start-up) and open its ledger: in
    ``storage`` when given (the shared Redis), else in the SQLite file at ``path``."""
    if storage is None:
        if path is None:
            raise ValueError("open_ledger needs a path or a storage")
        storage = SqliteLedgerStorage(path)
    return LedgerBilling(
        storage, catalog=catalog, seed=load_seed(data_dir, catalog), describe=describe, clock=clock
    )
