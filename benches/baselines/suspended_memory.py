"""suspended_memory/python_asyncio: resident memory per suspended asyncio task (SPEC §9), the
CPython side of `benches/benches/lisp_async.rs`. Usage: python3 suspended_memory.py N

Prints "<rss before> <rss after>" in bytes: before spawning, and once N tasks are each parked
in `await asyncio.sleep(60)` (all started). Then exits without waiting for them.
"""
import asyncio
import os
import sys


def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def main(n):
    parked = 0

    async def task():
        nonlocal parked
        parked += 1
        await asyncio.sleep(60)

    # Warm up the same code path on a few tasks first.
    warm = [asyncio.create_task(task()) for _ in range(10)]
    await asyncio.sleep(0)
    for t in warm:
        t.cancel()
    await asyncio.sleep(0)
    parked = 0
    before = rss()
    ts = [asyncio.create_task(task()) for _ in range(n)]
    while parked < n:
        await asyncio.sleep(0)
    after = rss()
    print(before, after, flush=True)
    os._exit(0)


asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100000))
