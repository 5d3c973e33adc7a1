"""CORS for the trace headers, merged into the app's own CORS settings.

`traceparent`, `tracestate` and `baggage` are not CORS-safelisted request
headers: a browser sends them cross-origin only after a preflight that allows
them, and a preflight that does not allow them fails the app's own request.
Scripts may read `traceresponse`, `Server-Timing` and the correlation header
of a cross-origin response only when `Access-Control-Expose-Headers` names them.

`merge_cors` adds those headers to every Starlette `CORSMiddleware` the app
registered (keeping its origins, methods, credentials and other headers) and
adds the given origins to it; an app without one gets one. The result, a
`CorsPolicy`, answers "is this origin allowed?" for `Timing-Allow-Origin`
and the relay.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

TRACE_REQUEST_HEADERS = ("traceparent", "tracestate", "baggage")
"""Request headers a traced browser fetch may carry."""

TRACE_RESPONSE_HEADERS = ("traceresponse", "server-timing")
"""Response headers tracelink reads back (the server span, the server's clock)."""

_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#\s]+")


@dataclass
class CorsPolicy:
    """The origins allowed cross-origin access, after merging."""

    origins: list[str] = field(default_factory=list)
    origin_regexes: list[re.Pattern[str]] = field(default_factory=list)

    @property
    def allows_any(self) -> bool:
        """Whether any origin is allowed (`*`)."""
        return "*" in self.origins

    @property
    def is_empty(self) -> bool:
        """No cross-origin access at all (same-origin only)."""
        return not self.origins and not self.origin_regexes

    def allows(self, origin: str) -> bool:
        """Whether a request from `origin` (the `Origin` header) gets a CORS grant."""
        return self.allows_any or origin in self.origins or any(r.fullmatch(origin) for r in self.origin_regexes)

    def regex_source(self) -> str | None:
        """One regex matching every allowed-origin regex, for a `CORSMiddleware`."""
        if not self.origin_regexes:
            return None
        return "|".join(f"(?:{r.pattern})" for r in self.origin_regexes)


def check_origins(allow_origins: Sequence[str]) -> tuple[str, ...]:
    """`allow_origins` as a tuple, or a clear error for the usual mistakes
    (a single string, a trailing slash or path, upper case)."""
    if isinstance(allow_origins, (str, bytes)):
        raise TypeError(f"allow_origins must be a list of origins, not one string: [{allow_origins!r}]")
    origins = tuple(allow_origins)
    for origin in origins:
        if not isinstance(origin, str):
            raise TypeError(f"allow_origins: {origin!r} is not a string")
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise ValueError(
                f"allow_origins: {origin!r} is not an origin: scheme://host[:port], lower case, "
                "no path or trailing slash (what browsers send in the Origin header), or '*'"
            )
    return origins


def merge_cors(
    user_middleware: list[Middleware],
    *,
    allow_origins: Sequence[str],
    allow_origin_regex: str | None,
    request_headers: Sequence[str],
    expose_headers: Sequence[str],
    default_methods: Sequence[str],
    default_headers: Sequence[str],
    max_age: int = 600,
) -> CorsPolicy:
    """Merge into the app's `CORSMiddleware` entries (in place), or add one when
    there is none and `allow_origins`/`allow_origin_regex` ask for CORS.

    Idempotent: merging twice changes nothing more. `default_methods` and
    `default_headers` apply only to a `CORSMiddleware` added here.
    """
    policy = CorsPolicy()
    found = False
    for entry in user_middleware:
        if not (isinstance(entry.cls, type) and issubclass(entry.cls, CORSMiddleware)):
            continue
        found = True
        kwargs = _as_kwargs(entry)
        kwargs["allow_origins"] = _union(kwargs.get("allow_origins", ()), allow_origins)
        kwargs["allow_origin_regex"] = _either(kwargs.get("allow_origin_regex"), allow_origin_regex)
        if "*" not in kwargs.get("allow_headers", ()):
            kwargs["allow_headers"] = _union(kwargs.get("allow_headers", ()), request_headers, fold=True)
        kwargs["expose_headers"] = _union(kwargs.get("expose_headers", ()), expose_headers, fold=True)
        _store_kwargs(entry, kwargs)
        _add_to_policy(policy, kwargs)
    if not found and (allow_origins or allow_origin_regex):
        kwargs = {
            "allow_origins": list(allow_origins),
            "allow_origin_regex": allow_origin_regex,
            "allow_methods": list(default_methods),
            "allow_headers": _union(default_headers, request_headers, fold=True),
            "expose_headers": list(expose_headers),
            "max_age": max_age,
        }
        user_middleware.insert(0, Middleware(CORSMiddleware, **kwargs))
        _add_to_policy(policy, kwargs)
    return policy


def _as_kwargs(entry: Middleware) -> dict[str, Any]:
    """A middleware entry's arguments as keywords (positional ones bound by name).
    Starlette before 0.35 keeps keywords only, as `options`."""
    kwargs = dict(getattr(entry, "kwargs", None) or getattr(entry, "options", None) or {})
    args = getattr(entry, "args", ())
    if args:
        names = [p for p in inspect.signature(entry.cls.__init__).parameters if p not in ("self", "app")]
        kwargs.update(zip(names, args))
    return kwargs


def _store_kwargs(entry: Middleware, kwargs: dict[str, Any]) -> None:
    if hasattr(entry, "kwargs"):
        entry.args, entry.kwargs = (), kwargs
    else:
        entry.options = kwargs


def _union(existing: Sequence[str], added: Sequence[str], fold: bool = False) -> list[str]:
    """`existing` then the new items of `added`; `fold`: compare case-insensitively."""
    out = list(existing)
    seen = {x.lower() if fold else x for x in out}
    for item in added:
        key = item.lower() if fold else item
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _either(a: str | None, b: str | None) -> str | None:
    """One regex matching what `a` or `b` match (`b` added once)."""
    if a and b and a != b and f"(?:{b})" not in a:
        return f"(?:{a})|(?:{b})"
    return a or b


def _add_to_policy(policy: CorsPolicy, kwargs: dict[str, Any]) -> None:
    policy.origins = _union(policy.origins, list(kwargs.get("allow_origins") or ()))
    regex = kwargs.get("allow_origin_regex")
    if regex:
        policy.origin_regexes.append(re.compile(regex))
