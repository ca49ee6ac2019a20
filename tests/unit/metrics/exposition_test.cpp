// Tests of metrics/exposition: the text parses as the Prometheus text format
// (checked by a strict little parser here, and by promtool when it is
// installed): valid names, one HELP and TYPE line per family before its
// samples, families in the order first added with same-name samples grouped,
// escaped label values, histogram buckets with ascending "le", cumulative
// counts, a last "+Inf" bucket equal to _count, and _sum.
#include "metrics/exposition.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "metrics/histogram.hpp"
#include "metrics/outcome_counters.hpp"

namespace mailgate::metrics {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

constexpr Family kConnections{"mailgate_smtp_connections_total", Type::Counter,
                              "SMTP connections accepted"};
constexpr Family kSessions{"mailgate_smtp_sessions_active", Type::Gauge, "SMTP sessions open now"};
constexpr Family kDeliveries{
    "mailgate_deliveries_total", Type::Counter, "Delivery outcomes", {"result", "destination"}};
constexpr Family kOutbound{"mailgate_outbound_connections_active", Type::Gauge,
                           "Outbound connections"};
constexpr Family kQueue{"mailgate_queue_messages", Type::Gauge, "Queued messages", {"state"}};
constexpr Family kLuaErrors{"mailgate_lua_errors_total", Type::Counter, "Lua errors", {"hook"}};
constexpr Family kBytes{"mailgate_received_bytes_total", Type::Counter, "Bytes"};
constexpr Family kSmall{"mailgate_small", Type::Gauge, "Small"};
constexpr Family kZero{"mailgate_zero", Type::Gauge, "Zero"};
constexpr Family kDeliverySeconds{"mailgate_delivery_seconds", Type::Histogram,
                                  "Delivery attempt duration"};
constexpr Family kHookSeconds{
    "mailgate_lua_hook_seconds", Type::Histogram, "Lua hook duration", {"hook"}};
constexpr Family kX{"mailgate_x_seconds", Type::Histogram, "x"};
constexpr Family kSpoolWrite{"mailgate_spool_write_seconds", Type::Histogram,
                             "Spool batch write and sync time"};

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
  std::string label(const std::string& key) const {
    for (const auto& [k, v] : labels)
      if (k == key) return v;
    return "<none>";
  }
};

struct Family {
  std::string name, help, type;
  std::vector<Sample> samples;
};

// A strict parser of the Prometheus text format (version 0.0.4) for what
// Exposition writes. Every problem is a test failure naming the line.
class Parser {
 public:
  explicit Parser(const std::string& text) {
    if (!text.empty() && text.back() != '\n') ADD_FAILURE() << "text does not end with a newline";
    std::istringstream in(text);
    int n = 0;
    for (std::string line; std::getline(in, line);) parse_line(++n, line);
  }
  std::vector<Family> families;

 private:
  static bool valid_metric_name(const std::string& s) {
    static const std::regex re("[a-zA-Z_:][a-zA-Z0-9_:]*");
    return std::regex_match(s, re);
  }
  static bool valid_label_name(const std::string& s) {
    static const std::regex re("[a-zA-Z_][a-zA-Z0-9_]*");
    return std::regex_match(s, re) && !s.starts_with("__");
  }
  static bool parse_value(const std::string& s, double& out) {
    if (s == "+Inf") return out = std::numeric_limits<double>::infinity(), true;
    if (s == "-Inf") return out = -std::numeric_limits<double>::infinity(), true;
    if (s == "NaN") return out = std::nan(""), true;
    if (s.empty()) return false;
    char* end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return end == s.c_str() + s.size();
  }

  Family* family_named(const std::string& name) {
    for (auto& f : families)
      if (f.name == name) return &f;
    return nullptr;
  }

