-- recipient_check: refuse, at RCPT time, recipients whose domain cannot
-- receive mail, so the sender learns it before the message is accepted
-- instead of from a bounce later.
--   accepts: a domain with MX records, or with A/AAAA records only (the
--            implicit MX of RFC 5321 5.1) unless require_mx = true
--   refuses: null MX (RFC 7505)  556 5.1.10, NXDOMAIN  550 5.1.2,
--            no MX and no address  550 5.1.2, malformed domain  553 5.1.3
--   DNS failure or timeout: 451 4.4.3 (try again later), never a refusal.
-- The lookup yields (mailgate.dns.mx), so a slow DNS server delays only the
-- transaction that waits for it. Results are cached per worker.
--
-- Options:
--   cache_ttl    = "10m"   how long a domain's verdict is kept (0: no cache)
--   require_mx   = false   refuse domains that have only A/AAAA records
--   max_entries  = 10000   cache size per worker (cleared when full)
--   skip_domains = {}      domains never checked (e.g. your own inbound domains)

local function seconds(v, default)
  if v == nil then return default end
  if type(v) == "number" then return v end
  local n, unit = tostring(v):match("^(%d+)%s*(%a*)$")
  local mult = { [""] = 1, s = 1, m = 60, h = 3600, d = 86400 }
  if not n or not mult[unit] then error("recipient_check: bad duration '" .. tostring(v) .. "'") end
  return tonumber(n) * mult[unit]
end

return function(opts)
  local ttl = seconds(opts.cache_ttl, 600)
  local require_mx = opts.require_mx == true
  local max_entries = opts.max_entries or 10000
  local skip = {}
  for _, d in ipairs(opts.skip_domains or {}) do skip[d:lower()] = true end
  local cache, cached = {}, 0

  -- A verdict for the domain: nil (accept) or a reply table {code, text, temp}.
  local function check(domain)
    local r = mailgate.dns.mx(domain)
    if r.status == "ok" then
      if require_mx and r.implicit then
        return { code = 550, text = "5.1.2 recipient domain " .. domain .. " has no MX record" }
      end
      return nil
    elseif r.status == "nullmx" then
      return { code = 556, text = "5.1.10 recipient domain " .. domain .. " does not accept mail (null MX)" }
    elseif r.status == "nxdomain" then
      return { code = 550, text = "5.1.2 recipient domain " .. domain .. " does not exist" }
    elseif r.status == "nodata" then
      return { code = 550, text = "5.1.2 recipient domain " .. domain .. " has no mail server" }
    elseif r.status == "badname" then
      return { code = 553, text = "5.1.3 recipient domain " .. domain .. " is not a valid domain" }
    end
    return { code = 451, text = "4.4.3 cannot check recipient domain " .. domain .. " now, try again later", temp = true }
  end

  mailgate.on("rcpt_to", function(tx, rcpt)
    -- Refused by relay control already: an open-relay probe costs no DNS query.
    if rcpt.relay_refused then return nil end
    local domain = rcpt.domain
    if domain == "" or domain:sub(1, 1) == "[" or skip[domain] then return nil end
    local now = os.time()
    local hit = cache[domain]
    local verdict
    if hit and hit.expires > now then
      verdict = hit.verdict
    else
      verdict = check(domain)
      -- Temporary failures are not cached: the next transaction asks again.
      if ttl > 0 and not (verdict and verdict.temp) then
        if cached >= max_entries then cache, cached = {}, 0 end
        if not cache[domain] then cached = cached + 1 end
        cache[domain] = { verdict = verdict or false, expires = now + ttl }
      end
    end
    if not verdict then return nil end
    if verdict.temp then return mailgate.tempfail(verdict.code, verdict.text) end
    return mailgate.reject(verdict.code, verdict.text)
  end)
end
