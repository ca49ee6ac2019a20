-- list_unsubscribe: RFC 8058 one-click unsubscribe for bulk mail. Adds
--   List-Unsubscribe: <https://...>, <mailto:...>
--   List-Unsubscribe-Post: List-Unsubscribe=One-Click
-- in the `message` hook to the messages it selects: those whose envelope
-- sender's domain is in `domains`, and those with the msg meta `meta` set
-- (msg:set_meta("list_unsubscribe", TOKEN) by an earlier handler or the
-- injecting application). DKIM signatures are computed after every message
-- handler, and the default signed headers include both fields (RFC 8058 §4
-- requires them to be signed), so load order does not matter.
-- A message that already has a List-Unsubscribe keeps it (the application
-- knows better); List-Unsubscribe-Post is added only when that header has an
-- https URI. Placeholders in `url` and `mailto`: {id} (the message id),
-- {rcpt} (the recipient, percent-encoded; only for a message with ONE
-- recipient: a message with several gets no header, since one URL cannot
-- name them all — VERP bulk sends are one recipient per message anyway),
-- {token} (the meta value, percent-encoded; "" for messages selected by
-- domain). The receiving endpoint must authenticate what it is given (put a
-- signed token in the meta; a bare {rcpt} lets anyone unsubscribe anyone).
--
-- Options:
--   url = "https://unsub.example.com/u?m={id}&t={token}"   required, https://
--   mailto = "unsubscribe@example.com"                       optional
--   domains = { "news.example.com" }                         optional
--   meta = "list_unsubscribe"                                the meta key (default)

local function percent(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

return function(opts)
  local url = opts.url
  if type(url) ~= "string" or not url:match("^https://[^%s<>,]+$") then
    error("list_unsubscribe: url must be an https:// URL without spaces, '<', '>' or ','")
  end
  local mailto = opts.mailto
  if mailto ~= nil and (type(mailto) ~= "string" or not mailto:match("^[^%s<>,@?]+@[^%s<>,@?]+$")) then
    error("list_unsubscribe: mailto must be an address")
  end
  local domains = {}
  for _, d in ipairs(opts.domains or {}) do domains[d:lower()] = true end
  local meta_key = opts.meta or "list_unsubscribe"
  local uses_rcpt = url:find("{rcpt}", 1, true) or (mailto and mailto:find("{rcpt}", 1, true))

  local function fill(template, msg, token)
    local rcpt = #msg.recipients == 1 and percent(msg.recipients[1]) or ""
    local values = { id = msg.id, rcpt = rcpt, token = percent(token) }
    -- A function replacement: '%' in the values is not a capture reference.
    return (template:gsub("{(%a+)}", function(name) return values[name] end))
  end

  mailgate.on("message", function(tx, msg)
    local token = msg:meta(meta_key)
    local domain = (msg.sender or ""):match("@([^@]+)$")
    if token == nil and not (domain and domains[domain:lower()]) then return nil end
    local existing = msg:header("List-Unsubscribe")
    if existing then
      if existing:find("<https://", 1, true) and not msg:header("List-Unsubscribe-Post") then
        msg:add_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
      end
      return nil
    end
    if uses_rcpt and #msg.recipients ~= 1 then
      mailgate.log("info", "list_unsubscribe: " .. msg.id .. " has " .. #msg.recipients ..
                           " recipients; {rcpt} needs one: no List-Unsubscribe added")
      return nil
    end
    local value = "<" .. fill(url, msg, token or "") .. ">"
    if mailto then
      value = value .. ", <mailto:" .. fill(mailto, msg, token or "") .. ">"
    end
    msg:add_header("List-Unsubscribe", value)
    msg:add_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
  end)
end
