"""The Google quota governor: every Google API call of every worker asks it first, through Redis.

One OAuth client is one Google Cloud project, so every tenant's calls count against the same project, and Google
enforces three limits that no single worker can see (GOOGLE_API_FACTS.md, "Directory API rate limits"):

| limit | Google's answer | governor |
|---|---|---|
| queries per minute per user per project (the user: the tenant's consenting admin) | 403 ``userRateLimitExceeded`` | a token bucket per (project, admin): ``GOOGLE_QUOTA_USER_PER_MINUTE`` |
| concurrent requests per Google Workspace account (per customer), not raisable | 429 ``rateLimitExceeded`` | a cap on calls in flight per customer: ``GOOGLE_QUOTA_TENANT_CONCURRENCY`` |
| the project's own per-minute quota (set by the operator in the Cloud console) | 403 ``quotaExceeded`` | a token bucket per project: ``GOOGLE_QUOTA_PROJECT_PER_MINUTE`` (0: off) |

A bucket holds at most ``GOOGLE_QUOTA_BURST_SECONDS`` of its rate (at least one call). ``acquire`` takes a token
from both buckets and a slot of the customer's cap in ONE Lua script (atomic across every worker and host, on
Redis's clock), or takes nothing and says how long to wait; the caller sleeps and asks again. Slots are leases
that expire after ``GOOGLE_QUOTA_LEASE_SECONDS``, so a worker killed mid-call cannot hold one for ever.

**Fairness between tenants on the project bucket.** The project bucket is shared by every tenant, and a caller
that finds it empty polls again: first come, first served, a tenant with many concurrent callers (a 150,000-device
tenant paging in parallel) would take most of the tokens and starve a small tenant with one caller. So when the
bucket is contended, tokens go to the *least served* tenant first (start-time fair queuing keyed by tenant): each
tenant's project calls are counted (``served``), callers held only by the project bucket register as waiting,
and a caller may take a token only if no other waiting tenant has been served less. A tenant that comes back
after a pause is lifted to one call behind the least served waiting tenant, so it is first in line for the next
token but cannot bank credit while idle. Without contention (no other tenant waiting) nothing changes: any
caller takes any token, so no capacity is left unused. Waits caused by fairness count as ``limit="fair"``.

When Google still answers one of those errors (another application on the same project, a limit set lower than
the settings), ``penalize`` shrinks the matching bucket (or cap) by ``GOOGLE_QUOTA_PENALTY_FACTOR`` for
``GOOGLE_QUOTA_PENALTY_SECONDS`` and empties it, so every worker slows down, not only the one that was refused.

Waits are visible: each one is counted (``mdm_google_quota_waits_total`` and the
``mdm_google_quota_wait_seconds`` histogram, by the limit that made the call wait) and added up on the client, which
the sync writes to its run log. If Redis is unreachable the governor lets calls through (Google's own limits and
the client's backoff still apply): a Redis outage must not stop every sync. ``GOOGLE_QUOTA_ENABLED = False`` turns
it off.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings

from ops import metrics

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 2.0
# Longest single sleep between two asks: a slot freed by another worker is seen within this.
MAX_POLL_SECONDS = 0.25
# A caller waiting for the project bucket that has not asked again for this long is gone (killed, gave up).
WAITER_STALE_SECONDS = 2.0

# KEYS: 1 user bucket, 2 project bucket, 3 customer slots (zset lease -> expiry),
#       4 user penalty, 5 project penalty, 6 customer penalty,
#       7 project waiters (zset "<tenant>|<lease>" -> last ask), 8 project calls served per tenant (hash)
# ARGV: 1 user rate/s, 2 user capacity, 3 project rate/s (0: off), 4 project capacity, 5 concurrency cap (0: off),
#       6 lease id, 7 lease seconds, 8 key ttl seconds, 9 tenant (fairness key), 10 seconds a waiter stays
#       registered without asking again
# Returns {0, ""} when admitted (a token of each bucket and a slot taken), else {wait in ms, limit name}.
ACQUIRE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl = tonumber(ARGV[8])

local function refill(key, rate, capacity, penalty_key)
  local factor = tonumber(redis.call('GET', penalty_key) or '1')
  rate = rate * factor
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if tokens == nil or ts == nil then
    tokens = capacity
  else
    tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
  end
  return tokens, rate
end

local user_tokens, user_rate = refill(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), KEYS[4])
local project_rate = tonumber(ARGV[3])
local project_tokens = 1
if project_rate > 0 then
  project_tokens, project_rate = refill(KEYS[2], project_rate, tonumber(ARGV[4]), KEYS[5])
end
local cap = tonumber(ARGV[5])
local in_flight = 0
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  in_flight = redis.call('ZCARD', KEYS[3])
  local factor = tonumber(redis.call('GET', KEYS[6]) or '1')
  cap = math.max(1, math.floor(cap * factor))
end

local wait = 0
local limit = ''
if user_tokens < 1 then
  wait = (1 - user_tokens) / user_rate
  limit = 'user'
end
if project_rate > 0 and project_tokens < 1 then
  local w = (1 - project_tokens) / project_rate
  if w > wait then wait = w; limit = 'project' end
end
if cap > 0 and in_flight >= cap and wait == 0 then
  -- a slot frees when a call ends: ask again soon
  wait = 0.05
  limit = 'tenant'
end

-- Fairness on the project bucket: only callers that nothing else holds back compete for it.
if project_rate > 0 then
  local tenant = ARGV[9]
  local member = tenant .. '|' .. ARGV[6]
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now - tonumber(ARGV[10]))
  local own_wait = (user_tokens < 1) or (cap > 0 and in_flight >= cap)
  if own_wait then
    redis.call('ZREM', KEYS[7], member)
  else
    local least_other = nil
    local seen = {}
    for _, other in ipairs(redis.call('ZRANGE', KEYS[7], 0, -1)) do
      local other_tenant = string.match(other, '^(.*)|[^|]*$')
      if other_tenant ~= tenant and not seen[other_tenant] then
        seen[other_tenant] = true
        local s = tonumber(redis.call('HGET', KEYS[8], other_tenant) or '0')
        if least_other == nil or s < least_other then least_other = s end
      end
    end
    local served = tonumber(redis.call('HGET', KEYS[8], tenant) or '0')
    if least_other ~= nil and served < least_other - 1 then
      -- back after a pause: first in line, with no credit banked while idle
      served = least_other - 1
      redis.call('HSET', KEYS[8], tenant, served)
    end
    if wait == 0 and least_other ~= nil and served > least_other then
      wait = math.min(1 / project_rate, 0.05)
      limit = 'fair'
    end
    if wait > 0 then
      redis.call('ZADD', KEYS[7], now, member)
      redis.call('EXPIRE', KEYS[7], ttl)
    else
      redis.call('ZREM', KEYS[7], member)
      redis.call('HINCRBY', KEYS[8], tenant, 1)
    end
    redis.call('EXPIRE', KEYS[8], ttl)
  end
end

if wait > 0 then
  redis.call('HSET', KEYS[1], 'tokens', user_tokens, 'ts', now)
  redis.call('EXPIRE', KEYS[1], ttl)
  if project_rate > 0 then
    redis.call('HSET', KEYS[2], 'tokens', project_tokens, 'ts', now)
    redis.call('EXPIRE', KEYS[2], ttl)
  end
  return {math.ceil(wait * 1000), limit}
end
redis.call('HSET', KEYS[1], 'tokens', user_tokens - 1, 'ts', now)
redis.call('EXPIRE', KEYS[1], ttl)
if project_rate > 0 then
  redis.call('HSET', KEYS[2], 'tokens', project_tokens - 1, 'ts', now)
  redis.call('EXPIRE', KEYS[2], ttl)
end
if cap > 0 then
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[7]), ARGV[6])
  redis.call('EXPIRE', KEYS[3], ttl)
end
return {0, ''}
"""

