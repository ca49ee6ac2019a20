// adminclient/commands: the admin CLI's commands (DESIGN §5) on top of
// ApiClient: each sends its request(s), prints the answer (human tables and
// confirmations, or with `json` the server's JSON pretty-printed) and returns
// the process exit code. Promises: 0 on success; 1 when the server answered
// an error ("mailgate: <status>: <error text>" on `err`); 3 when the API
// cannot be reached or does not speak HTTP ("mailgate: cannot reach the
// admin API at URL: reason" plus a hint about http.listen); nothing throws.
// Path parameters are percent-encoded. List commands with `all` follow
// next_cursor to the end (with `json` the pages are merged into one object
// whose next_cursor is null).
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "adminclient/api_client.hpp"

namespace mailgate::adminclient {

inline constexpr int kExitOk = 0;
inline constexpr int kExitApiError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;

struct ListOptions {
  std::optional<std::string> destination;  // queue list only
  std::optional<int> limit;                // page size sent to the server
  bool all = false;
};

class Commands {
 public:
  Commands(const ApiClient& api, bool json, std::ostream& out, std::ostream& err);

  int queue_summary();
  int queue_list(const ListOptions& options);
  int queue_show(const std::string& id);
  // action: "suspend", "resume" or "flush".
  int queue_action(const std::string& action, const std::string& destination);
  // POST /api/v1/queue/<action> {"tenant", "campaign"?, "destination"?}
  // ("" leaves a field out).
  int queue_tenant_action(const std::string& action, const std::string& tenant,
                          const std::string& campaign, const std::string& destination);
  int queue_bounce_tenant(const std::string& tenant, const std::string& campaign,
                          const std::string& destination, const std::optional<std::string>& reason);
  // Exactly one of id and destination is set (the CLI checks).
  int queue_bounce(const std::optional<std::string>& id,
                   const std::optional<std::string>& destination,
                   const std::optional<std::string>& reason);
  int suppression_list(const ListOptions& options);
  int suppression_add(const std::string& address, const std::optional<std::string>& reason);
  int suppression_remove(const std::string& address);
  int reload();
  int webhooks_status();
  int webhooks_dead_letters(const std::string& name, const ListOptions& options);
  int webhooks_replay(const std::string& name);
  // GET /api/v1/shaping; DELETE /api/v1/shaping/ID (all: DELETE /api/v1/shaping).
  int shaping_list();
  int shaping_clear(const std::optional<std::string>& id);
  int cluster_status();

 private:
  template <class F>
  int guarded(F&& body);
  // POST /api/v1/bounce with `body` (+ reason); prints "bounced N message(s)".
  int post_bounce(Json body, const std::optional<std::string>& reason);
  // GETs `path` page by page; returns the merged object (the last page's
  // fields, `key` holding every item). Prints a "more" hint when not `all`.
  Json list(const std::string& path, std::string query, const char* key, const ListOptions& o,
            bool& more);
  void print_json(const Json& j);
  // GET `target`; the answer must be an object with `key` (else an error);
  // printed as JSON, or as render(answer).
  int show(const std::string& target, const char* key,
           const std::function<std::string(const Json&)>& render);
  // "<verb> N <one|many><tail>" from the integer r[key] (else an error).
  void print_count(const Json& r, const char* key, std::string_view verb, std::string_view one,
                   std::string_view many, std::string_view tail = {});

  const ApiClient& api_;
  bool json_;
  std::ostream& out_;
  std::ostream& err_;
};

}  // namespace mailgate::adminclient
