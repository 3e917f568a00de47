import asyncio, time
import aiohttp
from tests.fake_poe import FakePoe, hang, text

async def test_close_while_hanging(aiohttp_server):
    fake = FakePoe()
    fake.script("h", [text("x"), hang()])
    server = await aiohttp_server(fake.make_app())
    async with aiohttp.ClientSession() as s:
        resp = await s.post(str(server.make_url("/bot/h")), json={"version":"1.2","type":"query","query":[{"role":"user","content":"x"}]}, headers={"Authorization":"Bearer k"})
        await resp.content.readuntil(b"\n\n")
        t=time.monotonic()
        await server.close()
        print("close took", time.monotonic()-t, fake.last.cancelled.is_set())
        resp.close()
