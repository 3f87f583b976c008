"""pcontrol web's stop: SIGTERM cancels the feeds, and again any that went on (Python 3.11's
asyncio.wait_for can lose a cancellation that comes as its inner request completes)."""

from __future__ import annotations

import asyncio

from pweb.cli import _cancel_all


def test_a_feed_that_swallowed_a_cancellation_is_cancelled_again():
    cancels = []

    async def feed() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancels.append(1)
                if len(cancels) == 1:
                    continue    # as wait_for does when its request completes as it is cancelled
                raise

    async def main() -> None:
        task = asyncio.create_task(feed())
        await asyncio.sleep(0)
        await asyncio.wait_for(_cancel_all([task]), 10)
        assert task.cancelled()

    asyncio.run(main())
    assert len(cancels) == 2