  void parse_line(int n, const std::string& line) {
    SCOPED_TRACE("line " + std::to_string(n) + ": " + line);
    ASSERT_FALSE(line.empty()) << "empty line";
    if (line.starts_with("# HELP ")) {
      const auto rest = line.substr(7);
      const auto sp = rest.find(' ');
      const auto name = rest.substr(0, sp);
      ASSERT_TRUE(valid_metric_name(name));
      ASSERT_EQ(family_named(name), nullptr) << "second HELP (family split?)";
      families.push_back({name, sp == std::string::npos ? "" : rest.substr(sp + 1), "", {}});
      return;
    }
    if (line.starts_with("# TYPE ")) {
      std::istringstream ls(line.substr(7));
      std::string name, type, extra;
      ls >> name >> type;
      ASSERT_FALSE(ls >> extra) << "junk after the type";
      ASSERT_TRUE(valid_metric_name(name));
      ASSERT_TRUE(type == "counter" || type == "gauge" || type == "histogram" ||
                  type == "summary" || type == "untyped");
      Family* f = family_named(name);
      if (f == nullptr) {
        families.push_back({name, "", "", {}});
        f = &families.back();
      }
      ASSERT_EQ(f, &families.back()) << "TYPE not right after its HELP";
      ASSERT_TRUE(f->type.empty()) << "second TYPE line";
      ASSERT_TRUE(f->samples.empty()) << "TYPE after samples";
      f->type = type;
      return;
    }
    ASSERT_NE(line[0], '#') << "unexpected comment";
    Sample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    ASSERT_TRUE(valid_metric_name(s.name));
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const auto eq = line.find('=', i);
        ASSERT_NE(eq, std::string::npos);
        const auto key = line.substr(i, eq - i);
        ASSERT_TRUE(valid_label_name(key)) << key;
        ASSERT_LT(eq + 1, line.size());
        ASSERT_EQ(line[eq + 1], '"');
        std::string value;
        std::size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\') {
            ASSERT_LT(j + 1, line.size());
            const char c = line[++j];
            ASSERT_TRUE(c == '\\' || c == '"' || c == 'n') << "bad escape \\" << c;
            value.push_back(c == 'n' ? '\n' : c);
          } else {
            value.push_back(line[j]);
          }
        }
        ASSERT_LT(j, line.size()) << "unterminated label value";
        for (const auto& [k, v] : s.labels) ASSERT_NE(k, key) << "duplicate label";
        s.labels.emplace_back(key, value);
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ASSERT_LT(i, line.size()) << "unterminated label set";
      ++i;
    }
    ASSERT_LT(i, line.size());
    ASSERT_EQ(line[i], ' ');
    const auto value = line.substr(i + 1);
    ASSERT_EQ(value.find(' '), std::string::npos) << "timestamp or junk after the value";
    ASSERT_TRUE(parse_value(value, s.value)) << "value " << value;
    ASSERT_FALSE(families.empty()) << "sample before any TYPE";
    Family& f = families.back();
    ASSERT_FALSE(f.type.empty()) << "sample without TYPE";
    if (f.type == "histogram") {
      ASSERT_TRUE(s.name == f.name + "_bucket" || s.name == f.name + "_sum" ||
                  s.name == f.name + "_count")
          << "not a sample of " << f.name;
    } else {
      ASSERT_EQ(s.name, f.name) << "not a sample of " << f.name;
    }
    f.samples.push_back(std::move(s));
  }
};

// One histogram series (the samples of `f` whose labels other than "le" are `series`).
struct Series {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count) in text order
  std::vector<std::string> le_text;
  double sum = std::nan(""), count = std::nan("");
};

Series series_of(const Family& f, const Labels& series) {
  Series out;
  for (const auto& s : f.samples) {
    Labels rest;
    std::string le;
    bool has_le = false;
    for (const auto& [k, v] : s.labels) {
      if (k == "le") {
        le = v;
        has_le = true;
      } else {
        rest.emplace_back(k, v);
      }
    }
    if (rest != series) continue;
    if (s.name == f.name + "_bucket") {
      EXPECT_TRUE(has_le) << "bucket without le";
      double bound = 0;
      if (le == "+Inf") {
        bound = std::numeric_limits<double>::infinity();
      } else {
        char* end = nullptr;
        bound = std::strtod(le.c_str(), &end);
        EXPECT_EQ(end, le.c_str() + le.size()) << "le " << le;
      }
      out.buckets.emplace_back(bound, s.value);
      out.le_text.push_back(le);
    } else if (s.name == f.name + "_sum") {
      out.sum = s.value;
    } else {
      out.count = s.value;
    }
  }
  return out;
}

