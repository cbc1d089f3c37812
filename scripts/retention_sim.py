"""Retention on simulated time: 100,000 orders through the store, the pruner and audit archive.

The HTTP soak (scripts/retention-soak.sh) cannot show certificates leaving: the
shortest validity a profile takes is one day. Here the store gets the rows one
ACME order leaves (an order, an authorization with three challenges, a
certificate of realistic size, three audit events) at ``--rate`` orders per
simulated second on a fake clock, with certificates valid ``--validity``
simulated seconds; every ``--every`` simulated seconds the pruner runs a pass
(all windows 0) and ``audit archive`` moves audit rows older than a minute out.
Prints the database file's size as orders go by, with ``--prune`` on or off.

    python scripts/retention_sim.py --prune on  --orders 100000 DIR
    python scripts/retention_sim.py --prune off --orders 100000 DIR
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway import audit, audit_archive, config
from gateway.core.retention import Pruner
from gateway.core.retention_settings import WINDOW_KEYS, RetentionSettings
from gateway.model.clock import FakeClock
from gateway.model.records import VALID, Authorization, Certificate, Challenge, Identifier, Order
from gateway.model.store import Insert, Op
from gateway.storage.sqlite import SQLiteStore

LEAF = os.urandom(800)  # a P-256 leaf's DER is ~800 bytes; the served chain ~3.5 KB of PEM
CHAIN = "-----BEGIN CERTIFICATE-----\n" + "A" * 3500 + "\n-----END CERTIFICATE-----\n"


def one_order(i: int, now: datetime, validity: float) -> list[Op]:
    """The rows one finished ACME order leaves."""
    oid, zid, name = f"o{i}", f"z{i}", f"o{i}.sim.test"
    ident = Identifier("dns", name)
    expires = now + timedelta(seconds=60)
    challenges = tuple(Challenge(id=f"c{i}-{t}", authz_id=zid, type=t, token="t" * 43,
                                 status=VALID if t == "http-01" else "pending")
                       for t in ("http-01", "dns-01", "tls-alpn-01"))
    return [Insert(Order(id=oid, account_id="a1", status=VALID, identifiers=(ident,),
                         authz_ids=(zid,), expires=expires, profile="default", created_at=now,
                         certificate_id=f"s{i}", csr_der=os.urandom(300))),
            Insert(Authorization(id=zid, account_id="a1", order_id=oid, identifier=ident,
                                 status=VALID, expires=expires, challenges=challenges)),
            Insert(Certificate(id=f"s{i}", order_id=oid, account_id="a1", serial=f"{i:x}",
                               leaf_der=LEAF, chain_pem=CHAIN, not_before=now,
                               not_after=now + timedelta(seconds=validity),
                               spki_sha256=f"{i:064x}", ca="local"))]


async def upkeep(pruner: Pruner, settings: config.Settings, store: SQLiteStore,
                 clock: FakeClock, data: Path, n: int) -> None:
    """One pruner pass, then archive the audit rows older than a minute."""
    await pruner.run_pass()
    start = audit_archive.chain_start(settings)
    await audit_archive.archive(settings, store, start, clock.now() - timedelta(seconds=60),
                                data / f"audit-{n}.jsonl", clock.now())


async def main(args: argparse.Namespace) -> None:
    data = Path(args.dir)
    settings = config.parse({"server": {"data_dir": str(data)}}, "sim")
    store = SQLiteStore(data / "gateway.db")
    await store.open()
    clock = FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    trail = audit.AuditTrail(store, clock)
    windows = {kind: timedelta(0) for kind in WINDOW_KEYS}
    pruner = Pruner(RetentionSettings(windows=windows), store, clock)
    step, next_upkeep, began = 1 / args.rate, args.every, time.monotonic()
    print("orders,simulated_s,db_bytes,certificates")
    pending: list[Op] = []
    for i in range(args.orders):
        now = clock.now()
        pending += one_order(i, now, args.validity)
        pending += [trail.event(e, actor="acme:a1", identifiers=(f"o{i}.sim.test",),
                                request_id=f"o{i}") for e in ("requested", "validated", "issued")]
        clock.advance(step)
        if len(pending) >= 100 * 6:  # a hundred orders per commit, as a busy group commit
            await store.apply(pending)
            pending = []
        if (i + 1) * step >= next_upkeep:
            await store.apply(pending)
            pending = []
            next_upkeep += args.every
            if args.prune == "on":
                await upkeep(pruner, settings, store, clock, data, i)
            stats = await store.table_stats()
            print(f"{i + 1},{(i + 1) * step:.0f},{(data / 'gateway.db').stat().st_size},"
                  f"{stats.tables['certificates'].rows}", flush=True)
    await store.apply(pending)
    await store.close()
    print(f"# {args.orders} orders in {time.monotonic() - began:.0f} s wall")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir", help="a new directory for the database and archives")
    parser.add_argument("--prune", choices=("on", "off"), default="on")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=100.0, help="orders per simulated second")
    parser.add_argument("--validity", type=float, default=120.0,
                        help="certificate validity, simulated seconds")
    parser.add_argument("--every", type=float, default=60.0,
                        help="simulated seconds between pruner passes")
    arguments = parser.parse_args()
    Path(arguments.dir).mkdir(parents=True, exist_ok=False)
    asyncio.run(main(arguments))
