"""``python -m google_emulator --port 8765 --devices 500``: run the offline Google until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from google_emulator.server import EmulatorServer
from google_emulator.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m google_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free port; default 8765)")
    parser.add_argument("--domain", default="example.com")
    parser.add_argument("--devices", type=int, default=50, help="ChromeOS devices to generate")
    parser.add_argument("--org-units", type=int, default=12, help="org units to generate (besides the root)")
    parser.add_argument("--seed", type=int, default=1, help="same seed, same domain")
    parser.add_argument(
        "--org-unit-paths", type=Path, help="file of OU paths, one per line, instead of generated"
    )
    parser.add_argument("--state", type=Path, help="JSON file the state is loaded from and saved to")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    parser.add_argument("--redirect-uri", action="append", default=[], help="register exact redirect URIs")
    parser.add_argument("--admin-email", help="the consenting admin (default admin@<domain>)")
    parser.add_argument("--command-step-seconds", type=float, default=1.0, help="seconds per command state")
    parser.add_argument(
        "--customers", type=int, default=1, help="Google customers (2..N: tenant<i>.<domain>, same sizes)"
    )
    parser.add_argument(
        "--latency",
        action="append",
        default=[],
        metavar="METHOD=MEAN[:SPREAD]",
        help="latency in ms of a method id (or *), e.g. directory.chromeosdevices.list=250:100 (repeatable)",
    )
    parser.add_argument("--user-rate-limit", type=int, help="calls per window per user per project (403)")
    parser.add_argument(
        "--customer-concurrency-limit", type=int, help="concurrent calls per Workspace account (429)"
    )
    parser.add_argument(
        "--project-rate-limit", type=int, help="calls per window per project (403 quotaExceeded)"
    )
    parser.add_argument("--rate-window-seconds", type=float, default=60.0, help="window of the rates (60)")
    parser.add_argument(
        "--device-cache",
        type=int,
        default=120_000,
        help="unchanged devices kept generated, all customers together (~3 KB each; default 120000)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser.parse_args(argv)


def parse_latency(values: list[str]) -> dict[str, list[float]]:
    latency: dict[str, list[float]] = {}
    for value in values:
        method, _, model = value.partition("=")
        mean, _, spread = model.partition(":")
        try:
            latency[method or "*"] = [float(mean), float(spread or 0)]
        except ValueError:
            raise SystemExit(f"--latency {value!r}: expected METHOD=MEAN[:SPREAD] in ms") from None
    return latency


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s"
    )
    paths = None
    if args.org_unit_paths:
        lines = args.org_unit_paths.read_text(encoding="utf-8").splitlines()
        paths = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    server = EmulatorServer(
        host=args.host,
        port=args.port,
        state_file=args.state,
        domain=args.domain,
        devices=args.devices,
        org_units=args.org_units,
        seed=args.seed,
        org_unit_paths=paths,
        client_id=args.client_id,
        client_secret=args.client_secret,
        redirect_uris=args.redirect_uri,
        admin_email=args.admin_email,
        command_step_seconds=args.command_step_seconds,
        customers=args.customers,
        latency_ms=parse_latency(args.latency),
        user_rate_limit=args.user_rate_limit,
        customer_concurrency_limit=args.customer_concurrency_limit,
        project_rate_limit=args.project_rate_limit,
        rate_window_seconds=args.rate_window_seconds,
        device_cache=args.device_cache,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    server.start()
    state = server.state
    logging.info(
        "Google emulator on %s (GOOGLE_EMULATOR_HOST=%s): %s, %d devices, %d org units, client %s%s",
        server.url,
        server.host,
        state.customer["customerDomain"],
        len(state.devices),
        len(state.org_units),
        state.config.client_id,
        f" (+{len(state.customers) - 1} customers)" if len(state.customers) > 1 else "",
    )
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
