-- sender_domains: each client network may only send as the domains assigned
-- to its tenant, both in the envelope sender (MAIL FROM) and in the From:
-- header, so one customer of the gateway cannot send as another's domain.
-- The tenant's name is the message's tenant (msg:set_tenant, read back as
-- msg.tenant or msg:meta("tenant")) and so
-- appears in later hooks, the delivery log and the API.
--   envelope sender not allowed:  550 5.7.1 at MAIL FROM
--   From: domain not allowed:     550 5.7.1 at end of data
-- The null sender <> (bounces) is allowed for every tenant. A domain entry
-- "*.example.com" allows any subdomain of example.com.
-- (Per authenticated user, once AUTH exists: not available yet.)
--
-- Options:
--   tenants = {
--     acme  = { networks = { "10.1.0.0/16" }, domains = { "acme.example", "*.acme.example" } },
--     other = { networks = { "10.2.0.0/16", "2001:db8::/32" }, domains = { "other.example" } },
--   }
--   unknown_clients = "reject"   or "allow": clients in no tenant's networks
--                                (with "reject" they get 550 5.7.1 at MAIL FROM)

local function domain_allowed(domains, domain)
  domain = domain:lower()
  for _, d in ipairs(domains) do
    d = d:lower()  -- (operators' entries: ASCII; an IDN entry must be given as its A-label)
    if d == domain then return true end
    if d:sub(1, 2) == "*." and domain:sub(-(#d - 1)) == d:sub(2) then return true end
  end
  return false
end

-- Every address domain of a From: value ("A <a@x>, b@y" → {"x", "y"}), read
-- by mailgate's RFC 5322 parser: a quoted display name or a comment cannot
-- pass for an address. nil when the value is not an address list.
local function from_domains(value)
  local list = mailgate.mime.addresses(value)
  if not list then return nil end
  local out = {}
  for _, m in ipairs(list) do table.insert(out, m.domain) end
  return out
end

return function(opts)
  local tenants = {}
  for name, t in pairs(opts.tenants or {}) do
    -- The name becomes the message's tenant (msg:set_tenant): the queue's
    -- fair scheduling, suspensions and metrics go by it.
    if type(name) ~= "string" or #name > 64 or not name:match("^[%w%._%-]+$") then
      error("sender_domains: tenant name " .. tostring(name) ..
            " must be 1..64 of letters, digits, '.', '_' or '-'")
    end
    if type(t.networks) ~= "table" or type(t.domains) ~= "table" then
      error("sender_domains: tenant " .. name .. " needs networks and domains")
    end
    mailgate.net.contains(t.networks, "127.0.0.1")  -- validates the networks now
    table.insert(tenants, { name = name, networks = t.networks, domains = t.domains })
  end
  table.sort(tenants, function(a, b) return a.name < b.name end)
  local reject_unknown = (opts.unknown_clients or "reject") == "reject"

  local function tenant_of(ip)
    for _, t in ipairs(tenants) do
      if mailgate.net.contains(t.networks, ip) then return t end
    end
    return nil
  end

  mailgate.on("mail_from", function(tx, sender)
    local t = tenant_of(tx.conn.remote_ip)
    if not t then
      if reject_unknown then
        return mailgate.reject(550, "5.7.1 client " .. tx.conn.remote_ip .. " may not send through this gateway")
      end
      return nil
    end
    if sender.address ~= "" and not domain_allowed(t.domains, sender.domain) then
      return mailgate.reject(550, "5.7.1 sender domain " .. sender.domain .. " is not allowed for this client")
    end
  end)

  mailgate.on("message", function(tx, msg)
    local t = tenant_of(tx.conn.remote_ip)
    if not t then return nil end
    msg:set_tenant(t.name)
    local froms = msg:headers("From")
    if #froms == 0 then
      return mailgate.reject(550, "5.7.1 message has no From: header")
    end
    for _, value in ipairs(froms) do
      local domains = from_domains(value)
      if not domains or #domains == 0 then
        return mailgate.reject(550, "5.7.1 From: is not a valid address list")
      end
      for _, domain in ipairs(domains) do
        if domain == "" or not domain_allowed(t.domains, domain) then
          return mailgate.reject(550, "5.7.1 From: domain " .. (domain ~= "" and domain or "(none)") ..
                                      " is not allowed for this client")
        end
      end
    end
  end)
end
