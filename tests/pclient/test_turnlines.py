"""pclient.turnlines: a turn's lines in one write, in order; bounds and no loop write at once."""

from __future__ import annotations

import asyncio

from pclient.turnlines import TurnLines


def test_a_turns_lines_go_in_one_write_at_its_end_in_order() -> None:
    writes: list[bytes] = []

    async def main() -> None:
        turn = TurnLines(writes.append)
        turn.add(b"a\n")
        turn.add(b"b\n")
        assert writes == [] and turn.held_bytes() == 4
        await asyncio.sleep(0)          # the end of this turn
        assert writes == [b"a\nb\n"]
        turn.add(b"c\n")
        turn.flush()                    # a reply goes after what was held
        await asyncio.sleep(0)
        assert writes == [b"a\nb\n", b"c\n"]

    asyncio.run(main())


def test_bounds_write_at_once_and_without_a_loop_nothing_is_held() -> None:
    writes: list[bytes] = []

    async def main() -> None:
        turn = TurnLines(writes.append, max_lines=2, max_bytes=10)
        turn.add(b"1\n")
        turn.add(b"2\n")                # the second line: the bound
        assert writes == [b"1\n2\n"]
        turn.add(b"x" * 10)             # a long line goes at once
        assert writes[-1] == b"x" * 10
        turn.add(b"dropped\n")
        turn.drop()
        await asyncio.sleep(0)
        assert writes == [b"1\n2\n", b"x" * 10]

    asyncio.run(main())
    TurnLines(writes.append).add(b"now\n")
    assert writes[-1] == b"now\n"
