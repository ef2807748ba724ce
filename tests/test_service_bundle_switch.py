"""Live bundle switch: a new bundle written as the `serving` stage writes it is served without a restart,
and a broken one is refused while the old one keeps serving (the watcher alone, then a real server under load)."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from src.recsys.io import atomic_directory
from src.recsys.serving.bundle_builder import build_bundle, save_bundle
from src.recsys.serving.bundle_format import MANIFEST
from src.recsys.serving.bundle_reader import ServingBundle
from src.service.live_bundle import BundleWatcher
from tests.helpers.bundles import random_frames, tiny_frames

CLIENTS = 4  # concurrent requests of the load: bounded, loopback only


def write_bundle(folder: Path, frames: dict[str, pd.DataFrame], damage: str | None = None) -> str:
    """Write a bundle the way the `serving` stage does (a temp folder renamed into place); return its version.

    ``damage``: "flipped" changes a byte of a file after the manifest was written, "missing" drops a file,
    "unlisted" drops it from the manifest (the reader checks the list against the format's).
    """
    with atomic_directory(folder) as tmp:
        manifest = save_bundle(build_bundle(**frames), tmp)
        target = tmp / "popular.items.npy"
        if damage == "flipped":
            data = bytearray(target.read_bytes())
            data[-1] ^= 0x01
            target.write_bytes(bytes(data))
        elif damage == "missing":
            target.unlink()
        elif damage == "unlisted":
            del manifest["files"]["popular.items"]
            (tmp / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return manifest["version"]


def test_the_watcher_switches_to_a_settled_new_bundle_and_refuses_a_broken_one(tmp_path):
    folder = tmp_path / "bundle"
    first = write_bundle(folder, tiny_frames())
    served, failures = [ServingBundle.open(folder)], []
    watcher = BundleWatcher(folder, lambda: served[-1].version, served.append, failures.append, interval_s=0)

    def poll(times: int) -> None:
        for _ in range(times):
            asyncio.run(watcher.poll())

    poll(3)
    assert [bundle.version for bundle in served] == [first]  # the version it serves is not reopened
    second = write_bundle(folder, random_frames(1))
    poll(1)
    assert len(served) == 1  # a changed folder waits one poll to settle
    poll(1)
    assert served[-1].version == second and served[-1].popular.tolist() == \
        ServingBundle.open(folder).popular.tolist()
    for damage, message in (("flipped", "content hash"), ("missing", "popular.items.npy: cannot be read"),
                            ("unlisted", "missing ['popular.items']")):
        write_bundle(folder, random_frames(2), damage)
        poll(4)
        assert served[-1].version == second and message in failures[-1]  # tried once, kept the old one
    assert len(failures) == 3
    third = write_bundle(folder, random_frames(2))
    poll(2)
    assert served[-1].version == third


def test_the_watcher_survives_any_error_opening_a_bundle(tmp_path, monkeypatch):
    folder = tmp_path / "bundle"
    write_bundle(folder, tiny_frames())
    failures = []
    watcher = BundleWatcher(folder, lambda: "another version", lambda bundle: None, failures.append, interval_s=0)

    def broken(folder):
        raise RuntimeError("not a BundleError")

    monkeypatch.setattr(ServingBundle, "open", broken)
    for _ in range(3):
        asyncio.run(watcher.poll())
    assert len(failures) == 1 and "RuntimeError('not a BundleError')" in failures[0]


@pytest.mark.slow  # a real server under load
def test_a_server_switches_bundles_under_load_without_a_failed_request(tmp_path, start_service):
    folder = tmp_path / "bundle"
    first = write_bundle(folder, tiny_frames())
    server = start_service(tmp_path)
    second = random_frames(1)
    switched = asyncio.run(load(server.url, lambda: write_bundle(folder, second)))
    assert switched.failures == [] and switched.versions[0] == first and switched.versions[-1] != first
    assert set(switched.versions) == {first, switched.versions[-1]}
    assert switched.versions == sorted(switched.versions, key=lambda version: version != first)  # never back
    assert httpx.get(f"{server.url}/health").json()["bundle_version"] == switched.versions[-1]
    maps = Path(f"/proc/{server.pid}/maps")
    if maps.exists():  # Linux: the replaced bundle's files are unmapped once no request holds them
        assert "(deleted)" not in maps.read_text()
    print(f"switch: new version answered {switched.switch_s:.2f} s after the bundle landed, "
          f"{len(switched.versions)} requests, none failed")

    refused = asyncio.run(load(server.url, lambda: write_bundle(folder, random_frames(2), "flipped"), wait_s=0, settle_s=2.0))
    assert refused.failures == [] and set(refused.versions) == {switched.versions[-1]}
    assert "not served, keeping" in server.output() and "content hash" in server.output()
    assert "recsys_bundle_switch_failures_total 1.0" in httpx.get(f"{server.url}/metrics").text


class LoadResult:
    def __init__(self) -> None:
        self.versions: list[str] = []  # bundle_version of every answer, in the order answered
        self.failures: list[str] = []
        self.switch_s: float | None = None  # from the bundle landing to the first answer from another version


async def load(url: str, change, before_s: float = 1.0, wait_s: float = 5.0, settle_s: float = 1.0) -> LoadResult:
    """``CLIENTS`` loops of recommendation requests; ``change()`` runs in a thread after ``before_s``; the load
    stops ``settle_s`` after the first answer from a new version, or after ``wait_s`` without one."""
    result, stop, landed = LoadResult(), asyncio.Event(), [None]
    users = np.random.default_rng(0).integers(0, 120, size=10_000).tolist()  # tiny (100, 101) and random (0..59) users

    async def client(n: int, http: httpx.AsyncClient) -> None:
        for user in users[n::CLIENTS]:
            if stop.is_set():
                return
            try:
                response = await http.get(f"/users/{user}/recommendations", params={"k": 5})
            except httpx.HTTPError as error:
                result.failures.append(repr(error))
                continue
            if response.status_code != 200:
                result.failures.append(f"{response.status_code} {response.text}")
                continue
            result.versions.append(response.json()["bundle_version"])
            if result.switch_s is None and landed[0] and result.versions[-1] != result.versions[0]:
                result.switch_s = time.perf_counter() - landed[0]

    async def drive() -> None:
        await asyncio.sleep(before_s)
        await asyncio.to_thread(change)
        landed[0] = time.perf_counter()
        while result.switch_s is None and time.perf_counter() < landed[0] + wait_s:
            await asyncio.sleep(0.05)
        await asyncio.sleep(settle_s)
        stop.set()

    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        await asyncio.wait_for(asyncio.gather(drive(), *(client(n, http) for n in range(CLIENTS))), 60)
    return result
