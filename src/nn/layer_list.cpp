// The layer list as text (recur train --model, the `model` key of a TOML config): layers
// separated by commas, each a type, an optional positional value and key=value settings.
//
//   conv2d 6 kernel=5 padding=2, relu, maxpool2d 2, flatten, linear 120, relu, linear
//   embedding 128, lstm 128 bidirectional, pool max, linear
//   rnn 50 untied=28, pool last, linear      (one weight set per step; sequences of 28 steps)
#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include <algorithm>

#include "nn/layer_registry.hpp"
#include "recur/error.hpp"
#include "recur/layers.hpp"

namespace recur {

namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : text) {
    if (c == sep) {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

std::string trimmed(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

// Reads one layer; `where` names the flag or file, `at` the layer ("layer 3 'linear 10'").
class LayerReader {
 public:
  LayerReader(std::string where, std::string at) : where_(std::move(where)), at_(std::move(at)) {}

  [[noreturn]] void fail(const std::string& why) const {
    throw Error(where_, fmt::format("{}: {}", at_, why));
  }

  int integer(const std::string& key, const std::string& text, int lo, int hi) const {
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi)
      fail(fmt::format("{} must be a whole number in [{}, {}], got '{}'", key, lo, hi, text));
    return static_cast<int>(v);
  }

  double probability(const std::string& key, const std::string& text) const {
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v) || v < 0 || v >= 1)
      fail(fmt::format("{} must be a number in [0, 1), got '{}'", key, text));
    return v;
  }

  bool boolean(const std::string& key, const std::string& text) const {
    if (text == "true" || text == "yes" || text == "1") return true;
    if (text == "false" || text == "no" || text == "0") return false;
    fail(fmt::format("{} must be true or false, got '{}'", key, text));
  }

 private:
  std::string where_, at_;
};

using nn::LayerKind;
using nn::LayerParam;

// A bare word that is some kind's switch ("bidirectional", "bi") is never a positional value.
bool is_switch_word(const std::string& word) {
  for (const LayerKind* k : nn::layer_kinds())
    for (const LayerParam& p : k->params)
      for (const char* w : p.switches)
        if (w && word == w) return true;
  return false;
}

// Sets the field of `p` from its text in the list.
void read_value(const LayerParam& p, const std::string& text, const LayerReader& r, LayerSpec& l) {
  std::visit(
      [&](auto member) {
        using V = std::decay_t<decltype(l.*member)>;
        if constexpr (std::is_same_v<V, int>) {
          l.*member = r.integer(p.label, text, p.lo, p.hi);
        } else if constexpr (std::is_same_v<V, double>) {
          l.*member = r.probability(p.label, text);
        } else if constexpr (std::is_same_v<V, bool>) {
          l.*member = r.boolean(p.label, text);
        } else if constexpr (std::is_same_v<V, Pooling>) {
          try {
            l.*member = parse_pooling(text);
          } catch (const Error&) {
            r.fail(fmt::format("{} must be last, mean or max, got '{}'", p.label, text));
          }
        } else {
          r.fail(fmt::format("{} cannot be set in a list", p.label));
        }
      },
      p.field);
}

// The text of a field in the list.
std::string value_text(const LayerParam& p, const LayerSpec& l) {
  return std::visit(
      [&](auto member) -> std::string {
        using V = std::decay_t<decltype(l.*member)>;
        if constexpr (std::is_same_v<V, bool>)
          return l.*member ? "true" : "false";
        else if constexpr (std::is_same_v<V, Pooling>)
          return to_string(l.*member);
        else if constexpr (std::is_same_v<V, int> || std::is_same_v<V, double>)
          return fmt::format("{}", l.*member);
        else
          return "";
      },
      p.field);
}

const LayerParam* keyed(const LayerKind& kind, const std::string& key) {
  for (const LayerParam& p : kind.params)
    if (p.key && !p.positional && key == p.key) return &p;
  return nullptr;
}

