"""The private slapd and the generated directories."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ldap

from ldap_sync import demo_directory
from ldap_sync.slapd import SlapdServer

ROOT = Path(__file__).resolve().parents[2]


def test_demo_directory_is_realistic():
    directory = demo_directory.demo()
    paths = directory.ou_paths()
    assert "/Paris/Équipe Réseau" in paths and "/Lyon/Ingénierie/Qualité" in paths
    assert paths.index("/Lyon") < paths.index("/Lyon/Ingénierie") < paths.index("/Lyon/Ingénierie/Qualité")
    assert 200 <= len(directory.people) <= 500
    mails = [person.mail for person in directory.people]
    assert len(set(mails)) == len(mails) and all(mail and mail.endswith("@example.com") for mail in mails)
    assert any(not person.cn.isascii() for person in directory.people)
    assert directory.to_ldif() == demo_directory.demo().to_ldif()  # deterministic for a seed


def test_large_directory_has_the_requested_size():
    directory = demo_directory.large()
    assert len(directory.ous) == 1200 and len(set(directory.ous)) == 1200
    assert len({person.uid for person in directory.people}) == 5000
    assert max(len(path) for path in directory.ous) == 3


def test_stop_kills_the_process_and_removes_its_directory():
    server = SlapdServer().start(seed_ldif=demo_directory.skeleton().to_ldif())
    pid, data_dir = server.process.pid, server.data_dir
    server.stop()
    assert not data_dir.exists()
    try:
        os.kill(pid, 0)
        raise AssertionError("slapd still running")
    except ProcessLookupError:
        pass


def test_cli_serves_the_demo_until_terminated(tmp_path):
    paths_file = tmp_path / "ou-paths.txt"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ldap_sync.slapd",
            "--data-dir",
            str(tmp_path / "slapd"),
            "--seed",
            "demo",
            "--ou-paths-file",
            str(paths_file),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        printed = {}
        deadline = time.monotonic() + 20
        while "Bind password" not in printed and time.monotonic() < deadline:
            line = process.stdout.readline()
            if ":" in line:
                key, value = line.split(":", 1)
                printed[key.strip()] = value.strip()
        conn = ldap.initialize(printed["URI"])
        conn.simple_bind_s(printed["Bind DN"], printed["Bind password"])
        assert conn.search_s(printed["Base DN"], ldap.SCOPE_BASE)
        conn.unbind_s()
        assert "/Paris/Ventes/Grands Comptes" in paths_file.read_text(encoding="utf-8").splitlines()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    # The data directory was given, so it stays (and is reused, not reseeded, on the next start).
    assert (tmp_path / "slapd" / "slapd.d").exists()
