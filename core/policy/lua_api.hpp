// policy/lua_api: the global `mailgate` table a config file and its hooks see
// (internal to the policy module): on, use, reject, tempfail, accept, log,
// read_file, file_info, crypt_verify, dns.mx, ratelimit.check,
// suppression.add/has/remove, net.contains, mime.addresses, dkim.check_key,
// and the `msg` object.
// The same API serves `check-config` (load_config: handlers are registered
// and plugins loaded, so their errors show up there) and the run-time states.
// Promises: C functions raise Lua errors only when no C++ object with a
// destructor is alive in their frame (Lua's errors are longjmps); a call
// that must wait (dns.mx, crypt_verify) yields the hook's Lua thread and is completed by the
// C++ driver, never by blocking; API calls that need a hook context fail with
// a clear error outside one.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dns/answers.hpp"
#include "egress/egress_plan.hpp"
#include "policy/lua_state.hpp"
#include "policy/runtime.hpp"

struct lua_State;

namespace mailgate::policy {

// The text of the config file and of every plugin a policy version loaded,
// kept so that a state replaced after it hit policy.memory_limit is built
// from that same version, not from files changed on disk since.
struct PolicySources {
  struct File {
    std::string chunkname;  // "@path", as Lua names a file's chunk
    std::string text;
  };
  File config;
  std::map<std::string, File> plugins;  // by plugin name (mailgate.use)
};

struct ApiContext {
  std::string config_dir;              // mailgate.use looks in <config_dir>/plugins first
  std::string plugin_dir;              // then here (the shipped plugins)
  const Services* services = nullptr;  // null while checking a config
  const Config* config = nullptr;      // null while checking a config
  // mailgate.use takes a plugin from here when it is there, and records what
  // it reads from disk here; null: `own_sources` (check-config).
  PolicySources* sources = nullptr;
  PolicySources own_sources;
  // What mailgate.source{}, pool{} and site{} declared (policy/lua_egress).
  std::shared_ptr<egress::Plan> egress = std::make_shared<egress::Plan>();
};

// Loads a chunk of Lua source as luaL_loadfilex would (a UTF-8 BOM and a
// first line starting with '#' are skipped, line numbers kept), text only.
int load_source(lua_State* L, const PolicySources::File& file);

// Where the shipped plugins are, found from the running executable and never
// through a path compiled in: <bin>/../share/mailgate/plugins (installed, e.g.
// /usr/sbin/mailgate -> /usr/share/mailgate/plugins), else <bin>/plugins (a
// build tree, where CMake links it to the source's plugins/). "" when neither
// exists: mailgate.use then finds only <config_dir>/plugins.
std::string default_plugin_dir();

// Installs the `mailgate` global (without configure/listen, which the caller
// sets) and the registry entries the hooks need. `ctx` must outlive `L`.
void install_mailgate_api(lua_State* L, ApiContext* ctx);

// The per-call context of one hook call: its limits (deadline, failure) and
// what the API needs. The driver makes it the state's running call
// (StateControl::running) while the call's Lua code runs.
struct HookCall : CallLimits {
  Event event{};
  // A pending asynchronous request the hook yielded for: Mx (wait_arg: the
  // domain), Crypt (wait_arg: the password, wait_arg2: the hash; the driver
  // moves them out when it takes the request).
  enum class Wait { None, Mx, Crypt } wait = Wait::None;
  std::string wait_arg, wait_arg2;
  // Userdata boxes (msg, tx recipients) cleared when the call ends, so Lua
  // code that kept them cannot reach the C++ objects afterwards.
  std::vector<void**> boxes;
};

HookCall* current_call(lua_State* L);  // null outside a hook (any thread of the state)

// Sets mailgate.configure, mailgate.listen and mailgate.webhook (collectors
// while checking a config, no-ops in a running policy).
void set_config_functions(lua_State* L, int (*configure)(lua_State*), int (*listen)(lua_State*),
                          int (*webhook)(lua_State*));

// DKIM (policy/lua_dkim): msg:dkim_sign{...} on `m`, and
// mailgate.dkim.check_key(path [, algorithm]) (`services` null: check-config).
int msg_dkim_sign(lua_State* L, Message* m);
int dkim_check_key(lua_State* L, const Services* services);

// Bulk sending (policy/lua_egress): mailgate.source/pool/site on the
// `mailgate` global, and msg:set_pool(name) on `m`.
void install_egress_api(lua_State* L);
int msg_set_pool(lua_State* L, Message* m);
// The state's API context (null if none was installed).
ApiContext* api_context(lua_State* L);

// Registry access: the Lua dispatcher function and each event's handler list.
void push_dispatcher(lua_State* L);
void push_handlers(lua_State* L, Event e);  // the (possibly empty) array
bool has_handlers(lua_State* L, Event e);

// Arguments.
void push_conn(lua_State* L, const ConnInfo& c);
void push_address(lua_State* L, const AddressInfo& a);
void push_tx(lua_State* L, const TxInfo& tx, HookCall& call);
void push_message(lua_State* L, Message& m, HookCall& call);
void push_reply(lua_State* L, const ReplyInfo& r);
void push_mx_answer(lua_State* L, const dns::MxAnswer& r);

// Results (never raise; on a bad value they return false and set `err`).
bool read_verdict(lua_State* L, int idx, Event e, Verdict& out, std::string& err);
// The auth event's result: true / false / nil / a reject or tempfail verdict.
bool read_auth(lua_State* L, int idx, AuthVerdict& out, std::string& err);
bool read_route(lua_State* L, int idx, std::uint16_t default_port, RouteDecision& out,
                std::string& err);
bool read_egress(lua_State* L, int idx, EgressPath& out, std::string& err);
bool read_delay(lua_State* L, int idx, std::optional<Duration>& out, std::string& err);

}  // namespace mailgate::policy
