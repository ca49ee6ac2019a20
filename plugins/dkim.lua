-- dkim: DKIM-signs each message with the key of its From: domain (DESIGN
-- §6b, RFC 6376), in the `message` hook, so HTTP-injected mail and DSNs are
-- signed too. A message whose From: domain has no key is passed on unsigned
-- (and not refused). Every key is read and checked when the config loads
-- (check-config, reload): a missing or unreadable key, or one that is not
-- RSA (1024-4096 bits) or Ed25519, is a config error. The signature itself is
-- computed after the last `message` handler, over the final headers, so a
-- header another handler adds later (List-Unsubscribe) is still signed.
--
-- Options:
--   keys = {                                  -- domain → selector and key
--     ["example.com"] = { selector = "s1", key = "conf/dkim/example.com.s1.pem" },
--     ["example.org"] = { selector = "ed1", key = "conf/dkim/example.org.ed1.pem",
--                         algorithm = "ed25519-sha256" },   -- checked against the key
--   },
--   file = "conf/dkim/keys",   -- and/or a file: "domain selector key-path" per line,
--                              -- '#' starts a comment
--   headers = { ... },         -- signed header list (default: mailgate's, over-signed)
--   canonicalization = "relaxed/relaxed",
--   expire = "7d",             -- x= (optional)
--   on_error = "tempfail",     -- or "send_unsigned" when signing fails at send time

local function add_key(keys, domain, entry, where)
  if type(domain) ~= "string" or domain == "" then
    error("dkim: " .. where .. ": a domain name is required")
  end
  if type(entry.selector) ~= "string" or type(entry.key) ~= "string" then
    error("dkim: " .. where .. ": " .. domain .. " needs selector and key")
  end
  -- Reads the key now: a bad key stops check-config and reload here.
  local algorithm = mailgate.dkim.check_key(entry.key, entry.algorithm)
  keys[domain:lower()] = { selector = entry.selector, key = entry.key, algorithm = algorithm }
end

local function read_key_file(keys, path)
  local text, err = mailgate.read_file(path)
  if not text then error("dkim: cannot read " .. path .. ": " .. tostring(err)) end
  local n = 0
  for line in text:gmatch("[^\n]*") do
    n = n + 1
    line = line:gsub("#.*", ""):gsub("^%s+", ""):gsub("%s+$", "")
    if line ~= "" then
      local domain, selector, key = line:match("^(%S+)%s+(%S+)%s+(%S+)$")
      if not domain then
        error("dkim: " .. path .. ":" .. n .. ": expected \"domain selector key-path\"")
      end
      add_key(keys, domain, { selector = selector, key = key }, path .. ":" .. n)
    end
  end
end

-- The domain of the first address of the From: field, lower case; nil when
-- there is no parsable From:.
local function from_domain(msg)
  local value = msg:header("From")
  if not value then return nil end
  local list = mailgate.mime.addresses(value)
  if not list or #list == 0 or not list[1].domain then return nil end
  return list[1].domain:lower()
end

return function(opts)
  opts = opts or {}
  local keys = {}
  for domain, entry in pairs(opts.keys or {}) do add_key(keys, domain, entry, "keys") end
  if opts.file then read_key_file(keys, opts.file) end

  mailgate.on("message", function(tx, msg)
    local domain = from_domain(msg)
    local k = domain and keys[domain]
    if not k then return nil end
    msg:dkim_sign {
      domain = domain,
      selector = k.selector,
      key = k.key,
      algorithm = k.algorithm,
      headers = opts.headers,
      canonicalization = opts.canonicalization,
      expire = opts.expire,
      on_error = opts.on_error,
    }
  end)
end
