-- shaping/providers: sites (mailgate.site{}) for the large mailbox
-- providers, so the many domains each one hosts share its limits, per
-- source, the way the provider counts them (README "Bulk sending").
-- A destination belongs to a site when one of its MX hosts ends with one of
-- the site's suffixes. The limits are deliberately conservative starting
-- points for a new sender; raise them as your reputation allows.
--
--   mailgate.use("shaping/providers")                       -- all of them
--   mailgate.use("shaping/providers", {
--     google = { max_connections = 40, max_message_rate = "100/s" },  -- changes these keys
--     comcast = false,                                        -- drops this site
--   })
--
-- A later mailgate.site{ name = "google", ... } replaces a site entirely.

local sites = {
  { name = "google", mx_suffixes = { ".google.com", ".googlemail.com" },
    max_connections = 20, max_message_rate = "50/s" },
  { name = "microsoft", mx_suffixes = { ".outlook.com", ".protection.outlook.com" },
    max_connections = 10, max_message_rate = "20/s" },
  { name = "yahoo", mx_suffixes = { ".yahoodns.net" },            -- Yahoo and AOL
    max_connections = 10, max_message_rate = "20/s" },
  { name = "apple", mx_suffixes = { ".icloud.com" },
    max_connections = 10, max_message_rate = "10/s" },
  { name = "gmx", mx_suffixes = { ".gmx.net", ".web.de" },         -- GMX, web.de (United Internet)
    max_connections = 5, max_message_rate = "5/s" },
  { name = "ionos", mx_suffixes = { ".ionos.de", ".kundenserver.de" },
    max_connections = 5, max_message_rate = "5/s" },
  { name = "comcast", mx_suffixes = { ".comcast.net" },
    max_connections = 5, max_message_rate = "5/s" },
  { name = "yandex", mx_suffixes = { ".yandex.ru", ".yandex.net" },
    max_connections = 5, max_message_rate = "10/s" },
  { name = "mailru", mx_suffixes = { ".mail.ru" },
    max_connections = 5, max_message_rate = "10/s" },
  { name = "orange", mx_suffixes = { ".orange.fr" },
    max_connections = 3, max_message_rate = "3/s" },
  { name = "zoho", mx_suffixes = { ".zoho.com", ".zoho.eu" },
    max_connections = 5, max_message_rate = "10/s" },
  { name = "proofpoint", mx_suffixes = { ".pphosted.com" },
    max_connections = 10, max_message_rate = "20/s" },
  { name = "mimecast", mx_suffixes = { ".mimecast.com" },
    max_connections = 10, max_message_rate = "20/s" },
}

return function(opts)
  opts = opts or {}
  for name, o in pairs(opts) do
    local known = false
    for _, s in ipairs(sites) do known = known or s.name == name end
    if not known then error("shaping/providers: unknown site '" .. tostring(name) .. "'", 2) end
    if o ~= false and type(o) ~= "table" then
      error("shaping/providers: " .. name .. " must be a table of site keys or false", 2)
    end
  end
  for _, s in ipairs(sites) do
    local o = opts[s.name]
    if o ~= false then
      local site = {}
      for k, v in pairs(s) do site[k] = v end
      for k, v in pairs(o or {}) do site[k] = v end
      mailgate.site(site)
    end
  end
end