LayerSpec read_layer(const std::string& text, std::size_t index, const std::string& where) {
  const std::vector<std::string> w = words(text);
  const LayerReader r(where, fmt::format("layer {} '{}'", index, trimmed(text)));
  if (w.empty()) r.fail("is empty (two commas in a row, or a comma at the end?)");
  const std::string& word = w[0];
  const LayerKind* kind = nn::find_layer_word(word);
  if (!kind) r.fail("unknown layer type (known: " + nn::known_layer_words() + ")");
  LayerSpec l;
  l.type = kind->type;
  if (kind->from_word) kind->from_word(word, l);
  std::size_t next = 1;
  std::vector<const LayerParam*> given;
  for (const LayerParam& p : kind->params) {
    if (!p.positional) continue;
    if (next < w.size() && w[next].find('=') == std::string::npos && !is_switch_word(w[next])) {
      read_value(p, w[next++], r, l);
      given.push_back(&p);
    } else if (p.required) {
      r.fail(fmt::format(fmt::runtime(p.missing), word));
    }
  }
  for (; next < w.size(); ++next) {
    const std::string& item = w[next];
    const auto eq = item.find('=');
    if (eq == std::string::npos) {
      const LayerParam* p = keyed(*kind, item);
      for (const LayerParam& q : kind->params)
        for (const char* s : q.switches)
          if (s && item == s) p = &q;
      if (p && p->switches[0]) {
        l.*std::get<bool LayerSpec::*>(p->field) = true;
        continue;
      }
      if (p && p->bare) r.fail(p->bare);
      r.fail(fmt::format("unexpected '{}' (settings are key=value)", item));
    }
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "name") {
      if (value.empty() || value.find_first_of(".\"\\") != std::string::npos)
        r.fail("name must be non-empty, without '.', '\"' or '\\'");
      l.name = value;
    } else if (const LayerParam* p = keyed(*kind, key)) {
      if (p->precheck)
        if (const std::string why = p->precheck(value); !why.empty()) r.fail(why);
      read_value(*p, value, r, l);
      given.push_back(p);
    } else {
      r.fail(fmt::format("'{}' is not a setting of {}", key, word));
    }
  }
  for (const LayerParam& p : kind->params)
    if (p.required && !p.positional && std::find(given.begin(), given.end(), &p) == given.end())
      r.fail(fmt::format("needs {}={}", p.key, p.meta));
  return l;
}

}  // namespace

std::vector<LayerSpec> parse_layer_list(const std::string& text, const std::string& where) {
  if (words(text).empty()) throw Error(where, "is empty: give the layers, e.g. 'lstm 128, linear'");
  const std::vector<std::string> parts = split(text, ',');
  if (parts.size() > 1000) throw Error(where, "has more than 1000 layers");
  std::vector<LayerSpec> layers;
  for (std::size_t i = 0; i < parts.size(); ++i) layers.push_back(read_layer(parts[i], i, where));
  return layers;
}

std::string layer_list_text(const std::vector<LayerSpec>& layers) {
  std::string out;
  for (const LayerSpec& l : layers) {
    if (!out.empty()) out += ", ";
    const LayerKind* kind = nn::find_layer_kind(l.type);
    std::string s = kind && kind->word_of ? kind->word_of(l) : l.type;
    for (const LayerParam& p : kind ? kind->params : std::vector<LayerParam>{}) {
      if (!p.key) continue;
      if (p.switches[0]) {
        if (l.*std::get<bool LayerSpec::*>(p.field)) s += std::string(" ") + p.switches[0];
      } else if (p.required || nn::field_is_set(l, p.field)) {
        const std::string text = value_text(p, l);
        s += p.positional ? " " + text : fmt::format(" {}={}", p.key, text);
      }
    }
    if (!l.name.empty()) s += " name=" + l.name;
    out += s;
  }
  return out;
}

}  // namespace recur
