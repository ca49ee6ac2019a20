// adminclient/render: the admin CLI's human output for the API's JSON
// answers (DESIGN §8): queue summary, message list, one message, suppression
// list. Promises: pure functions of the JSON; a missing, null or oddly typed
// field shows as "-" instead of throwing; server text is sanitized (see
// table.hpp), so nothing the server sends can inject terminal control codes.
#pragma once

#include <string>

#include "adminclient/api_client.hpp"

namespace mailgate::adminclient {

// "-" for a negative or non-finite age, else "12s", "5m03s", "2h05m", "3d04h".
std::string format_age(double seconds);

// A scalar as a table cell: strings as is, integral numbers without a
// fraction, other numbers with one decimal, booleans "yes"/"no", null "-".
std::string cell(const Json& value);

// GET /api/v1/queue: DESTINATION SCHEDULED READY IN-FLIGHT CONN SUSPENDED
// OLDEST, then a totals line.
std::string render_queue_summary(const Json& queue);
// The "messages" array of GET /api/v1/messages: ID DESTINATION SENDER
// RECIPIENTS ATTEMPTS NEXT (RECIPIENTS is the first address and "+N" for
// the others).
std::string render_message_list(const Json& messages);
// GET /api/v1/messages/ID: envelope lines, then each destination with a
// RECIPIENT STATE LAST-REPLY table.
std::string render_message(const Json& message);
// The "entries" array of GET /api/v1/suppression: ADDRESS ADDED REASON.
std::string render_suppression_list(const Json& entries);
// The "targets" array of GET /api/v1/webhooks: TARGET URL BACKLOG BYTES DEAD
// SENT FAILED LAST-ERROR.
std::string render_webhook_targets(const Json& targets);
// GET /api/v1/cluster: a "redis URL up|DOWN, latency" line, then NODE
// LAST-SEEN AGE CONNECTIONS LIVE per node.
std::string render_cluster(const Json& cluster);
// The "dead_letters" array of GET /api/v1/webhooks/NAME/dead_letters:
// SEQ QUEUED EVENT ID RECIPIENT REASON.
std::string render_dead_letters(const Json& dead_letters);
// GET /api/v1/shaping's "actions" (`until` as UTC time).
std::string render_shaping_actions(const Json& actions);

}  // namespace mailgate::adminclient
