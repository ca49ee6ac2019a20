"""A scriptable hostile SMTP server for the fault suite: an asyncio raw-socket
server on host:port (its own event loop thread) that behaves, per connection,
as its script says — the next behavior of `script` for each new connection,
then `default` — and records what it saw. It never crashes on what a client
sends; stop() closes every connection it holds.

Behaviors (RFC 5321 says what the client must make of each; the tests check it):
  normal                   a plain, correct server (PIPELINING, 8BITMIME)
  mixed                    per recipient by local part: ok* 250, tmp* 450, bad* 550
  greet_421                421 at the greeting, then close
  drop_in_data             close the connection in the middle of the message data
  stall_after_data         read the whole message, never answer the final dot
  disconnect_before_final  read the whole message, then close without a reply
                           (the client cannot know: it must retry, §6.1)
  starttls_fail            offer STARTTLS, answer 220, then send bytes that are not TLS
  garbage                  answer EHLO with a line that is not an SMTP reply
  long_line                answer EHLO with a 100,000-byte reply line (limit 512, §4.5.3.1.5)
  endless_multiline        answer EHLO with "250-..." lines forever, never a last line
"""
import asyncio
import threading

BEHAVIORS = ("normal", "mixed", "greet_421", "drop_in_data", "stall_after_data",
             "disconnect_before_final", "starttls_fail", "garbage", "long_line",
             "endless_multiline")


class HostileRemote:
    def __init__(self, host, port, script=(), default="normal", name="hostile.test"):
        # default: a behavior, or a function returning one per connection.
        for b in list(script) + ([] if callable(default) else [default]):
            assert b in BEHAVIORS, b
        self.host, self.port, self.name = host, port, name
        self.script = list(script)
        self.default = default
        self.lock = threading.Lock()
        self.connections = []   # the behavior of each connection, in order
        self.delivered = []     # {"from", "to", "data", "behavior"}: answered 250 at the dot
        self.swallowed = []     # whole messages read but never answered (disconnect/stall)
        self.rcpt_replies = []  # (address, code) as answered
        self.data_seen = 0      # DATA commands answered 354
        self._writers = set()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        if not started.wait(10):
            raise AssertionError("hostile remote did not start")
        if self.error:
            raise self.error

    def _run(self, started):
        asyncio.set_event_loop(self.loop)
        self.error = None
        try:
            self.server = self.loop.run_until_complete(
                asyncio.start_server(self._serve, self.host, self.port, reuse_address=True,
                                     limit=1 << 24))
        except OSError as e:
            self.error = e
            started.set()
            return
        started.set()
        self.loop.run_forever()

    def next_behavior(self):
        with self.lock:
            if self.script:
                b = self.script.pop(0)
            else:
                b = self.default() if callable(self.default) else self.default
            self.connections.append(b)
            return b

    def count(self):
        with self.lock:
            return len(self.delivered)

    def connection_counts(self):
        with self.lock:
            return len(self._writers), len(self.connections)

    async def _serve(self, reader, writer):
        with self.lock:
            self._writers.add(writer)
        behavior = self.next_behavior()
        try:
            await self._dialogue(behavior, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError, OSError):
            pass
        finally:
            with self.lock:
                self._writers.discard(writer)
            writer.close()

    async def _dialogue(self, behavior, reader, writer):
        async def say(*lines):
            writer.write(b"".join(l.encode() + b"\r\n" for l in lines))
            await writer.drain()

        if behavior == "greet_421":
            return await say(f"421 4.3.2 {self.name} not accepting mail right now")
        await say(f"220 {self.name} ESMTP hostile")
        sender, rcpts = None, []
        while True:
            line = await reader.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                if behavior == "garbage":
                    await say("this is not an SMTP reply at all")
                    continue
                if behavior == "long_line":
                    await say("250 " + "x" * 100_000)
                    continue
                if behavior == "endless_multiline":
                    while True:  # until the client gives up and closes
                        await say(f"250-{self.name} says more")
                        await asyncio.sleep(0.005)
                ext = ["PIPELINING", "8BITMIME"]
                if behavior == "starttls_fail":
                    ext.append("STARTTLS")
                await say(*[f"250-{self.name}"] + [f"250-{e}" for e in ext[:-1]] +
                          [f"250 {ext[-1]}"])
            elif verb == b"STAR":
                await say("220 2.0.0 go ahead")
                await say("this is not a TLS server hello")
                return
            elif verb == b"MAIL":
                sender, rcpts = line[10:].split(b">")[0].lstrip(b"<").decode(), []
                await say("250 2.1.0 OK")
            elif verb == b"RCPT":
                addr = line[8:].split(b">")[0].lstrip(b"<").decode()
                local = addr.split("@")[0]
                code = 250
                if behavior == "mixed" and local.startswith("tmp"):
                    code = 450
                elif behavior == "mixed" and local.startswith("bad"):
                    code = 550
                with self.lock:
                    self.rcpt_replies.append((addr, code))
                if code == 250:
                    rcpts.append(addr)
                    await say("250 2.1.5 OK")
                elif code == 450:
                    await say("450 4.2.1 mailbox busy, try later")
                else:
                    await say("550 5.1.1 no such mailbox")
            elif verb == b"DATA":
                if not rcpts:
                    await say("554 5.5.1 no valid recipients")
                    continue
                with self.lock:
                    self.data_seen += 1
                await say("354 go ahead")
                if behavior == "drop_in_data":
                    await reader.read(1)  # some of the message has arrived
                    writer.transport.abort()
                    return
                data = await reader.readuntil(b"\r\n.\r\n")
                msg = {"from": sender, "to": list(rcpts), "data": data[:-3],
                       "behavior": behavior}
                if behavior in ("stall_after_data", "disconnect_before_final"):
                    with self.lock:
                        self.swallowed.append(msg)
                    if behavior == "stall_after_data":
                        while await reader.read(65536):  # until the client gives up
                            pass
                    return
                with self.lock:
                    self.delivered.append(msg)
                await say("250 2.0.0 queued")
                sender, rcpts = None, []
            elif verb == b"RSET":
                sender, rcpts = None, []
                await say("250 2.0.0 OK")
            elif verb == b"QUIT":
                return await say("221 2.0.0 bye")
            elif verb == b"NOOP":
                await say("250 2.0.0 OK")
            else:
                await say("502 5.5.2 command not recognized")

    def stop(self):
        async def close_all():
            self.server.close()
            with self.lock:
                writers = list(self._writers)
            for w in writers:
                w.transport.abort()
            await self.server.wait_closed()

        if getattr(self, "server", None) is not None:
            asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
