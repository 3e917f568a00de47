"""Poe failures → OpenAI errors (pure mapping)."""

from __future__ import annotations

import pytest

from poe2openai import errors as E
from poe2openai.poe.errors import map_error_event, map_http_error


@pytest.mark.parametrize(("data", "cls", "status", "retry"), [
    ({"allow_retry": True, "text": "Internal server error"}, E.UpstreamError, 502, True),
    ({"allow_retry": True, "text": "Internal server error (error_id: f518718b-1)"},
     E.UpstreamError, 502, True),
    ({"allow_retry": True, "text": "You have exceeded rate limit to query bot using User API Key."
      " Try again later."}, E.RateLimited, 429, None),
    ({"text": "This bot needs more points to answer your request."}, E.InsufficientQuota, 429,
     False),
    ({"text": "You do not have enough points to message this bot."}, E.InsufficientQuota, 429,
     False),
    ({"allow_retry": True, "text": "Access denied"}, E.AuthenticationFailed, 401, False),
    ({"allow_retry": False, "text": "Invalid token"}, E.AuthenticationFailed, 401, False),
    ({"allow_retry": False, "text": "Bot does not exist"}, E.ModelNotFound, 404, False),
    ({"allow_retry": False, "text": "x", "error_type": "user_message_too_long"},
     E.ContextLengthExceeded, 400, False),
    ({"allow_retry": False, "text": "x", "error_type": "insufficient_fund"},
     E.InsufficientQuota, 429, False),
    ({"allow_retry": False, "text": "x", "error_type": "user_caused_error"},
     E.InvalidRequest, 400, False),
    ({"allow_retry": False, "text": "x", "error_type": "privacy_authorization_error"},
     E.PermissionDenied, 403, False),
    ({"allow_retry": False, "text": "Something odd"}, E.UpstreamError, 502, False),
    ({}, E.UpstreamError, 502, True),
])
def test_error_events(data: dict, cls: type, status: int, retry: bool | None) -> None:
    err = map_error_event(data)
    assert type(err) is cls and err.status == status
    assert err.retryable is retry
    assert err.message


def test_error_event_retry_header() -> None:
    err = map_error_event({"allow_retry": False, "text": "You do not have enough points"})
    assert err.response_headers()["x-should-retry"] == "false"


@pytest.mark.parametrize(("status", "cls"), [
    (400, E.InvalidRequest), (401, E.AuthenticationFailed), (402, E.InsufficientQuota),
    (403, E.PermissionDenied), (404, E.ModelNotFound), (408, E.UpstreamTimeout),
    (413, E.ContextLengthExceeded), (429, E.RateLimited), (500, E.UpstreamError),
    (502, E.UpstreamError), (503, E.UpstreamUnavailable), (504, E.UpstreamTimeout),
    (520, E.UpstreamError), (524, E.UpstreamTimeout), (529, E.UpstreamUnavailable),
    (418, E.InvalidRequest),
])
def test_http_statuses(status: int, cls: type) -> None:
    err = map_http_error(status, b'{"error": {"message": "boom", "type": "x"}}', {})
    assert type(err) is cls
    assert "boom" in err.message


def test_http_bodies_text_html_and_headers() -> None:
    err = map_http_error(500, b"plain failure", {})
    assert err.message == "Poe answered HTTP 500: plain failure"
    err = map_http_error(500, b'{"error": {"message": "Internal server error"}}', {})
    assert err.message == "Poe answered HTTP 500: Internal server error"  # not ours
    html = b"<!DOCTYPE html><html><head><title>Web server is returning an unknown error | x</title>"
    err = map_http_error(520, html, {})
    assert "unknown error" in err.message and "<" not in err.message
    err = map_http_error(429, b"", {"retry-after": "7"})
    assert err.headers == {"retry-after": "7"} and err.message == "Poe answered HTTP 429"
    err = map_http_error(403, b'{"error": {"message": "flagged", "type": "moderation_error"}}', {})
    assert type(err) is E.ContentFiltered and err.retryable is False
    err = map_http_error(429, b'{"error": {"message": "You\'ve used up your points!"}}', {})
    assert type(err) is E.InsufficientQuota
