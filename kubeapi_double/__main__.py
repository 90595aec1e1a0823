"""Run the double as a process: ``python -m kubeapi_double --port 0 --kubeconfig PATH``.

Prints ``READY http://127.0.0.1:PORT`` once serving, then runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from kubeapi_double.server import KubeApiDouble


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start the double, write the kubeconfig and serve until signalled."""
    parser = argparse.ArgumentParser(prog="python -m kubeapi_double", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument("--kubeconfig", required=True, help="where to write a kubeconfig for this server")
    parser.add_argument("--ready-delay", type=float, default=0.3, help="seconds before controllers act")
    parser.add_argument(
        "--job-failure-delay",
        type=float,
        default=2.0,
        help="seconds before a never-ready Job is marked Failed",
    )
    parser.add_argument(
        "--validate-schema",
        metavar="K8S_VERSION",
        default=None,
        help="validate objects against this Kubernetes version's strict schema (e.g. 1.35)",
    )
    args = parser.parse_args(argv)

    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    double = KubeApiDouble(
        host=args.host,
        port=args.port,
        ready_delay=args.ready_delay,
        job_failure_delay=args.job_failure_delay,
        validate_schema=args.validate_schema,
    )
    double.start()
    try:
        double.write_kubeconfig(args.kubeconfig)
        print(f"READY {double.url}", flush=True)
        while not done.wait(0.5):
            pass
    finally:
        double.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
