-- routing_table: send mail for some domains to a smarthost (or drop it)
-- instead of looking up their MX. Keys are domains or "*.domain" wildcards
-- (any subdomain, not the domain itself); an exact entry wins, then the
-- nearest wildcard. Values:
--   "[10.1.2.3]:2525" or "relay.example:587"   a smarthost (no MX lookup)
--   { smarthost = "...", tls = "required" }     with an outbound TLS mode
--   { smarthost = "...", auth = { user = "u", password = "p" } }   with SMTP AUTH
--                                               (routes only; the file format has none)
--   "discard"                                   drop, logged, no bounce
--   "mx"                                        normal MX delivery
--
-- Options:
--   routes = { ["partner.example"] = "[10.1.2.3]:2525", ["*.corp.example"] = "discard" }
--   file   = "conf/routes.txt"   lines "domain target [tls=MODE]", '#' comments;
--            read again when its content changes (checked at most every
--            `check_interval` seconds, default 5). Entries of `file` win over `routes`.

local function parse_target(v, where)
  if type(v) == "table" then
    if type(v.smarthost) ~= "string" then error(where .. ": table routes need smarthost") end
    return { smarthost = v.smarthost, tls = v.tls, auth = v.auth }
  end
  if v == "discard" then return { discard = true } end
  if v == "mx" then return false end
  if type(v) ~= "string" or v == "" then error(where .. ": bad route " .. tostring(v)) end
  return { smarthost = v }
end

-- mailgate.read_file: policy code has no io library (a regular file only,
-- read whole; nil and the reason when it cannot be read).
local function load_file(path)
  return mailgate.read_file(path)
end

local function parse_file(text, path)
  local routes = {}
  local n = 0
  for line in text:gmatch("[^\n]+") do
    n = n + 1
    line = line:gsub("#.*", ""):gsub("^%s+", ""):gsub("%s+$", "")
    if line ~= "" then
      local domain, target, rest = line:match("^(%S+)%s+(%S+)%s*(.*)$")
      if not domain then error(path .. ":" .. n .. ": expected 'domain target'") end
      local route = parse_target(target, path .. ":" .. n)
      local tls = rest:match("^tls=(%a+)$")
      if rest ~= "" and not tls then error(path .. ":" .. n .. ": unexpected '" .. rest .. "'") end
      if tls and route then route.tls = tls end
      routes[domain:lower()] = route
    end
  end
  return routes
end

return function(opts)
  local static = {}
  for domain, v in pairs(opts.routes or {}) do
    static[domain:lower()] = parse_target(v, "routing_table: routes[" .. domain .. "]")
  end
  local file, interval = opts.file, opts.check_interval or 5
  local from_file, file_text, checked = {}, nil, 0
  if file then
    local text, err = load_file(file)
    if not text then error("routing_table: cannot read " .. file .. ": " .. tostring(err)) end
    from_file, file_text, checked = parse_file(text, file), text, os.time()
  end

  local function refresh()
    if not file or os.time() - checked < interval then return end
    checked = os.time()
    local text = load_file(file)
    if text and text ~= file_text then
      local ok, parsed = pcall(parse_file, text, file)
      if ok then
        from_file, file_text = parsed, text
        mailgate.log("info", "routing_table: reloaded " .. file)
      else
        -- Keep routing by the last good table rather than by a broken one.
        mailgate.log("error", "routing_table: " .. tostring(parsed) .. "; keeping the previous table")
        file_text = text
      end
    end
  end

  local function lookup(domain)
    for _, t in ipairs({ from_file, static }) do
      local r = t[domain]
      if r ~= nil then return r end
    end
    local parent = domain
    while true do
      parent = parent:match("^[^.]+%.(.+)$")
      if not parent then return nil end
      for _, t in ipairs({ from_file, static }) do
        local r = t["*." .. parent]
        if r ~= nil then return r end
      end
    end
  end

  mailgate.on("route", function(msg, domain)
    refresh()
    local r = lookup(domain)
    if r then return r end
    return nil
  end)
end
