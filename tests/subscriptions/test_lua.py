"""The Lua script loader: scripts run from their files, by SHA once Redis knows them, with one JSON argument."""

import uuid
from pathlib import Path

from redis.asyncio import Redis

from subscriptions.store.lua import Script


async def test_a_script_runs_before_and_after_redis_forgets_it(redis_client: Redis, tmp_path: Path) -> None:
    path = tmp_path / "echo.lua"
    unique = f"-- {uuid.uuid4()}\n"  # a script this Redis has never seen, as after a restart: its text is sent
    path.write_text(unique + "local a = cjson.decode(ARGV[1])\nreturn {KEYS[1], a.word, tostring(a.n * 2)}\n")
    script = Script(path)
    assert await redis_client.script_exists(script.sha) == [False]
    assert await script.run(redis_client, ["k"], {"word": "hi", "n": 21}) == ["k", "hi", "42"]
    assert await redis_client.script_exists(script.sha) == [True]  # from now on it runs by its SHA
    assert await script.run(redis_client, ["k"], {"word": "again", "n": 1}) == ["k", "again", "2"]


async def test_a_script_queued_in_a_transaction_answers_among_its_results(redis_client: Redis, tmp_path: Path) -> None:
    path = tmp_path / "set.lua"
    path.write_text("redis.call('SET', KEYS[1], cjson.decode(ARGV[1]).value)\nreturn 1\n")
    async with redis_client.pipeline(transaction=True) as pipe:
        Script(path).queue(pipe, ["answer"], {"value": "yes"})
        pipe.get("answer")
        assert await pipe.execute() == [1, "yes"]