// Checks the histogram rules of one series and returns it.
Series checked_series(const Family& f, const Labels& series) {
  SCOPED_TRACE(f.name);
  auto s = series_of(f, series);
  EXPECT_FALSE(std::isnan(s.sum)) << "no _sum";
  EXPECT_FALSE(std::isnan(s.count)) << "no _count";
  EXPECT_FALSE(s.buckets.empty());
  if (s.buckets.empty()) return s;
  for (std::size_t i = 1; i < s.buckets.size(); ++i) {
    EXPECT_LT(s.buckets[i - 1].first, s.buckets[i].first) << "le not ascending at " << i;
    EXPECT_LE(s.buckets[i - 1].second, s.buckets[i].second) << "not cumulative at " << i;
  }
  EXPECT_EQ(s.le_text.back(), "+Inf");
  EXPECT_EQ(std::count(s.le_text.begin(), s.le_text.end(), "+Inf"), 1);
  EXPECT_EQ(s.buckets.back().second, s.count) << "+Inf bucket is not _count";
  return s;
}

int count_lines_starting(const std::string& text, const std::string& prefix) {
  int n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) n += line.starts_with(prefix);
  return n;
}

TEST(Exposition, EmptyIsEmpty) { EXPECT_EQ(Exposition().text(), ""); }

TEST(Exposition, CounterAndGaugeWithHelpAndType) {
  Exposition e;
  e.add(kConnections, 42);
  e.add(kSessions, 3);
  const auto text = e.text();
  Parser p(text);
  ASSERT_EQ(p.families.size(), 2u) << text;
  EXPECT_EQ(p.families[0].name, "mailgate_smtp_connections_total");
  EXPECT_EQ(p.families[0].type, "counter");
  EXPECT_EQ(p.families[0].help, "SMTP connections accepted");
  ASSERT_EQ(p.families[0].samples.size(), 1u);
  EXPECT_TRUE(p.families[0].samples[0].labels.empty());
  EXPECT_EQ(p.families[0].samples[0].value, 42);
  EXPECT_EQ(p.families[1].name, "mailgate_smtp_sessions_active");
  EXPECT_EQ(p.families[1].type, "gauge");
  ASSERT_EQ(p.families[1].samples.size(), 1u);
  EXPECT_EQ(p.families[1].samples[0].value, 3);
}

TEST(Exposition, SameNameSamplesShareOneFamilyInFirstAddedOrder) {
  Exposition e;
  e.add(kDeliveries, 5, {"delivery", "gmail.com"});
  e.add(kOutbound, 2);
  e.add(kDeliveries, 7, {"bounce", "other"});
  e.add(kQueue, 1, {"ready"});
  e.add(kQueue, 9, {"scheduled"});
  const auto text = e.text();
  EXPECT_EQ(count_lines_starting(text, "# TYPE mailgate_deliveries_total "), 1) << text;
  EXPECT_EQ(count_lines_starting(text, "# HELP mailgate_deliveries_total "), 1) << text;
  Parser p(text);
  ASSERT_EQ(p.families.size(), 3u) << text;
  EXPECT_EQ(p.families[0].name, "mailgate_deliveries_total");
  EXPECT_EQ(p.families[1].name, "mailgate_outbound_connections_active");
  EXPECT_EQ(p.families[2].name, "mailgate_queue_messages");
  const auto& d = p.families[0].samples;
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].label("result"), "delivery");
  EXPECT_EQ(d[0].label("destination"), "gmail.com");
  EXPECT_EQ(d[0].value, 5);
  EXPECT_EQ(d[1].label("result"), "bounce");
  EXPECT_EQ(d[1].label("destination"), "other");
  EXPECT_EQ(d[1].value, 7);
  // Labels keep the order they were declared in.
  EXPECT_EQ(d[0].labels[0].first, "result");
  EXPECT_EQ(d[0].labels[1].first, "destination");
  EXPECT_EQ(p.families[2].samples.size(), 2u);
}

