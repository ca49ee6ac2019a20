-- rate_limit: per client IP and per envelope sender limits on connections,
-- messages and recipients. Counters live in mailgate's process-wide limiter
-- (mailgate.ratelimit.check), never in this worker's Lua state, so a limit
-- holds exactly however many workers share the load.
-- A rate "N/min" allows N at once and refills at N per minute.
--   connections over the limit: 421 4.7.0 at connect (the client retries later)
--   messages over the limit:    452 4.7.1 at MAIL FROM
--   recipients over the limit:  452 4.7.1 at RCPT TO (the client sends the
--                               rest later, RFC 5321 4.5.3.1.10)
--
-- Options (each optional; omitted = no limit):
--   per_ip     = { connections = "60/min", messages = "100/min", recipients = "1000/h" }
--   per_sender = { messages = "1000/h", recipients = "10000/h" }
--   exempt     = { "127.0.0.1/32" }   client networks never limited

return function(opts)
  local per_ip = opts.per_ip or {}
  local per_sender = opts.per_sender or {}
  local exempt = opts.exempt or {}

  local function exempted(ip)
    return #exempt > 0 and mailgate.net.contains(exempt, ip)
  end

  if per_ip.connections then
    mailgate.on("connect", function(conn)
      if exempted(conn.remote_ip) then return nil end
      if not mailgate.ratelimit.check("rl:conn:" .. conn.remote_ip, per_ip.connections) then
        return mailgate.tempfail(421, "4.7.0 too many connections from " .. conn.remote_ip ..
                                      ", try again later")
      end
    end)
  end

  -- Messages (at MAIL FROM) and recipients (at RCPT TO) are limited the same
  -- way: per client IP, then per envelope sender; 452 4.7.1 when over.
  local function limit_per_transaction(event, what, tag)
    if not (per_ip[what] or per_sender[what]) then return end
    mailgate.on(event, function(tx, rcpt)
      -- A recipient relay control already refused (an open-relay probe) is
      -- not counted: it costs nothing and must not use up a client's quota.
      if event == "rcpt_to" and rcpt.relay_refused then return nil end
      local ip = tx.conn.remote_ip
      if exempted(ip) then return nil end
      if per_ip[what] and not mailgate.ratelimit.check("rl:" .. tag .. ":ip:" .. ip, per_ip[what]) then
        return mailgate.tempfail(452, "4.7.1 " .. tag .. " rate limit exceeded for " .. ip)
      end
      local s = tx.sender.address
      if per_sender[what] and s ~= "" and
         not mailgate.ratelimit.check("rl:" .. tag .. ":from:" .. s:lower(), per_sender[what]) then
        return mailgate.tempfail(452, "4.7.1 " .. tag .. " rate limit exceeded for sender " .. s)
      end
    end)
  end
  limit_per_transaction("mail_from", "messages", "message")
  limit_per_transaction("rcpt_to", "recipients", "recipient")
end
