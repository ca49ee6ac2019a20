// template/tag_scan: reads a Mustache template's tags the way
// kainjow::mustache's parser does (same delimiters, same triple-brace and
// set-delimiter rules), without building anything, to learn what that
// parser does not check: partial tags, the section nesting depth (its
// renderer recurses once per level), and the length of each section's
// source text (which bounds what one pass of the section can write).
// Promises: linear in the template, no recursion, no exception; where the
// template has a syntax error the scan stops there (kainjow's parser reports
// the error itself).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate::templating {

struct TagScan {
  std::size_t max_depth = 0;
  std::optional<std::size_t> partial_at;   // offset of the first {{>name}}
  std::optional<std::size_t> too_deep_at;  // offset of the first section past `depth_limit`
  // Per section name: the longest source text of a section of that name.
  std::map<std::string, std::size_t, std::less<>> section_bytes;
};

TagScan scan_tags(std::string_view text, std::size_t depth_limit);

}  // namespace mailgate::templating
