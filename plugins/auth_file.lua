-- auth_file: SMTP AUTH against a users file (an `auth` hook).
--
-- The file has one line per user, "user:crypt-hash"; lines that are blank or
-- start with '#' are ignored. Hashes are crypt(3) hashes as libxcrypt checks
-- them: SHA-512 "$6$..." (`mkpasswd -m sha-512`, `openssl passwd -6`) or
-- yescrypt "$y$..." (`mkpasswd -m yescrypt`, Debian's default).
--
-- Options:
--   path = "conf/users"   required. It must exist and parse when the config
--                         loads (else the config is refused, with file:line).
--
-- Promises:
-- - The hook returns true for a listed user whose password matches the hash,
--   false otherwise. A user that is not listed is checked against a dummy
--   hash all the same (the first user's, so it costs what a real check
--   costs): the time an answer takes does not tell whether a user exists.
-- - The file is read again when its size or modification time changes (one
--   stat per AUTH, mailgate.file_info). A file that has become unreadable or
--   broken is logged and the users read before stay in force.
-- - Passwords are never logged; hashes are checked off the worker's thread
--   (mailgate.crypt_verify).

-- Used as the dummy while the file lists nobody (any well-formed hash will
-- do: no password is checked against it for real).
local EMPTY_DUMMY =
  "$6$2onzv9MXUPzWZer2$bWn66q8BgfMphAFF4b0miQ6bdK8vkmMwnD1uG3SSZcAGVbZqIHMnzsMpVNwGB.31pzaYwCXODSJ0PWqQR/usm."

local function parse(text, path)
  local users, first = {}, nil
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local trimmed = line:gsub("\r$", ""):match("^%s*(.-)%s*$")
    if trimmed ~= "" and trimmed:sub(1, 1) ~= "#" then
      -- The hash has no ':' and no blank; the user is everything before it.
      local user, hash = trimmed:match("^(.-):([^:%s]+)$")
      if not user or user == "" then
        error(path .. ":" .. n .. ": expected 'user:crypt-hash'", 0)
      end
      if users[user] then error(path .. ":" .. n .. ": user '" .. user .. "' listed twice", 0) end
      users[user] = hash
      first = first or hash
    end
  end
  return users, first or EMPTY_DUMMY
end

-- What tells a changed file: its modification time (nanoseconds) and size.
local function stamp(info)
  return info.mtime_ns .. "/" .. info.size
end

return function(opts)
  local path = opts.path
  if type(path) ~= "string" or path == "" then
    error("auth_file: option 'path' (the users file) is required", 0)
  end

  local info, err = mailgate.file_info(path)
  local text
  if info then text, err = mailgate.read_file(path) end
  if not text then error("auth_file: cannot read " .. tostring(err), 0) end
  local users, dummy = parse(text, path)
  local current = stamp(info)
  local broken = false  -- the last look found the file unusable (logged once)

  local function refresh()
    local now, why = mailgate.file_info(path)
    if now and stamp(now) == current then return end
    local body
    if now then body, why = mailgate.read_file(path) end
    if not body then
      if not broken then
        mailgate.log("error", "auth_file: " .. tostring(why) .. "; keeping the users read before")
        broken = true
      end
      return
    end
    local ok, parsed, parsed_dummy = pcall(parse, body, path)
    current = stamp(now)  -- a broken version is not parsed again until it changes
    if ok then
      users, dummy, broken = parsed, parsed_dummy, false
      mailgate.log("info", "auth_file: reloaded " .. path)
    else
      mailgate.log("error", "auth_file: " .. tostring(parsed) .. "; keeping the users read before")
      broken = true
    end
  end

  mailgate.on("auth", function(conn, mechanism, user, password)
    refresh()
    local hash = users[user]
    if hash == nil then
      mailgate.crypt_verify(password, dummy)  -- the same work as for a real user
      return false
    end
    return mailgate.crypt_verify(password, hash)
  end)
end