# KEYS: 1 penalty key, 2 bucket to empty (or ''); ARGV: 1 factor, 2 seconds
PENALIZE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local current = tonumber(redis.call('GET', KEYS[1]) or '1')
redis.call('SET', KEYS[1], math.min(current, tonumber(ARGV[1])), 'EX', tonumber(ARGV[2]))
if KEYS[2] ~= '' then
  redis.call('HSET', KEYS[2], 'tokens', 0, 'ts', now)
end
return 1
"""

# Google's answer -> the governor's limit it says was exceeded.
LIMIT_OF_ERROR = {
    (403, "userRateLimitExceeded"): "user",
    (403, "quotaExceeded"): "project",
    (429, "rateLimitExceeded"): "tenant",
    (429, ""): "tenant",
}


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )


def enabled() -> bool:
    return bool(getattr(settings, "GOOGLE_QUOTA_ENABLED", True))


def _prefix() -> str:
    return getattr(settings, "GOOGLE_QUOTA_KEY_PREFIX", "") or (
        f"{settings.CACHES['default'].get('KEY_PREFIX', 'mdm')}:google-quota"
    )


@dataclass(frozen=True)
class Subject:
    """Whose quota a call spends: the project (OAuth client), the consenting admin, the Workspace account."""

    project: str
    user: str
    customer: str

    def keys(self) -> dict[str, str]:
        prefix = _prefix()
        return {
            "user": f"{prefix}:user:{self.project}:{self.user}",
            "project": f"{prefix}:project:{self.project}",
            "tenant": f"{prefix}:tenant:{self.customer}",
            "user_penalty": f"{prefix}:penalty:user:{self.project}:{self.user}",
            "project_penalty": f"{prefix}:penalty:project:{self.project}",
            "tenant_penalty": f"{prefix}:penalty:tenant:{self.customer}",
            "project_waiters": f"{prefix}:fair:waiting:{self.project}",
            "project_served": f"{prefix}:fair:served:{self.project}",
        }


@dataclass
class Lease:
    """A call admitted by the governor; ``release`` frees its slot of the customer's cap."""

    subject: Subject
    lease_id: str
    waited_seconds: float

    def release(self) -> None:
        if not self.lease_id:
            return
        try:
            _client(settings.REDIS_URL).zrem(self.subject.keys()["tenant"], self.lease_id)
        except redis.RedisError:
            logger.warning("google quota: slot not released (Redis unavailable); it expires by itself")


