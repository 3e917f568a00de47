"""The Images API face: ``POST /v1/images/generations`` and ``POST /v1/images/edits``.

Parsing is ``translate/images_request.py`` (an edit's multipart body is read by
:mod:`.form`), the bot's options ``translate/images_params.py``, the answer
``translate/images_encode.py``. The Poe work is the shared core's: :func:`.prepare.admitted`
(proxy keys, limits), :func:`.prepare.prepare` (model, rate limit, bot parameters, and the
upload of an edit's images, once for all images), then one :func:`.answer.collect` per
image, at most :data:`MAX_CONCURRENT` at a time. The first failure fails the request and
closes the other queries; so does the client leaving. The answer is sent when every image
exists (a non-stream JSON body), with ``b64_json`` after the server downloaded each image
from the URL Poe gave (:meth:`~poe2openai.poe.client.PoeClient.download`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from aiohttp import web

from .. import keys
from ..jsonlib import dumps
from ..team.gate import Access
from ..translate.conversation import Conversation, Usage
from ..translate.images_encode import Image, answer_images, images_body, no_image, total_usage
from ..translate.images_params import map_image_options
from ..translate.images_request import (
    ImagesRequest,
    parse_edit_request,
    parse_generation_request,
)
from ..translate.items import Accumulator
from .body import LARGE_BODY, read_json
from .credentials import authorize
from .form import read_form
from .prepare import Prepared, admitted, bot_schema, overhead_ms, prepare
from .whole import collect

__all__ = ["MAX_CONCURRENT", "edit_images", "generate_images"]

log = logging.getLogger(__name__)

#: Poe queries (and image downloads) of one request in flight at once.
MAX_CONCURRENT: Final = 4

T = TypeVar("T")


async def generate_images(request: web.Request) -> web.Response:
    access = authorize(request, "images")
    parsed = parse_generation_request(await read_json(request))
    return await _answer(request, parsed, access)


async def edit_images(request: web.Request) -> web.Response:
    access = authorize(request, "images")
    form = await read_form(request)
    if sum(len(f.data) for f in form.files) > LARGE_BODY:
        async with request.config_dict[keys.LARGE_BODIES]:  # base64 of the images
            parsed = await asyncio.to_thread(parse_edit_request, form.fields, form.files)
    else:
        parsed = parse_edit_request(form.fields, form.files)
    del form
    return await _answer(request, parsed, access)


async def _answer(request: web.Request, parsed: ImagesRequest, access: Access
                  ) -> web.Response:
    conv = parsed.conv
    async with admitted(request, conv, access) as obs:
        if parsed.options:
            await _map_options(request, parsed)
        prep = await prepare(request, conv, access)
        waited, began = obs.upstream or 0.0, time.perf_counter()
        try:
            answers = await _all([_one(request, conv, prep, access.poe_key)] * parsed.n)
            images = [image for acc, _ in answers for image in answer_images(acc)]
            blobs = (await _all([_download(request, i) for i in images])
                     if parsed.response_format == "b64_json" else None)
        except asyncio.CancelledError:
            log.info("Client left before the images from %s were ready; every Poe query of "
                     "the request closed", prep.model.bot)
            raise
        finally:
            # The queries overlap: the wait on Poe is the time they took together.
            obs.upstream = waited + (time.perf_counter() - began)
        if blobs is None:
            data: list[dict[str, Any]] = [{"url": i.url} for i in images]
        elif sum(map(len, blobs)) > LARGE_BODY:
            data = await asyncio.to_thread(_b64, blobs)
        else:
            data = _b64(blobs)
        usage = total_usage([u for _, u in answers])
        obs.tokens_in, obs.tokens_out = usage.input_tokens, usage.output_tokens
        body = dumps(images_body(int(time.time()), data, images, usage))
        headers = {**prep.headers, "x-proxy-overhead-ms": overhead_ms(obs)}
    return web.Response(body=body, content_type="application/json", headers=headers)


async def _map_options(request: web.Request, parsed: ImagesRequest) -> None:
    """The OpenAI image options as the bot's own parameters, before the request's other
    candidates (so that a parameter given by its own name wins)."""
    conv = parsed.conv
    bot = request.app[keys.REGISTRY].current.resolve(conv.model).bot
    candidates, dropped = map_image_options(parsed.options, await bot_schema(request.app, bot))
    conv.param_candidates[:0] = candidates
    conv.dropped = sorted(set(conv.dropped) | set(dropped))


def _one(request: web.Request, conv: Conversation, prep: Prepared, api_key: str
         ) -> Callable[[], Awaitable[tuple[Accumulator, Usage]]]:
    """One image: a Poe query whose answer must hold an image (else a 422 quoting it)."""
    query = prep.query
    assert query is not None

    async def run() -> tuple[Accumulator, Usage]:
        acc, _, usage = await collect(request, conv, prep.model, query, api_key)
        if not answer_images(acc):
            raise no_image(prep.model.bot, acc)
        return acc, usage
    return run


def _download(request: web.Request, image: Image) -> Callable[[], Awaitable[bytes]]:
    async def run() -> bytes:
        data, _ = await request.app[keys.POE].download(image.url)
        return data
    return run


async def _all(jobs: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run ``jobs``, at most :data:`MAX_CONCURRENT` at a time, results in order. The first
    failure (or the caller's cancellation) cancels the others and is raised."""
    sem = asyncio.Semaphore(MAX_CONCURRENT)

    async def bounded(job: Callable[[], Awaitable[T]]) -> T:
        async with sem:
            return await job()

    tasks = [asyncio.ensure_future(bounded(job)) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _b64(blobs: list[bytes]) -> list[dict[str, Any]]:
    return [{"b64_json": base64.b64encode(b).decode("ascii")} for b in blobs]
