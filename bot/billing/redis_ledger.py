"""The embedded ledger's storage in Redis (REDIS_URL, no BILLING_URL): one ledger for every
gateway process, so a payment booked through one is the balance every other one reads.

What an operation does stays in ``LedgerBilling`` (Python, shared with SQLite). Booking it is
optimistic and atomic: read the account and its version, compute the change, then one Lua
script writes the account, its transactions and the operation id only if the version is still
the one read and the id is still unused; otherwise nothing is written and the change is
computed again from the fresh account. So two processes changing one balance at once both
count, and the same operation id (a billing event redelivered to another process, «Да»
pressed twice) is booked once.

Keys (``P`` = ``isp-bot:{ledger}``, one Redis Cluster slot: a booking is one script):

- ``P:acct:<contract>`` hash: data (the account as JSON), phone, seed_hash, version.
- ``P:contracts`` set of contract numbers; ``P:phone:<phone>`` set of contracts with that phone.
- ``P:tx:<contract>`` sorted set, all scores 0, members ``<UTC ISO time>␟<seq>␟<amount>␟<text>``
  so that the lexical order is SQLite's ``ORDER BY at, id``; ``P:txseq`` numbers them.
- ``P:ops`` hash operation id -> JSON (contract, kind, params, by, at): the ids applied.
- ``P:seeded`` the checksum of the catalog seed last applied in full.

Seeding when several processes start at once: each account is one script that replaces the
stored account only if its ``seed_hash`` differs from the row's (new, or edited in the CSV), so
running it twice, or in two processes at the same moment, stores it once and never undoes a
change made since. ``P:seeded`` (set after every row went through) lets a process whose catalog
has that checksum skip the rows altogether. There is one ledger per Redis, whatever the path of
the catalog on each machine (SQLite's file name follows the path; here the processes of one
deployment share the catalog's content, not its path).

Redis failing is reported to the store's health (``RedisCalls``) and raised as
``BillingUnavailable``: what the Billing interface promises its callers when there is no
trustworthy answer (the bot says the billing is unavailable, billing events answer 503 and are
delivered again; retrying an operation id is safe).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from redis.asyncio import Redis

from bot.billing.base import BillingRefused, BillingUnavailable, Operation
from bot.billing.ledger import Booked, Change, LedgerStorage, SeedRow, transaction_at
from bot.billing.wire import account_to_json
from bot.catalog.models import Transaction
from bot.storage.health import StoreHealth, StoreUnavailable
from bot.storage.redis.client import RedisCalls
from bot.storage.redis.keys import global_key

T = TypeVar("T")

AREA = "ledger"
SEP = "\x1f"
# Two processes booking on one account at the same instant: one writes, the other computes
# again. More rounds than that means something keeps changing the account: say so, not loop.
MAX_ROUNDS = 50

# Shared: append transaction members (ARGV from ``first`` on: at, amount, text triples).
_ADD_TRANSACTIONS = """
local function add_transactions(tx, seq, first)
  for i = first, #ARGV, 3 do
    local n = string.format('%015d', redis.call('incr', seq))
    local member = ARGV[i] .. '\\31' .. n .. '\\31' .. ARGV[i + 1] .. '\\31' .. ARGV[i + 2]
    redis.call('zadd', tx, 0, member)
  end
end
"""

# KEYS: account, transactions, phone set, contracts, tx seq.
# ARGV: prefix, contract, phone, data, seed hash, then transactions.
# Returns 0 (already seeded from this row), 1 (new), 2 (replaced an edited row).
_SEED_ACCOUNT = (
    _ADD_TRANSACTIONS
    + """
local stored = redis.call('hmget', KEYS[1], 'seed_hash', 'phone')
if stored[1] == ARGV[5] then return 0 end
if stored[2] then redis.call('srem', ARGV[1] .. ':phone:' .. stored[2], ARGV[2]) end
redis.call('hset', KEYS[1], 'data', ARGV[4], 'phone', ARGV[3], 'seed_hash', ARGV[5])
redis.call('hincrby', KEYS[1], 'version', 1)
redis.call('del', KEYS[2])
add_transactions(KEYS[2], KEYS[5], 6)
redis.call('sadd', KEYS[3], ARGV[2])
redis.call('sadd', KEYS[4], ARGV[2])
if stored[1] then return 2 end
return 1
"""
)

# KEYS: account, operations, transactions, tx seq, new phone set.
# ARGV: prefix, version read, operation id, operation JSON, contract, data, phone, then
# transactions. Returns 'ok', 'done' (the id was applied meanwhile) or 'changed' (the account
# was: compute again).
_BOOK = (
    _ADD_TRANSACTIONS
    + """
if redis.call('hexists', KEYS[2], ARGV[3]) == 1 then return 'done' end
local stored = redis.call('hmget', KEYS[1], 'version', 'phone')
if not stored[1] or stored[1] ~= ARGV[2] then return 'changed' end
redis.call('hset', KEYS[1], 'data', ARGV[6], 'phone', ARGV[7])
redis.call('hincrby', KEYS[1], 'version', 1)
if stored[2] ~= ARGV[7] then
  redis.call('srem', ARGV[1] .. ':phone:' .. stored[2], ARGV[5])
  redis.call('sadd', KEYS[5], ARGV[5])
