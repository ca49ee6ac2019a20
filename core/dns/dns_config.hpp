// dns/dns_config: the `dns` section of configure{}: which resolvers to ask.
#pragma once

#include <string>
#include <vector>

#include "config/section.hpp"

namespace mailgate::dns {

struct DnsConfig {
  std::vector<std::string> servers;  // "ip" or "ip:port"; empty: /etc/resolv.conf
};

const config::Section<DnsConfig>& dns_section();

}  // namespace mailgate::dns
