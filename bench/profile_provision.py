"""Profile of the orchestrator's own work on the provisioning path (everything but helm itself).

`python -m bench.profile_provision [--stores N]`: provisions N stores in this process with the real
engine against the Kubernetes API double (a separate process) and prints the functions where the
non-helm time goes, by cumulative time. Waiting for the helm process is listed under
`subprocess.Popen.communicate` and is the part the orchestrator cannot shorten.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats

from bench.environment import configure_environment, flush_redis, machine_description, reset_database


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_provision")
    parser.add_argument("--stores", type=int, default=10)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    configure_environment()
    reset_database()
    flush_redis()
    from bench.environment import start_kube_double

    double = start_kube_double()  # before Django reads KUBECONFIG
    import django

    django.setup()
    from bench.fixtures import merchant
    from provisioning.models import ProvisioningRun
    from stores.lifecycle import store_create, store_run_execute

    try:
        _, tenant, _ = merchant("profile")
        profiler = cProfile.Profile()
        for index in range(args.stores):
            # No worker listens on the benchmark broker: this process executes the run itself.
            store, _ = store_create(tenant=tenant, name=f"profile-{index:03d}", engine="woocommerce")
            run_id = ProvisioningRun.objects.get(store=store).pk
            profiler.enable()
            outcome = store_run_execute(run_id=run_id)
            profiler.disable()
            assert outcome.status == "succeeded", outcome.detail
    finally:
        double.stop()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(args.top)
    print(f"Machine: {machine_description()}\nProfile of {args.stores} provisioning runs (cumulative):")
    print(out.getvalue())


if __name__ == "__main__":
    main()