end
add_transactions(KEYS[3], KEYS[4], 8)
redis.call('hset', KEYS[2], ARGV[3], ARGV[4])
return 'ok'
"""
)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _transaction_args(transactions: Sequence[Transaction]) -> list[str]:
    return [x for t in transactions for x in (transaction_at(t), str(t.amount_rub), t.description)]


class RedisLedgerStorage(LedgerStorage):
    """The ledger in the shared Redis; ``redis`` is the gateway's one client (not closed here)."""

    def __init__(self, redis: Redis, *, health: StoreHealth | None = None) -> None:
        self._redis = redis
        self._calls = RedisCalls(health or StoreHealth())
        self._prefix = global_key(AREA)
        self._seed_account = redis.register_script(_SEED_ACCOUNT)
        self._book = redis.register_script(_BOOK)

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    async def _run(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await self._calls.run(op, call)
        except StoreUnavailable as exc:
            raise BillingUnavailable(f"the ledger is unavailable ({exc.reason})") from exc

    async def seed(self, rows: Sequence[SeedRow], checksum: str) -> int:
        seeded = self._key("seeded")
        stored: Any = await self._run("seed", lambda: self._redis.get(seeded))
        if stored is not None and _text(stored) == checksum:
            return 0  # this very catalog went through in full before: nothing to compare

        async def each_row() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    await self._seed_account(
                        keys=[self._key("acct", row.contract_number),
                              self._key("tx", row.contract_number),
                              self._key("phone", row.phone), self._key("contracts"),
                              self._key("txseq")],
                        args=[self._prefix, row.contract_number, row.phone, row.data,
                              row.seed_hash, *_transaction_args(row.transactions)],
                        client=pipe,
                    )  # fmt: skip
                results: list[Any] = await pipe.execute()
            await self._redis.set(seeded, checksum)
            return results

        results = await self._run("seed", each_row)
        return sum(1 for r in results if int(r) == 2)

    async def account(self, contract_number: str) -> str | None:
        key = self._key("acct", contract_number)
        data = await self._run("account", lambda: self._redis.hget(key, "data"))
        return None if data is None else _text(data)

    async def _accounts(self, op: str, contracts_key: str) -> list[str]:
        async def read() -> list[Any]:
            contracts = sorted(_text(c) for c in await self._redis.smembers(contracts_key))
            if not contracts:
                return []
            async with self._redis.pipeline(transaction=False) as pipe:
                for contract in contracts:
                    pipe.hget(self._key("acct", contract), "data")
                found: list[Any] = await pipe.execute()
                return found

        return [_text(data) for data in await self._run(op, read) if data is not None]

    async def accounts(self) -> list[str]:
        return await self._accounts("accounts", self._key("contracts"))

    async def by_phone(self, phone: str) -> list[str]:
        return await self._accounts("by_phone", self._key("phone", phone))

    async def transactions(self, contract_number: str, limit: int) -> list[Transaction]:
        if limit == 0:
            return []
        key = self._key("tx", contract_number)
        count = limit if limit > 0 else -1  # as SQLite's LIMIT: a negative one is no limit
        members: list[Any] = await self._run(
            "transactions",
            lambda: self._redis.zrange(key, "+", "-", desc=True, bylex=True, offset=0, num=count),
        )
        found = []
        for member in members:
            at, _, amount, text = _text(member).split(SEP, 3)
            found.append(
                Transaction(contract_number, datetime.fromisoformat(at), Decimal(amount), text)
            )
        return found

    async def apply(
        self, contract_number: str, operation: Operation, at: datetime, change: Change
    ) -> Booked:
        account_key = self._key("acct", contract_number)
        ops_key = self._key("ops")
        record = json.dumps(
            {"contract": contract_number, "kind": operation.kind,
             "params": dict(operation.params), "by": operation.by, "at": at.isoformat()},
            default=str,
        )  # fmt: skip

        async def read() -> tuple[list[Any], Any]:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hmget(account_key, ("data", "version"))
                pipe.hget(ops_key, operation.id)
                stored, done = await pipe.execute()
            return stored, done

        for _ in range(MAX_ROUNDS):
            (data, version), done = await self._run("apply", read)
            if data is None:
                raise BillingRefused("unknown_contract", "no such contract")
            if done is not None:  # a repeat: the account as it is, nothing done twice
                if json.loads(done)["contract"] != contract_number:
                    raise BillingRefused("bad_request", "operation id used for another contract")
                return Booked(current=_text(data))
            applied = change(_text(data))  # may refuse: nothing stored, the id stays unused
            new = applied.account
            keys = [account_key, ops_key, self._key("tx", contract_number), self._key("txseq"),
                    self._key("phone", new.phone)]  # fmt: skip
            args = [self._prefix, version, operation.id, record, contract_number,
                    json.dumps(account_to_json(new)), new.phone,
                    *_transaction_args(applied.transactions)]  # fmt: skip
            answer = await self._run("apply", partial(self._book, keys=keys, args=args))
            if _text(answer) == "ok":
                return Booked(applied=applied)
            # 'done' or 'changed': read again; the next round answers or recomputes.
        raise BillingUnavailable("the account kept changing; try again")

    async def close(self) -> None:
        """Nothing of its own to close: the Redis client is the gateway's."""
