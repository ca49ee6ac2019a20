// tests/support/python_email: cross-checks built messages with a real MIME
// parser. A test gives the body of a Python script; PythonEmail prefixes it
// with what every such script needs (`msg`: the message file parsed by
// Debian's /usr/bin/python3 `email` package with policy=email.policy.default,
// `defects`: its defect count, `out(key, value)`: one "key<TAB>value" line
// with CR, LF and backslash escaped), runs it on each message written to a
// temp file and returns the key/value output. Promises: the temp directory
// is removed on destruction; a script that fails or a message with defects
// (the script must `out("defects", defects)`) fails the calling test.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>

namespace mailgate::test {

class PythonEmail {
 public:
  static constexpr const char* kPython = "/usr/bin/python3";

  // False when Debian's python3 is missing (the caller skips its test).
  static bool available() { return access(kPython, X_OK) == 0; }

  explicit PythonEmail(std::string_view script_body) {
    char tmpl[] = "/tmp/mailgate-pyemail-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    std::ofstream(dir_ / "parse.py") << kPrelude << script_body;
  }
  ~PythonEmail() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  PythonEmail(const PythonEmail&) = delete;
  PythonEmail& operator=(const PythonEmail&) = delete;

  // Writes `message` to a file, runs the script on it, returns its output.
  std::map<std::string, std::string> parse(const std::string& message) {
    const auto file = dir_ / ("msg" + std::to_string(++count_) + ".eml");
    std::ofstream(file, std::ios::binary) << message;
    const std::string command = std::string(kPython) + " -I " + (dir_ / "parse.py").string() + " " +
                                file.string() + " 2>&1";
    std::map<std::string, std::string> values;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) {
      ADD_FAILURE() << "popen failed";
      return values;
    }
    std::string all;
    char buffer[4096];
    for (std::size_t got; (got = fread(buffer, 1, sizeof buffer, pipe)) > 0;)
      all.append(buffer, got);
    EXPECT_EQ(pclose(pipe), 0) << all;
    std::size_t pos = 0;
    while (pos < all.size()) {
      std::size_t eol = all.find('\n', pos);
      if (eol == std::string::npos) eol = all.size();
      const std::string line = all.substr(pos, eol - pos);
      pos = eol + 1;
      const std::size_t tab = line.find('\t');
      if (tab == std::string::npos) continue;
      values[line.substr(0, tab)] = unescape(std::string_view(line).substr(tab + 1));
    }
    EXPECT_EQ(values["defects"], "0") << all;
    return values;
  }

 private:
  static constexpr std::string_view kPrelude = R"PY(
import sys, email, email.policy

sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")

def out(key, value):
    v = str(value).replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
    print(f"{key}\t{v}")

with open(sys.argv[1], "rb") as f:
    msg = email.message_from_bytes(f.read(), policy=email.policy.default)
defects = len(msg.defects)
)PY";

  static std::string unescape(std::string_view text) {
    std::string value;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\\' && i + 1 < text.size()) {
        const char c = text[++i];
        value.push_back(c == 'r' ? '\r' : c == 'n' ? '\n' : c);
      } else {
        value.push_back(text[i]);
      }
    }
    return value;
  }

  std::filesystem::path dir_;
  int count_ = 0;
};

}  // namespace mailgate::test
