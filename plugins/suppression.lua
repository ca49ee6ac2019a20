-- suppression: refuse recipients on the suppression list at RCPT time, and
-- add an address to it only when a remote server said the *address* is bad:
-- 5.1.1 (no such mailbox), 5.1.2 (no such domain), 5.1.3 (bad address syntax),
-- 5.1.10 (null MX) and 5.2.1 (mailbox disabled). Never for 5.7.x policy or
-- reputation blocks, connection failures or expiry: those say nothing about
-- the address, and suppressing on them would silently drop good recipients.
-- The list is process-wide (the spool's `suppress` column family), shared by
-- all workers and kept across restarts.
--
-- Options:
--   reply = "550 5.1.1"   code and enhanced code for a suppressed recipient
--   codes = { "5.1.1", "5.1.2", "5.1.3", "5.1.10", "5.2.1" }   what suppresses

return function(opts)
  local code, enhanced = (opts.reply or "550 5.1.1"):match("^(5%d%d) (5%.%d+%.%d+)$")
  if not code then error("suppression: reply must look like \"550 5.1.1\"") end
  code = tonumber(code)
  local suppressing = {}
  for _, c in ipairs(opts.codes or { "5.1.1", "5.1.2", "5.1.3", "5.1.10", "5.2.1" }) do
    if not c:match("^5%.") then error("suppression: only permanent (5.x.x) codes may suppress: " .. c) end
    suppressing[c] = true
  end

  mailgate.on("rcpt_to", function(tx, rcpt)
    if rcpt.relay_refused then return nil end  -- refused anyway; nothing to look up
    if mailgate.suppression.has(rcpt.address) then
      return mailgate.reject(code, enhanced .. " " .. rcpt.address ..
                                   " is suppressed (an earlier permanent failure or a complaint)")
    end
  end)

  mailgate.on("bounced", function(msg, rcpt, reply)
    if reply.code >= 500 and suppressing[reply.enhanced] then
      mailgate.suppression.add(rcpt.address,
                               string.format("%d %s %s", reply.code, reply.enhanced, reply.text))
      mailgate.log("info", "suppressed " .. rcpt.address .. " after " .. reply.code .. " " .. reply.enhanced)
    end
  end)
end
