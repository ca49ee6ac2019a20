// cluster/redis_gcra: see redis_gcra.hpp. The script is ratelimit/gcra's
// acquire() for n events: admit when tat - tolerance + (n-1)·interval <= now.
#include "cluster/redis_gcra.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cmath>

namespace mailgate::cluster {
namespace {

// KEYS[1]: the limit's key. ARGV: interval µs, tolerance µs, n.
// Returns {1, 0} (granted) or {0, wait µs}. What the key holds is not
// trusted: anything but a number no later than this limit could have set
// (now + interval + tolerance) — another type, text, a time far ahead —
// counts as a full bucket and is overwritten, so garbage in Redis costs one
// burst, never a limit stuck waiting or a script error on every refill.
constexpr const char* kGcraScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local held = redis.pcall('GET', KEYS[1])
local tat = type(held) == 'string' and tonumber(held) or nil
if not tat or tat < now or tat > now + interval + tolerance then tat = now end
local new_tat = tat + interval * n
local allow_at = new_tat - interval - tolerance
if allow_at > now then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1)
return {1, 0}
)lua";

// KEYS[1]: the limit's key. ARGV: interval µs, n. Moves the theoretical
// arrival time back by n intervals, never below now (a full bucket: the
// key goes). A value that is not a number is left alone (nothing to give
// back to). Returns 1.
constexpr const char* kGiveBackScript = R"lua(
local held = redis.pcall('GET', KEYS[1])
local tat = type(held) == 'string' and tonumber(held) or nil
if not tat then return 1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local new_tat = tat - tonumber(ARGV[1]) * tonumber(ARGV[2])
if new_tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1)
end
return 1
)lua";

std::int64_t interval_us(double per_second) {
  return std::max<std::int64_t>(1, std::llround(1e6 / per_second));
}

}  // namespace

void RedisGcra::acquire(std::string_view key, double per_second, std::uint32_t burst,
                        std::uint32_t n, Callback done) {
  const auto interval = interval_us(per_second);
  const std::int64_t tolerance = interval * (static_cast<std::int64_t>(burst) - 1);
  link_.eval(kGcraScript, {std::string(kRateKeyPrefix) + std::string(key)},
             {std::to_string(interval), std::to_string(tolerance), std::to_string(n)},
             [done = std::move(done)](const redisReply* r, std::string_view error) {
               GcraAnswer a;
               if (!error.empty()) {
                 a.error = std::string(error);
               } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                          r->element[0]->type != REDIS_REPLY_INTEGER ||
                          r->element[1]->type != REDIS_REPLY_INTEGER) {
                 a.error = r->type == REDIS_REPLY_ERROR ? "Redis: " + std::string(r->str, r->len)
                                                        : "unexpected reply to the GCRA script";
               } else {
                 a.granted = r->element[0]->integer == 1;
                 a.wait_us = r->element[1]->integer;
               }
               done(a);
             });
}

void RedisGcra::give_back(std::string_view key, double per_second, std::uint32_t n, Callback done) {
  link_.eval(kGiveBackScript, {std::string(kRateKeyPrefix) + std::string(key)},
             {std::to_string(interval_us(per_second)), std::to_string(n)},
             [done = std::move(done)](const redisReply* r, std::string_view error) {
               if (!done) return;
               GcraAnswer a;
               if (!error.empty())
                 a.error = std::string(error);
               else if (r->type == REDIS_REPLY_ERROR)
                 a.error = "Redis: " + std::string(r->str, r->len);
               else
                 a.granted = true;
               done(a);
             });
}

}  // namespace mailgate::cluster