def _per_second(setting: str, default: float) -> float:
    return float(getattr(settings, setting, default)) / 60.0


def acquire(subject: Subject, *, max_wait: float | None = None) -> Lease:
    """Wait until the call may be made under every limit, then take its tokens and slot."""
    if not enabled():
        return Lease(subject, "", 0.0)
    burst = float(getattr(settings, "GOOGLE_QUOTA_BURST_SECONDS", 5.0))
    user_rate = _per_second("GOOGLE_QUOTA_USER_PER_MINUTE", 2000)
    project_rate = _per_second("GOOGLE_QUOTA_PROJECT_PER_MINUTE", 0)
    cap = int(getattr(settings, "GOOGLE_QUOTA_TENANT_CONCURRENCY", 8))
    lease_seconds = float(getattr(settings, "GOOGLE_QUOTA_LEASE_SECONDS", 90))
    limit_wait = (
        max_wait if max_wait is not None else float(getattr(settings, "GOOGLE_QUOTA_MAX_WAIT_SECONDS", 600))
    )
    keys = subject.keys()
    lease_id = uuid.uuid4().hex
    args: list[str | int | float] = [
        user_rate,
        max(1.0, user_rate * burst),
        project_rate,
        max(1.0, project_rate * burst),
        cap,
        lease_id,
        lease_seconds,
        int(max(120.0, burst * 4, lease_seconds * 2)),
        subject.customer,
        WAITER_STALE_SECONDS,
    ]
    client = _client(settings.REDIS_URL)
    waited = 0.0
    waited_on = ""
    while True:
        try:
            wait_ms, limit = client.eval(
                ACQUIRE_SCRIPT,
                8,
                keys["user"],
                keys["project"],
                keys["tenant"],
                keys["user_penalty"],
                keys["project_penalty"],
                keys["tenant_penalty"],
                keys["project_waiters"],
                keys["project_served"],
                *args,
            )
        except redis.RedisError:
            logger.warning("google quota: Redis unavailable, call not governed")
            return Lease(subject, "", waited)
        if not wait_ms:
            if waited:
                metrics.record_google_quota_wait(waited_on, waited)
            return Lease(subject, lease_id if cap > 0 else "", waited)
        waited_on = limit.decode() if isinstance(limit, bytes) else str(limit)
        if waited >= limit_wait:
            # Something holds the quota far longer than any call lasts: let Google be the judge (its error is
            # retried with backoff) rather than stalling the worker for ever.
            logger.warning("google quota: waited %.0fs for %s, calling anyway", waited, waited_on)
            metrics.record_google_quota_wait(waited_on, waited)
            return Lease(subject, "", waited)
        delay = min(int(wait_ms) / 1000.0, MAX_POLL_SECONDS)
        time.sleep(delay)
        waited += delay


def penalize(subject: Subject, status: int | None, reason: str) -> str | None:
    """Google refused a call for a rate or quota: shrink the matching limit for every worker. Returns its name."""
    limit = LIMIT_OF_ERROR.get((status or 0, reason)) or (
        LIMIT_OF_ERROR.get((status or 0, "")) if status == 429 else None
    )
    if limit is None or not enabled():
        return None
    keys = subject.keys()
    bucket = {"user": keys["user"], "project": keys["project"], "tenant": ""}[limit]
    try:
        _client(settings.REDIS_URL).eval(
            PENALIZE_SCRIPT,
            2,
            keys[f"{limit}_penalty"],
            bucket,
            float(getattr(settings, "GOOGLE_QUOTA_PENALTY_FACTOR", 0.5)),
            int(getattr(settings, "GOOGLE_QUOTA_PENALTY_SECONDS", 60)),
        )
    except redis.RedisError:
        logger.warning("google quota: penalty not recorded (Redis unavailable)")
    return limit


def penalty_factor(subject: Subject, limit: str) -> float:
    """The factor a limit currently runs at (1.0: not penalized). For tests and the support cockpit."""
    raw = _client(settings.REDIS_URL).get(subject.keys()[f"{limit}_penalty"])
    return float(raw) if raw is not None else 1.0


def project_calls_served(project: str) -> dict[str, int]:
    """Project-bucket calls admitted per tenant (Workspace account) since the counters last expired: the fair
    queue's ledger, for tests and support. Counters of a tenant that came back after a pause are lifted."""
    raw = _client(settings.REDIS_URL).hgetall(Subject(project, "", "").keys()["project_served"])
    return {
        (key.decode() if isinstance(key, bytes) else str(key)): int(float(value))
        for key, value in raw.items()
    }
