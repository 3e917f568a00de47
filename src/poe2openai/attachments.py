"""Turns a request's image and file parts into Poe attachments: cache, then upload.

The pure layer (:mod:`poe2openai.translate.attachments`) has checked every part;
here each one becomes ``{"url", "content_type", "name"}``:

* Poe CDN URLs are used as they are;
* data is decoded and hashed off the event loop, then looked up in the
  :class:`~poe2openai.upload_cache.UploadCache` (with ``REDIS_URL``: the
  :class:`~poe2openai.cluster.uploads.SharedUploadCache`) and uploaded as bytes on a miss;
* other http(s) URLs are looked up by URL and, on a miss, handed to Poe's upload
  endpoint as ``download_url``: Poe fetches them, this server never does.

The uploads of one request run concurrently (at most :data:`MAX_CONCURRENT` at a
time); the first failure fails the request and cancels the rest. The same file
requested by several requests at once is uploaded once (they share the upload).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any, Final

from .cluster.uploads import SharedUploadCache
from .errors import InvalidRequest, ProxyError
from .poe.client import PoeClient
from .translate.attachments import MediaPart, decode_payload, digest
from .upload_cache import NOMINAL_URL_SIZE, CachedUpload, UploadCache, cache_key, user_hash

__all__ = ["MAX_CONCURRENT", "Uploader"]

log = logging.getLogger(__name__)

#: Uploads of one request in flight at once.
MAX_CONCURRENT: Final = 4
#: Above this much encoded data, decoding and hashing move to a worker thread.
_INLINE_DECODE_LIMIT: Final = 64 * 1024


@dataclass(slots=True)
class _Job:
    part: MediaPart
    key: str = ""
    data: bytes | None = None


class Uploader:
    """Resolves media parts for all requests of one app (shares in-flight uploads)."""

    def __init__(self, poe: PoeClient, cache: UploadCache | SharedUploadCache) -> None:
        self.poe = poe
        self.cache = cache
        self._inflight: dict[str, asyncio.Task[CachedUpload]] = {}

    async def resolve(self, parts: list[MediaPart], api_key: str
                      ) -> dict[int, list[dict[str, Any]]]:
        """Poe attachments by message index, in the order of the parts."""
        if not parts:
            return {}
        user = user_hash(api_key)
        jobs = [_Job(p) for p in parts if p.source != "poe"]
        if sum(len(j.part.payload) for j in jobs) > _INLINE_DECODE_LIMIT:
            await asyncio.to_thread(_prepare, jobs, user)
        else:
            _prepare(jobs, user)

        sem = asyncio.Semaphore(MAX_CONCURRENT)
        unique: dict[str, _Job] = {}
        for job in jobs:
            unique.setdefault(job.key, job)
        tasks = {key: asyncio.ensure_future(self._one(job, api_key, sem))
                 for key, job in unique.items()}
        try:
            await asyncio.gather(*tasks.values())
        except BaseException:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            raise
        done = {key: task.result() for key, task in tasks.items()}

        out: dict[int, list[dict[str, Any]]] = {}
        jobs_iter = iter(jobs)
        for part in parts:
            if part.source == "poe":
                url, mime = part.url, part.content_type
            else:
                upload = done[next(jobs_iter).key]
                url, mime = upload.url, upload.mime or part.content_type
            out.setdefault(part.message, []).append(
                {"url": url, "content_type": mime, "name": part.name})
        return out

    async def _one(self, job: _Job, api_key: str, sem: asyncio.Semaphore) -> CachedUpload:
        hit = await self.cache.get(job.key)
        if hit is not None:
            return hit
        async with sem:
            task = self._inflight.get(job.key)
            if task is None:
                task = asyncio.create_task(self._upload(job, api_key))
                self._inflight[job.key] = task
                task.add_done_callback(functools.partial(self._forget, job.key))
            try:
                # Shielded: if this request goes away, the upload still finishes for others.
                return await asyncio.shield(task)
            except ProxyError as err:
                raise _about(err, job.part) from None

    def _forget(self, key: str, task: asyncio.Task[CachedUpload]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: a failure nobody awaits is not "never retrieved"

    async def _upload(self, job: _Job, api_key: str) -> CachedUpload:
        part = job.part
        if part.source == "data":
            assert job.data is not None
            answer = await self.poe.upload(api_key, data=job.data, filename=part.name,
                                           content_type=part.content_type)
            size = len(job.data)
        else:
            answer = await self.poe.upload(api_key, download_url=part.url, filename=part.name)
            reported = answer.get("size")
            size = (reported if isinstance(reported, int) and not isinstance(reported, bool)
                    and reported > 0 else NOMINAL_URL_SIZE)
        mime = answer.get("mime_type")
        result = CachedUpload(answer["attachment_url"],
                              mime if isinstance(mime, str) and mime else part.content_type, size)
        log.debug("uploaded %s to Poe (%d bytes)", part.path, size)
        await self.cache.put(job.key, result.url, result.mime, result.size)
        return result

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        if self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        await self.cache.close()


def _prepare(jobs: list[_Job], user: str) -> None:
    """Decode data parts and compute every cache key (may run on a worker thread)."""
    for job in jobs:
        part = job.part
        if part.source == "data":
            job.data = decode_payload(part)
            job.key = cache_key(user, "data", digest(job.data))
        else:
            job.key = cache_key(user, "url", part.url)


def _about(err: ProxyError, part: MediaPart) -> ProxyError:
    """The same error, saying which part it was about."""
    message = f"Uploading {part.path} to Poe failed: {err.message}"
    if isinstance(err, InvalidRequest):
        return type(err)(message, param=part.path, code=err.code, headers=err.headers)
    new = type(err)(message, headers=err.headers)
    if err.retryable is not None:
        new.retryable = err.retryable  # type: ignore[misc]
    return new
