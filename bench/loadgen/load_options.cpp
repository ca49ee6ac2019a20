// bench/loadgen/load_options: size mixes (see the header).
#include "load_options.hpp"

#include <cctype>
#include <charconv>

namespace mailgate::loadgen {

SizeMix::SizeMix(std::vector<std::pair<std::uint64_t, unsigned>> sizes) : sizes_(std::move(sizes)) {
  for (const auto& s : sizes_) total_ += s.second;
}

std::uint64_t SizeMix::pick(std::uint64_t r) const {
  for (const auto& [size, weight] : sizes_) {
    if (r < weight) return size;
    r -= weight;
  }
  return sizes_.back().first;
}

std::string SizeMix::describe() const {
  std::string out;
  for (const auto& [size, weight] : sizes_) {
    if (!out.empty()) out += ',';
    out += std::to_string(size) + ":" + std::to_string(weight);
  }
  return out;
}

namespace {

std::optional<std::uint64_t> parse_size(std::string s) {
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p == s.data()) return std::nullopt;
  std::string unit(static_cast<const char*>(p), static_cast<const char*>(s.data() + s.size()));
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::uint64_t mult = 1;
  if (unit.empty() || unit == "b")
    mult = 1;
  else if (unit == "k" || unit == "kb" || unit == "kib")
    mult = 1024;
  else if (unit == "m" || unit == "mb" || unit == "mib")
    mult = 1024 * 1024;
  else
    return std::nullopt;
  if (n == 0 || n > (1ull << 30) / mult) return std::nullopt;
  return n * mult;
}

}  // namespace

std::optional<SizeMix> parse_sizes(const std::string& spec, std::string& error) {
  std::vector<std::pair<std::uint64_t, unsigned>> sizes;
  std::size_t pos = 0;
  while (pos <= spec.size()) {
    auto end = spec.find(',', pos);
    if (end == std::string::npos) end = spec.size();
    const auto item = spec.substr(pos, end - pos);
    const auto colon = item.find(':');
    const auto size = parse_size(item.substr(0, colon));
    unsigned weight = 1;
    if (colon != std::string::npos) {
      const auto w = item.substr(colon + 1);
      auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), weight);
      if (ec != std::errc() || p != w.data() + w.size() || weight == 0) {
        error = "bad weight in size mix item \"" + item + "\"";
        return std::nullopt;
      }
    }
    if (!size) {
      error =
          "bad size in size mix item \"" + item + "\" (e.g. 1024, 1k, 100KiB, 2M; 1 GiB at most)";
      return std::nullopt;
    }
    sizes.emplace_back(*size, weight);
    pos = end + 1;
  }
  return SizeMix(std::move(sizes));
}

}  // namespace mailgate::loadgen