TEST(Exposition, LabelValuesAreEscaped) {
  Exposition e;
  const std::string tricky = "a \"quoted\" back\\slash and\nnewline";
  e.add(kLuaErrors, 1, {tricky});
  const auto text = e.text();
  EXPECT_EQ(count_lines_starting(text, "mailgate_lua_errors_total{"), 1) << text;
  Parser p(text);
  ASSERT_EQ(p.families.size(), 1u) << text;
  ASSERT_EQ(p.families[0].samples.size(), 1u);
  EXPECT_EQ(p.families[0].samples[0].label("hook"), tricky);
}

TEST(Exposition, SamplesMustFitTheirDeclaration) {
  Exposition e;
  EXPECT_THROW(e.add(kDeliveries, 1, {"delivery"}), std::logic_error);  // one label missing
  EXPECT_THROW(e.add(kConnections, 1, {"x"}), std::logic_error);        // none declared
  EXPECT_THROW(e.add(kX, 1), std::logic_error);                         // a histogram
  EXPECT_THROW(e.add(kConnections, HistogramSnapshot{}), std::logic_error);
  EXPECT_EQ(e.text(), "");
}

TEST(Exposition, ValuesKeepTheirPrecision) {
  Exposition e;
  e.add(kBytes, 123'456'789'012.0);
  e.add(kSmall, 0.00005);
  e.add(kZero, 0);
  Parser p(e.text());
  ASSERT_EQ(p.families.size(), 3u);
  EXPECT_EQ(p.families[0].samples[0].value, 123'456'789'012.0);
  EXPECT_DOUBLE_EQ(p.families[1].samples[0].value, 0.00005);
  EXPECT_EQ(p.families[2].samples[0].value, 0);
}

TEST(Exposition, HistogramBucketsAreCumulativeAndInfIsTheCount) {
  Histogram worker1({0.1, 1, 10}), worker2({0.1, 1, 10});
  for (double v : {0.05, 0.1, 0.5}) worker1.observe(v);
  for (double v : {2.0, 20.0, 30.0, 0.01}) worker2.observe(v);
  HistogramSnapshot snap;
  worker1.add_to(snap);
  worker2.add_to(snap);

  Exposition e;
  e.add(kDeliverySeconds, snap);
  const auto text = e.text();
  Parser p(text);
  ASSERT_EQ(p.families.size(), 1u) << text;
  EXPECT_EQ(p.families[0].type, "histogram");
  const auto s = checked_series(p.families[0], {});
  ASSERT_EQ(s.buckets.size(), 4u) << text;
  EXPECT_EQ(s.buckets[0], (std::pair<double, double>{0.1, 3}));  // 0.01, 0.05, 0.1
  EXPECT_EQ(s.buckets[1], (std::pair<double, double>{1, 4}));
  EXPECT_EQ(s.buckets[2], (std::pair<double, double>{10, 5}));
  EXPECT_EQ(s.buckets[3].second, 7);
  EXPECT_EQ(s.count, 7);
  EXPECT_DOUBLE_EQ(s.sum, 0.05 + 0.1 + 0.5 + 2 + 20 + 30 + 0.01);
}

TEST(Exposition, HistogramSeriesWithLabelsShareOneFamily) {
  Histogram connect(hook_buckets()), helo(hook_buckets());
  connect.observe(0.00002);
  connect.observe(0.3);
  helo.observe(20);  // above every bound: only in +Inf
  HistogramSnapshot a, b, empty;
  connect.add_to(a);
  helo.add_to(b);
  Histogram(hook_buckets()).add_to(empty);

  Exposition e;
  e.add(kHookSeconds, a, {"connect"});
  e.add(kHookSeconds, b, {"helo"});
  e.add(kHookSeconds, empty, {"rcpt_to"});
  const auto text = e.text();
  EXPECT_EQ(count_lines_starting(text, "# TYPE mailgate_lua_hook_seconds "), 1) << text;
  Parser p(text);
  ASSERT_EQ(p.families.size(), 1u) << text;
  const auto& f = p.families[0];

  const auto sa = checked_series(f, {{"hook", "connect"}});
  ASSERT_EQ(sa.buckets.size(), hook_buckets().size() + 1);
  for (std::size_t i = 0; i < hook_buckets().size(); ++i)
    EXPECT_DOUBLE_EQ(sa.buckets[i].first, hook_buckets()[i]) << "le at " << i;
  EXPECT_EQ(sa.buckets[0].second, 0);  // le=0.00001
  EXPECT_EQ(sa.buckets[1].second, 1);  // le=0.00005
  EXPECT_EQ(sa.count, 2);

  const auto sb = checked_series(f, {{"hook", "helo"}});
  for (std::size_t i = 0; i + 1 < sb.buckets.size(); ++i) EXPECT_EQ(sb.buckets[i].second, 0);
  EXPECT_EQ(sb.buckets.back().second, 1);
  EXPECT_EQ(sb.sum, 20);

  const auto se = checked_series(f, {{"hook", "rcpt_to"}});
  EXPECT_EQ(se.count, 0);
  EXPECT_EQ(se.sum, 0);
  EXPECT_EQ(se.buckets.back().second, 0);
}

TEST(Exposition, HistogramWithoutBoundsHasOnlyTheInfBucket) {
  Histogram h({});
  h.observe(4);
  HistogramSnapshot s;
  h.add_to(s);
  Exposition e;
  e.add(kX, s);
  Parser p(e.text());
  ASSERT_EQ(p.families.size(), 1u);
  const auto series = checked_series(p.families[0], {});
  ASSERT_EQ(series.buckets.size(), 1u);
  EXPECT_EQ(series.count, 1);
}

TEST(Exposition, DeliveriesByResultAndDestination) {
  // The way the metrics page turns OutcomeCounters into one family.
  DestinationLabels labels({"gmail.com", "outlook.com"});
  OutcomeCounters c(labels.size());
  c.add(Outcome::Delivery, labels.index("gmail.com"), 4);
  c.add(Outcome::Bounce, labels.index("example.com"), 2);
  Exposition e;
  for (std::size_t o = 0; o < kOutcomeCount; ++o)
    for (std::size_t l = 0; l < labels.size(); ++l)
      e.add(kDeliveries, static_cast<double>(c.get(static_cast<Outcome>(o), l)),
            {outcome_name(static_cast<Outcome>(o)), labels.name(l)});
  Parser p(e.text());
  ASSERT_EQ(p.families.size(), 1u);
  ASSERT_EQ(p.families[0].samples.size(), kOutcomeCount * 3);
  std::map<std::pair<std::string, std::string>, double> got;
  for (const auto& s : p.families[0].samples)
    got[{s.label("result"), s.label("destination")}] = s.value;
  EXPECT_EQ(got.size(), kOutcomeCount * 3);  // no duplicate series
  EXPECT_EQ((got[{"delivery", "gmail.com"}]), 4);
  EXPECT_EQ((got[{"bounce", "other"}]), 2);
  EXPECT_EQ((got[{"bounce", "outlook.com"}]), 0);
}

// promtool (Debian's prometheus package, installed by scripts/setup) is the
// reference parser and linter; skipped when it is not there.
TEST(Exposition, PromtoolAcceptsTheText) {
  const char* promtool = "/usr/bin/promtool";
  if (::access(promtool, X_OK) != 0) GTEST_SKIP() << "no " << promtool;
  Exposition e;
  e.add(kConnections, 10);
  e.add(kSessions, 1);
  e.add(kDeliveries, 5, {"delivery", "gmail.com"});
  e.add(kDeliveries, 1, {"bounce", "other"});
  Histogram h(spool_write_buckets());
  for (double v : {0.00003, 0.0004, 0.002, 0.7, 3.0}) h.observe(v);
  HistogramSnapshot s;
  h.add_to(s);
  e.add(kSpoolWrite, s);
  e.add(kHookSeconds, s, {"connect"});
  e.add(kHookSeconds, s, {"helo"});

  char path[] = "/tmp/mailgate-exposition-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  {
    std::ofstream out(path);
    out << e.text();
  }
  const std::string cmd = std::string(promtool) + " check metrics < " + path + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe)) output += buf;
  const int status = ::pclose(pipe);
  ::unlink(path);
  EXPECT_EQ(status, 0) << output << "\n" << e.text();
  EXPECT_EQ(output, "") << e.text();
}

}  // namespace
}  // namespace mailgate::metrics
