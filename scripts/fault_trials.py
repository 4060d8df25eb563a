"""Randomised SIGKILL trials: many runs of tests/scaleout/fault_harness.py with random kill and
restart times, each on an emptied private Redis; prints one line per trial and the totals.

    .venv/bin/python scripts/fault_trials.py --trials 200 --processes 3 --chats 60 --per-chat 15

Needs redis-server (scripts/system-deps.sh). Everything runs on 127.0.0.1. A trial takes about
as long as its load (chats × per-chat replies at Telegram's pacing) plus start-up; the figures
of the last long run are in docs/deploy.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.redis_server import RedisServer  # noqa: E402
from tests.scaleout.fault_harness import TrialPlan, TrialResult, run_trial, summary  # noqa: E402


async def main(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    results: list[TrialResult] = []
    with tempfile.TemporaryDirectory(prefix="fault-trials-") as tmp:
        server = RedisServer(Path(tmp) / "redis", appendonly=True)
        try:
            for trial in range(args.trials):
                with server.client() as client:
                    client.flushall()
                plan = TrialPlan(
                    processes=args.processes,
                    chats=args.chats,
                    per_chat=args.per_chat,
                    kill_after=rng.uniform(0.5, args.max_kill_after),
                    restart_after=rng.uniform(0.1, 3.0),
                    seed=rng.randrange(1 << 30),
                )
                started = time.monotonic()
                workdir = Path(tmp) / f"trial-{trial}"
                workdir.mkdir()
                result = await run_trial(server.url, workdir, plan)
                results.append(result)
                line = {
                    "trial": trial,
                    "seconds": round(time.monotonic() - started, 1),
                    "kill_after": round(plan.kill_after, 2),
                    "acknowledged": result.acknowledged,
                    "lost": result.lost,
                    "order_violations": result.order_violations,
                    "duplicates": result.duplicates,
                    "uncertain_counted": result.uncertain_counted,
                    "recovery_s": round(result.recovery_seconds, 2),
                }
                print(json.dumps(line, ensure_ascii=False), flush=True)
                for note in result.notes[:5]:
                    print("   ", note, flush=True)
        finally:
            server.stop()
    totals = summary(results)
    print(json.dumps({"totals": totals}, ensure_ascii=False), flush=True)
    bad = (
        totals["lost"]
        or totals["order_violations"]
        or totals["duplicates"] > totals["uncertain_counted"]
    )
    return 1 if bad else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--chats", type=int, default=60)
    parser.add_argument("--per-chat", type=int, default=15)
    parser.add_argument("--max-kill-after", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=1)
    sys.exit(asyncio.run(main(parser.parse_args())))
