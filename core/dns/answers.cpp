// dns/answers: status names and the SMTP replies for failed lookups
// (RFC 7505 §4.2 for null MX, RFC 3463 X.1.2 / X.4.3 otherwise).
#include "dns/answers.hpp"

namespace mailgate::dns {

std::string_view to_string(Status s) {
  switch (s) {
    case Status::Ok:
      return "ok";
    case Status::NxDomain:
      return "nxdomain";
    case Status::NoData:
      return "nodata";
    case Status::TempFail:
      return "tempfail";
    case Status::NullMx:
      return "nullmx";
    case Status::BadName:
      return "badname";
  }
  return "unknown";
}

FailureReply failure_reply(Status s) {
  switch (s) {
    case Status::Ok:
      return {250, "2.0.0", "OK"};
    case Status::NullMx:
      return {556, "5.1.10", "Recipient address has null MX"};
    case Status::NxDomain:
      return {550, "5.1.2", "Recipient domain does not exist"};
    case Status::NoData:
      return {550, "5.1.2", "Recipient domain has no MX or address records"};
    case Status::BadName:
      return {550, "5.1.2", "Recipient domain is not a valid domain name"};
    case Status::TempFail:
      break;
  }
  return {451, "4.4.3", "Temporary DNS failure resolving the recipient domain"};
}

}  // namespace mailgate::dns
