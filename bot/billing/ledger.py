"""The embedded billing: a SQLite ledger seeded from the catalog's CSV files.

Each catalog directory gets its own ledger file (``var/billing-<hash of the path>.sqlite3``), so
``--data`` with another catalog starts from that catalog's accounts. The CSV files are the
starting point; after that the ledger is the truth (a promised payment or a pause survives a
restart). A contract whose CSV row has changed since it was seeded is seeded again from the new
row: the provider edited it on purpose.

The stand-in does not charge monthly fees by itself; it applies what operations and the passing
of days do (``bot.billing.effects``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from bot.billing.base import Billing, BillingRefused, Operation
from bot.billing.csv_seed import Seed, load_seed
from bot.billing.effects import Describe, apply_operation, settle
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
    # Stored in UTC so that ordering by the text column is ordering by time (the seed carries
    # local offsets of four time zones).
    db.executemany(
        "INSERT INTO transactions (contract_number, at, amount_rub, description) "
        "VALUES (?, ?, ?, ?)",
        [
            (t.contract_number, t.at.astimezone(UTC).isoformat(), str(t.amount_rub), t.description)
            for t in transactions
        ],
    )


def ledger_path(var_dir: Path, data_dir: Path) -> Path:
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return var_dir / f"billing-{digest}.sqlite3"


def _seed_hash(account: Account) -> str:
    return hashlib.sha256(json.dumps(account_to_json(account), sort_keys=True).encode()).hexdigest()


class LedgerBilling(Billing):
    def __init__(
        self,
        path: Path | str,
        *,
        catalog: Catalog,
        seed: Seed,
        describe: Describe,
        clock: Clock | None = None,
    ) -> None:
        # ":memory:" gives a throw-away ledger (tests, the terminal chat).
        self._db = SqliteDb(Path(path), schema=_SCHEMA, thread_name="billing")
        self._catalog = catalog
        self._describe = describe
        self._clock = clock or (lambda: datetime.now(UTC))
        self._seed = seed
        self._seeded = False

    async def _ensure_seeded(self) -> None:
        if self._seeded:
            return
        seed = self._seed

        def q(db: sqlite3.Connection) -> None:
            known = dict(db.execute("SELECT contract_number, seed_hash FROM accounts").fetchall())
            reseeded = 0
            for account in seed.accounts:
                digest = _seed_hash(account)
                if known.get(account.contract_number) == digest:
                    continue
                db.execute(
                    "INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?)",
                    (
                        account.contract_number,
                        account.phone,
                        json.dumps(account_to_json(account)),
                        digest,
                    ),
                )
                db.execute(
                    "DELETE FROM transactions WHERE contract_number = ?",
                    (account.contract_number,),
                )
                _insert_transactions(
                    db,
                    [t for t in seed.transactions if t.contract_number == account.contract_number],
                )
                if account.contract_number in known:
                    reseeded += 1
            if reseeded:
                # The provider edited these rows on purpose; their ledger changes are replaced.
                log.warning("%d contract(s) seeded again from a changed accounts.csv", reseeded)

        await self._db.transaction(q)
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
        row = await self._db.run(
            lambda db: db.execute(
                "SELECT data FROM accounts WHERE contract_number = ?", (contract_number,)
            ).fetchone()
        )
        return self._settled(row[0]) if row else None

    async def transactions(self, contract_number: str, *, limit: int = 10) -> list[Transaction]:
        await self._ensure_seeded()
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

    async def accounts_in_city(self, city_id: str) -> list[Account]:
        """Every account of a city, by contract (outage notices: the ledger can answer "who
        lives there", which the Billing interface does not ask of a remote billing)."""
        await self._ensure_seeded()
        rows = await self._db.run(
            lambda db: db.execute("SELECT data FROM accounts ORDER BY contract_number").fetchall()
        )
        # The city is inside the JSON; a full scan is fine for an embedded demo ledger.
        accounts = (self._settled(r[0]) for r in rows)
        return [a for a in accounts if a.city_id == city_id]

    async def find_by_phone(self, phone: str) -> list[Account]:
        await self._ensure_seeded()
        rows = await self._db.run(
            lambda db: db.execute(
                "SELECT data FROM accounts WHERE phone = ? ORDER BY contract_number", (phone,)
            ).fetchall()
        )
        return [self._settled(r[0]) for r in rows]

    async def apply(self, contract_number: str, operation: Operation) -> Account:
        await self._ensure_seeded()
        now = operation.at or self._clock()

        def q(db: sqlite3.Connection) -> Account:
            row = db.execute(
                "SELECT data FROM accounts WHERE contract_number = ?", (contract_number,)
            ).fetchone()
            if row is None:
                raise BillingRefused("unknown_contract", "no such contract")
            account = self._settled(row[0])
            done = db.execute(
                "SELECT contract_number FROM operations WHERE id = ?", (operation.id,)
            ).fetchone()
            if done is not None:  # a repeat: the account as it is, nothing done twice
                if done[0] != contract_number:
                    raise BillingRefused("bad_request", "operation id used for another contract")
                return account
            applied = apply_operation(
                account,
                operation,
                today=self._today(account),
                now=now,
                catalog=self._catalog,
                describe=self._describe,
            )
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
                    now.isoformat(),
                ),
            )
            return applied.account

        return await self._db.transaction(q)

    async def close(self) -> None:
        await self._db.close()


def open_ledger(
    data_dir: Path,
    catalog: Catalog,
    *,
    path: Path | str,
    describe: Describe,
    clock: Clock | None = None,
) -> LedgerBilling:
    """Read the CSV seed strictly (file:line errors at start-up) and open its ledger."""
    return LedgerBilling(
        path, catalog=catalog, seed=load_seed(data_dir, catalog), describe=describe, clock=clock
    )
