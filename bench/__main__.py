"""`python -m bench [--only NAME ...]`: run the benchmarks and print one table.

Runs against PostgreSQL (database platform_bench, recreated) and Redis (db 8 broker, 9 cache) unless
DATABASE_URL / CELERY_BROKER_URL / REDIS_URL say otherwise.
"""

from __future__ import annotations

import argparse
import json
import time

from bench.environment import configure_environment, flush_redis, machine_description, reset_database

BENCHMARKS = (
    "provision_overhead",
    "concurrency",
    "list_scaling",
    "redaction",
    "api_burst",
    "fleet_reconcile",
    "double_scaling",
    "fleet_throughput",
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--stores", type=int, default=20, help="stores for the overhead benchmark")
    parser.add_argument(
        "--burst", type=int, default=50, help="concurrent creates for the concurrency benchmark"
    )
    parser.add_argument("--helm-limit", type=int, default=4, help="PROVISIONING_CONCURRENCY for the burst")
    parser.add_argument("--sizes", default="1000,10000,50000", help="store counts for list scaling")
    parser.add_argument(
        "--targets",
        default="double,real",
        help="Kubernetes APIs for the overhead and concurrency benchmarks, side by side in one run",
    )
    parser.add_argument(
        "--fleet-stores", type=int, default=1000, help="stores provisioned by the fleet throughput benchmark"
    )
    parser.add_argument(
        "--fleet-clusters", default="1,3", help="cluster counts the fleet throughput benchmark compares"
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    configure_environment()
    import fcntl
    import os

    # One benchmark at a time: a second run would reset the database under the first.
    lock = open(os.path.join("var", "bench", "lock"), "w")  # held open (locked) for the whole run
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit("another `python -m bench` is running; wait for it to finish") from None

    os.environ.setdefault("API_THROTTLE_TOKEN_RATE", "100000/min")
    os.environ.setdefault("API_THROTTLE_IP_RATE", "100000/min")
    reset_database()
    flush_redis()
    import django

    django.setup()
    from bench import (
        api_burst,
        concurrency,
        double_scaling,
        fleet_reconcile,
        fleet_throughput,
        list_scaling,
        provision_overhead,
        redaction,
    )
    from bench.environment import real_cluster_available

    targets = [target for target in args.targets.split(",") if target]
    missing = real_cluster_available()
    if "real" in targets and missing:
        print(f"Real control plane skipped: {missing}")
        targets.remove("real")

    print(f"Machine: {machine_description()}")
    print(f"Database: {os.environ['DATABASE_URL'].split('@')[-1]}  Broker: {os.environ['CELERY_BROKER_URL']}")
    results: dict[str, dict[str, object]] = {}
    runs: list[tuple[str, object]] = []
    for name in args.only:
        if name == "provision_overhead":
            runs += [
                (f"{name} [{t}]", lambda t=t: provision_overhead.run(stores=args.stores, target=t))
                for t in targets
            ]
        elif name == "concurrency":
            runs += [
                (
                    f"{name} [{t}]",
                    lambda t=t: concurrency.run(stores=args.burst, helm_limit=args.helm_limit, target=t),
                )
                for t in targets
            ]
        elif name == "redaction":
            runs.append((name, redaction.run))
        elif name == "double_scaling":
            runs.append((name, double_scaling.run))
        elif name == "api_burst":
            runs.append((name, api_burst.run))
        elif name == "fleet_reconcile":
            if missing:
                print(f"fleet_reconcile skipped: {missing}")
                continue
            runs.append((name, fleet_reconcile.run))
        elif name == "fleet_throughput":
            if missing:
                print(f"fleet_throughput skipped: {missing}")
                continue
            counts = tuple(int(count) for count in args.fleet_clusters.split(","))
            runs.append(
                (
                    name,
                    lambda counts=counts: fleet_throughput.run(
                        stores=args.fleet_stores, cluster_counts=counts
                    ),
                )
            )
        else:
            runs.append((name, lambda: list_scaling.run(tuple(int(size) for size in args.sizes.split(",")))))
    for label, benchmark in runs:
        started = time.monotonic()
        results[label] = benchmark()  # type: ignore[operator]
        results[label]["benchmark seconds"] = round(time.monotonic() - started, 1)

    width = max(len(key) for figures in results.values() for key in figures) + 2
    for name, figures in results.items():
        print(f"\n{name}\n{'-' * len(name)}")
        for key, value in figures.items():
            print(f"  {key:<{width}} {value}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2, default=str)


if __name__ == "__main__":
    main()
